"""Table column sets and cell functions for built-in kinds, after Kubernetes' ``printers.go``.

Each ``Printer`` holds the ``columnDefinitions`` and ``cells(obj, now) -> list``; each kind's
strategy names its printer. Cells always include the ``-o wide`` (priority 1) columns, as the real server's
``TableConvertor`` generates with ``Wide: true``.
"""

from __future__ import annotations

from typing import Any

from atoll.api.timestamps import ZERO_TIME, format_time, try_parse_time
from atoll.apiserver.tables.columns import (
    AGE_COL,
    AGE_DESC,
    NAME_COL,
    NAME_DESC,
    Printer,
    age,
    col,
    created_age,
    name_of,
    sub,
)

JSON = dict[str, Any]


_d, _name, _created = sub, name_of, created_age


def _rfc3339(obj: JSON) -> str:
    ts = _d(obj, "metadata").get("creationTimestamp")
    parsed = try_parse_time(ts) if isinstance(ts, str) and ts else None
    return ZERO_TIME if parsed is None else format_time(parsed)


# --------------------------------------------------------------------------------------------------
# Namespace, ConfigMap, Secret, ServiceAccount, Lease, ResourceQuota


def _namespace(obj: JSON, now: float) -> list[Any]:
    return [_name(obj), _d(obj, "status").get("phase", ""), _created(obj, now)]


def _configmap(obj: JSON, now: float) -> list[Any]:
    return [_name(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), _created(obj, now)]


def _secret(obj: JSON, now: float) -> list[Any]:
    return [_name(obj), obj.get("type", ""), len(obj.get("data") or {}), _created(obj, now)]


def _serviceaccount(obj: JSON, now: float) -> list[Any]:
    return [_name(obj), len(obj.get("secrets") or []), _created(obj, now)]


def _lease(obj: JSON, now: float) -> list[Any]:
    return [_name(obj), _d(obj, "spec").get("holderIdentity") or "", _created(obj, now)]


def _resourcequota(obj: JSON, now: float) -> list[Any]:
    status = _d(obj, "status")
    hard = status.get("hard") or {}
    used = status.get("used") or {}
    requests: list[str] = []
    limits: list[str] = []
    for key in sorted(hard):
        parts = key.split(".")
        target = limits if len(parts) > 1 and parts[0] == "limits" else requests
        target.append(f"{key}: {used.get(key, '0')}/{hard[key]}")
    return [_name(obj), _created(obj, now), ", ".join(requests), ", ".join(limits)]


# --------------------------------------------------------------------------------------------------
# Service, Endpoints, Node, Event, RBAC


def _lb_ingress(status: JSON) -> str:
    out = []
    for ing in _d(status, "loadBalancer").get("ingress") or []:
        if ing.get("ip"):
            out.append(ing["ip"])
        elif ing.get("hostname"):
            out.append(ing["hostname"])
    return ",".join(out)


def _service(obj: JSON, now: float) -> list[Any]:
    spec = _d(obj, "spec")
    svc_type = spec.get("type") or "ClusterIP"
    cluster_ips = spec.get("clusterIPs") or []
    internal = cluster_ips[0] if cluster_ips else (spec.get("clusterIP") or "<none>")
    external_ips = spec.get("externalIPs") or []
    if svc_type in ("ClusterIP", "NodePort"):
        external = ",".join(external_ips) if external_ips else "<none>"
    elif svc_type == "LoadBalancer":
        lb = _lb_ingress(_d(obj, "status"))
        if external_ips:
            external = ",".join(([*lb.split(",")] if lb else []) + external_ips)
        else:
            external = lb or "<pending>"
    elif svc_type == "ExternalName":
        external = spec.get("externalName") or ""
    else:
        external = "<unknown>"
    pieces = []
    for p in spec.get("ports") or []:
        proto = p.get("protocol") or "TCP"
        if int(p.get("nodePort") or 0) > 0:
            pieces.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            pieces.append(f"{p.get('port')}/{proto}")
    selector = spec.get("selector") or {}
    sel = ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"
    return [_name(obj), svc_type, internal, external, ",".join(pieces) or "<none>", _created(obj, now), sel]


def _host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _endpoints(obj: JSON, now: float) -> list[Any]:
    subsets = obj.get("subsets") or []
    if not subsets:
        return [_name(obj), "<none>", _created(obj, now)]
    listed: list[str] = []
    limit, more, count = 3, False, 0
    for ss in subsets:
        addrs = ss.get("addresses") or []
        ports = ss.get("ports") or []
        if not ports:
            count += len(addrs)
            for a in addrs:
                if len(listed) == limit:
                    more = True
                    break
                listed.append(str(a.get("ip", "")))
            continue
        for port in ports:
            count += len(addrs)
            for a in addrs:
                if len(listed) == limit:
                    more = True
                    break
                listed.append(_host_port(str(a.get("ip", "")), port.get("port")))
    text = ",".join(listed)
    if more:
        text = f"{text} + {count - limit} more..."
    return [_name(obj), text, _created(obj, now)]


def _node_address(status: JSON, kind: str) -> str:
    for addr in status.get("addresses") or []:
        if addr.get("type") == kind:
            return str(addr.get("address", ""))
    return "<none>"


