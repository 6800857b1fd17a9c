"""The Pod printer (``kubectl get pods``), after Kubernetes' ``printPod``: READY, STATUS (the
container-level reason kubectl users know: ``CrashLoopBackOff``, ``Init:0/1``, ``Completed``,
``Terminating``), RESTARTS with "(5m ago)", and the ``Completed`` row condition of finished pods."""

from __future__ import annotations

from typing import Any

from atoll.api.timestamps import try_parse_time
from atoll.apiserver.tables.columns import (
    AGE_COL,
    NAME_COL,
    Printer,
    col,
    created_age,
    human_duration,
    name_of,
    sub,
)

JSON = dict[str, Any]
_d, _name, _created = sub, name_of, created_age


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

_POD_SUCCEEDED = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}]
_POD_FAILED = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]


def _pod_conditions(obj: JSON) -> list[JSON] | None:
    phase = _d(obj, "status").get("phase")
    return _POD_SUCCEEDED if phase == "Succeeded" else _POD_FAILED if phase == "Failed" else None


POD = Printer(_POD_COLS, _pod, _pod_conditions)
