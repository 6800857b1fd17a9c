"""Pure rollout arithmetic of the Deployment controller (``pkg/controller/deployment/util``):
``maxSurge``/``maxUnavailable`` resolution, the new ReplicaSet's next size, how far old
ReplicaSets may shrink, the pod-template hash and revision bookkeeping."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson

from atoll.api.podtemplates import safe_encode

JSON = dict[str, Any]
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int, or ``"25%"`` of ``total``."""
    if isinstance(value, int):
        return value
    text = str(value or "0").strip()
    if text.endswith("%"):
        share = float(text[:-1]) * total / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(text)


def spec_of(obj: JSON) -> JSON:
    return obj.get("spec") or {}


def replicas(obj: JSON) -> int:
    return int(spec_of(obj).get("replicas") or 0)


def status_int(obj: JSON, field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def is_rolling(deployment: JSON) -> bool:
    return bool((spec_of(deployment).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate")


def fenceposts(deployment: JSON) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods; both 0 would deadlock, so unavailable becomes 1."""
    if not is_rolling(deployment):
        return 0, 0
    rolling = (spec_of(deployment).get("strategy") or {}).get("rollingUpdate") or {}
    want = replicas(deployment)
    surge = scaled_value(rolling.get("maxSurge", "25%"), want, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), want, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, want)


def template_hash(template: JSON, collision_count: int = 0) -> str:
    raw = orjson.dumps(template, option=orjson.OPT_SORT_KEYS) + str(collision_count).encode()
    return safe_encode(hashlib.sha256(raw).digest(), 10)


def _ignoring_hash(template: JSON) -> JSON:
    """``template`` as compared by ``EqualIgnoreHash``: a shallow copy without the hash label (no deep copy)."""
    md = template.get("metadata")
    labels = md.get("labels") if isinstance(md, dict) else None
    if not isinstance(labels, dict) or HASH_LABEL not in labels:
        return template
    assert isinstance(md, dict)
    return {**template, "metadata": {**md, "labels": {k: v for k, v in labels.items() if k != HASH_LABEL}}}


def same_template(rs: JSON, deployment: JSON) -> bool:
    """``EqualIgnoreHash``: the ReplicaSet's template is the Deployment's, ignoring the hash label."""
    ours, theirs = spec_of(rs).get("template") or {}, spec_of(deployment).get("template") or {}
    return _ignoring_hash(ours) == _ignoring_hash(theirs)


def revision(rs: JSON) -> int:
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def new_rs_size(deployment: JSON, all_rs: list[JSON], new_rs: JSON) -> int:
    """``NewRSNewReplicas``: the new ReplicaSet's size after one rolling-update step."""
    want = replicas(deployment)
    if not is_rolling(deployment):
        return want
    surge, _ = fenceposts(deployment)
    current = sum(replicas(rs) for rs in all_rs)
    if current >= want + surge:
        return replicas(new_rs)
    scale_up = min(want + surge - current, want - replicas(new_rs))
    return replicas(new_rs) + max(scale_up, 0)


def available(rs: JSON) -> int:
    """Available pods of a ReplicaSet, never more than it is now scaled to: its status may still
    count pods a scale-down just removed."""
    return min(status_int(rs, "availableReplicas"), replicas(rs))


def old_scale_down_budget(deployment: JSON, all_rs: list[JSON], new_rs: JSON | None) -> int:
    """``reconcileOldReplicaSets``' ``maxScaledDown``: how many old pods may go now."""
    _, unavailable = fenceposts(deployment)
    min_available = replicas(deployment) - unavailable
    all_pods = sum(replicas(rs) for rs in all_rs)
    new_unavailable = 0 if new_rs is None else replicas(new_rs) - available(new_rs)
    return all_pods - min_available - new_unavailable


def available_budget(deployment: JSON, all_rs: list[JSON]) -> int:
    """``scaleDownOldReplicaSetsForRollingUpdate``: available pods above the minimum."""
    _, unavailable = fenceposts(deployment)
    return sum(available(rs) for rs in all_rs) - (replicas(deployment) - unavailable)