def _node(obj: JSON, now: float) -> list[Any]:
    status, spec = _d(obj, "status"), _d(obj, "spec")
    states: list[str] = []
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            states = ["Ready" if cond.get("status") == "True" else "NotReady"]
    if not states:
        states = ["Unknown"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    roles: set[str] = set()
    for k, v in (_d(obj, "metadata").get("labels") or {}).items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    info = _d(status, "nodeInfo")
    return [
        _name(obj), ",".join(states), ",".join(sorted(roles)) or "<none>", _created(obj, now),
        info.get("kubeletVersion", ""), _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"), info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _event(obj: JSON, now: float) -> list[Any]:
    first = obj.get("firstTimestamp")
    first_seen = age(first, now) if first else age(obj.get("eventTime"), now)
    last = obj.get("lastTimestamp")
    last_seen = age(last, now) if last else first_seen
    count = int(obj.get("count") or 0)
    series = obj.get("series")
    if isinstance(series, dict):
        last_seen = age(series.get("lastObservedTime"), now)
        count = int(series.get("count") or 0)
    elif count == 0:
        count = 1
    inv = _d(obj, "involvedObject")
    kind = str(inv.get("kind", "")).lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = _d(obj, "source")
    component = src.get("component") or obj.get("reportingComponent") or ""
    instance = src.get("host") or obj.get("reportingInstance") or ""
    source = f"{component}, {instance}" if instance else component
    return [
        last_seen, obj.get("type", ""), obj.get("reason", ""), target, inv.get("fieldPath", ""), source,
        str(obj.get("message", "")).strip(), first_seen, count, _name(obj),
    ]


def _created_at(obj: JSON, now: float) -> list[Any]:
    return [_name(obj), _rfc3339(obj)]


def _rolebinding(obj: JSON, now: float) -> list[Any]:
    ref = _d(obj, "roleRef")
    users: list[str] = []
    groups: list[str] = []
    sas: list[str] = []
    for s in obj.get("subjects") or []:
        kind = s.get("kind")
        if kind == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}/{s.get('name', '')}")
        elif kind == "User":
            users.append(str(s.get("name", "")))
        elif kind == "Group":
            groups.append(str(s.get("name", "")))
    return [
        _name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", _created(obj, now),
        ", ".join(users), ", ".join(groups), ", ".join(sas),
    ]


# --------------------------------------------------------------------------------------------------
# Column definitions

_SERVICE_COLS = [
    NAME_COL,
    col("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP."),
    col("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned "
        "randomly."),
    col("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will "
        "also accept traffic for this service."),
    col("Port(s)", "string", "The list of ports that are exposed by this service."),
    AGE_COL,
    col("Selector", "string", "Route service traffic to pods with label keys and values matching this "
        "selector.", priority=1),
]
_NODE_COLS = [
    NAME_COL,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE_COL,
    col("Version", "string", "Kubelet Version reported by the node."),
    col("Internal-IP", "string", "List of addresses reachable to the node.", priority=1),
    col("External-IP", "string", "List of addresses reachable to the node.", priority=1),
    col("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 "
        "(wheezy)).", priority=1),
    col("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. "
        "3.16.0-0.bpo.4-amd64).", priority=1),
    col("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote "
        "API (e.g. containerd://1.4.2).", priority=1),
]
_EVENT_COLS = [
    col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
    col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
    col("Reason", "string", "This should be a short, machine understandable string that gives the reason "
        "for the transition into the object's current status."),
    col("Object", "string", "The object that this event is about."),
    col("Subobject", "string", "If referring to a piece of an object instead of an entire object, this "
        "string should contain a valid JSON/Go field access statement.", priority=1),
    col("Source", "string", "The component reporting this event. Should be a short machine understandable "
        "string.", priority=1),
    col("Message", "string", "A human-readable description of the status of this operation."),
    col("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is "
        "in TypeMeta.)", priority=1),
    col("Count", "string", "The number of times this event has occurred.", priority=1),
    col("Name", "string", NAME_DESC, priority=1, format_="name"),
]
_ROLEBINDING_COLS = [
    NAME_COL,
    col("Role", "string", "RoleRef can reference a Role in the current namespace or a ClusterRole in the "
        "global namespace."),
    AGE_COL,
    col("Users", "string", "Users in the roleBinding", priority=1),
    col("Groups", "string", "Groups in the roleBinding", priority=1),
    col("ServiceAccounts", "string", "ServiceAccounts in the roleBinding", priority=1),
]
_CREATED_AT = [NAME_COL, col("Created At", "date", AGE_DESC)]

NAMESPACE = Printer([NAME_COL, col("Status", "string", "The status of the namespace"), AGE_COL], _namespace)
RESOURCE_QUOTA = Printer([
    NAME_COL, AGE_COL,
    col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may "
        "consume."),
    col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use "
        "independent of contention on the node."),
], _resourcequota)
SERVICE = Printer(_SERVICE_COLS, _service)
CONFIG_MAP = Printer([NAME_COL, col("Data", "integer", "Data contains the configuration data"), AGE_COL], _configmap)
SECRET = Printer([NAME_COL, col("Type", "string", "The type of secret"),
                  col("Data", "integer", "Data contains the secret data"), AGE_COL], _secret)
SERVICE_ACCOUNT = Printer([NAME_COL, col("Secrets", "integer", "Secrets is a list of the secrets in the same "
                                         "namespace that pods running using this ServiceAccount are allowed "
                                         "to use."), AGE_COL], _serviceaccount)
NODE = Printer(_NODE_COLS, _node)
EVENT = Printer(_EVENT_COLS, _event, time_dependent=True)
ENDPOINTS = Printer([NAME_COL, col("Endpoints", "string", "Endpoints is the list of endpoints"), AGE_COL],
                    _endpoints)
LEASE = Printer([NAME_COL, col("Holder", "string", "holderIdentity contains the identity of the holder of a "
                               "current lease."), AGE_COL], _lease)
CREATED_AT = Printer(_CREATED_AT, _created_at)
RBAC_ROLE = Printer([NAME_COL, col("Created At", "string", AGE_DESC)], _created_at)
RBAC_BINDING = Printer(_ROLEBINDING_COLS, _rolebinding)
