"""Garbage collector: cascading deletion through ``ownerReferences`` for every resource.

* :mod:`.monitors` — informers over every served resource (re-discovered as CRDs come and go);
* :mod:`.graph` — the owner/dependent graph they update incrementally, enqueueing work items;
* :mod:`.collector` — the reconciler: Background, Foreground and Orphan propagation.

The collector runs as one controller whose ``run`` also runs the monitors: they start when this
replica becomes leader (like kube-controller-manager's collector, the graph is rebuilt from
fresh lists each time) and the workers start once every monitor has listed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from atoll.controllers.garbagecollector.collector import Collector
from atoll.controllers.garbagecollector.graph import Graph, WorkItem
from atoll.controllers.garbagecollector.monitors import Monitors, SharedLookup
from atoll.runtime import Controller, WatchSettings

if TYPE_CHECKING:
    from atoll.client import Client
    from atoll.controllers import ControllerContext
    from atoll.runtime import Manager

log = logging.getLogger(__name__)

__all__ = ["Collector", "GarbageCollector", "Graph", "Monitors", "WorkItem", "setup"]

SYNC_TIMEOUT = 30.0
"""Start collecting even if some resource never lists (upstream waits a bounded time too)."""


class GarbageCollector(Controller[WorkItem]):
    """A controller whose event sources are the monitors it owns."""

    def __init__(
        self,
        client: Client,
        *,
        workers: int = 4,
        resync: float = 30.0,
        settings: WatchSettings = WatchSettings(),
        shared: SharedLookup | None = None,
    ) -> None:
        self.graph = Graph(self._enqueue)
        self.monitors = Monitors(client, self.graph, resync=resync, settings=settings, shared=shared)
        super().__init__("garbagecollector", Collector(client, self.graph), workers=workers)

    def _enqueue(self, item: WorkItem) -> None:
        self.queue.add(item)  # looked up per call: ``run`` replaces a shut-down queue

    async def run(self) -> None:
        self.graph.clear()
        async with asyncio.TaskGroup() as tg:
            monitors = tg.create_task(self.monitors.run(), name="garbagecollector/monitors")
            try:
                async with asyncio.timeout(SYNC_TIMEOUT):
                    await self.monitors.wait_synced()
            except TimeoutError:
                slow = ", ".join(self.monitors.unsynced())
                log.warning("garbage collector starts before these resources synced: %s", slow)
            try:
                await super().run()
            finally:
                monitors.cancel()


def setup(manager: Manager, ctx: ControllerContext) -> None:
    manager.add(
        GarbageCollector(
            ctx.client, workers=ctx.workers, settings=manager.informers.settings, shared=manager.informers.existing
        )
    )
