"""Pod status from container records, the kubelet's way (``getPhase`` and ``generateAPIPodStatus``).

Phase: any init container not yet successful → ``Pending`` (``Failed`` if it failed and will not
be retried); then waiting containers → ``Pending``; any running → ``Running``; all stopped →
``Running`` under ``Always`` (they restart), ``Succeeded`` if all exited 0, ``Failed`` under
``Never``, else ``Running`` (``OnFailure`` restarts the failed ones). A pod past its active
deadline is ``Failed`` (``DeadlineExceeded``) at once, while its containers are being stopped.
"""

from __future__ import annotations

from typing import Any

from atoll.agent.runp import deadline
from atoll.agent.runp.sandbox import ContainerRecord, SandboxState
from atoll.api.timestamps import now_time

JSON = dict[str, Any]


def container_status(rec: ContainerRecord, uid: str) -> JSON:
    state: JSON
    if rec.state == "running":
        state = {"running": {"startedAt": rec.started_at}}
    elif rec.state == "terminated" and rec.terminated is not None:
        state = {"terminated": rec.terminated}
    else:
        waiting: JSON = {"reason": rec.reason}
        if rec.message:
            waiting["message"] = rec.message
        state = {"waiting": waiting}
    out: JSON = {
        "name": rec.name,
        "state": state,
        "lastState": {"terminated": rec.last_terminated} if rec.last_terminated else {},
        "ready": rec.ready,
        "restartCount": rec.restart_count,
        "image": rec.image,
        "imageID": rec.image_id,
        "started": rec.state == "running" and rec.started,
    }
    if rec.attempt >= 0:
        out["containerID"] = rec.container_id(uid)
    return out


def _stopped(rec: ContainerRecord) -> tuple[bool, bool]:
    """(stopped, succeeded)."""
    if rec.state == "terminated" and rec.terminated is not None:
        return True, rec.terminated.get("exitCode") == 0
    if rec.state == "waiting" and rec.last_terminated is not None:
        return True, False
    return False, False


def phase(pod: JSON, state: SandboxState) -> str:
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    for c in spec.get("initContainers") or []:
        rec = state.containers.get(c["name"])
        if rec is None:
            return "Pending"
        if rec.state == "terminated" and rec.terminated and rec.terminated.get("exitCode") == 0:
            continue
        if rec.done and policy == "Never":
            return "Failed"
        return "Pending"
    waiting = running = stopped = succeeded = 0
    for c in spec.get("containers") or []:
        rec = state.containers.get(c["name"])
        if rec is None:
            waiting += 1
            continue
        if rec.state == "running":
            running += 1
            continue
        was_stopped, ok = _stopped(rec)
        if was_stopped:
            stopped += 1
            succeeded += ok
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always" and not all(r.done for r in state.containers.values()):
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never" or all(r.done for r in state.containers.values()):
            return "Failed"
        return "Running"
    return "Pending"


def _condition(kind: str, ok: bool, previous: dict[str, JSON], reason: str = "", message: str = "") -> JSON:
    value = "True" if ok else "False"
    before = previous.get(kind) or {}
    out: JSON = {
        "type": kind,
        "status": value,
        "lastProbeTime": None,
        "lastTransitionTime": before.get("lastTransitionTime") if before.get("status") == value else now_time(),
    }
    if not ok and reason:
        out["reason"] = reason
        if message:
            out["message"] = message
    return out


def pod_status(pod: JSON, state: SandboxState, host_ip: str) -> JSON:
    spec = pod.get("spec") or {}
    current = pod.get("status") or {}
    previous = {c.get("type"): c for c in current.get("conditions") or []}
    uid = state.uid
    inits = [state.containers[c["name"]] for c in spec.get("initContainers") or [] if c["name"] in state.containers]
    mains = [state.containers[c["name"]] for c in spec.get("containers") or [] if c["name"] in state.containers]
    ph = "Failed" if state.deadline_exceeded else phase(pod, state)
    initialized = all(
        r.state == "terminated" and r.terminated and r.terminated.get("exitCode") == 0 for r in inits
    ) and len(inits) == len(spec.get("initContainers") or [])
    unready = [c["name"] for c in spec.get("containers") or [] if not (state.containers.get(c["name"]) or _NO).ready]
    uninit = [r.name for r in inits if not (r.state == "terminated" and (r.terminated or {}).get("exitCode") == 0)]
    ready = not unready and ph == "Running"
    ready_reason = "PodCompleted" if ph in ("Succeeded", "Failed") else "ContainersNotReady"
    finished = ph in ("Succeeded", "Failed")
    not_ready_msg = "" if finished else f"containers with unready status: [{' '.join(unready)}]"
    conditions = [
        _condition("PodReadyToStartContainers", True, previous),
        _condition("Initialized", initialized, previous, "ContainersNotInitialized" if uninit else "PodCompleted",
                   f"containers with incomplete status: [{' '.join(uninit)}]" if uninit else ""),
        _condition("Ready", ready, previous, ready_reason, not_ready_msg if unready else ""),
        _condition("ContainersReady", ready, previous, ready_reason, not_ready_msg if unready else ""),
        previous.get("PodScheduled") or _condition("PodScheduled", True, previous),
    ]
    out: JSON = {
        "phase": ph,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": host_ip,
        "podIPs": [{"ip": host_ip}],
        "startTime": state.start_time,
        "containerStatuses": [container_status(r, uid) for r in mains],
    }
    if inits:
        out["initContainerStatuses"] = [container_status(r, uid) for r in inits]
    ephemeral = [state.containers[c["name"]] for c in spec.get("ephemeralContainers") or []
                 if c["name"] in state.containers]
    if ephemeral:
        out["ephemeralContainerStatuses"] = [container_status(r, uid) for r in ephemeral]
    if current.get("qosClass"):
        out["qosClass"] = current["qosClass"]
    failed = pod_failed_reason(state)
    if ph == "Failed" and failed is not None:
        out["reason"], out["message"] = failed
    return out


def pod_failed_reason(state: SandboxState) -> tuple[str, str] | None:
    if state.deadline_exceeded:
        return deadline.REASON, deadline.MESSAGE
    for rec in state.containers.values():
        term = rec.terminated or {}
        if term.get("reason") == "ContainerStatusUnknown":
            return "ContainerStatusUnknown", str(term.get("message") or "")
    return None


_NO = ContainerRecord(name="")
