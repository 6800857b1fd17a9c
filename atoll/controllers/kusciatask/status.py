"""Party and task phases from pod phases (reference §2.5 "Running handler"), with messages that
name the party and the reason.

A party is ``Failed`` when fewer than ``minReservedPods`` of its pods can still succeed (pods
that failed, are stuck in an unrecoverable waiting state, or are missing), ``Succeeded`` when at
least ``minReservedPods`` succeeded, ``Running`` when any runs. The task is ``Failed`` when fewer
than ``minReservedMembers`` parties can still succeed, ``Succeeded`` when that many did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atoll.api.kuscia_tasks import TASK_FAILED, TASK_PENDING, TASK_RUNNING, TASK_SUCCEEDED
from atoll.controllers.kusciatask.kits import PartyKit

JSON = dict[str, Any]
FAILED_WAITING = frozenset({
    "CrashLoopBackOff",
    "ImageInspectError",
    "ErrImageNeverPull",
    "RegistryUnavailable",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "PreStartHookError",
    "PostStartHookError",
})


@dataclass(slots=True)
class PartyState:
    kit: PartyKit
    phase: str = TASK_PENDING
    message: str = ""
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    missing: int = 0
    messages: list[str] = field(default_factory=list)

    def status(self) -> JSON:
        return {"domainID": self.kit.domain, "role": self.kit.role, "phase": self.phase, "message": self.message}


def pod_failure(pod: JSON) -> str | None:
    """Why ``pod`` failed (or cannot start), in the agent's words; ``None`` if it did not."""
    status = pod.get("status") or {}
    name = pod["metadata"]["name"]
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        terminated = state.get("terminated") or container.get("lastState", {}).get("terminated")
        if status.get("phase") == "Failed" and terminated and terminated.get("exitCode", 0) != 0:
            text = str(terminated.get("message") or "").strip()
            reason = terminated.get("reason") or "Error"
            detail = f": {text[-500:]}" if text else ""
            code = terminated.get("exitCode")
            return f"pod {name} container {container.get('name')} exited with code {code} ({reason}){detail}"
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in FAILED_WAITING:
            text = f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
            return f"pod {name} container {container.get('name')} {text}"
    if status.get("phase") == "Failed":
        return f"pod {name} failed: {status.get('reason') or ''} {status.get('message') or ''}".strip()
    return None


def party_state(kit: PartyKit, pods: dict[str, JSON]) -> PartyState:
    state = PartyState(kit)
    for name in kit.pod_names:
        pod = pods.get(name)
        if pod is None:
            state.missing += 1
            state.messages.append(f"pod {name} is missing")
            continue
        phase = (pod.get("status") or {}).get("phase")
        failure = pod_failure(pod)
        if phase == "Succeeded":
            state.succeeded += 1
        elif failure is not None:
            state.failed += 1
            state.messages.append(failure)
        elif phase == "Running":
            state.running += 1
    alive = kit.replicas - state.failed - state.missing
    if kit.min_reserved_pods > alive:
        state.phase = TASK_FAILED
        state.message = "; ".join(state.messages)
    elif state.succeeded >= kit.min_reserved_pods:
        state.phase = TASK_SUCCEEDED
    elif state.running or state.succeeded:
        state.phase = TASK_RUNNING
    return state


@dataclass(frozen=True, slots=True)
class TaskVerdict:
    phase: str
    reason: str = ""
    message: str = ""


def task_verdict(parties: list[PartyState], min_members: int) -> TaskVerdict:
    failed = [p for p in parties if p.phase == TASK_FAILED]
    succeeded = [p for p in parties if p.phase == TASK_SUCCEEDED]
    if min_members > len(parties) - len(failed):
        message = "; ".join(f"{p.kit.key}: {p.message}" for p in failed)
        return TaskVerdict(TASK_FAILED, "PartyFailed", message)
    if len(succeeded) >= min_members:
        return TaskVerdict(TASK_SUCCEEDED)
    if any(p.phase in (TASK_RUNNING, TASK_SUCCEEDED) for p in parties):
        return TaskVerdict(TASK_RUNNING)
    return TaskVerdict(TASK_PENDING)


def progress(parties: list[PartyState]) -> float:
    total = sum(p.kit.replicas for p in parties)
    return round(sum(p.succeeded for p in parties) / total, 4) if total else 0.0


def pod_status(pod: JSON) -> JSON:
    meta, status = pod["metadata"], pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    out: JSON = {
        "podName": meta["name"],
        "namespace": meta["namespace"],
        "podPhase": status.get("phase") or "Pending",
        "nodeName": (pod.get("spec") or {}).get("nodeName") or "",
        "createTime": meta.get("creationTimestamp"),
        "startTime": status.get("startTime"),
        "scheduleTime": (conditions.get("PodScheduled") or {}).get("lastTransitionTime")
        if (conditions.get("PodScheduled") or {}).get("status") == "True"
        else None,
        "readyTime": (conditions.get("Ready") or {}).get("lastTransitionTime")
        if (conditions.get("Ready") or {}).get("status") == "True"
        else None,
    }
    failure = pod_failure(pod)
    scheduled = conditions.get("PodScheduled") or {}
    if failure:
        out["message"] = failure
    elif scheduled.get("status") == "False":
        out["reason"] = str(scheduled.get("reason") or "")
        out["message"] = str(scheduled.get("message") or "")
    for container in status.get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated") or {}
        if terminated.get("message"):
            out["terminationLog"] = str(terminated["message"])[-2000:]
            out["reason"] = str(terminated.get("reason") or "")
    return {k: v for k, v in out.items() if v is not None}
