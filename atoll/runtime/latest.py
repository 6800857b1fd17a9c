"""Read-your-writes for reconcilers: the newer of the informer's copy and our last write.

A reconciler that writes an object and is triggered again (by an event of a *related* object)
before the informer has delivered its own write would decide from a stale copy and its next
write would fail with 409 Conflict — costing a rate-limited retry. ``LatestWrites`` remembers
each object this reconciler wrote last; :meth:`fresher` returns it instead of the cached copy
while the cache has not caught up (compared by ``resourceVersion``, which Atoll and etcd-backed
servers issue as increasing integers; anything else falls back to the cached copy).
"""

from __future__ import annotations

from typing import Any

from atoll.runtime.keys import ObjectKey, key_of

JSON = dict[str, Any]
MAX_REMEMBERED = 10_000


def _rv(obj: JSON | None) -> int | None:
    text = str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() else None


class LatestWrites:
    def __init__(self) -> None:
        self._objects: dict[ObjectKey, JSON] = {}

    def remember(self, obj: JSON) -> JSON:
        if len(self._objects) >= MAX_REMEMBERED:
            self._objects.clear()
        self._objects[key_of(obj)] = obj
        return obj

    def forget(self, key: ObjectKey) -> None:
        self._objects.pop(key, None)

    def fresher(self, cached: JSON | None, key: ObjectKey | None = None) -> JSON | None:
        """``cached`` unless our last write of the same object is newer."""
        key = key if key is not None else (key_of(cached) if cached is not None else None)
        if key is None:
            return cached
        written = self._objects.get(key)
        if written is None:
            return cached
        if cached is None:
            return None  # deleted since (or never seen): the cache is the truth
        new, old = _rv(written), _rv(cached)
        if new is None or old is None or old >= new:
            self._objects.pop(key, None)
            return cached
        return written
