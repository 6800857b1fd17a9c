"""Reconcile one Node: has its heartbeat (Lease renewal or Ready heartbeat) stopped for too long?

Remote timestamps are never compared with the local clock (the agent's clock may be skewed, as
kube-controller-manager's node lifecycle controller also assumes): the controller records, on its
own monotonic clock, when it last *observed* the heartbeat change, and the grace period runs from
there. A controller that just started therefore gives every node a full grace period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.constants import NODE_LEASE_NAMESPACE
from atoll.api.errors import NotFound
from atoll.api.timestamps import format_time
from atoll.client import Client
from atoll.runtime import Cache, ObjectKey, Result, get_logger
from atoll.runtime.metrics import controller_writes_total

JSON = dict[str, Any]
log = get_logger(__name__)


@dataclass(slots=True)
class Settings:
    grace: float | None = None
    """Seconds without a heartbeat before a node is marked Unknown; ``None``: the Lease's own
    ``leaseDurationSeconds`` (Kuscia's agents use 180 s). Tests set a few seconds."""
    default_grace: float = 180.0
    """For a Node without a Lease (or a Lease without a duration): Kuscia's lease duration."""


def unknown_conditions(conditions: list[JSON], now: str) -> list[JSON]:
    """Every condition set to ``Unknown`` (Ready added if missing), like kube's node lifecycle."""
    out = []
    for cond in conditions:
        if cond.get("status") == "Unknown":
            out.append(cond)
            continue
        out.append(
            {
                **cond,
                "status": "Unknown",
                "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
                "lastTransitionTime": now,
            }
        )
    if not any(c.get("type") == "Ready" for c in conditions):
        out.append(
            {
                "type": "Ready",
                "status": "Unknown",
                "reason": "NodeStatusNeverUpdated",
                "message": "Kubelet never posted node status.",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
        )
    return out


class NodeLifecycleReconciler:
    def __init__(
        self,
        client: Client,
        *,
        nodes: Cache,
        leases: Cache,
        settings: Settings | None = None,
        clock: Clock = SYSTEM_CLOCK,
        name: str = "nodelifecycle",
    ) -> None:
        self.client = client
        self.nodes = nodes
        self.leases = leases
        self.settings = settings or Settings()
        self.clock = clock
        self._observed: dict[str, tuple[tuple[Any, ...], float]] = {}
        """node → (heartbeat signature, local time it was first seen)."""
        self._writes = controller_writes_total.labels(name, "update")

    def grace_for(self, lease: JSON | None) -> float:
        if self.settings.grace is not None:
            return self.settings.grace
        duration = ((lease or {}).get("spec") or {}).get("leaseDurationSeconds")
        return float(duration) if isinstance(duration, int | float) and duration > 0 else self.settings.default_grace

    async def reconcile(self, key: ObjectKey) -> Result:
        node = self.nodes.get(key.name)
        if node is None:
            self._observed.pop(key.name, None)
            return Result()
        lease = self.leases.get(key.name, NODE_LEASE_NAMESPACE)
        conditions: list[JSON] = list((node.get("status") or {}).get("conditions") or [])
        ready = next((c for c in conditions if c.get("type") == "Ready"), {})
        signature = (((lease or {}).get("spec") or {}).get("renewTime"), ready.get("lastHeartbeatTime"))
        now = self.clock.monotonic()
        seen = self._observed.get(key.name)
        if seen is None or seen[0] != signature:
            seen = self._observed[key.name] = (signature, now)
        remaining = seen[1] + self.grace_for(lease) - now
        if remaining > 0:
            return Result(requeue_after=remaining)
        if ready.get("status") == "Unknown":
            return Result()
        log.info("node %s: no heartbeat for %.0fs; marking it Unknown", key.name, now - seen[1])
        conditions = unknown_conditions(conditions, format_time(self.clock.now()))
        status = {**(node.get("status") or {}), "conditions": conditions}
        self._writes.inc()
        try:
            await self.client.update(kinds.NODES, {**node, "status": status}, subresource="status")
        except NotFound:
            pass
        return Result()
