"""Per-kind rules the real API server applies on create and update (its "strategies").

Defaults for built-in kinds (Namespace phase and finalizers, Pod defaults and initial status,
Secret ``stringData``, Service cluster IPs) and which parts of an object a write may change.
"""

from __future__ import annotations

import base64
import ipaddress
import random
from collections.abc import Callable
from typing import Any

from atoll.api import errors
from atoll.api.registry import ResourceDef

JSON = dict[str, Any]

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _namespace_create(obj: JSON) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}
    obj["metadata"].setdefault("labels", {})[NAMESPACE_NAME_LABEL] = obj["metadata"]["name"]


def _namespace_update(obj: JSON) -> None:
    obj["metadata"].setdefault("labels", {})[NAMESPACE_NAME_LABEL] = obj["metadata"]["name"]


def _container_defaults(container: JSON) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = str(container.get("image", ""))
    latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def _pod_create(obj: JSON) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    for field in ("containers", "initContainers"):
        for container in spec.get(field) or []:
            if isinstance(container, dict):
                _container_defaults(container)
    obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def _qos_class(spec: JSON) -> str:
    requests_set, guaranteed = False, True
    for container in spec.get("containers") or []:
        resources = container.get("resources") or {} if isinstance(container, dict) else {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        if limits or requests:
            requests_set = True
        for res in ("cpu", "memory"):
            if res not in limits or requests.get(res, limits.get(res)) != limits.get(res):
                guaranteed = False
    if not requests_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _secret_create(obj: JSON) -> None:
    obj.setdefault("type", "Opaque")
    _secret_update(obj)


def _secret_update(obj: JSON) -> None:
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


_SERVICE_NET = ipaddress.ip_network("10.96.0.0/16")


def _service_create(obj: JSON) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
        ip = str(_SERVICE_NET[random.randrange(10, _SERVICE_NET.num_addresses - 1)])
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    node_ports = spec["type"] in ("NodePort", "LoadBalancer")
    if node_ports:
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if node_ports and not port.get("nodePort"):  # kubectl shows PORT(S) as 80:31234/TCP
                port["nodePort"] = random.randrange(30000, 32768)
    obj.setdefault("status", {"loadBalancer": {}})


def _resourcequota_create(obj: JSON) -> None:
    obj["status"] = {}


def _crd_create(obj: JSON) -> None:
    obj["status"] = {}


Hook = Callable[[JSON], None]

ON_CREATE: dict[tuple[str, str], Hook] = {
    ("", "Namespace"): _namespace_create,
    ("", "Pod"): _pod_create,
    ("", "Secret"): _secret_create,
    ("", "Service"): _service_create,
    ("", "ResourceQuota"): _resourcequota_create,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd_create,
}
ON_UPDATE: dict[tuple[str, str], Hook] = {
    ("", "Namespace"): _namespace_update,
    ("", "Secret"): _secret_update,
}

# built-ins whose DELETE answers the deleted object rather than a Status (as in Kubernetes)
RETURNS_DELETED_OBJECT = frozenset({("", "Pod"), ("", "Service")})


def _run_hook(rd: ResourceDef, hook: Hook, obj: JSON) -> None:
    """Run a defaulting hook; a body whose fields have the wrong JSON types is a 422, not a crash."""
    name = str((obj.get("metadata") or {}).get("name", ""))
    for fld in ("spec", "status"):
        if obj.get(fld) is not None and not isinstance(obj[fld], dict):
            raise errors.invalid(rd.kind, rd.group, name, [errors.cause(
                "FieldValueTypeInvalid", fld, f"Invalid value: {type(obj[fld]).__name__}: must be an object")])
    try:
        hook(obj)
    except (AttributeError, TypeError, ValueError) as exc:
        raise errors.invalid(rd.kind, rd.group, name, [errors.cause(
            "FieldValueTypeInvalid", "", f"Invalid value: a field has the wrong type ({exc})")]) from None


def prepare_create(rd: ResourceDef, obj: JSON) -> None:
    hook = ON_CREATE.get((rd.group, rd.kind))
    if hook:
        _run_hook(rd, hook, obj)
    elif not rd.builtin and rd.has_status:
        obj.pop("status", None)  # custom resources: status only through /status


def prepare_update(rd: ResourceDef, obj: JSON) -> None:
    hook = ON_UPDATE.get((rd.group, rd.kind))
    if hook:
        _run_hook(rd, hook, obj)


def deletion_grace_seconds(rd: ResourceDef, obj: JSON, options: JSON) -> int:
    """Seconds an object stays visible (with ``deletionTimestamp``) before it is removed; 0 = at once.

    Only Pods are deleted gracefully, as in Kubernetes: a pod bound to a node and not yet finished
    waits for its node agent to stop the containers and confirm with a delete of grace 0. The grace
    is ``DeleteOptions.gracePeriodSeconds`` or ``spec.terminationGracePeriodSeconds`` (default 30);
    a second delete may shorten it, never lengthen it.
    """
    if rd.group != "" or rd.kind != "Pod":
        return 0
    spec, status, md = obj.get("spec") or {}, obj.get("status") or {}, obj["metadata"]
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    raw = options.get("gracePeriodSeconds")
    if raw is None:
        raw = spec.get("terminationGracePeriodSeconds", 30)
    try:
        grace = int(raw)
    except (TypeError, ValueError):
        raise errors.BadRequest(f"gracePeriodSeconds: must be an integer (got {raw!r})") from None
    grace = max(grace, 0)
    current = md.get("deletionGracePeriodSeconds")
    if md.get("deletionTimestamp") and isinstance(current, int):
        grace = min(grace, current)
    return grace


def returns_deleted_object(rd: ResourceDef) -> bool:
    return not rd.builtin or (rd.group, rd.kind) in RETURNS_DELETED_OBJECT
