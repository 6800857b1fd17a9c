"""The watch cache: all objects in memory, fed by the store's watch, serving GET/LIST/WATCH.

Like kube-apiserver's cacher, reads never scan the database. At start the cache lists the store
at revision R, then follows ``store.watch`` from a little before R: rows at or below R only fill
the event history (so watches from a recent resourceVersion can replay; their previous states,
which a selected watch's replay needs, come from the rows themselves: ``prelist``), rows above R
update the state and fan out to watchers.

Each cached object (``entries.Cached``) keeps its encoded bytes and its dict (with
``metadata.resourceVersion`` set from the row's revision; large objects are decoded on use), so
LIST joins bytes instead of re-encoding and every watcher of an event shares one encoding; the
event history (``history``) is bounded in events and in bytes, and indexed per resource (a watch
from a resourceVersion replays only its resource's events); each resource's keys are kept sorted
(``keyorder``). An event is offered only to the watchers it
may concern: those of its resource, scope (namespace) and, for watchers whose field selector pins
an indexed field such as ``spec.nodeName``, value (``fanout``: kube's indexed triggers).
Watchers have bounded queues; a watcher that falls behind is ended
with a 410 so its client re-lists (never a silent gap). A watch from a resourceVersion older than
the retained history also gets 410, exactly as the real server does.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from atoll.api.errors import Gone, ServiceUnavailable
from atoll.apiserver.cache.entries import Cached, adopt, decode_or_skip, resource_prefix, revised
from atoll.apiserver.cache.fanout import Fanout, trigger_of
from atoll.apiserver.cache.history import EventHistory
from atoll.apiserver.cache.keyorder import END, KeyOrder
from atoll.apiserver.cache.prelist import PreList
from atoll.apiserver.cache.watchers import Filter, SharedEvent, Watcher
from atoll.apiserver.cache.watchers import WatchEvent as WatchEvent  # re-exported: its importers predate the split
from atoll.store.base import Compacted, Event, Store

log = logging.getLogger(__name__)

JSON = dict[str, Any]


LOAD_PAGE = 256
"""Rows read from the store per page while loading the cache at start."""


@dataclass(frozen=True, slots=True)
class CacheSettings:
    history_events: int = 200_000
    """Events kept for watches that resume from a resourceVersion; older ones answer 410."""
    history_bytes: int = 32 * 2**20
    """...and at most this many bytes of (encoded) objects in those events: 400 updates of a 1 MB
    ConfigMap must not hold 400 MB. Watchers from before the retained window get 410 and relist."""
    initial_history: int = 10_000
    """Revisions before the initial list replayed into the history at start (so clients that watched
    the previous server process can resume)."""
    watcher_queue: int = 5_000
    """Events a watcher may fall behind before it is ended with 410 (its client re-lists)."""
    read_your_writes: float = 5.0
    """Seconds a write waits for the cache to apply its own revision before giving up."""


class CacheStopped(ServiceUnavailable):
    """``wait_for`` on a stopped cache (the server is shutting down): it will never catch up. A
    committed write answers from what it wrote instead (``ResourceStorage``); a read gets 503."""


class WatchCache:
    """In-memory state of the whole store plus recent history and live watchers."""

    def __init__(self, store: Store, settings: CacheSettings | None = None) -> None:
        self._store = store
        self.settings = settings or CacheSettings()
        self._objects: dict[str, dict[str, Cached]] = {}  # resource prefix -> key -> object
        self._order = KeyOrder()  # each resource's keys, sorted (kept up to date)
        self._history = EventHistory()
        self._watchers: set[Watcher] = set()
        self._by_resource: dict[str, Fanout] = {}  # resource prefix -> its watchers, indexed
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.revision = 0
        self.stopped = False  # ``run`` ended: no more events; new watches are refused (503)
        self._live_from = 0  # events after this revision carry their previous state (``previous``)
        self._prelist = PreList(self.settings.history_bytes)  # ...and those at or before it get it here
        self._ready = asyncio.Event()
        self._listeners: list[tuple[str, Callable[[WatchEvent], None]]] = []
        self._adopted: dict[int, tuple[bytes, dict[str, Any]]] = {}  # id(row value) -> (value, object)

    def add_listener(self, prefix: str, callback: Callable[[WatchEvent], None]) -> None:
        """Call ``callback`` synchronously for every applied event under ``prefix`` (before any
        waiter of that revision wakes), e.g. to serve a new CRD before its create returns."""
        self._listeners.append((prefix, callback))

    def adopt(self, value: bytes, obj: dict[str, Any]) -> None:
        """``value`` (about to be written) is ``encode_for_store(obj)`` and ``obj`` is the server's
        own (decoded from a request body): when the store's event carries this very bytes object (a
        local SQLite commit) the cache takes ``obj`` instead of decoding the row. The writer calls
        ``forget`` once its write is applied or failed."""
        self._adopted[id(value)] = (value, obj)

    def forget(self, value: bytes) -> None:
        self._adopted.pop(id(value), None)

    # ---- life cycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Load the state, then follow the store forever (cancel to stop)."""
        listed = await self._load()
        self.revision = self._live_from = self._prelist.listed = listed
        compacted = await self._store.compacted_revision()
        start = max(compacted, listed - self.settings.initial_history)
        self._history.start = start
        self._ready.set()
        try:
            async for batch in self._store.watch(start):
                self._apply(batch)
                del batch  # not held while waiting for the next one
        except Compacted:
            # history window raced with a compaction: start history at the listed revision
            self._history.start = self.revision
            async for batch in self._store.watch(self.revision):
                self._apply(batch)
                del batch
        finally:
            self._shut()

    def _shut(self) -> None:
        """The cache stopped (server shutdown): end every watch as its server closing would (its
        client resumes from the last resourceVersion it saw, elsewhere or after backing off)."""
        self.stopped = True
        waiters, self._waiters = self._waiters, []
        for _, fut in waiters:  # nothing will catch up any more: every wait ends now
            if not fut.done():
                fut.set_exception(CacheStopped("the watch cache is stopped (the server is shutting down)"))
        for w in list(self._watchers):
            self._forget(w)
            if w.queue.full():  # events it has not read are dropped: it resumes from before them
                while not w.queue.empty():
                    w.queue.get_nowait()
            w.queue.put_nowait(None)

    async def _load(self) -> int:
        """Load the live state at one revision, ``LOAD_PAGE`` rows at a time, and return that
        revision. Only one page of raw rows is alive at once (each row is decoded and dropped), so
        a start on 200 MB of objects does not hold the 200 MB of rows next to the cache itself."""
        while True:
            revision, start_key = 0, ""
            try:
                while True:
                    page = await self._store.list("/", revision=revision, limit=LOAD_PAGE, start_key=start_key)
                    revision = page.revision
                    for kv in page.items:
                        self._load_one(kv.key, kv.value, kv.revision)
                    if not page.more or not page.items:
                        return revision
                    start_key = page.items[-1].key + "\x00"
                    del page
            except Compacted:  # compacted between two pages: load again at a newer revision
                log.info("store compacted while loading the watch cache; loading again")
                self._objects.clear()
                self._order.clear()

    def _load_one(self, key: str, value: bytes, revision: int) -> None:
        cached = decode_or_skip(key, value, revision, keep_decoded=False)
        if cached is None:
            return
        self._objects.setdefault(resource_prefix(key), {})[key] = cached
        self._notify(WatchEvent("ADDED", key, cached, None, revision))

    async def wait_ready(self) -> None:
        await self._ready.wait()

    # ---- applying store events ---------------------------------------------------------------

    def _apply(self, batch: list[Event]) -> None:
        holding: set[Watcher] = set()  # idle streams get the batch's events in one write each
        try:
            for ev in batch:
                if not ev.key.startswith("/"):
                    continue  # fill rows and store-internal keys
                if ev.revision <= self.revision:
                    self._remember(ev)
                    continue
                self._apply_one(ev, holding)
        finally:
            for w in holding:
                if not w.flush():
                    self._end(w, Gone("watch fell behind; re-list and watch again"))
        if batch:
            self.revision = max(self.revision, batch[-1].revision)
            if self.revision > self._prelist.listed:
                self._prelist.done()  # the replayed window is behind
            self._prelist.forget(self._history.start)  # ...and the rows the history dropped
        self._wake_waiters()

    def _remember(self, ev: Event) -> None:
        """A history row from before the initial list: keep it for replay only. A row that is still
        the key's current revision shares the cached object (held once, not decoded twice)."""
        current = None if ev.deleted else self._objects.get(resource_prefix(ev.key), {}).get(ev.key)
        if current is not None and current.revision == ev.revision:
            cached: Cached | None = current
        else:
            cached = decode_or_skip(ev.key, ev.value, ev.revision, keep_decoded=False)
        etype = "DELETED" if ev.deleted else ("ADDED" if ev.created else "MODIFIED")
        previous = self._prelist.chain(ev.key, etype, cached, ev.revision, ev.prev_value, ev.prev_revision)
        if cached is None:
            return
        self._history.remember(
            WatchEvent(etype, ev.key, cached, previous, ev.revision),
            self.settings.history_events,
            self.settings.history_bytes,
        )

    def _apply_one(self, ev: Event, holding: set[Watcher]) -> None:
        prefix = resource_prefix(ev.key)
        bucket = self._objects.setdefault(prefix, {})
        previous = bucket.get(ev.key)
        handed = self._adopted.pop(id(ev.value), None) if self._adopted else None
        if handed is not None and handed[0] is ev.value and not ev.deleted:
            cached: Cached | None = adopt(handed[1], ev.revision)
        elif ev.deleted and previous is not None and previous.revision == ev.prev_revision:
            cached = revised(previous, ev.revision)  # the tombstone's value is the row ``previous`` holds
        else:
            cached = decode_or_skip(ev.key, ev.value, ev.revision)
        if cached is None:
            if ev.deleted or previous is not None:  # a bad row replaced (or removed) a good one: drop it
                if bucket.pop(ev.key, None) is not None:
                    self._order.removed(prefix, ev.key)
                self._live_from = ev.revision  # the history no longer tells this key's past
            self.revision = ev.revision
            return
        if ev.deleted:
            if bucket.pop(ev.key, None) is not None:
                self._order.removed(prefix, ev.key)
            etype = "DELETED"
        else:
            if previous is None:
                self._order.added(prefix, ev.key)
            bucket[ev.key] = cached
            etype = "MODIFIED" if previous is not None else "ADDED"
        event = WatchEvent(etype, ev.key, cached, previous, ev.revision)
        self._notify(event)
        self._history.remember(event, self.settings.history_events, self.settings.history_bytes)
        self.revision = ev.revision
        fanout = self._by_resource.get(prefix)
        if fanout is not None:
            fanned = SharedEvent(etype, ev.key, cached, previous, ev.revision)
            for w in fanout.offer(fanned, holding):
                self._end(w, Gone("watch fell behind; re-list and watch again"))

    def _notify(self, event: WatchEvent) -> None:
        for lprefix, callback in self._listeners:
            if event.key.startswith(lprefix):
                try:
                    callback(event)
                except Exception:
                    log.exception("watch cache listener failed for %s", event.key)

    def _wake_waiters(self) -> None:
        still = []
        for rev, fut in self._waiters:
            if rev <= self.revision:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((rev, fut))
        self._waiters = still

    async def wait_for(self, revision: int, within: float | None = None) -> None:
        """Wait until the cache has applied ``revision`` (read-your-writes after a local write):
        ``TimeoutError`` after ``within`` (default ``read_your_writes``) seconds; ``CacheStopped``
        at once when the cache is stopped or stops meanwhile (it would never apply it)."""
        if revision <= self.revision:
            return
        if self.stopped:
            raise CacheStopped("the watch cache is stopped (the server is shutting down)")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, fut))
        async with asyncio.timeout(self.settings.read_your_writes if within is None else within):
            await fut

    def compacted(self, revision: int) -> None:
        """The store compacted to ``revision``: forget the history at or below it, so watches and
        continue tokens from before it get 410 from the cache as they do from the store."""
        self._history.compacted(revision, self.revision)

    # ---- reads ----------------------------------------------------------------------------

    def get(self, key: str) -> Cached | None:
        bucket = self._objects.get(resource_prefix(key))
        return bucket.get(key) if bucket else None

    def list(self, prefix: str, start_key: str = "") -> list[Cached]:
        """Objects under ``prefix`` in key order, starting at ``start_key``."""
        rprefix = resource_prefix(prefix)
        bucket = self._objects.get(rprefix)
        if not bucket:
            return []
        keys = self._order.keys(rprefix, bucket)
        lo = bisect.bisect_left(keys, max(prefix, start_key))
        hi = bisect.bisect_left(keys, prefix + END, lo)
        return [bucket[key] for key in keys[lo:hi]]

    def cached_entries(self) -> Iterator[tuple[str, Cached]]:
        """Every (key, object) held: the current objects, then the event history's (``verify``)."""
        for bucket in self._objects.values():
            yield from bucket.items()
        for event in self._history:
            yield event.key, event.current
            if event.previous is not None:
                yield event.key, event.previous

    def iter_from(self, prefix: str, start_key: str = "") -> Iterator[tuple[str, Cached]]:
        """(key, object) under ``prefix`` in key order from ``start_key``, lazily: a page stops
        early. The sorted keys of a resource are built once and then kept up to date."""
        rprefix = resource_prefix(prefix)
        bucket = self._objects.get(rprefix)
        if not bucket:
            return
        keys = self._order.keys(rprefix, bucket)
        i = bisect.bisect_left(keys, max(prefix, start_key))
        while i < len(keys):
            key = keys[i]
            if not key.startswith(prefix):
                return
            yield key, bucket[key]
            i += 1

    def count_from(self, prefix: str, start_key: str) -> int:
        """How many objects under ``prefix`` sort at or after ``start_key``."""
        counted = self._order.count(resource_prefix(prefix), prefix, start_key)
        return sum(1 for _ in self.iter_from(prefix, start_key)) if counted is None else counted

    def changed_since(self, prefix: str, revision: int) -> dict[str, Cached | None] | None:
        """Keys under ``prefix`` changed after ``revision``, each with its state at ``revision``
        (None: absent then), from the history; None when the history no longer covers it. With the
        current objects this gives the snapshot at ``revision`` without the database."""
        if revision < max(self._history.start, self._live_from) or revision > self.revision:
            return None
        out: dict[str, Cached | None] = {}
        for ev in self._history.after(revision, prefix):
            if ev.key.startswith(prefix) and ev.key not in out:
                out[ev.key] = ev.previous
        return out

    # ---- watches ----------------------------------------------------------------------------

    def watch(
        self, prefix: str, matches: Filter | None, revision: int | None
    ) -> tuple[Watcher, builtins.list[WatchEvent]]:
        """Register a watcher; return it and the events to send first (synthetic or replayed).

        ``matches`` None: no selector. ``revision`` None or 0: synthetic ADDED for every current
        matching object. Otherwise the history after ``revision``; 410 if that history is no
        longer retained, or if a selected watch's replay holds a change from before the initial
        list whose previous state is unknown (``prelist``: its row's previous value could not be
        decoded) and that its object may have left the selector by, which would be lost (a relist
        finds it gone); 503 once the cache has stopped (it would never send anything)."""
        if self.stopped:
            raise ServiceUnavailable("the watch cache is stopped (the server is shutting down)")
        watcher = Watcher(prefix, matches, asyncio.Queue(self.settings.watcher_queue))
        if not revision:
            initial = [
                WatchEvent("ADDED", prefix, c, None, c.revision)
                for c in self.list(prefix)
                if matches is None or matches(c.peek())
            ]
        else:
            if revision < self._history.start:
                raise Gone(f"too old resource version: {revision} ({self._history.start + 1})")
            initial = []
            probe = Watcher(prefix, matches, asyncio.Queue())
            judged = None if matches is None or _pinned(matches) else matches  # needs previous states
            for ev in self._history.after(revision, prefix):
                if judged is not None and self._prelist.unknown(ev) and ev.key.startswith(prefix):
                    if not self._prelist.settle(ev) and _left(judged, ev):
                        # a row from before the initial list: whether it left the selector is unknown
                        raise Gone(f"too old resource version: {revision} ({self._live_from})")
                probe.offer(ev)
            while not probe.queue.empty():
                item = probe.queue.get_nowait()
                if item is not None:
                    initial.append(item)
        self._watchers.add(watcher)
        rprefix = resource_prefix(prefix)
        (self._by_resource.get(rprefix) or self._by_resource.setdefault(rprefix, Fanout(rprefix))).add(watcher)
        return watcher, initial

    def stop(self, watcher: Watcher) -> None:
        self._forget(watcher)

    def _forget(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)
        rprefix = resource_prefix(watcher.prefix)
        fanout = self._by_resource.get(rprefix)
        if fanout is not None:
            fanout.discard(watcher)
            if not fanout.count:
                del self._by_resource[rprefix]

    def _end(self, watcher: Watcher, error: Exception) -> None:
        watcher.error = error
        self._forget(watcher)
        while not watcher.queue.empty():
            watcher.queue.get_nowait()
        watcher.queue.put_nowait(None)

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)


def _pinned(matches: Filter) -> bool:
    """The selector is only ``metadata.name`` or a pod's ``spec.nodeName`` = value: neither changes
    once set, so an object that does not match never did (and one that matches always did): its
    replay needs no previous states."""
    pinned = trigger_of(matches)
    return pinned is not None and pinned[2]


def _left(matches: Filter, event: WatchEvent) -> bool:
    """``event`` (a MODIFIED replayed without its previous state) may be a departure from the
    selector: its object no longer matches, so a watcher from before it may hold it (kube sends
    DELETED with the previous content, which the history does not have)."""
    try:
        return not matches(event.current.peek())
    except Exception:  # a malformed object: the fan-out skips it too
        return False
