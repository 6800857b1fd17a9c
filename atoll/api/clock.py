"""Injected time: the ``Clock`` protocol, the system clock, and clocks tests move by hand.

Code with timers (leases, node lifecycle, backoff, watch bookmarks, token expiry, compaction,
task lifecycles, reservation windows, route heartbeats) takes a ``Clock`` instead of calling
``time``/``asyncio.sleep``/``loop.call_later`` directly, so tests move time forward with
``advance`` instead of sleeping or patching module constants.

- ``now()``: wall-clock seconds since the epoch, for timestamps written into objects and token
  claims (format them with ``atoll.api.timestamps``).
- ``monotonic()``: seconds from an arbitrary origin that never go backwards, for measuring
  intervals (a lease's age, a backoff's due time). Remote timestamps are never compared with it.
- ``call_later(delay, callback)``: run ``callback`` (in the event loop, no I/O) once ``delay``
  seconds have passed on this clock.
- ``sleep(seconds)``: suspend the caller for ``seconds`` of this clock's time.

``FakeClock`` stands still until ``advance``, which fires every timer and wakes every sleeper
that became due, in order. ``OffsetClock`` is real time plus an offset that ``advance`` moves,
for tests of live processes whose heartbeats must keep flowing.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``time.time``, ``time.monotonic`` and the running event loop's timers."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()


class _Timer:
    __slots__ = ("callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Time that moves only when a test calls ``advance``; timers and sleepers fire in due order.

    ``now()`` starts at ``start`` (default: the real time at creation), ``monotonic()`` at 0. A
    ``sleep`` of zero or less yields to the event loop once, like ``asyncio.sleep(0)``.
    """

    def __init__(self, start: float | None = None) -> None:
        self._start = time.time() if start is None else start
        self._elapsed = 0.0
        self._timers: list[tuple[float, int, _Timer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._start + self._elapsed

    def monotonic(self) -> float:
        return self._elapsed

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _Timer(self._elapsed + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.due, next(self._order), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        handle = self.call_later(seconds, wake)
        try:
            await done
        finally:
            handle.cancel()

    @property
    def sleepers(self) -> int:
        """Timers (sleepers included) still waiting: tests wait for them before advancing."""
        return sum(1 for *_, timer in self._timers if not timer.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward and fire every timer that became due, in order."""
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        self._elapsed += seconds
        while self._timers and self._timers[0][0] <= self._elapsed:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()


class OffsetClock:
    """Real time plus an offset moved by ``advance`` (tests of live processes).

    Unlike ``FakeClock``, time keeps flowing: heartbeats of real gateway processes keep running
    while a test jumps past a 3-minute live window with ``advance``. ``sleep`` wakes early when an
    advance passes its deadline.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self._moved = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _Timer(self.now() + delay, callback)

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
