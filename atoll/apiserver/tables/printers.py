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
    human_duration,
)

JSON = dict[str, Any]


def _d(obj: JSON, key: str) -> JSON:
    v = obj.get(key)
    return v if isinstance(v, dict) else {}


def _name(obj: JSON) -> str:
    return str(_d(obj, "metadata").get("name", ""))


def _created(obj: JSON, now: float) -> str:
    return age(_d(obj, "metadata").get("creationTimestamp"), now)


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
# Pod


def _finished_at(status: JSON) -> float | None:
    term = _d(_d(status, "lastState"), "terminated")
    ts = term.get("finishedAt")
    return try_parse_time(ts) if isinstance(ts, str) and ts else None


def _pod(obj: JSON, now: float) -> list[Any]:
    spec, status, meta = _d(obj, "spec"), _d(obj, "status"), _d(obj, "metadata")
    containers = spec.get("containers") or []
    init_specs = spec.get("initContainers") or []
    restartable = {c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"}
    total = len(containers) + len(restartable)
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: float | None = None
    last_sidecar_restart: float | None = None
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    conditions = status.get("conditions") or []
    for cond in conditions:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        count = int(cs.get("restartCount") or 0)
        restarts += count
        fin = _finished_at(cs)
        if fin is not None and (last_restart is None or fin > last_restart):
            last_restart = fin
        is_sidecar = cs.get("name") in restartable
        if is_sidecar:
            sidecar_restarts += count
            if fin is not None and (last_sidecar_restart is None or fin > last_sidecar_restart):
                last_sidecar_restart = fin
        state = _d(cs, "state")
        term, waiting = state.get("terminated"), state.get("waiting")
        if isinstance(term, dict) and int(term.get("exitCode") or 0) == 0:
            continue
        if is_sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if isinstance(term, dict):
            if not term.get("reason"):
                sig = int(term.get("signal") or 0)
                reason = f"Init:Signal:{sig}" if sig else f"Init:ExitCode:{int(term.get('exitCode') or 0)}"
            else:
                reason = "Init:" + str(term["reason"])
        elif isinstance(waiting, dict) and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True" for c in conditions)
    if not initializing or initialized:
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            fin = _finished_at(cs)
            if fin is not None and (last_restart is None or fin > last_restart):
                last_restart = fin
            state = _d(cs, "state")
            term, waiting = state.get("terminated"), state.get("waiting")
            if isinstance(waiting, dict) and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif isinstance(term, dict) and term.get("reason"):
                reason = str(term["reason"])
            elif isinstance(term, dict):
                sig = int(term.get("signal") or 0)
                reason = f"Signal:{sig}" if sig else f"ExitCode:{int(term.get('exitCode') or 0)}"
            elif cs.get("ready") and isinstance(state.get("running"), dict):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            reason = "Running" if pod_ready else "NotReady"

    if meta.get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    restarts_str = str(restarts)
    if restarts and last_restart is not None:
        restarts_str = f"{restarts} ({human_duration(now - last_restart)} ago)"

    pod_ips = status.get("podIPs") or []
    ip = (pod_ips[0].get("ip") if pod_ips else None) or status.get("podIP") or "<none>"
    gates = spec.get("readinessGates") or []
    gates_str = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            for cond in conditions:
                if cond.get("type") == gate.get("conditionType"):
                    if cond.get("status") == "True":
                        true_count += 1
                    break
        gates_str = f"{true_count}/{len(gates)}"
    return [
        _name(obj), f"{ready}/{total}", reason, restarts_str, _created(obj, now),
        ip, spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", gates_str,
    ]


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

_POD_COLS = [
    NAME_COL,
    col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "string", "The aggregate status of the containers in this pod."),
    col("Restarts", "string", "The number of times the containers in this pod have been restarted and when "
        "the last container in this pod has restarted."),
    AGE_COL,
    col("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty "
        "if not yet allocated.", priority=1),
    col("Node", "string", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a "
        "candidate for scheduling by the scheduler defined in schedulerName.", priority=1),
    col("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the "
        "node, but it cannot be scheduled right away as preemption victims receive their graceful "
        "termination periods.", priority=1),
    col("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness. "
        "A pod is ready when all its containers are ready AND all conditions specified in the readiness "
        "gates have status equal to \"True\"", priority=1),
]
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
_POD_SUCCEEDED = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}]
_POD_FAILED = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]


def _pod_conditions(obj: JSON) -> list[JSON] | None:
    phase = _d(obj, "status").get("phase")
    return _POD_SUCCEEDED if phase == "Succeeded" else _POD_FAILED if phase == "Failed" else None


_CREATED_AT = [NAME_COL, col("Created At", "date", AGE_DESC)]

NAMESPACE = Printer([NAME_COL, col("Status", "string", "The status of the namespace"), AGE_COL], _namespace)
RESOURCE_QUOTA = Printer([
    NAME_COL, AGE_COL,
    col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may "
        "consume."),
    col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use "
        "independent of contention on the node."),
], _resourcequota)
POD = Printer(_POD_COLS, _pod, _pod_conditions)
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
