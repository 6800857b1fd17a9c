"""The agent's status-write window: pods whose status changed write together.

A pod's status writer used to wait its own debounce (``status_debounce``, 20 ms) after its pod
changed. Pods change at different moments (spawns a few ms apart, exits spread over seconds), so
an agent's writes reached the master one at a time, and a lone write costs the master about twice
what one of a batch costs (one commit, one cache pass, one watch frame per watcher and a few loop
wake-ups for each: ~700 against ~400 µs for a status write, docs/performance.md, round 9
``mastercpu``). The window keeps the debounce's bounds and makes the writes leave together: the
first writer to wait opens a window of ``seconds``; every writer that starts waiting before it
closes leaves with it — unless less than half of ``seconds`` is left, in which case it waits for the
window that follows (closing half of ``seconds`` after this one). So every write waits at least half
the debounce, time for the other transitions of its pod to join it (a container's spawn a few ms
after another's costs no second PUT), and at most the whole debounce, as before.

Waiting is cancellation-safe (a pod deleted while it waits does not close the window for the
others). The timers are the event loop's, as the per-pod ``asyncio.sleep`` they replace was.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Window:
    closes_at: float
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class WriteWindow:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.least = seconds / 2
        """The shortest wait: a writer joins the open window only if this much of it is left."""
        self._open: _Window | None = None
        self._next: _Window | None = None
        self.opened = 0
        """Windows opened so far (tests count them)."""

    async def wait(self) -> None:
        """Return when the window this writer joins closes (opening one if needed)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        window = self._open
        if window is None:
            window = self._open = self._start(loop, now + self.seconds)
        elif max(window.closes_at - now, 0.0) < self.least:
            if self._next is None:
                self._next = self._start(loop, window.closes_at + self.least)
            window = self._next
        await window.closed.wait()

    def _start(self, loop: asyncio.AbstractEventLoop, closes_at: float) -> _Window:
        window = _Window(closes_at)
        self.opened += 1
        loop.call_at(closes_at, self._close, window)
        return window

    def _close(self, window: _Window) -> None:
        if self._open is window:
            self._open, self._next = self._next, None
        window.closed.set()
