"""Node leases of virtual nodes (``kube-node-lease/<vnode>``), renewed only while it is true.

Kubeocean renews a vnode's Lease (40 s duration, every 10 s, owner reference to the vnode) while
the vnode's ``Ready`` condition — copied from the physical node — is ``True``. Atoll also stops
renewing while the worker cluster's API is unreachable: the copied condition is then stale, and
letting the lease expire is what makes the computing cluster's node lifecycle controller mark
the vnode ``Unknown`` (Kubeocean keeps renewing on stale data). One ticker renews every vnode of
a binding; timing runs on the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from atoll.api import kinds
from atoll.api.clock import Clock
from atoll.api.constants import NODE_LEASE_NAMESPACE
from atoll.api.errors import AlreadyExists, APIError, NotFound
from atoll.api.timestamps import format_micro_time
from atoll.client import Client, ClientError
from atoll.runtime import Cache

JSON = dict[str, Any]
log = logging.getLogger(__name__)
LEASE_DURATION = 40
RENEW_FRACTION = 0.25


def node_ready(node: JSON) -> bool:
    return any(
        cond.get("type") == "Ready" and cond.get("status") == "True"
        for cond in (node.get("status") or {}).get("conditions") or ()
    )


class LeaseKeeper:
    def __init__(
        self,
        client: Client,
        vnodes: Cache,
        *,
        clock: Clock,
        healthy: Callable[[], bool],
        duration: int = LEASE_DURATION,
    ) -> None:
        self.client = client
        self.vnodes = vnodes
        self.clock = clock
        self.healthy = healthy
        self.duration = duration
        self.renew_every = duration * RENEW_FRACTION

    async def run(self) -> None:
        while True:
            if self.healthy():
                nodes = [n for n in self.vnodes if node_ready(n) and not n["metadata"].get("deletionTimestamp")]
                await asyncio.gather(*(self._renew(n) for n in nodes))
            await self.clock.sleep(self.renew_every)

    async def _renew(self, node: JSON) -> None:
        md = node["metadata"]
        now = format_micro_time(self.clock.now())
        spec = {"holderIdentity": md["name"], "leaseDurationSeconds": self.duration, "renewTime": now}
        try:
            try:
                await self.client.patch(kinds.LEASES, md["name"], {"spec": spec}, NODE_LEASE_NAMESPACE)
            except NotFound:
                owner = {"apiVersion": "v1", "kind": "Node", "name": md["name"], "uid": md["uid"]}
                lease = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": md["name"], "namespace": NODE_LEASE_NAMESPACE, "ownerReferences": [owner]},
                    "spec": {**spec, "acquireTime": now},
                }
                try:
                    await self.client.create(kinds.LEASES, lease, NODE_LEASE_NAMESPACE)
                except AlreadyExists:
                    pass
        except (APIError, ClientError) as exc:
            log.warning("renewing the lease of %s failed: %s", md["name"], exc)
