"""The watch cache: all objects in memory, fed by the store's watch, serving GET/LIST/WATCH.

Like kube-apiserver's cacher, reads never scan the database. At start the cache lists the store
at revision R, then follows ``store.watch`` from a little before R: rows at or below R only fill
the event history (so watches from a recent resourceVersion can replay), rows above R update the
state and fan out to watchers.

Each cached object keeps its decoded dict (with ``metadata.resourceVersion`` set from the row's
revision) and its encoded bytes, so LIST joins bytes instead of re-encoding and every watcher of
an event shares one encoding. Watchers have bounded queues; a watcher that falls behind is ended
with a 410 so its client re-lists (never a silent gap). A watch from a resourceVersion older than
the retained history also gets 410, exactly as the real server does.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import Counter

from atoll.api.errors import Gone
from atoll.runtime.metrics import REGISTRY
from atoll.store.base import Compacted, Event, Store

log = logging.getLogger(__name__)
malformed_objects = Counter(
    "apiserver_storage_malformed_objects_total",
    "Stored rows the watch cache could not decode as objects (logged with their key and skipped)",
    ["resource"],
    registry=REGISTRY,
)

JSON = dict[str, Any]


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


LARGE_OBJECT = 16 * 1024
"""Objects encoding to more than this are held once, as bytes; their dict is decoded on use."""
DECODED_BYTES = 32 * 2**20
"""Budget of the shared cache of decoded large objects (most recently used first)."""


class Cached:
    """One object as served: its JSON bytes, the dict (never mutated once cached) and encodings
    derived from it (e.g. Table rows), which live and die with this revision of the object.

    Small objects keep their dict. A large object (``LARGE_OBJECT``) is held once, as its bytes:
    its dict comes from a small byte-bounded cache of recently decoded objects, so a 100 KB
    ConfigMap costs ~100 KB of memory instead of ~200 KB, and watchers of one event, or a write
    and its response, share one decoding."""

    __slots__ = ("_obj", "derived", "raw", "revision")

    def __init__(self, obj: JSON, raw: bytes, revision: int, derived: dict[Any, Any] | None = None) -> None:
        self._obj: JSON | None = obj if len(raw) <= LARGE_OBJECT else None
        self.raw = raw
        self.revision = revision
        self.derived = derived
        if self._obj is None:
            _decoded.put(self, obj)

    @property
    def obj(self) -> JSON:
        if self._obj is not None:
            return self._obj
        obj = _decoded.get(self)
        if obj is None:
            obj = orjson.loads(self.raw)
            _decoded.put(self, obj)
        return obj


class _DecodedCache:
    """Recently used decoded large objects, bounded by their encoded size."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._items: OrderedDict[int, tuple[Cached, JSON]] = OrderedDict()
        self._bytes = 0

    def get(self, cached: Cached) -> JSON | None:
        hit = self._items.get(id(cached))
        if hit is None or hit[0] is not cached:
            return None
        self._items.move_to_end(id(cached))
        return hit[1]

    def put(self, cached: Cached, obj: JSON) -> None:
        key = id(cached)
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= len(old[0].raw)
        self._items[key] = (cached, obj)
        self._bytes += len(cached.raw)
        while self._bytes > self.budget and len(self._items) > 1:
            _, (gone, _obj) = self._items.popitem(last=False)
            self._bytes -= len(gone.raw)


_decoded = _DecodedCache(DECODED_BYTES)


