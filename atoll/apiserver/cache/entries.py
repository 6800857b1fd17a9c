"""One cached object: its encoding, its decoded dict, and encodings derived from it.

Small objects keep their dict next to their bytes. A large one (``LARGE_OBJECT``) is held once,
as bytes, and decoded on use through a small byte-bounded cache of recently used objects.
The write path's own object (``adopt``) and a delete's last state (``revised``) are cached
without decoding the stored row. Encodings kept for longer (the object's own, Table rows in
``derived``) are copied out of orjson's oversized output buffers. A stored row that is not an
object is skipped, logged and counted, never fatal.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import orjson
from prometheus_client import Counter

from atoll.runtime.metrics import REGISTRY

log = logging.getLogger(__name__)
malformed_objects = Counter(
    "apiserver_storage_malformed_objects_total",
    "Stored rows the watch cache could not decode as objects (logged with their key and skipped)",
    ["resource"],
    registry=REGISTRY,
)

JSON = dict[str, Any]


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

    def __init__(
        self, obj: JSON, raw: bytes, revision: int, derived: dict[Any, Any] | None = None, *, keep_decoded: bool = True
    ) -> None:
        self._obj: JSON | None = obj if len(raw) <= LARGE_OBJECT else None
        self.raw = raw
        self.revision = revision
        self.derived = derived
        if self._obj is None and keep_decoded:  # a write's object is about to be read (its reply, watchers)
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

    def peek(self) -> JSON:
        """The dict, decoded without entering the shared cache when not held (a one-off read of a
        large object, e.g. for its metadata, must not evict the objects clients are reading)."""
        if self._obj is not None:
            return self._obj
        obj = _decoded.get(self)
        return obj if obj is not None else orjson.loads(self.raw)


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


def decoded_objects() -> list[tuple[Cached, JSON]]:
    """The large objects decoded and shared right now, with their dicts (for ``verify``)."""
    return list(_decoded._items.values())


def resource_prefix(key: str) -> str:
    """``/group/plural/`` of a storage key."""
    second = key.index("/", 1)
    return key[: key.index("/", second + 1) + 1]


def exact(encoded: bytes) -> bytes:
    """``encoded`` in a buffer of its own size. orjson returns its output in the buffer it wrote
    into (at least 32 KB, about 10x a large object's size): anything kept must be copied out."""
    return bytes(memoryview(encoded))


def decode(value: bytes, revision: int, *, keep_decoded: bool = True) -> Cached:
    """The cached form of a stored row; TypeError/AttributeError when it is not an object with
    object metadata."""
    obj = orjson.loads(value)
    metadata = obj.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise TypeError("metadata is not an object")
    metadata["resourceVersion"] = str(revision)
    return Cached(obj, exact(orjson.dumps(obj)), revision, keep_decoded=keep_decoded)


def adopt(obj: JSON, revision: int) -> Cached:
    """The cached form of an object the write path just stored (``encode_for_store(obj)`` is the
    row's value): no decode of the row. ``obj`` is shallow-copied down to its metadata, so the
    writer's dicts are not changed; its nested values are shared and must not be mutated by
    anyone afterwards (only objects decoded from a request body are handed over)."""
    metadata = dict(obj["metadata"])
    metadata.pop("resourceVersion", None)  # where a decoded row has it: last
    metadata["resourceVersion"] = str(revision)
    out = dict(obj)
    out["metadata"] = metadata
    return Cached(out, exact(orjson.dumps(out)), revision)


def revised(cached: Cached, revision: int) -> Cached:
    """``cached`` at a later ``revision`` whose row stores the same value: a delete's tombstone
    carries the last value, so its DELETED object is the last state with the delete's
    resourceVersion (as kube-apiserver sends it) — exactly what ``decode`` of the row gives, without
    decoding it. The revision replaces the cached one in place, where decoding the row puts it
    (last, unless the row itself holds one). The dicts below metadata are shared (a cached object
    is never mutated)."""
    obj = cached.peek()
    metadata = dict(obj["metadata"])
    metadata["resourceVersion"] = str(revision)
    out = dict(obj)
    out["metadata"] = metadata
    return Cached(out, exact(orjson.dumps(out)), revision)


def decode_or_skip(key: str, value: bytes, revision: int, *, keep_decoded: bool = True) -> Cached | None:
    """``decode``, or None (logged with its key and counted) for a row that is not a JSON object
    with object metadata — written before validation existed, or corrupted — so one bad row never
    stops the cache, and with it the whole server. ``keep_decoded=False`` (loading the store,
    history, one-off reads) leaves a large object's dict out of the shared cache of decoded ones."""
    try:
        return decode(value, revision, keep_decoded=keep_decoded)
    except (orjson.JSONDecodeError, AttributeError, TypeError) as exc:
        problem = str(exc)
    malformed_objects.labels(resource_prefix(key)).inc()
    log.error("skipping stored object %s at revision %d: %s (fix or delete it with `atoll store check`)",
              key, revision, problem)
    return None
