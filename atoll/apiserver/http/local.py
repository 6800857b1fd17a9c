"""In-process reads for the master's own admin client: LIST, WATCH and GET without HTTP.

The controller manager, scheduler, gateway and pooling/fleet managers run inside the master's
process and read through an admin :class:`atoll.client.Client`. Given this backend (its
``local``, :mod:`atoll.client.local`) the client's ``list``/``watch``/``get`` are answered here,
from the watch cache and through the same code as the HTTP handlers (``ResourceHandlers.list_page``,
``lists.make_matcher``, ``ResourceHandlers.watch_start`` and ``watchstart.begin``), so every
semantic is the HTTP one: resourceVersion "" (a consistent read), 0, exact or NotOlderThan, a future
one (wait, then 504), 410 ``Gone`` for a history no longer retained (raised, as the HTTP client
raises the stream's ERROR event), selectors, BOOKMARK events, ``sendInitialEvents`` (the current
state, then the initial-events-end BOOKMARK), ``timeoutSeconds`` (random 30-60 min without), pagination
with ``limit``/``continue``, ``PartialObjectMetadata`` items (and bookmarks) for metadata-only reads, every
object's ``metadata.resourceVersion`` set, objects at the version asked for
(``registry.conversion``). Nothing is encoded nor decoded on the way.

**Objects handed out by LIST and WATCH are the cache's own dicts, never copied: consumers treat
them as read-only** (informer caches already promise that). GET returns a private copy (decoded
from the cached encoding), as callers commonly modify what they get and write it back.

A watch keeps the HTTP bound: its watcher's queue holds at most ``CacheSettings.watcher_queue``
events; a consumer that falls further behind is ended by the cache and its iteration raises
``Gone`` (its informer relists), never buffering without limit.

Calls must come from the server's own event loop (the watch queues are asyncio queues).

**Authorization**: none is checked here. Only the master's own admin client is given this backend
(``MasterNode.client``), whose user is in ``system:masters`` (allowed everything) anyway. Reads
are counted in ``atoll_apiserver_local_request_total`` (not in the HTTP request metrics), watches
in ``apiserver_registered_watchers`` too.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any, cast

import orjson

from atoll.api import errors
from atoll.api.clock import TimerHandle
from atoll.api.registry import Registry, ResourceDef
from atoll.apiserver.auth.reviews import VIRTUAL
from atoll.apiserver.cache.entries import LARGE_OBJECT, Cached
from atoll.apiserver.cache.watchcache import WatchEvent
from atoll.apiserver.http import partial
from atoll.apiserver.http.metrics import count_local, watchers
from atoll.apiserver.http.metrics_api import is_metrics
from atoll.apiserver.http.resources import ResourceHandlers
from atoll.apiserver.http.watchstart import INITIAL_EVENTS_END, begin, bookmark
from atoll.apiserver.registry import conversion, lists

JSON = dict[str, Any]
log = logging.getLogger(__name__)
_VIRTUAL = frozenset((rd.group, rd.plural) for rd in VIRTUAL)
_TICK = cast(WatchEvent, object())  # queued by the watch's own timer: time to check bookmark and deadline
_PARTIAL = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1"}


def metadata_of(cached: Cached) -> JSON:
    """``PartialObjectMetadata`` of a cached object: a small one shares the cached metadata dict; a
    large one's comes from its kept metadata encoding (its body is not decoded again)."""
    if len(cached.raw) <= LARGE_OBJECT:
        md = cached.obj.get("metadata")
        return {**_PARTIAL, "metadata": md if isinstance(md, dict) else {}}
    out: JSON = orjson.loads(partial.partial(cached))
    return out


def _internal(verb: str, rd: ResourceDef, exc: Exception) -> errors.InternalError:
    """What the HTTP path answers for an unexpected failure (a 500 ``InternalError``, logged), so
    callers that handle API errors (informers back off and retry) never see a raw exception."""
    log.error("internal error serving an in-process %s of %s", verb, rd.plural, exc_info=exc)
    count_local(verb, rd.plural, 500)
    return errors.InternalError("an internal error occurred; see the server log")


