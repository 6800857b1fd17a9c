"""Clocks for timers that tests must drive: lifecycles, reservation windows, retry intervals.

Code with a timeout reads ``clock.now()`` (wall-clock seconds since the epoch, what status
timestamps are written in) and schedules wake-ups with ``clock.call_later`` or awaits
``clock.sleep``. :class:`SystemClock` is the real thing (the event loop's timers);
:class:`ManualClock` stands still until a test calls :meth:`ManualClock.advance`, which fires
every wake-up that became due — so a 300 s lifecycle is tested in milliseconds, without sleeps.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` (in the event loop, no I/O) once ``delay`` seconds have passed."""

    async def sleep(self, delay: float) -> None:
        """Return once ``delay`` seconds have passed on this clock."""


class SystemClock:
    """Wall-clock time and the running event loop's timers."""

    def now(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))


SYSTEM_CLOCK = SystemClock()


class _ManualTimer:
    __slots__ = ("callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _ManualTimer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.due, next(self._seq), timer))
        return timer

    async def sleep(self, delay: float) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        handle = self.call_later(delay, wake)
        try:
            await done
        finally:
            handle.cancel()

    def advance(self, seconds: float) -> None:
        """Move time forward and fire every timer that became due, in order."""
        self._now += seconds
        while self._timers and self._timers[0][0] <= self._now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()


def rfc3339(seconds: float) -> str:
    """``seconds`` since the epoch as a Kubernetes timestamp (``2026-01-02T03:04:05Z``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: object) -> float | None:
    """A Kubernetes timestamp as seconds since the epoch (``None`` if absent or malformed)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class OffsetClock:
    """Real time plus an offset moved by :meth:`advance` (tests of live processes).

    Unlike :class:`ManualClock`, time keeps flowing: heartbeats of real gateway processes keep
    running while a test jumps past a 3-minute live window with ``advance``. ``sleep`` wakes early
    when an advance passes its deadline.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self._moved = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return time.time() + self.offset

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _ManualTimer(self.now() + delay, callback)

        async def fire() -> None:
            await self.sleep(delay)
            if not timer.cancelled:
                callback()

        self._tasks.add(task := asyncio.get_running_loop().create_task(fire()))
        task.add_done_callback(self._tasks.discard)
        return timer

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self._moved.set()
        self._moved = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        deadline = self.now() + seconds
        while (left := deadline - self.now()) > 0:
            try:
                await asyncio.wait_for(self._moved.wait(), left)
            except TimeoutError:
                pass
