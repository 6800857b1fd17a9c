"""Per-key wake-ups on the injected clock: ``Wakeups.at(key, delay)`` re-queues ``key`` when
``delay`` seconds of the clock have passed (the earliest request per key wins). Controllers with
time-based transitions (a Job's backoff and deadline, a CronJob's next schedule, a Deployment's
progress deadline) use it instead of ``Result(requeue_after=…)``, whose delay is real time, so a
test moving a fake clock fires them at once."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from atoll.api.clock import Clock, TimerHandle

K = TypeVar("K", bound=Hashable)


class Wakeups(Generic[K]):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.enqueue: Callable[[K], None] | None = None
        self._due: dict[K, tuple[float, TimerHandle]] = {}

    def at(self, key: K, delay: float) -> None:
        due = self.clock.now() + max(delay, 0.0)
        current = self._due.get(key)
        if current is not None:
            if current[0] <= due:
                return
            current[1].cancel()
        self._due[key] = (due, self.clock.call_later(max(delay, 0.0), lambda: self._fire(key)))

    def _fire(self, key: K) -> None:
        self._due.pop(key, None)
        if self.enqueue is not None:
            self.enqueue(key)