class InProcessReads:
    """The :class:`atoll.client.local.LocalReads` of one API server."""

    def __init__(self, handlers: ResourceHandlers, registry: Registry) -> None:
        """``handlers``: the HTTP handlers whose list code, watch settings and clock are used."""
        self._handlers = handlers
        self._cache = handlers.objects.cache
        self._registry = registry

    def serves(self, rd: ResourceDef) -> bool:
        """Stored resources this server has (an unknown one, a virtual review or the metrics API
        goes over HTTP, which answers it as before)."""
        own = self._registry.get(rd.group, rd.version, rd.plural)
        return own is not None and not is_metrics(own) and (own.group, own.plural) not in _VIRTUAL

    def own(self, rd: ResourceDef) -> ResourceDef:
        """This server's definition of ``rd`` (NotFound when it has none)."""
        own = self._registry.get(rd.group, rd.version, rd.plural)
        if own is None:
            raise errors.NotFound("the server could not find the requested resource")
        return own

    async def get(self, rd: ResourceDef, namespace: str | None, name: str) -> JSON:
        own = self.own(rd)
        namespace = namespace if own.namespaced else None
        if own.namespaced and not namespace:
            raise ValueError(f"{own.group_resource} {name!r}: a namespace is required")
        try:
            cached = self._cache.get(own.key(namespace, name))
            if cached is None:  # acknowledged through another master but not here yet?
                cached = await self._handlers.objects.current(own, namespace, name)
            if own.storage_version:
                await conversion.prepare(own, [cached])
        except errors.APIError as err:
            count_local("GET", own.plural, err.code)
            raise
        except Exception as exc:
            raise _internal("GET", own, exc) from exc
        count_local("GET", own.plural, 200)
        encoded = conversion.raw(own, cached) if own.storage_version else cached.raw
        out: JSON = orjson.loads(encoded)  # a private copy: callers modify and write back
        return out

    async def list(
        self, rd: ResourceDef, namespace: str | None, params: Mapping[str, str], *, metadata_only: bool
    ) -> JSON:
        own = self.own(rd)
        namespace = namespace if own.namespaced else None
        try:
            matcher = lists.make_matcher(own, params.get("labelSelector", ""), params.get("fieldSelector", ""))
            page = await self._handlers.list_page(own, namespace, params, matcher)
            if own.storage_version and not metadata_only:
                await conversion.prepare(own, page.items)
        except errors.APIError as err:
            count_local("LIST", own.plural, err.code)
            raise
        except Exception as exc:  # e.g. the cache not catching up with the store in time
            raise _internal("LIST", own, exc) from exc
        count_local("LIST", own.plural, 200)
        md: JSON = {"resourceVersion": str(page.revision)}
        if page.continue_token:
            md["continue"] = page.continue_token
            if page.remaining is not None:
                md["remainingItemCount"] = page.remaining
        if metadata_only:
            items = [metadata_of(c) for c in page.items]
            return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": md,
                    "items": items}
        if own.storage_version:
            items = [conversion.obj(own, c) for c in page.items]
        else:
            items = [c.peek() for c in page.items]
        return {"kind": own.kind_list(), "apiVersion": own.api_version, "metadata": md, "items": items}

    async def watch(
        self, rd: ResourceDef, namespace: str | None, params: Mapping[str, Any], *, metadata_only: bool
    ) -> AsyncGenerator[tuple[str, JSON], None]:
        """The events of one watch, as ``serve_watch`` writes them (see the module docstring)."""
        settings, clock, cache = self._handlers.watch_settings, self._handlers.clock, self._cache
        rd = self.own(rd)
        namespace = namespace if rd.namespaced else None
        try:
            start = await self._handlers.watch_start(params)
            matcher = lists.make_matcher(rd, params.get("labelSelector") or "", params.get("fieldSelector") or "")
            watcher, initial, initial_end = begin(cache, rd.key_prefix(namespace), matcher, start)
        except errors.APIError as err:
            count_local("WATCH", rd.plural, err.code)
            raise
        except Exception as exc:
            raise _internal("WATCH", rd, exc) from exc
        bookmarks = start.bookmarks
        converting = rd.conversion_webhook is not None and not metadata_only  # awaits the CRD's webhook
        if metadata_only:

            def obj_of(cached: Cached) -> JSON:
                return metadata_of(cached)

        elif rd.storage_version:

            def obj_of(cached: Cached) -> JSON:
                return conversion.obj(rd, cached)

        else:

            def obj_of(cached: Cached) -> JSON:
                return cached.peek()

        def bookmark_of(revision: int, annotations: JSON | None = None) -> JSON:
            """A BOOKMARK's object, transformed as the events' are (``serve_watch``'s)."""
            obj = bookmark(rd, revision, annotations)
            return {**_PARTIAL, "metadata": obj["metadata"]} if metadata_only else obj

        queue = watcher.queue
        now = clock.monotonic()
        deadline = now + start.timeout
        next_bookmark = now + settings.bookmark_interval if bookmarks else float("inf")
        bookmark_due = False
        ticker: TimerHandle | None = None

        def tick() -> None:
            """Wake the watch for what is due now (a bookmark, the deadline) and re-arm for the next."""
            nonlocal ticker, next_bookmark, bookmark_due
            now = clock.monotonic()
            if now >= next_bookmark:
                bookmark_due, next_bookmark = True, now + settings.bookmark_interval
            if queue.empty():
                queue.put_nowait(_TICK)
            due = min(deadline, next_bookmark)
            ticker = clock.call_later(due - now if due > now else 1.0, tick)

        watchers.inc()
        try:
            if converting:
                await conversion.prepare(rd, [e.current for e in initial])
            for first in initial:
                yield first.type, obj_of(first.current)
            del initial
            if initial_end is not None:
                yield "BOOKMARK", bookmark_of(initial_end, INITIAL_EVENTS_END)
            ticker = clock.call_later(max(min(deadline, next_bookmark) - clock.monotonic(), 0.0), tick)
            while clock.monotonic() < deadline:
                if bookmark_due and queue.empty():  # not before the events queued behind its tick
                    bookmark_due = False
                    yield "BOOKMARK", bookmark_of(cache.revision)
                    continue
                event = queue.get_nowait() if not queue.empty() else await queue.get()
                if event is _TICK:
                    continue
                if event is None:
                    failure = watcher.error
                    if failure is None:
                        return
                    raise failure if isinstance(failure, errors.APIError) else errors.InternalError(str(failure))
                if converting:
                    await conversion.prepare(rd, [event.current])
                yield event.type, obj_of(event.current)
        finally:
            watchers.dec()
            if ticker is not None:
                ticker.cancel()
            cache.stop(watcher)
            count_local("WATCH", rd.plural, 200)
