"""Watch events and watchers of the watch cache: one event as fanned out, and one watch's filter,
queue and direct writer.

A ``WatchEvent`` of the history holds only the event (five slots: the history keeps up to 200k);
its fan-out copy (``SharedEvent``) is shared by every watcher it goes to (its encoded line,
departure and arrival are built once and kept). A ``Watcher`` filters events by key prefix and
selector (an object that stops matching is sent as DELETED with its previous content at the
event's resourceVersion, as kube-apiserver's cacher does; one that starts matching as ADDED),
holds them for its stream's ``sink`` while the stream is idle (one write per store batch) and
queues them otherwise; a full queue means the watcher fell behind (the cache ends it with 410).
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
    """One event as the history and the listeners hold it: its encoding, departure and arrival are
    built on each use and not kept (a kept line would hold a second copy of every object of the
    history; a history event needs no more slots than these five)."""

    type: str  # ADDED | MODIFIED | DELETED
    key: str
    current: Cached
    previous: Cached | None
    revision: int

    def line(self) -> bytes:
        """The newline-terminated JSON event."""
        return b'{"type":"' + self.type.encode() + b'","object":' + self.current.raw + b"}\n"

    def departure(self) -> WatchEvent:
        """This MODIFIED (which has a previous state) as seen by a watcher whose selector the
        object leaves: DELETED with the *previous* object's content at this event's revision
        (kube-apiserver's ``cacheWatcher.convertToWatchEvent``)."""
        previous = self.previous
        assert previous is not None
        return type(self)("DELETED", self.key, revised(previous, self.revision), previous, self.revision)

    def arrival(self) -> WatchEvent:
        """This MODIFIED as seen by a watcher whose selector the object enters: ADDED with the
        current object (kube-apiserver's ``cacheWatcher.convertToWatchEvent``)."""
        return type(self)("ADDED", self.key, self.current, self.previous, self.revision)


@dataclass(slots=True)
class SharedEvent(WatchEvent):
    """The fan-out copy of an event, shared by every watcher it goes to: its line, departure and
    arrival are built once and kept, so its watchers share one encoded frame of each (only events
    that leave or enter a selector pay for those)."""

    _line: bytes | None = None
    _left: WatchEvent | None = None
    _entered: WatchEvent | None = None

    def line(self) -> bytes:
        if self._line is None:
            self._line = WatchEvent.line(self)
        return self._line

    def departure(self) -> WatchEvent:
        if self._left is None:
            self._left = WatchEvent.departure(self)
        return self._left

    def arrival(self) -> WatchEvent:
        if self._entered is None:
            self._entered = WatchEvent.arrival(self)
        return self._entered


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
