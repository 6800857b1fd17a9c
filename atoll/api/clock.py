"""Injected time: the ``Clock`` protocol, the system clock, and a fake clock for tests.

Code with timers (leases, node lifecycle, backoff, watch bookmarks, token expiry, compaction)
takes a ``Clock`` instead of calling ``time``/``asyncio.sleep`` directly, so tests move time
forward with ``FakeClock.advance`` instead of sleeping or patching module constants.

- ``now()``: wall-clock seconds since the epoch, for timestamps written into objects and token
  claims.
- ``monotonic()``: seconds from an arbitrary origin that never go backwards, for measuring
  intervals (a lease's age, a backoff's due time). Remote timestamps are never compared with it.
- ``sleep(seconds)``: suspend the caller for ``seconds`` of this clock's time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``time.time``, ``time.monotonic``, ``asyncio.sleep``."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class FakeClock:
    """Time that moves only when a test calls ``advance``; sleepers wake in deadline order.

    ``now()`` starts at ``start`` (an arbitrary fixed date), ``monotonic()`` at 0. A ``sleep`` of
    zero or less yields to the event loop once, like ``asyncio.sleep(0)``.
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._offset = start
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._offset + self._elapsed

    def monotonic(self) -> float:
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many callers are sleeping (tests wait for this before advancing)."""
        return sum(1 for *_, f in self._sleepers if not f.done())

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has come."""
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        self._elapsed += seconds
        while self._sleepers and self._sleepers[0][0] <= self._elapsed:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
