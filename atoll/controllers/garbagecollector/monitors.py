"""Resource monitors: one informer per served, deletable resource, feeding the graph.

Owners and dependents can be of any kind, custom resources included, so the set of watched
resources comes from discovery (preferred versions, verbs ``list``/``watch``/``delete``, minus
events — upstream ignores them too: never owners, far too many). The set changes while the
collector runs: discovery is re-read every ``resync`` seconds and shortly after any
CustomResourceDefinition event, monitors for new resources start and monitors for resources no
longer served stop. A resource the controller manager already informs on (all namespaces, no
selector: Pods, Nodes, ReplicaSets, ...) is observed through that shared informer, as upstream's
collector reuses the shared informer factory: no second watch of it, no second decode of each
event (the handlers are removed when the collector stops). Other resources get informers private
to the collector (the manager's shared informers are fixed before it starts), metadata-only, in
this object's TaskGroup; they stop with it.

Informer handlers only call the graph's incremental update (no I/O); see :mod:`.graph`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.client.paths import METADATA_ONLY
from atoll.controllers.garbagecollector.graph import Graph
from atoll.runtime import EventHandler, Informer, WatchSettings

log = logging.getLogger(__name__)

IGNORED: frozenset[tuple[str, str]] = frozenset({("", "events"), ("events.k8s.io", "events")})
CRD = ("apiextensions.k8s.io", "customresourcedefinitions")
REQUIRED_VERBS = frozenset({"list", "watch", "delete"})
CRD_SETTLE_SECONDS = 1.0
"""Re-discover this long after a CRD event: the new resource is served once the CRD is established."""

JSON = dict[str, Any]
MonitorKey = tuple[str, str, str]  # group, version, plural


class MetadataInformer(Informer):
    """An informer that lists and watches only metadata (``PartialObjectMetadata``, as upstream's
    collector) and caches ``apiVersion``, ``kind`` (the resource's) and ``metadata`` without
    ``managedFields``. The graph needs nothing else; receiving and caching every Secret's data and
    every Pod's spec would multiply the controller manager's memory by the size of the store.
    The event's dict may be the API server's own cached one (in-process reads, read-only), so the
    trimmed object is a new dict with a shallow copy of the metadata (nested values shared); the
    cache keeps no indexes (the graph follows events and never queries the cache)."""

    request_headers = METADATA_ONLY
    default_indexes = False

    def _apply(self, kind: str, obj: JSON) -> None:
        if not isinstance(obj, dict):
            super()._apply(kind, obj)
            return
        meta = obj.get("metadata")
        if isinstance(meta, dict) and "managedFields" in meta:
            meta = {k: v for k, v in meta.items() if k != "managedFields"}
        api_version: Any
        obj_kind: Any
        if obj.get("kind") in (None, "PartialObjectMetadata"):
            api_version, obj_kind = self.rd.api_version, self.rd.kind
        else:  # a server that ignored the metadata Accept header sent the whole object
            api_version, obj_kind = obj.get("apiVersion"), obj.get("kind")
        super()._apply(kind, {"apiVersion": api_version, "kind": obj_kind, "metadata": meta})


def collectable(rd: ResourceDef) -> bool:
    return REQUIRED_VERBS <= set(rd.verbs) and (rd.group, rd.plural) not in IGNORED


SharedLookup = Callable[[ResourceDef], Informer | None]


class Monitors:
    """Keeps one running informer per collectable resource (``shared`` finds the manager's)."""

    def __init__(
        self,
        client: Client,
        graph: Graph,
        *,
        resync: float = 30.0,
        settings: WatchSettings = WatchSettings(),
        shared: SharedLookup | None = None,
    ) -> None:
        self.client = client
        self.graph = graph
        self.resync = resync
        self.settings = settings
        self.shared = shared
        self.informers: dict[MonitorKey, tuple[Informer, asyncio.Task[None] | None]] = {}
        """Per resource: the informer and its task (None: a shared informer the manager runs)."""
        self._handlers: dict[MonitorKey, list[EventHandler]] = {}
        self._rediscover = asyncio.Event()
        self._started = asyncio.Event()

    def rediscover(self) -> None:
        """Ask for a discovery pass now (e.g. after a CRD was created)."""
        self._rediscover.set()

    async def wait_synced(self) -> None:
        """After the first discovery pass, wait until every informer has listed once."""
        await self._started.wait()
        await asyncio.gather(*(informer.wait_synced() for informer, _ in self.informers.values()))

    def unsynced(self) -> list[str]:
        return [i.rd.group_resource for i, _ in self.informers.values() if not i.has_synced]

    async def run(self) -> None:
        """Discover and monitor until cancelled."""
        try:
            async with asyncio.TaskGroup() as tg:
                while True:
                    await self._sync(tg)
                    self._started.set()
                    try:
                        async with asyncio.timeout(self.resync):
                            await self._rediscover.wait()
                    except TimeoutError:
                        pass
                    self._rediscover.clear()
        finally:
            for key in list(self.informers):
                self._stop(key)
            self._started.clear()

    async def _sync(self, tg: asyncio.TaskGroup) -> None:
        try:
            resources, failed = await self.client.preferred_resources()
        except Exception as exc:  # discovery down: keep the monitors we have, try again later
            log.warning("garbage collector discovery failed: %s", exc)
            return
        for gv, err in failed.items():
            log.warning("garbage collector cannot discover %s: %s", gv, err)
        failed_groups = {gv.rpartition("/")[0] for gv in failed}
        wanted = {(rd.group, rd.version, rd.plural): rd for rd in resources if collectable(rd)}
        for key, rd in wanted.items():
            if key not in self.informers:
                self._start(tg, key, rd)
        for key in list(self.informers):
            if key not in wanted and key[0] not in failed_groups:
                informer = self._stop(key)
                log.info("garbage collector stopped monitoring %s", informer.rd.group_resource)

    def _start(self, tg: asyncio.TaskGroup, key: MonitorKey, rd: ResourceDef) -> None:
        shared = self.shared(rd) if self.shared is not None else None
        informer = shared or MetadataInformer(self.client, rd, settings=self.settings)
        graph = self.graph
        handlers = [
            informer.add_handler(
                on_add=graph.observe, on_update=lambda _old, new: graph.observe(new), on_delete=graph.forget
            )
        ]
        if (rd.group, rd.plural) == CRD:
            loop = asyncio.get_running_loop()

            def later(_obj: object) -> None:
                loop.call_later(CRD_SETTLE_SECONDS, self._rediscover.set)

            handlers.append(informer.add_handler(on_add=later, on_update=lambda _old, new: later(new), on_delete=later))
        task = None
        if shared is None:
            task = tg.create_task(informer.run(), name=f"garbagecollector/monitor/{rd.group_resource}")
        self.informers[key] = (informer, task)
        self._handlers[key] = handlers
        log.debug("garbage collector monitors %s%s", rd.group_resource, " (shared informer)" if shared else "")

    def _stop(self, key: MonitorKey) -> Informer:
        """Stop monitoring one resource: cancel its own informer, or leave the shared one."""
        informer, task = self.informers.pop(key)
        for handler in self._handlers.pop(key, ()):
            informer.remove_handler(handler)
        if task is not None:
            task.cancel()
        return informer
