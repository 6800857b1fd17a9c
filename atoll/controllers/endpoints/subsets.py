"""The Endpoints subsets a Service should have, given the pods of its namespace (pure functions).

Follows kube-controller-manager's endpoints controller:

* a pod is listed when it has ``status.podIP``, is not being deleted and has not finished for
  good (by its restart policy); ``spec.publishNotReadyAddresses`` also lists terminating pods;
* Ready pods (condition ``Ready=True``, or any pod if ``publishNotReadyAddresses``) go to
  ``addresses``, the others to ``notReadyAddresses``;
* each Service port resolves its ``targetPort``: a number as is, a name through the pod's
  container port of that name and protocol (a pod without it is left out of that port);
* addresses with the same set of ports share a subset (``RepackSubsets``), everything sorted
  so equal inputs give equal output and unchanged Endpoints are never rewritten.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

JSON = dict[str, Any]
PortKey = tuple[str, int, str, str]  # name, port, protocol, appProtocol
HEADLESS_LABEL = "service.kubernetes.io/headless"


def selector_matches(selector: dict[str, str], labels: dict[str, str] | None) -> bool:
    """A Service selector (equality on every key); an empty selector selects nothing here."""
    present = labels or {}
    return bool(selector) and all(present.get(k) == v for k, v in selector.items())


def pod_ready(pod: JSON) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def should_list(pod: JSON, *, include_terminating: bool) -> bool:
    """``ShouldPodBeInEndpoints``."""
    status = pod.get("status") or {}
    if not status.get("podIP"):
        return False
    if not include_terminating and (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    phase = status.get("phase")
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if policy == "Never":
        return phase not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def resolve_port(pod: JSON, service_port: JSON) -> int | None:
    """The pod's port for a Service port (``podutil.FindPort``); ``None`` if a named port is missing."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    text = str(target or "")
    if text.isdigit():
        return int(text)
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == text and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def _address(pod: JSON, service_name: str) -> JSON:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    address: JSON = {"ip": (pod.get("status") or {})["podIP"]}
    if spec.get("hostname") and spec.get("subdomain") == service_name:
        address["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    address["targetRef"] = {
        "kind": "Pod",
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
    }
    return address


def _port(key: PortKey) -> JSON:
    name, number, protocol, app_protocol = key
    port: JSON = {"name": name} if name else {}
    port.update(port=number, protocol=protocol)
    if app_protocol:
        port["appProtocol"] = app_protocol
    return port


def _address_order(address: JSON) -> tuple[str, str]:
    return str(address["ip"]), str(address["targetRef"]["uid"])


def desired_subsets(service: JSON, pods: Iterable[JSON]) -> list[JSON]:
    """The ``subsets`` of the Service's Endpoints for the pods its selector matches."""
    spec = service.get("spec") or {}
    name = str((service.get("metadata") or {}).get("name", ""))
    publish = bool(spec.get("publishNotReadyAddresses"))
    service_ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    # pod uid -> (address, ready, port keys)
    listed: dict[str, tuple[JSON, bool, frozenset[PortKey]]] = {}
    for pod in pods:
        if not should_list(pod, include_terminating=publish):
            continue
        ports: set[PortKey] = set()
        for sp in service_ports:
            number = resolve_port(pod, sp)
            if number is not None:
                ports.add((str(sp.get("name") or ""), number, sp.get("protocol") or "TCP", sp.get("appProtocol") or ""))
        if not ports and not (headless and not service_ports):
            continue
        address = _address(pod, name)
        listed[str(address["targetRef"]["uid"]) or address["ip"]] = (
            address,
            publish or pod_ready(pod),
            frozenset(ports),
        )
    groups: dict[frozenset[PortKey], tuple[list[JSON], list[JSON]]] = {}
    for address, ready, port_set in listed.values():
        ready_list, not_ready = groups.setdefault(port_set, ([], []))
        (ready_list if ready else not_ready).append(address)
    subsets = []
    for port_set, (ready_list, not_ready) in groups.items():
        subset: JSON = {}
        if ready_list:
            subset["addresses"] = sorted(ready_list, key=_address_order)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_order)
        if port_set:
            subset["ports"] = [_port(k) for k in sorted(port_set)]
        subsets.append(subset)
    return sorted(subsets, key=lambda s: [(p.get("name", ""), p["port"], p["protocol"]) for p in s.get("ports", [])])


def desired_labels(service: JSON) -> dict[str, str]:
    """The Service's labels, plus ``service.kubernetes.io/headless`` for headless Services."""
    labels = dict((service.get("metadata") or {}).get("labels") or {})
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels
