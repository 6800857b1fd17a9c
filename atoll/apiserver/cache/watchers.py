"""Watch events and watchers of the watch cache: one event as fanned out, and one watch's filter,
queue and direct writer.

A ``WatchEvent`` of the fan-out is shared by every watcher it goes to (its encoded line is built
once). A ``Watcher`` filters events by key prefix and selector (an object that stops matching is
sent as DELETED with its previous content at the event's resourceVersion, as kube-apiserver's
cacher does; one that starts matching as ADDED), holds them for its stream's ``sink`` while
the stream is idle (one write per store batch) and queues them otherwise; a full queue means the
watcher fell behind (the cache ends it with 410).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from atoll.apiserver.cache.entries import Cached, revised

log = logging.getLogger(__name__)

JSON = dict[str, Any]


@dataclass(slots=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    key: str
    current: Cached
    previous: Cached | None
    revision: int
    _line: bytes | None = None
    shared: bool = False  # the fan-out copy queued to every watcher: its line is built once, kept
    _left: WatchEvent | None = None  # the fan-out copy's ``departure``, built once for its watchers
    _entered: WatchEvent | None = None  # ... and its ``arrival``, likewise

    def line(self) -> bytes:
        """The newline-terminated JSON event. Kept only on the fan-out copy (one frame shared by
        every watcher of the event); history events don't keep it, as a kept line would hold a
        second copy of every object there."""
        if self._line is None:
            line = b'{"type":"' + self.type.encode() + b'","object":' + self.current.raw + b"}\n"
            if self.shared:
                self._line = line
            return line
        return self._line

    def departure(self) -> WatchEvent:
        """This MODIFIED (which has a previous state) as seen by a watcher whose selector the
        object leaves: DELETED with the *previous* object's content at this event's revision
        (kube-apiserver's ``cacheWatcher.convertToWatchEvent``). The fan-out copy builds it once
        for all its watchers (one encoding; only events that leave a selector pay for it)."""
        left = self._left
        if left is None:
            previous = self.previous
            assert previous is not None
            left = WatchEvent("DELETED", self.key, revised(previous, self.revision), previous, self.revision,
                              shared=self.shared)
            if self.shared:
                self._left = left
        return left

    def arrival(self) -> WatchEvent:
        """This MODIFIED as seen by a watcher whose selector the object enters: ADDED with the
        current object (kube-apiserver's ``cacheWatcher.convertToWatchEvent``). Like ``departure``,
        the fan-out copy builds it once for all its watchers, so they share one encoded frame."""
        entered = self._entered
        if entered is None:
            entered = WatchEvent("ADDED", self.key, self.current, self.previous, self.revision, shared=self.shared)
            if self.shared:
                self._entered = entered
        return entered


Filter = Callable[[JSON], bool]


Sink = Callable[[list[WatchEvent]], bool]


@dataclass(eq=False)
class Watcher:
    prefix: str
    matches: Filter | None
    """None: every object under ``prefix`` (no selector)."""
    queue: asyncio.Queue[WatchEvent | None]
    error: Exception | None = None
    sink: Sink | None = None
    """Writes events to the client synchronously (one write); False when it cannot now (the
    connection's write buffer is full, or it is closing): the events are queued instead."""
    parked: bool = False
    """The stream's task waits on an empty queue: nothing of this watcher is in flight, so events
    may go straight to ``sink`` without overtaking one (set by the stream around ``queue.get``)."""
    held: list[WatchEvent] = field(default_factory=list)
    """Events of the store batch being applied, for ``sink`` when the batch is done (``flush``)."""

    def offer(self, event: WatchEvent, holding: set[Watcher] | None = None) -> bool:
        """Hand the event over if it concerns this watcher; False when the watcher overflowed.

        While the stream is idle the event is held (the watcher joins ``holding``) and the batch's
        events go out in one write at ``flush``; otherwise it is queued for the stream's task."""
        if not event.key.startswith(self.prefix):
            return True
        if self.matches is not None:
            selected = self._select(event)
            if selected is None:
                return True
            event = selected
        return self.deliver(event, holding)

    def deliver(self, event: WatchEvent, holding: set[Watcher] | None = None) -> bool:
        """Hand over an event known to concern this watcher, as it must see it (see ``offer``)."""
        if holding is not None and (self.held or (self.parked and self.sink is not None and self.queue.empty())):
            self.held.append(event)
            holding.add(self)
            return True
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    def _select(self, event: WatchEvent) -> WatchEvent | None:
        """The event as this watcher's selector sees it, or None when it concerns it not."""
        matches = self.matches
        assert matches is not None
        try:
            now = matches(event.current.obj)
            if event.type != "MODIFIED":
                return event if now else None
            before = event.previous is not None and matches(event.previous.peek())
        except Exception:  # a malformed object must not stop the fan-out to every other watcher
            log.exception("watch filter failed on %s; not sent to this watcher", event.key)
            return None
        return as_seen(event, now, before)

    def flush(self) -> bool:
        """Write the held events through ``sink`` (one write), or queue them when it declines;
        False when the watcher overflowed."""
        events, self.held = self.held, []
        if self.sink is not None:
            try:
                if self.sink(events):
                    return True
            except Exception:  # e.g. a Table renderer failing: the stream's task reports it
                log.exception("watch write failed on %s; queued to the stream instead", events[0].key)
        for event in events:
            try:
                self.queue.put_nowait(event)
            except asyncio.QueueFull:
                return False
        return True


def as_seen(event: WatchEvent, now: bool, before: bool) -> WatchEvent | None:
    """``event`` as a watcher whose selector matches its current object (``now``) and its previous
    one (``before``) sees it: a MODIFIED that enters the selector is ADDED, one that leaves it is
    DELETED (``departure``: the previous content); each is built once per fan-out event (``arrival``,
    ``departure``); None when it concerns neither state.
    (ADDED/DELETED are judged on ``now`` alone.)"""
    if event.type != "MODIFIED":
        return event if now else None
    if not now:
        if not before or event.previous is None:
            return None
        return event.departure()
    if not before and event.previous is not None:
        return event.arrival()
    return event
