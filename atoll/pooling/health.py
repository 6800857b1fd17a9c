"""Per-binding health for the node's ``/healthz`` and ``/readyz`` (check ``pooling/<binding>``).

A binding is healthy when it is ``Ready``, its syncer runs (``SyncerReady=True``) and — when its
syncer runs in this process — its worker cluster's API answers the syncer's probe. The reason of a
failing check is the binding's own condition message (``Failed``: why; ``SyncerReady=False``: the
syncer's last error) or ``worker cluster API unreachable``. A binding being deleted is healthy
(draining is normal work). These checks are informational in the aggregate (see
:mod:`atoll.apiserver.http.health`): they never take the computing cluster's API server out of
its load balancer, but ``GET /readyz/pooling/<binding>`` fails (500, with the reason) and
``?verbose`` lists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from atoll.pooling import constants as c

JSON = dict[str, Any]
CHECK_PREFIX = "pooling/"


def binding_problem(binding: JSON, worker_reachable: bool | None) -> str | None:
    """Why ``binding`` is unhealthy, or None."""
    if binding["metadata"].get("deletionTimestamp"):
        return None
    status = binding.get("status") or {}
    phase = status.get("phase") or c.PHASE_PENDING
    conditions = {cond.get("type"): cond for cond in status.get("conditions") or ()}
    if phase == c.PHASE_FAILED:
        ready = conditions.get(c.COND_READY) or {}
        return f"{ready.get('reason') or 'Failed'}: {ready.get('message') or 'binding failed'}"
    if phase != c.PHASE_READY:
        return f"phase {phase}"
    syncer = conditions.get(c.COND_SYNCER_READY) or {}
    if syncer.get("status") == "False":
        return f"syncer failing: {syncer.get('message') or syncer.get('reason')}"
    if worker_reachable is False:
        return "worker cluster API unreachable"
    return None


def binding_checks(bindings: Iterable[JSON], reachable: Mapping[str, bool]) -> list[tuple[str, str | None]]:
    """``(pooling/<binding>, reason or None)`` for every binding, by name."""
    return [(CHECK_PREFIX + b["metadata"]["name"], binding_problem(b, reachable.get(b["metadata"]["name"])))
            for b in sorted(bindings, key=lambda b: str(b["metadata"]["name"]))]
