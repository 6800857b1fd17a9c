"""When to try an unschedulable pod again (kube-scheduler's backoff and unschedulable queues).

A pod that fits nowhere waits until something changes that could make it fit — a node appears
or changes, or a bound pod goes away — and then retries no sooner than its backoff allows
(``initial * 2^(attempts-1)``, capped at ``max``, counted from its last attempt). Without any
such event it is retried every ``flush_interval`` anyway, in case an event was missed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.runtime import ObjectKey

Requeue = Callable[[ObjectKey, float], None]


@dataclass(frozen=True, slots=True)
class RetrySettings:
    initial_backoff: float = 1.0
    """kube-scheduler's ``podInitialBackoffSeconds``."""
    max_backoff: float = 10.0
    """kube-scheduler's ``podMaxBackoffSeconds``."""
    flush_interval: float = 60.0
    """Retry unschedulable pods this often even without a cluster event (kube: 5 min; our events
    are filtered more aggressively, so we check more often)."""


class RetryQueue:
    """Attempts and last-attempt times of pods that did not fit, released by cluster events."""

    def __init__(self, settings: RetrySettings, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.clock = clock
        self.requeue: Requeue = lambda key, delay: None
        self._attempts: dict[ObjectKey, int] = {}
        self._last: dict[ObjectKey, float] = {}
        self._waiting: set[ObjectKey] = set()

    def backoff(self, key: ObjectKey) -> float:
        attempts = self._attempts.get(key, 0)
        if attempts <= 0:
            return 0.0
        return min(self.settings.initial_backoff * float(2 ** min(attempts - 1, 32)), self.settings.max_backoff)

    def failed(self, key: ObjectKey, *, unschedulable: bool) -> float:
        """Count a failed attempt; returns the delay before the pod's own retry. Unschedulable pods
        also wait for a cluster event (``flush_interval`` at the latest); errors only back off."""
        self._attempts[key] = self._attempts.get(key, 0) + 1
        self._last[key] = self.clock.monotonic()
        if unschedulable:
            self._waiting.add(key)
            return self.settings.flush_interval
        return self.backoff(key)

    def succeeded(self, key: ObjectKey) -> None:
        self._attempts.pop(key, None)
        self._last.pop(key, None)
        self._waiting.discard(key)

    def dropped(self, key: ObjectKey) -> None:
        self.succeeded(key)

    def cluster_changed(self) -> None:
        """Something that may make waiting pods fit happened: retry each after its backoff."""
        now = self.clock.monotonic()
        waiting, self._waiting = self._waiting, set()
        for key in waiting:
            due = self._last.get(key, now) + self.backoff(key)
            self.requeue(key, max(0.0, due - now))

    @property
    def waiting(self) -> frozenset[ObjectKey]:
        return frozenset(self._waiting)
