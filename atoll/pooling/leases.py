"""Node leases of virtual nodes (``kube-node-lease/<vnode>``), renewed only while it is true.

Kubeocean renews a vnode's Lease (40 s duration, every 10 s, owner reference to the vnode) while
the vnode's ``Ready`` condition — copied from the physical node — is ``True``. Atoll also stops
renewing while the worker cluster's API is unreachable: the copied condition is then stale, and
letting the lease expire is what makes the computing cluster's node lifecycle controller mark
the vnode ``Unknown`` (Kubeocean keeps renewing on stale data). One ticker renews every vnode of
a binding, spread over the renewal period in ``SPREAD`` slices (a thousand vnodes renewed at once
were a burst of a thousand writes every 10 s, delaying every pod sync queued behind it); timing
runs on the injected clock.
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
SPREAD = 10


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
        self._last: dict[str, str] = {}
        self._owners: dict[str, str] = {}
        """vnode name → the uid its Lease's owner reference was written for."""

    async def run(self) -> None:
        while True:
            nodes = [n for n in self.vnodes if node_ready(n) and not n["metadata"].get("deletionTimestamp")]
            slices = max(1, min(SPREAD, len(nodes)))
            for k in range(slices):
                batch = nodes[k::slices]
                if self.healthy():
                    await asyncio.gather(*(self._renew(n) for n in batch))
                else:
                    await asyncio.gather(*(self._keep(n) for n in batch))
                await self.clock.sleep(self.renew_every / slices)

    async def _keep(self, node: JSON) -> None:
        """Worker unreachable: renew nothing, but make sure a Lease exists (with the last renew
        time), so the node lifecycle controller applies the Lease's short duration, not its default
        for nodes without one."""
        md = node["metadata"]
        last = self._last.get(md["name"])
        if last is None:
            return
        try:
            await self.client.create(kinds.LEASES, self._lease(md, last), NODE_LEASE_NAMESPACE)
        except AlreadyExists:
            pass
        except (APIError, ClientError) as exc:
            log.warning("keeping the lease of %s failed: %s", md["name"], exc)

    def _lease(self, md: JSON, renew_time: str) -> JSON:
        owner = {"apiVersion": "v1", "kind": "Node", "name": md["name"], "uid": md["uid"]}
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": md["name"], "namespace": NODE_LEASE_NAMESPACE, "ownerReferences": [owner]},
            "spec": {"holderIdentity": md["name"], "leaseDurationSeconds": self.duration, "renewTime": renew_time,
                     "acquireTime": renew_time},
        }

    async def _renew(self, node: JSON) -> None:
        md = node["metadata"]
        now = format_micro_time(self.clock.now())
        self._last[md["name"]] = now
        spec = {"holderIdentity": md["name"], "leaseDurationSeconds": self.duration, "renewTime": now}
        # the owner is (re)written once per vnode incarnation: a vnode recreated under the same name
        # must not keep a Lease owned by its predecessor (the garbage collector would delete it);
        # later renewals carry the spec alone (a smaller write, 100 of them a second at 1,000 vnodes)
        owner = {"apiVersion": "v1", "kind": "Node", "name": md["name"], "uid": md["uid"]}
        try:
            try:
                patch: JSON = {"spec": spec}
                if self._owners.get(md["name"]) != md["uid"]:
                    patch["metadata"] = {"ownerReferences": [owner]}
                await self.client.patch(kinds.LEASES, md["name"], patch, NODE_LEASE_NAMESPACE)
                self._owners[md["name"]] = md["uid"]
            except NotFound:
                try:
                    await self.client.create(kinds.LEASES, self._lease(md, now), NODE_LEASE_NAMESPACE)
                    self._owners[md["name"]] = md["uid"]
                except AlreadyExists:
                    pass
        except (APIError, ClientError) as exc:
            log.warning("renewing the lease of %s failed: %s", md["name"], exc)
