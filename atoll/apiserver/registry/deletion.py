"""What DELETE does to an object before it is gone: preconditions, the propagation finalizers
(``foregroundDeletion``, ``orphan``), the kind's grace period and what holds it, and the mark
(``deletionTimestamp``, ``deletionGracePeriodSeconds``). The garbage collector and the node
agents finish what the mark starts."""

from __future__ import annotations

from typing import Any

from atoll.api import errors, timestamps
from atoll.api.registry import ResourceDef
from atoll.apiserver.registry.strategies import KindStrategy

JSON = dict[str, Any]


def check_preconditions(rd: ResourceDef, name: str, obj: JSON, options: JSON) -> None:
    pre = options.get("preconditions") or {}
    if not isinstance(pre, dict):
        raise errors.BadRequest("preconditions must be an object")
    md = obj["metadata"]
    if pre.get("uid") and pre["uid"] != md.get("uid"):
        raise errors.Conflict(
            f'Operation cannot be fulfilled on {rd.group_resource} "{name}": Precondition failed: '
            f"UID in precondition: {pre['uid']}, UID in object meta: {md.get('uid')}",
            details={"name": name, "group": rd.group, "kind": rd.plural},
        )
    if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
        raise errors.Conflict(
            f'Operation cannot be fulfilled on {rd.group_resource} "{name}": Precondition failed: '
            f"ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: "
            f"{md.get('resourceVersion')}",
            details={"name": name, "group": rd.group, "kind": rd.plural},
        )


def mark_deleted(strategy: KindStrategy, obj: JSON, options: JSON, now: float) -> JSON | None:
    """The object marked for deletion, or None when it can be removed at once."""
    md = obj["metadata"]
    finalizers = list(md.get("finalizers") or [])
    policy = options.get("propagationPolicy")
    if policy is None and options.get("orphanDependents") is True:
        policy = "Orphan"
    if policy == "Foreground" and "foregroundDeletion" not in finalizers and not md.get("deletionTimestamp"):
        finalizers.append("foregroundDeletion")
    elif policy == "Orphan" and "orphan" not in finalizers and not md.get("deletionTimestamp"):
        finalizers.append("orphan")
    grace = strategy.deletion_grace(obj, options)
    if not finalizers and not strategy.deletion_held(obj) and not grace:
        return None
    new = dict(obj)
    new_md = dict(md)
    new_md["finalizers"] = finalizers
    if not finalizers:
        new_md.pop("finalizers")
    if not md.get("deletionTimestamp") or grace < int(md.get("deletionGracePeriodSeconds") or 0):
        # graceful (pods on a node): visible until the agent confirms with grace 0, like Kubernetes
        new_md["deletionTimestamp"] = timestamps.format_time(now + grace)
        new_md["deletionGracePeriodSeconds"] = grace
    new["metadata"] = new_md
    strategy.mark_deleting(new)
    return new
