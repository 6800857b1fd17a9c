"""The agent's status-write window: pods whose status changed write together.

A pod's status writer used to wait its own debounce (``status_debounce``, 20 ms) after its pod
changed. Pods change at different moments (spawns a few ms apart, exits spread over seconds), so
an agent's writes reached the master one at a time, and a lone write costs the master about twice
what one of a batch costs (one commit, one cache pass, one watch frame per watcher and a few loop
wake-ups for each: ~700 against ~400 µs for a status write, docs/performance.md, round 9
``mastercpu``). The window keeps the bound on latency and makes the writes leave together: the
first writer to wait opens a window of ``seconds``; every writer that starts waiting before it
closes leaves with it. A write therefore waits at most ``seconds``, never longer than before.

Waiting is cancellation-safe (a pod deleted while it waits does not close the window for the
others). The timer is the event loop's, as the per-pod ``asyncio.sleep`` it replaces was.
"""

from __future__ import annotations

import asyncio


class WriteWindow:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._open: asyncio.Event | None = None
        self.opened = 0
        """Windows opened so far (tests count them)."""

    async def wait(self) -> None:
        """Return when the current window closes (opening one if none is open)."""
        closed = self._open
        if closed is None:
            closed = self._open = asyncio.Event()
            self.opened += 1
            asyncio.get_running_loop().call_later(self.seconds, self._close, closed)
        await closed.wait()

    def _close(self, closed: asyncio.Event) -> None:
        if self._open is closed:
            self._open = None
        closed.set()
