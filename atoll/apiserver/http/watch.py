"""WATCH: a chunked stream of newline-delimited ``{"type","object"}`` events.

From resourceVersion 0 (or none) the stream starts with synthetic ADDED events for the current
objects; from N it replays the cached history after N (410 if it is no longer retained);
``sendInitialEvents`` as ``watchstart`` says (shared with the in-process watch). Events
are filtered by namespace and selectors on the new state; an object that stops matching is sent
as DELETED (its previous content at the event's resourceVersion). With a Table Accept header
each event carries a one-row Table (column definitions in the first only; ``metadata.resourceVersion``
the object's), with a metadata-only one a ``PartialObjectMetadata`` (at ``meta_version``, as asked:
v1 or v1beta1). Bookmarks are sent when asked, their object transformed as every other event's (as
kube-apiserver's watch encoder transforms it): the resource's kind carrying only
``metadata.resourceVersion`` (and the ``initial-events-end`` annotation) in a plain watch, a
``PartialObjectMetadata`` of that metadata in a metadata-only one, and in a Table watch the one-row
Table of that object (its ``resourceVersion``, the row's cells of an empty object, the row's object
per ``includeObject``). ``timeoutSeconds`` ends the stream cleanly; a client that goes away is
noticed at once (the connection's ``connection_lost`` wakes the stream).

An idle stream wakes only when something is due: its next bookmark (if asked), its deadline, or its
connection's loss — not on a periodic tick (a master's ~65 in-process watches used to wake once a
second each). A request that did not come through ``StatusServer`` (no loss callback) still polls
its transport once a second.

While a stream is idle the cache's fan-out writes events straight to its connection (one HTTP
chunk per store batch, synchronously: no task wake-up per watcher per event); while the stream's
task is busy, or the connection's write buffer is above its high-water mark, events queue for the
task, which writes them (several per chunk) and waits for the client to drain. A client that
stops reading thus fills its queue and is ended as before. A resource converted by a CRD's
webhook is always written by the stream's task, which awaits the conversion of each chunk
(``registry.conversion.prepare``; a failure ends the stream with an ERROR event).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import orjson
from aiohttp import web

from atoll.api import errors
from atoll.api.clock import Clock, TimerHandle
from atoll.api.registry import ResourceDef
from atoll.apiserver.cache.watchcache import WatchCache, WatchEvent
from atoll.apiserver.http import partial
from atoll.apiserver.http.protocol import lost_callbacks
from atoll.apiserver.http.watchstart import INITIAL_EVENTS_END, WatchStart, begin, bookmark
from atoll.apiserver.http.watchstart import WatchStreamSettings as WatchStreamSettings  # re-exported: importers
from atoll.apiserver.http.watchstart import parse_rv as parse_rv  # predate the split
from atoll.apiserver.registry import conversion
from atoll.apiserver.registry.lists import Matcher

JSON = dict[str, Any]
_TICK = cast(WatchEvent, object())  # queued by a stream's own timer: time to run the idle checks


async def serve_watch(
    request: web.Request,
    cache: WatchCache,
    rd: ResourceDef,
    namespace: str | None,
    matcher: Matcher | None,
    *,
    table_renderer: Callable[[JSON, bool], JSON] | None,
    metadata_only: bool = False,
    meta_version: str = "v1",
    settings: WatchStreamSettings,
    clock: Clock,
    start: WatchStart,
) -> web.StreamResponse:
    """Stream the watch ``start`` (``watchstart.watch_start`` of the request's query) asks for."""
    timeout, bookmarks = start.timeout, start.bookmarks
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    try:
        watcher, initial, initial_end = begin(cache, rd.key_prefix(namespace), matcher, start)
    except errors.Gone as err:
        # like the real cacher (newErrWatcher): a 200 stream with one ERROR event, then the end
        await response.prepare(request)
        await response.write(orjson.dumps({"type": "ERROR", "object": err.status()}) + b"\n")
        await response.write_eof()
        return response
    first = [True]
    ticker: TimerHandle | None = None
    on_lost = lost_callbacks(request)
    woken: list[Callable[[], None]] = []  # what ``on_lost`` holds for this stream (removed at its end)
    converting = rd.conversion_webhook is not None and not metadata_only  # awaits the CRD's webhook
    if converting and initial:
        try:
            await conversion.prepare(rd, [e.current for e in initial])
        except errors.APIError as err:
            cache.stop(watcher)
            await response.prepare(request)
            await response.write(orjson.dumps({"type": "ERROR", "object": err.status()}) + b"\n")
            await response.write_eof()
            return response

    def encode(event: WatchEvent) -> bytes:
        if metadata_only:
            return partial.watch_line(event.type, event.current, meta_version)
        if table_renderer is None:
            if rd.storage_version:  # a CRD with several versions: the object at the watch's version
                return b'{"type":"' + event.type.encode() + b'","object":' + conversion.raw(rd, event.current) + b"}\n"
            return event.line()
        obj = conversion.obj(rd, event.current) if rd.storage_version else event.current.obj
        return table_line(event.type, obj)

    def table_line(kind: str, obj: JSON) -> bytes:
        assert table_renderer is not None
        table = table_renderer(obj, first[0])
        first[0] = False
        return orjson.dumps({"type": kind, "object": table}) + b"\n"

    def bookmark_line(revision: int, annotations: JSON | None = None) -> bytes:
        obj = bookmark(rd, revision, annotations)
        if metadata_only:
            return b'{"type":"BOOKMARK","object":' + partial.encode(obj["metadata"], meta_version) + b"}\n"
        if table_renderer is not None:
            return table_line("BOOKMARK", obj)
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"

    try:
        await response.prepare(request)
        if initial:
            await response.write(b"".join(encode(ev) for ev in initial))
        if initial_end is not None:
            await response.write(bookmark_line(initial_end, INITIAL_EVENTS_END))
        deadline = clock.monotonic() + timeout
        next_bookmark = clock.monotonic() + settings.bookmark_interval if bookmarks else float("inf")
        bookmark_due = False
        queue = watcher.queue
        poll = 1.0 if on_lost is None else float("inf")  # no loss callback: poll the transport

        def wake() -> None:
            if queue.empty():
                queue.put_nowait(_TICK)

        def tick() -> None:
            """Wake the stream for what is due now (a bookmark, the deadline) and re-arm for the next."""
            nonlocal ticker, next_bookmark, bookmark_due
            now = clock.monotonic()
            if now >= next_bookmark:
                bookmark_due, next_bookmark = True, now + settings.bookmark_interval
            wake()
            due = min(deadline, next_bookmark, now + poll)
            ticker = clock.call_later(due - now if due > now else 1.0, tick)

        ticker = clock.call_later(min(deadline, next_bookmark, clock.monotonic() + poll) - clock.monotonic(), tick)
        if on_lost is not None:
            on_lost.add(wake)
            woken.append(wake)
        if not converting:  # (a conversion webhook is awaited by the stream's task)
            watcher.sink = _direct_writer(request, encode)
        while True:
            if clock.monotonic() >= deadline:
                break
            if bookmark_due and queue.empty():  # every event up to the cache's revision is written
                bookmark_due = False
                await response.write(bookmark_line(cache.revision))
                continue
            if queue.empty():
                watcher.parked = True  # the cache writes events straight to the socket meanwhile
                try:
                    event = await queue.get()
                finally:
                    watcher.parked = False
            else:
                event = queue.get_nowait()
            if event is _TICK:
                if request.transport is None or request.transport.is_closing():
                    break
                continue  # a due bookmark goes once the events queued behind this are written
            if event is None:
                if watcher.error is not None:
                    failure = watcher.error
                    if not isinstance(failure, errors.APIError):
                        failure = errors.InternalError(str(failure))
                    status = failure.status()
                    await response.write(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
                break
            events = [event]
            while not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    queue.put_nowait(None)
                    break
                if more is not _TICK:
                    events.append(more)
            if converting and not await _converted(response, rd, events):
                break
            await response.write(encode(event) if len(events) == 1 else b"".join(encode(e) for e in events))
        await response.write_eof()
    except ConnectionResetError:
        pass
    finally:
        watcher.sink = None
        if ticker is not None:
            ticker.cancel()
        for fn in woken:
            assert on_lost is not None
            on_lost.discard(fn)
        cache.stop(watcher)
    return response


async def _converted(response: web.StreamResponse, rd: ResourceDef, events: list[WatchEvent]) -> bool:
    """Convert the events' objects with the CRD's webhook; False when it failed (an ERROR event,
    naming the webhook, was written: the stream ends)."""
    try:
        await conversion.prepare(rd, [e.current for e in events])
    except errors.APIError as err:
        await response.write(orjson.dumps({"type": "ERROR", "object": err.status()}) + b"\n")
        return False
    return True


def _direct_writer(request: web.Request, encode: Callable[[WatchEvent], bytes]) -> Callable[[list[WatchEvent]], bool]:
    """Write a store batch's events as one HTTP chunk straight to the connection, synchronously
    from the cache's fan-out: no task wake-up and no coroutine chain per watcher per event. Declines
    (the events are queued to the stream's task, which waits for the client to drain) while the
    transport's buffer is above its high-water mark or the connection is closing, so a slow
    client's backlog stays bounded by its queue as before. The response's headers went out in
    ``prepare``."""
    protocol, transport = request.protocol, request.transport

    def write(events: list[WatchEvent]) -> bool:
        if transport is None or transport.is_closing() or protocol.writing_paused:
            return False
        data = encode(events[0]) if len(events) == 1 else b"".join(encode(e) for e in events)
        transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        return True

    return write
