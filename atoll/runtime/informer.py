"""Informers: a local, indexed, eventually-consistent mirror of one resource (client-go reflector).

The loop, and why each step is there:

1. **List** (paginated) and replace the cache, emitting add/update/delete for the difference, so
   a relist after a gap tells handlers about objects deleted while we were not watching.
2. **Watch from the list's resourceVersion**: a list followed by a watch from its rv loses no
   event and duplicates none. Bookmarks advance the rv without changing objects, so a restarted
   watch resumes close to "now" instead of replaying (or hitting 410).
3. **410 Gone → relist** at once: the server no longer has history back to our rv.
4. **Any other watch error → backoff, then watch again** from the last rv (no relist needed).
5. **Silence is death**: a watch that delivers nothing (not even a bookmark) for
   ``inactivity_timeout`` is assumed stuck behind a dead connection and is restarted. Watches also
   carry a randomised ``timeoutSeconds`` (client-go: 5-10 min) so the server closes them cleanly.
6. **Resync** (optional) re-delivers every cached object as an update, to let controllers
   re-check state that lives outside the API (processes, files, external clusters).

Handlers map objects to keys and enqueue; they must not do I/O (they run inline on the watch
loop). The cache holds the received dicts without copying: treat them as read-only.

A factory serves a namespace- or label-selected informer from its informer of the whole resource
when it has one (:mod:`atoll.runtime.views`): one watch and one decode per event per resource.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from atoll.api.errors import APIError, Gone
from atoll.api.registry import ResourceDef
from atoll.client import Client, ClientError, ClientTimeoutError
from atoll.client.local import with_type
from atoll.runtime import metrics
from atoll.runtime.cache import Cache, IndexFunc
from atoll.runtime.keys import ObjectKey, key_of
from atoll.runtime.views import View, view_selector

JSON = dict[str, Any]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WatchSettings:
    page_size: int = 500
    """Items per list page (kubectl and client-go use 500)."""
    timeout_seconds: int = 300
    """Watches ask the server to close after ``[t, 2t)`` seconds, randomised like client-go's
    reflector (5-10 min) so that many informers do not reconnect in lockstep."""
    inactivity_timeout: float = 70.0
    """kube-apiserver sends a bookmark about every 60 s; 70 s of silence means the connection is
    dead even if TCP has not noticed (kopf uses the same number)."""
    backoff_initial: float = 0.8
    backoff_max: float = 30.0
    """Failed lists/watches are retried after 0.8 s doubling to 30 s (client-go: 800 ms → 30 s)."""


@dataclass(frozen=True, slots=True)
class EventHandler:
    on_add: Callable[[JSON], None] | None = None
    on_update: Callable[[JSON, JSON], None] | None = None
    on_delete: Callable[[JSON], None] | None = None


class Informer:
    """List+watch one resource (optionally one namespace / selector) into a :class:`Cache`."""

    request_headers: Mapping[str, str] | None = None
    """Extra headers of its lists and watches (``METADATA_ONLY`` for a metadata informer)."""
    default_indexes: bool = True
    """Whether the cache keeps :data:`~atoll.runtime.cache.DEFAULT_INDEXES` (a consumer that only
    follows events, like the garbage collector's graph, saves computing them per event)."""

    def __init__(
        self,
        client: Client,
        rd: ResourceDef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float | None = None,
        indexes: dict[str, IndexFunc] | None = None,
        settings: WatchSettings = WatchSettings(),
    ) -> None:
        self.client = client
        self.rd = rd
        self.namespace = namespace if rd.namespaced else None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.settings = settings
        self.cache = Cache(indexes, defaults=self.default_indexes)
        self.resource_version: str | None = None
        """The last resourceVersion seen (list, event or bookmark); ``None`` forces a relist."""
        self._handlers: list[EventHandler] = []
        self._synced = asyncio.Event()
        self._restarts = metrics.informer_watch_restarts_total.labels(rd.group_resource)
        self._malformed = metrics.informer_malformed_objects_total.labels(rd.group_resource)
        self._what = rd.group_resource + (f" in {namespace}" if self.namespace else "")
        self.source: Informer | None = None
        """The informer this one is a view of (it then opens no watch of its own)."""
        self._views: list[View] = []
        self.dispatch: object | None = None
        """The handler of the controllers watching this informer (:mod:`atoll.runtime.dispatch`)."""

    # -- public ------------------------------------------------------------------------------

    def add_handler(
        self,
        *,
        on_add: Callable[[JSON], None] | None = None,
        on_update: Callable[[JSON, JSON], None] | None = None,
        on_delete: Callable[[JSON], None] | None = None,
    ) -> EventHandler:
        """Register handlers; if the cache is already filled, ``on_add`` sees every object now."""
        handler = EventHandler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if on_add is not None:
            for obj in self.cache:
                self._call(on_add, obj)
        return handler

    def remove_handler(self, handler: EventHandler) -> None:
        """Stop calling ``handler`` (a consumer that stops before the informer does)."""
        with contextlib.suppress(ValueError):
            self._handlers.remove(handler)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    async def run(self) -> None:
        """Reflect until cancelled (never returns on its own); a view waits for its source."""
        async with asyncio.TaskGroup() as tg:
            if self.resync_period:
                tg.create_task(self._resync_loop(self.resync_period), name=f"informer/{self._what}/resync")
            source = self.source
            if source is None:
                await self._reflect()
                return
            await source.wait_synced()
            self._synced.set()
            await asyncio.Event().wait()

    def serve(self, view: Informer) -> bool:
        """Feed ``view`` (same resource, a namespace and/or label selector, not started) from this
        informer's events instead of its own watch; False if it cannot be served so."""
        selector = view_selector(view)
        if selector is None or view.source is not None or view.resource_version is not None:
            return False
        view.source = self
        self._views.append(View(view, selector))
        for obj in self.cache:
            self._views[-1].offer(key_of(obj), obj)
        return True

    # -- reflector ---------------------------------------------------------------------------

    async def _reflect(self) -> None:
        delay = self.settings.backoff_initial
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self.resource_version is None:
                    await self._relist()
                started = loop.time()
                await self._watch()
                if loop.time() - started >= 1.0:
                    delay = self.settings.backoff_initial
                    continue  # the server closed a healthy watch (timeoutSeconds): resume
                log.debug("watch of %s ended at once; backing off", self._what)
            except Gone as exc:
                self._restarts.inc()
                log.info("watch of %s expired (%s); relisting", self._what, exc.message)
                self.resource_version = None
                continue
            except ClientTimeoutError:
                self._restarts.inc()
                log.info("watch of %s silent for %.0fs; restarting", self._what, self.settings.inactivity_timeout)
                continue
            except (APIError, ClientError) as exc:
                self._restarts.inc()
                log.warning("list/watch of %s failed: %s; retrying in %.1fs", self._what, exc, delay)
            await asyncio.sleep(delay * random.uniform(1.0, 1.2))
            delay = min(delay * 2, self.settings.backoff_max)

    async def _relist(self) -> None:
        """List page by page, applying each page as it comes: only one page of objects is held
        beyond what the cache keeps (a metadata informer of 200 MB of ConfigMaps keeps ~1 MB)."""
        seen: set[ObjectKey] = set()
        rv, token, count = "", None, 0
        while True:
            page = await self.client.list(
                self.rd,
                self.namespace,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
                limit=self.settings.page_size,
                continue_=token,
                headers=self.request_headers,
            )
            meta = page.get("metadata") or {}
            rv = rv or str(meta.get("resourceVersion") or "")
            for obj in page.get("items") or ():
                count += 1
                with contextlib.suppress(Exception):  # a malformed object is reported by _apply
                    seen.add(key_of(obj))
                self._apply("MODIFIED", obj)
            token = meta.get("continue") or None
            del page
            if not token:
                break
        for key in set(self.cache.keys()) - seen:
            old = self.cache.remove(key)
            if old is not None:
                self.dispatch_delete(old)
        self.resource_version = rv
        self._synced.set()
        log.debug("listed %d %s at rv %s", count, self._what, rv)

    async def _watch(self) -> None:
        timeout = random.randint(self.settings.timeout_seconds, 2 * self.settings.timeout_seconds)
        stream = self.client.watch(
            self.rd,
            self.namespace,
            resource_version=self.resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=timeout,
            allow_bookmarks=True,
            inactivity_timeout=self.settings.inactivity_timeout,
            headers=self.request_headers,
        )
        async with contextlib.aclosing(stream) as events:
            async for kind, obj in events:
                md = obj.get("metadata") if isinstance(obj, dict) else None
                rv = md.get("resourceVersion") if isinstance(md, dict) else None
                if kind != "BOOKMARK":
                    self._apply(kind, obj)
                if rv:
                    self.resource_version = str(rv)

    def _apply(self, kind: str, obj: Any) -> None:
        """Apply one event; an object that cannot be keyed, indexed or handled is logged with its key,
        counted (``informer_malformed_objects_total``) and skipped — one bad object never stops the
        informer (and so the controller or node that runs it)."""
        try:
            if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
                raise TypeError(f"not an object with metadata: {type(obj).__name__}")
            self._apply_event(kind, with_type(obj, self.rd))  # a new dict if it lacks them: obj may be shared
        except Exception as exc:  # skip exactly this object, keep reflecting
            self.skip_malformed(kind, obj, exc)

    def _apply_event(self, kind: str, obj: JSON) -> None:
        if kind == "DELETED":
            self.cache.remove(key_of(obj))
            self.dispatch_delete(obj)
            return
        self.store(obj)

    def store(self, obj: JSON) -> None:
        """Cache ``obj`` (a dict with metadata) and tell the handlers and views."""
        key = key_of(obj)
        old = self.cache.upsert(obj, key)
        if old is None:
            for h in self._handlers:
                if h.on_add is not None:
                    self._call(h.on_add, obj)
        elif old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
            for h in self._handlers:
                if h.on_update is not None:
                    self._call(h.on_update, old, obj)
        for view in self._views:
            view.offer(key, obj)

    def dispatch_delete(self, obj: JSON) -> None:
        """Tell the handlers and views that ``obj`` (no longer cached) was deleted."""
        for h in self._handlers:
            if h.on_delete is not None:
                self._call(h.on_delete, obj)
        if self._views:
            key = key_of(obj)
            for view in self._views:
                view.deleted(key, obj)

    def skip_malformed(self, kind: str, obj: Any, exc: Exception) -> None:
        self._malformed.inc()
        log.error("skipping malformed %s object %s (%s event): %r", self._what, _describe(obj), kind, exc)

    async def _resync_loop(self, period: float) -> None:
        await self._synced.wait()
        while True:
            await asyncio.sleep(period)
            for obj in self.cache:
                for h in self._handlers:
                    if h.on_update is not None:
                        self._call(h.on_update, obj, obj)

    def _call(self, func: Callable[..., None], *args: JSON) -> None:
        try:
            func(*args)
        except Exception:  # a handler bug must not stop the informer that feeds every controller
            log.exception("event handler for %s failed", self._what)


def _describe(obj: Any) -> str:
    md = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(md, dict):
        return "<no metadata>"
    return f"{md.get('namespace')}/{md.get('name')}" if md.get("namespace") else str(md.get("name"))


class InformerFactory:
    """One shared informer per (resource, namespace, selectors), like client-go's factory."""

    def __init__(
        self, client: Client, *, resync_period: float | None = None, settings: WatchSettings = WatchSettings()
    ) -> None:
        self.client = client
        self.resync_period = resync_period
        self.settings = settings
        self._informers: dict[tuple[Any, ...], Informer] = {}

    def informer(
        self,
        rd: ResourceDef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Informer:
        key = (
            rd.group,
            rd.version,
            rd.plural,
            namespace if rd.namespaced else None,
            label_selector,
            field_selector,
        )
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(
                self.client,
                rd,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                resync_period=self.resync_period,
                settings=self.settings,
            )
            self._informers[key] = informer
            self._share(informer)
        return informer

    def _share(self, informer: Informer) -> None:
        """Serve selected informers of one resource from its unselected one (:mod:`.views`)."""
        rd = informer.rd
        whole = self.existing(rd)
        if whole is None:
            return
        if whole is not informer:
            whole.serve(informer)
            return
        for other in self._informers.values():
            if other is not whole and (other.rd.group, other.rd.version, other.rd.plural) == (
                rd.group,
                rd.version,
                rd.plural,
            ):
                whole.serve(other)

    def existing(self, rd: ResourceDef) -> Informer | None:
        """The informer of every ``rd`` object (all namespaces, no selector), if one was created."""
        return self._informers.get((rd.group, rd.version, rd.plural, None, None, None))

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.wait_synced() for i in self.informers))

    async def run(self) -> None:
        """Run every informer created so far until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for informer in self.informers:
                tg.create_task(informer.run(), name=f"informer/{informer._what}")
