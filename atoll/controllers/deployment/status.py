"""A Deployment's status from its ReplicaSets, and its ``Available`` / ``Progressing``
conditions (``syncRolloutStatus``): progress refreshes ``Progressing``'s ``lastUpdateTime``; no
progress for ``progressDeadlineSeconds`` turns it ``False``/``ProgressDeadlineExceeded``;
a paused Deployment reports ``Unknown``/``DeploymentPaused`` and never times out."""

from __future__ import annotations

from typing import Any

from atoll.api.timestamps import format_time, try_parse_time
from atoll.controllers.deployment.rollout import fenceposts, replicas, spec_of, status_int

JSON = dict[str, Any]

AVAILABLE, PROGRESSING = "Available", "Progressing"
NEW_RS_CREATED, FOUND_NEW_RS = "NewReplicaSetCreated", "FoundNewReplicaSet"
RS_UPDATED, NEW_RS_AVAILABLE = "ReplicaSetUpdated", "NewReplicaSetAvailable"
TIMED_OUT, PAUSED, RESUMED = "ProgressDeadlineExceeded", "DeploymentPaused", "DeploymentResumed"


def find(conditions: list[JSON], kind: str) -> JSON | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def set_condition(conditions: list[JSON], kind: str, status: str, reason: str, message: str, now: float,
                  *, refresh: bool = False) -> list[JSON]:
    """``SetDeploymentCondition`` (``refresh``: also bump ``lastUpdateTime`` of an unchanged reason)."""
    current = find(conditions, kind)
    if current is not None and current.get("status") == status and current.get("reason") == reason and not refresh:
        return conditions
    stamp = format_time(now)
    transition = current["lastTransitionTime"] if current is not None and current.get("status") == status else stamp
    new = {"type": kind, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": transition,
           "reason": reason, "message": message}
    return [c for c in conditions if c.get("type") != kind] + [new]


def calculate(deployment: JSON, all_rs: list[JSON], new_rs: JSON | None) -> JSON:
    """``calculateStatus``: counts from the ReplicaSets, plus the ``Available`` condition input."""
    old = deployment.get("status") or {}
    status: JSON = {
        "observedGeneration": int(deployment["metadata"].get("generation") or 1),
        "replicas": sum(status_int(rs, "replicas") for rs in all_rs),
        "updatedReplicas": 0 if new_rs is None else status_int(new_rs, "replicas"),
        "readyReplicas": sum(status_int(rs, "readyReplicas") for rs in all_rs),
        "availableReplicas": sum(status_int(rs, "availableReplicas") for rs in all_rs),
    }
    status["unavailableReplicas"] = max(sum(replicas(rs) for rs in all_rs) - status["availableReplicas"], 0)
    if old.get("collisionCount"):
        status["collisionCount"] = old["collisionCount"]
    status["conditions"] = list(old.get("conditions") or [])
    return status


def with_available(deployment: JSON, status: JSON, now: float) -> None:
    _, unavailable = fenceposts(deployment)
    if status["availableReplicas"] >= replicas(deployment) - unavailable:
        args = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    else:
        args = ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    status["conditions"] = set_condition(status["conditions"], AVAILABLE, *args, now)


def complete(deployment: JSON, status: JSON) -> bool:
    want = replicas(deployment)
    return bool(status["updatedReplicas"] == want and status["replicas"] == want
            and status["availableReplicas"] == want
            and status["observedGeneration"] >= int(deployment["metadata"].get("generation") or 1))


def progressed(old: JSON, new: JSON) -> bool:
    """``DeploymentProgressing``: more updated/ready/available pods, or fewer old ones."""
    old_old = int(old.get("replicas") or 0) - int(old.get("updatedReplicas") or 0)
    new_old = new["replicas"] - new["updatedReplicas"]
    return bool(new["updatedReplicas"] != int(old.get("updatedReplicas") or 0)
            or new["readyReplicas"] > int(old.get("readyReplicas") or 0)
            or new["availableReplicas"] > int(old.get("availableReplicas") or 0)
            or new_old < old_old)


def deadline(deployment: JSON) -> int | None:
    value = spec_of(deployment).get("progressDeadlineSeconds")
    return value if isinstance(value, int) and value < 2**31 - 1 else None


def with_progress(deployment: JSON, status: JSON, new_rs: JSON | None, now: float) -> float | None:
    """Set ``Progressing``; returns seconds until the deadline must be checked again (None: no need)."""
    limit, conds = deadline(deployment), status["conditions"]
    current = find(conds, PROGRESSING)
    if spec_of(deployment).get("paused") or limit is None or new_rs is None:
        return None
    if current is not None and current.get("reason") == TIMED_OUT:
        return None
    name = new_rs["metadata"]["name"]
    if complete(deployment, status):
        status["conditions"] = set_condition(conds, PROGRESSING, "True", NEW_RS_AVAILABLE,
                                             f'ReplicaSet "{name}" has successfully progressed.', now)
        return None
    if progressed(deployment.get("status") or {}, status):
        status["conditions"] = set_condition(conds, PROGRESSING, "True", RS_UPDATED,
                                             f'ReplicaSet "{name}" is progressing.', now, refresh=True)
        return float(limit)
    since = try_parse_time(str((current or {}).get("lastUpdateTime") or "")) if current else None
    if since is None:
        return float(limit)
    if since + limit < now:
        status["conditions"] = set_condition(conds, PROGRESSING, "False", TIMED_OUT,
                                             f'ReplicaSet "{name}" has timed out progressing.', now)
        return None
    return since + limit - now + 0.5
