"""Opt-in self-check that nobody mutated the watch cache's objects in place.

The cache's dicts are shared: LIST and WATCH hand them to HTTP encoders and, in-process, to the
master's own controllers (:mod:`atoll.apiserver.http.local`), which must treat them as read-only.
A reader that changes one corrupts what the server serves to every client, silently. With
``ATOLL_VERIFY_CACHE=1`` in its environment a master runs :func:`run`: every ``interval`` seconds
and once more when it stops, it compares every cached dict (current objects, the event history,
the decoded large objects) with the encoding it was cached with, and logs one ERROR line,
``cache object mutated in place: <keys>``, for objects found changed (each object once). The
end-to-end test fixtures set the variable and fail when a master's log has that line.

Unset, nothing runs: the check costs nothing. Set, a check encodes every cached object again
(``orjson.dumps``, decoding only to confirm a difference): milliseconds for thousands of objects.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable

import orjson

from atoll.apiserver.cache.entries import LARGE_OBJECT, Cached, decoded_objects
from atoll.apiserver.cache.watchcache import WatchCache

log = logging.getLogger(__name__)

ENV = "ATOLL_VERIFY_CACHE"
MARK = "cache object mutated in place"
"""The start of the ERROR line logged for mutated objects (what the test fixtures look for)."""
INTERVAL = 5.0


def enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment asks for the check (``ATOLL_VERIFY_CACHE`` set, not ``0``/empty)."""
    value = (os.environ if environ is None else environ).get(ENV, "")
    return value not in ("", "0", "false", "no")


def _changed(cached: Cached, obj: object) -> bool:
    return orjson.dumps(obj) != cached.raw and orjson.loads(cached.raw) != obj


def _entries(cache: WatchCache) -> Iterable[tuple[str, Cached, object]]:
    keys: dict[int, str] = {}
    for key, cached in cache.cached_entries():
        keys[id(cached)] = key
        if len(cached.raw) <= LARGE_OBJECT:  # a small object holds its dict (``peek`` returns it)
            yield key, cached, cached.peek()
    for cached, obj in decoded_objects():  # large objects: their dict lives in the decoded cache
        yield keys.get(id(cached), f"<large object at revision {cached.revision}>"), cached, obj


def mutated_objects(cache: WatchCache) -> list[str]:
    """Keys of cached objects (current and history) whose dict no longer matches its encoding:
    someone mutated a shared, read-only object."""
    return sorted({key for key, cached, obj in _entries(cache) if _changed(cached, obj)})


class Verifier:
    """Checks one cache and logs each mutated object once."""

    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache
        self._reported: set[tuple[str, int]] = set()

    def check(self) -> list[str]:
        """Keys of objects found mutated since the last check (logged in one ERROR line)."""
        found = {(key, cached.revision) for key, cached, obj in _entries(self.cache) if _changed(cached, obj)}
        new = sorted(found - self._reported)
        self._reported |= found
        keys = sorted({key for key, _ in new})
        if keys:
            log.error("%s: %s", MARK, " ".join(keys))
        return keys


async def run(cache: WatchCache, interval: float = INTERVAL) -> None:
    """Check every ``interval`` seconds until cancelled, and once more then (the node stopping)."""
    verifier = Verifier(cache)
    log.info("verifying the watch cache every %.0f s (%s)", interval, ENV)
    try:
        while True:
            await asyncio.sleep(interval)
            verifier.check()
    finally:
        verifier.check()
