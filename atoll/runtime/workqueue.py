"""An asyncio work queue with client-go's contract (``util/workqueue``).

* **Fair**: keys are handed out in the order they were added.
* **Stingy**: a key added many times before a worker takes it is processed once (the *dirty* set).
* **Exclusive**: a key is never handed to two workers at once (the *processing* set). Adding a key
  that is being processed marks it dirty; ``done`` puts it back in the queue, so the change is
  reconciled again afterwards and never lost.
* **Delays**: ``add_after`` parks a key on the event loop's timer heap (keeping the earliest time
  if it is already parked); ``add_rate_limited`` asks the rate limiter how long to wait.
* **Shutdown**: new adds are ignored; ``get`` keeps returning queued keys, then ``None``;
  ``shutdown(drain=True)`` waits until every key handed out has been marked ``done``.

Keys are any hashable values, typically ``ObjectKey``. The queue lives on one event loop and is
not thread-safe, which is what lets it avoid locks entirely.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from atoll.runtime.metrics import PrometheusQueueMetrics
from atoll.runtime.ratelimit import RateLimiter, default_controller_rate_limiter

K = TypeVar("K", bound=Hashable)


class QueueMetrics(Protocol):
    def add(self, depth: int) -> None: ...
    def get(self, depth: int, waited: float) -> None: ...
    def done(self, worked: float) -> None: ...
    def retry(self) -> None: ...


class NoMetrics:
    def add(self, depth: int) -> None:
        pass

    def get(self, depth: int, waited: float) -> None:
        pass

    def done(self, worked: float) -> None:
        pass

    def retry(self) -> None:
        pass


class WorkQueue(Generic[K]):
    """A rate-limited, delaying, deduplicating queue of keys.

    ``name`` labels the Prometheus series (``workqueue_depth{name=…}`` …); a queue without a name
    records no metrics unless ``metrics`` is given.
    """

    def __init__(
        self,
        name: str = "",
        *,
        rate_limiter: RateLimiter | None = None,
        metrics: QueueMetrics | None = None,
    ) -> None:
        self.name = name
        self.rate_limiter = rate_limiter or default_controller_rate_limiter()
        self.metrics: QueueMetrics = metrics or (PrometheusQueueMetrics(name) if name else NoMetrics())
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: dict[K, float] = {}  # key -> monotonic time handed out
        self._added_at: dict[K, float] = {}
        self._waiting: dict[K, asyncio.TimerHandle] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._idle: asyncio.Event | None = None
        self._shutting_down = False

    # -- adding ------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        """Queue ``key`` unless it is already queued; if it is being processed, queue it after."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        self._added_at[key] = time.monotonic()
        if key not in self._processing:
            self._queue.append(key)
            self._wake_one()
        self.metrics.add(len(self._queue))

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds; an earlier pending time for the key wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._waiting.get(key)
        if pending is not None:
            if pending.when() <= due:
                return
            pending.cancel()
        self._waiting[key] = loop.call_at(due, self._fire, key)

    def add_rate_limited(self, key: K) -> None:
        """Queue ``key`` when the rate limiter allows (per-key backoff and the global bucket)."""
        if self._shutting_down:
            return
        self.metrics.retry()
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """Reset the key's failure count (call after a successful reconcile)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)

    def _fire(self, key: K) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    # -- consuming ---------------------------------------------------------------------------

    async def get(self) -> K | None:
        """The next key (now exclusively yours until ``done``), or ``None`` once shut down."""
        while not self._queue:
            if self._shutting_down:
                return None
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # we were woken for a key we will not take: pass it on
                raise
            finally:
                if waiter in self._getters:
                    self._getters.remove(waiter)
        key = self._queue.popleft()
        now = time.monotonic()
        self._processing[key] = now
        self._dirty.discard(key)
        self.metrics.get(len(self._queue), now - self._added_at.pop(key, now))
        return key

    def done(self, key: K) -> None:
        """Finish ``key``; if it was added while processing, it is queued again now."""
        started = self._processing.pop(key, None)
        if started is not None:
            self.metrics.done(time.monotonic() - started)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()
        if not self._processing and self._idle is not None:
            self._idle.set()

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # -- shutdown ----------------------------------------------------------------------------

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    async def shutdown(self, drain: bool = True) -> None:
        """Refuse new keys, release idle workers, and (``drain``) wait for in-flight keys."""
        self._shutting_down = True
        for handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        while drain and self._processing:
            if self._idle is None:
                self._idle = asyncio.Event()
            self._idle.clear()
            await self._idle.wait()

    def __len__(self) -> int:
        """Keys ready to be handed out (not the ones parked by ``add_after``)."""
        return len(self._queue)

    @property
    def processing(self) -> int:
        return len(self._processing)

    @property
    def waiting(self) -> int:
        return len(self._waiting)
