"""The resource interpreter's built-in ``AggregateStatus`` and ``InterpretHealth`` for the kinds
Karmada knows natively (:mod:`.interpreter` uses them for ``apps``/``batch`` kinds; other kinds
need a ``ResourceInterpreterCustomization``)."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]
_SUMMED = {
    "Deployment": ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas", "unavailableReplicas"),
    "StatefulSet": ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"),
    "ReplicaSet": ("replicas", "readyReplicas", "availableReplicas", "fullyLabeledReplicas"),
}


def aggregate_status(kind: str, generation: int | None, statuses: list[JSON]) -> JSON | None:
    """The template's ``.status`` from its members' statuses (None: the kind is not aggregated)."""
    if kind in _SUMMED:
        out: JSON = {field: sum(int(s.get(field) or 0) for s in statuses) for field in _SUMMED[kind]}
        if generation is not None:
            out["observedGeneration"] = generation
        return out
    if kind == "Job":
        return _job(statuses)
    return None


def _job(statuses: list[JSON]) -> JSON:
    out: JSON = {k: sum(int(s.get(k) or 0) for s in statuses) for k in ("active", "succeeded", "failed")}
    starts = [s["startTime"] for s in statuses if s.get("startTime")]
    if starts:
        out["startTime"] = min(starts)
    complete = statuses and all(_condition(s, "Complete") for s in statuses)
    failed = [s for s in statuses if _condition(s, "Failed")]
    if complete:
        out["completionTime"] = max(s.get("completionTime") or "" for s in statuses) or None
        out["conditions"] = [
            {
                "type": "Complete",
                "status": "True",
                "reason": "Completed",
                "message": "Job completed in every member cluster",
            }
        ]
    elif failed:
        out["conditions"] = [
            {
                "type": "Failed",
                "status": "True",
                "reason": "JobFailed",
                "message": f"Job failed in {len(failed)} member cluster(s)",
            }
        ]
    return {k: v for k, v in out.items() if v is not None}


def _condition(status: JSON, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in status.get("conditions") or ())


def health(kind: str, obj: JSON) -> str:
    """``Healthy`` / ``Unhealthy`` / ``Unknown`` (InterpretHealth)."""
    status = obj.get("status") or {}
    if kind in _SUMMED:
        want = int((obj.get("spec") or {}).get("replicas") or 0)
        if (obj.get("metadata") or {}).get("generation") != status.get("observedGeneration") and kind == "Deployment":
            return "Unhealthy" if status else "Unknown"
        return "Healthy" if int(status.get("readyReplicas") or 0) >= want else "Unhealthy"
    if kind == "Job":
        return "Unhealthy" if _condition(status, "Failed") else "Healthy"
    return "Healthy"
