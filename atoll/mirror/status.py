"""Target pod status → source pod status (what a user of the source cluster sees).

Copied: phase, reason, message, host and pod IPs, start time, QoS class and the (init, app,
ephemeral) container statuses. Conditions: the source pod keeps its own ``PodScheduled``
(it was scheduled to the virtual node) and takes every other condition from the target pod.
"""

from __future__ import annotations

from typing import Any

from atoll.api.timestamps import format_time

JSON = dict[str, Any]
COPIED = (
    "phase",
    "reason",
    "message",
    "hostIP",
    "hostIPs",
    "podIP",
    "podIPs",
    "startTime",
    "qosClass",
    "initContainerStatuses",
    "containerStatuses",
    "ephemeralContainerStatuses",
)
LOST_REASON = "PhysicalPodLost"


def mirrored_status(source: JSON, target: JSON) -> JSON | None:
    """The source pod's new status, or None when it already matches."""
    current = source.get("status") or {}
    theirs = target.get("status") or {}
    status: JSON = {k: theirs[k] for k in COPIED if k in theirs}
    scheduled = [c for c in current.get("conditions") or () if c.get("type") == "PodScheduled"]
    status["conditions"] = scheduled + [c for c in theirs.get("conditions") or () if c.get("type") != "PodScheduled"]
    if not status["conditions"] and not current.get("conditions"):
        del status["conditions"]  # none on either side: no write just to add an empty list
    if not status.get("phase"):
        status["phase"] = current.get("phase") or "Pending"
    if not theirs and status == {"phase": "Pending", "conditions": scheduled}:
        return None  # the target pod has reported nothing yet: nothing to say
    return None if status == current else status


def lost_status(source: JSON, now: float) -> JSON:
    """``Failed/PhysicalPodLost``: the target pod vanished behind our back (never silently recreated)."""
    status = dict(source.get("status") or {})
    status["phase"] = "Failed"
    status["reason"] = LOST_REASON
    status["message"] = "the pod in the worker cluster was deleted or evicted"
    conditions = [c for c in status.get("conditions") or () if c.get("type") != "Ready"]
    conditions.append(
        {"type": "Ready", "status": "False", "reason": LOST_REASON, "lastTransitionTime": format_time(now)}
    )
    status["conditions"] = conditions
    return status


def terminal(pod: JSON) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