@dataclass(slots=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    key: str
    current: Cached
    previous: Cached | None
    revision: int
    _line: bytes | None = None

    def line(self) -> bytes:
        """The newline-terminated JSON event. Not kept: events live on in the history, and a kept
        line would hold a second copy of every object there."""
        if self._line is None:
            return b'{"type":"' + self.type.encode() + b'","object":' + self.current.raw + b"}\n"
        return self._line


Filter = Callable[[JSON], bool]


@dataclass(eq=False)
class Watcher:
    prefix: str
    matches: Filter
    queue: asyncio.Queue[WatchEvent | None]
    error: Exception | None = None

    def offer(self, event: WatchEvent) -> bool:
        """Queue the event if it concerns this watcher; False when the watcher overflowed."""
        if not event.key.startswith(self.prefix):
            return True
        try:
            now = self.matches(event.current.obj)
            before = event.previous is not None and self.matches(event.previous.obj)
        except Exception:  # a malformed object must not stop the fan-out to every other watcher
            log.exception("watch filter failed on %s; not sent to this watcher", event.key)
            return True
        if event.type == "MODIFIED" and not now:
            if not before:
                return True
            event = WatchEvent("DELETED", event.key, event.current, event.previous, event.revision)
        elif event.type == "MODIFIED" and not before and event.previous is not None:
            event = WatchEvent("ADDED", event.key, event.current, event.previous, event.revision)
        elif not now:
            return True
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True


def resource_prefix(key: str) -> str:
    """``/group/plural/`` of a storage key."""
    second = key.index("/", 1)
    return key[: key.index("/", second + 1) + 1]


def exact(encoded: bytes) -> bytes:
    """``encoded`` in a buffer of its own size. orjson returns its output in the buffer it wrote
    into (at least 32 KB, about 10x a large object's size): anything kept must be copied out."""
    return bytes(memoryview(encoded))


def decode(value: bytes, revision: int) -> Cached:
    obj = orjson.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return Cached(obj, exact(orjson.dumps(obj)), revision)


def decode_or_skip(key: str, value: bytes, revision: int) -> Cached | None:
    """``decode``, or None (logged with its key and counted) for a row that is not a JSON object
    with object metadata — written before validation existed, or corrupted — so one bad row never
    stops the cache, and with it the whole server."""
    try:
        cached = decode(value, revision)
        if isinstance(cached.obj.get("metadata"), dict):
            return cached
        problem = "metadata is not an object"
    except (orjson.JSONDecodeError, AttributeError, TypeError) as exc:
        problem = str(exc)
    malformed_objects.labels(resource_prefix(key)).inc()
    log.error("skipping stored object %s at revision %d: %s (fix or delete it with `atoll store check`)",
              key, revision, problem)
    return None


class WatchCache:
    """In-memory state of the whole store plus recent history and live watchers."""

    def __init__(self, store: Store, settings: CacheSettings | None = None) -> None:
        self._store = store
        self.settings = settings or CacheSettings()
        self._objects: dict[str, dict[str, Cached]] = {}  # resource prefix -> key -> object
        self._sorted: dict[str, list[str]] = {}  # resource prefix -> sorted keys (lazily rebuilt)
        self._history: deque[WatchEvent] = deque()
        self._history_bytes = 0
        self._watchers: set[Watcher] = set()
        self._by_resource: dict[str, set[Watcher]] = {}  # resource prefix -> its watchers
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.revision = 0
        self._history_start = 0  # events with revision > this are all in history
        self._ready = asyncio.Event()
        self._listeners: list[tuple[str, Callable[[WatchEvent], None]]] = []

    def add_listener(self, prefix: str, callback: Callable[[WatchEvent], None]) -> None:
        """Call ``callback`` synchronously for every applied event under ``prefix`` (before any
        waiter of that revision wakes), e.g. to serve a new CRD before its create returns."""
        self._listeners.append((prefix, callback))

    # ---- life cycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Load the state, then follow the store forever (cancel to stop)."""
        listed = await self._store.list("/")
        for kv in listed.items:
            cached = decode_or_skip(kv.key, kv.value, kv.revision)
            if cached is None:
                continue
            self._objects.setdefault(resource_prefix(kv.key), {})[kv.key] = cached
            event = WatchEvent("ADDED", kv.key, cached, None, kv.revision)
            self._notify(event)
        self.revision = listed.revision
        compacted = await self._store.compacted_revision()
        start = max(compacted, listed.revision - self.settings.initial_history)
        self._history_start = start
        self._ready.set()
        try:
            async for batch in self._store.watch(start):
                self._apply(batch)
                del batch  # not held while waiting for the next one
        except Compacted:
            # history window raced with a compaction: start history at the listed revision
            self._history_start = self.revision
            async for batch in self._store.watch(self.revision):
                self._apply(batch)
                del batch
        finally:
            for w in list(self._watchers):
                w.queue.put_nowait(None)

    async def wait_ready(self) -> None:
        await self._ready.wait()

    # ---- applying store events ---------------------------------------------------------------

    def _apply(self, batch: list[Event]) -> None:
        for ev in batch:
            if not ev.key.startswith("/"):
                continue  # fill rows and store-internal keys
            if ev.revision <= self.revision:
                self._remember(ev)
                continue
            self._apply_one(ev)
        if batch:
            self.revision = max(self.revision, batch[-1].revision)
        self._wake_waiters()

    def _remember(self, ev: Event) -> None:
        """A history row from before the initial list: keep it for replay only."""
        cached = decode_or_skip(ev.key, ev.value, ev.revision)
        if cached is None:
            return
        etype = "DELETED" if ev.deleted else ("ADDED" if ev.created else "MODIFIED")
        self._remember_event(WatchEvent(etype, ev.key, cached, None, ev.revision))

    def _apply_one(self, ev: Event) -> None:
        prefix = resource_prefix(ev.key)
        bucket = self._objects.setdefault(prefix, {})
        previous = bucket.get(ev.key)
        cached = decode_or_skip(ev.key, ev.value, ev.revision)
        if cached is None:
            if ev.deleted or previous is not None:  # a bad row replaced (or removed) a good one: drop it
                bucket.pop(ev.key, None)
                self._sorted.pop(prefix, None)
            self.revision = ev.revision
            return
        if ev.deleted:
            bucket.pop(ev.key, None)
            self._sorted.pop(prefix, None)
            etype = "DELETED"
        else:
            if previous is None:
                self._sorted.pop(prefix, None)
            bucket[ev.key] = cached
            etype = "MODIFIED" if previous is not None else "ADDED"
        event = WatchEvent(etype, ev.key, cached, previous, ev.revision)
        self._notify(event)
        self._remember_event(event)
        self.revision = ev.revision
        watchers = self._by_resource.get(prefix)
        if watchers:
            overflowed = [w for w in watchers if not w.offer(event)]
            for w in overflowed:
                self._end(w, Gone("watch fell behind; re-list and watch again"))

    def _remember_event(self, event: WatchEvent) -> None:
        """Append to the history, dropping the oldest events beyond its count and byte bounds."""
        history, settings = self._history, self.settings
        history.append(event)
        self._history_bytes += len(event.current.raw)
        while len(history) > settings.history_events or (
            self._history_bytes > settings.history_bytes and len(history) > 1
        ):
            old = history.popleft()
            self._history_bytes -= len(old.current.raw)
            self._history_start = max(self._history_start, old.revision)

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
        """Wait until the cache has applied ``revision`` (read-your-writes after a local write)."""
        if revision <= self.revision:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, fut))
        async with asyncio.timeout(self.settings.read_your_writes if within is None else within):
            await fut

    def compacted(self, revision: int) -> None:
        """The store compacted to ``revision``: forget the history at or below it, so watches and
        continue tokens from before it get 410 from the cache as they do from the store."""
        history = self._history
        while history and history[0].revision <= revision:
            self._history_bytes -= len(history.popleft().current.raw)
        self._history_start = max(self._history_start, min(revision, self.revision))

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
        keys = self._sorted.get(rprefix)
        if keys is None:
            keys = self._sorted[rprefix] = sorted(bucket)
        lo = bisect.bisect_left(keys, max(prefix, start_key))
        out = []
        for i in range(lo, len(keys)):
            key = keys[i]
            if not key.startswith(prefix):
                break
            out.append(bucket[key])
        return out

    # ---- watches ----------------------------------------------------------------------------

    def watch(self, prefix: str, matches: Filter, revision: int | None) -> tuple[Watcher, builtins.list[WatchEvent]]:
        """Register a watcher; return it and the events to send first (synthetic or replayed).

        ``revision`` None or 0: synthetic ADDED for every current matching object. Otherwise the
        history after ``revision``; 410 if that history is no longer retained."""
        watcher = Watcher(prefix, matches, asyncio.Queue(self.settings.watcher_queue))
        if not revision:
            initial = [WatchEvent("ADDED", prefix, c, None, c.revision) for c in self.list(prefix) if matches(c.obj)]
        else:
            if revision < self._history_start:
                raise Gone(f"too old resource version: {revision} ({self._history_start + 1})")
            initial = []
            probe = Watcher(prefix, matches, asyncio.Queue())
            for ev in self._replay_after(revision):
                probe.offer(ev)
            while not probe.queue.empty():
                item = probe.queue.get_nowait()
                if item is not None:
                    initial.append(item)
        self._watchers.add(watcher)
        self._by_resource.setdefault(resource_prefix(prefix), set()).add(watcher)
        return watcher, initial

    def _replay_after(self, revision: int) -> Iterable[WatchEvent]:
        history = self._history
        if not history or history[-1].revision <= revision:
            return ()
        # binary search over the deque by revision
        lo, hi = 0, len(history)
        while lo < hi:
            mid = (lo + hi) // 2
            if history[mid].revision <= revision:
                lo = mid + 1
            else:
                hi = mid
        return [history[i] for i in range(lo, len(history))]

    def stop(self, watcher: Watcher) -> None:
        self._forget(watcher)

    def _forget(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)
        rprefix = resource_prefix(watcher.prefix)
        watchers = self._by_resource.get(rprefix)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
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
