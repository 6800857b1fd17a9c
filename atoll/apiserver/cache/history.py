"""The watch cache's event history: the recent events, in revision order, bounded by count and
bytes, and the same events per resource, so a watch (or a continue snapshot) from a
resourceVersion replays only its own resource's events, found by bisection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from atoll.apiserver.cache.entries import resource_prefix
from atoll.apiserver.cache.watchers import WatchEvent


class EventHistory:
    def __init__(self) -> None:
        self.events: deque[WatchEvent] = deque()
        self.per_resource: dict[str, deque[WatchEvent]] = {}  # the same events, per resource prefix
        self.bytes = 0
        self.start = 0
        """Every event with a revision above this one is here."""

    def __iter__(self) -> Iterator[WatchEvent]:
        return iter(self.events)

    def remember(self, event: WatchEvent, max_events: int, max_bytes: int) -> None:
        """Append ``event``, dropping the oldest events beyond the count and byte bounds."""
        events = self.events
        events.append(event)
        rprefix = resource_prefix(event.key)
        mine = self.per_resource.get(rprefix)
        if mine is None:
            mine = self.per_resource[rprefix] = deque()
        mine.append(event)
        self.bytes += len(event.current.raw)
        while len(events) > max_events or (self.bytes > max_bytes and len(events) > 1):
            old = self._drop_oldest()
            self.start = max(self.start, old.revision)

    def _drop_oldest(self) -> WatchEvent:
        """Forget the oldest event (it is also the oldest of its resource's)."""
        old = self.events.popleft()
        self.bytes -= len(old.current.raw)
        rprefix = resource_prefix(old.key)
        mine = self.per_resource.get(rprefix)
        if mine and mine[0] is old:
            mine.popleft()
            if not mine:
                del self.per_resource[rprefix]
        return old

    def compacted(self, revision: int, current: int) -> None:
        """The store compacted to ``revision``: forget the events at or below it."""
        while self.events and self.events[0].revision <= revision:
            self._drop_oldest()
        self.start = max(self.start, min(revision, current))

    def after(self, revision: int, prefix: str) -> Iterable[WatchEvent]:
        """The retained events after ``revision`` of ``prefix``'s resource (a watch of one resource
        never walks the others' events)."""
        history = self.per_resource.get(resource_prefix(prefix))
        if not history or history[-1].revision <= revision:
            return ()
        lo, hi = 0, len(history)  # binary search over the deque by revision
        while lo < hi:
            mid = (lo + hi) // 2
            if history[mid].revision <= revision:
                lo = mid + 1
            else:
                hi = mid
        return [history[i] for i in range(lo, len(history))]
