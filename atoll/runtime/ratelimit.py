"""Rate limiters for the work queue, ported from client-go's ``default_rate_limiters.go``.

A failing key must back off on its own (exponential per key, 5 ms doubling up to 1000 s), and a
burst of failures across many keys must not hammer the API server (a global token bucket, 10 qps
with a burst of 100). ``DefaultControllerRateLimiter`` is the maximum of the two, exactly what
controller-runtime uses, so retry behaviour matches what operators of Go controllers expect.
Clocks are injectable so tests need no real sleeping.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

from atoll.api.clock import SYSTEM_CLOCK, Clock


class RateLimiter(Protocol):
    def when(self, key: Hashable) -> float:
        """Seconds to wait before ``key`` may be retried; counts one more failure."""

    def forget(self, key: Hashable) -> None:
        """Stop tracking ``key`` (it succeeded)."""

    def num_requeues(self, key: Hashable) -> int:
        """Failures counted for ``key`` since the last ``forget``."""


class ExponentialFailureRateLimiter:
    """``base * 2^failures``, capped at ``max_delay``."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures > 64:  # 2**64 * base overflows any sensible cap
            return self.max_delay
        return min(self.base_delay * float(2**failures), self.max_delay)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        return self._failures.get(key, 0)


class BucketRateLimiter:
    """A global token bucket: ``qps`` tokens per second, at most ``burst`` saved up.

    Like Go's ``rate.Limiter.Reserve().Delay()``, each call reserves a token, possibly in the
    future, and returns how long until it is due; per-key state is not kept.
    """

    def __init__(
        self, qps: float = 10.0, burst: int = 100, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.monotonic()

    def when(self, key: Hashable) -> float:
        now = self._clock.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: Hashable) -> None:
        pass

    def num_requeues(self, key: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay any of the limiters asks for."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, key: Hashable) -> float:
        return max(limiter.when(key) for limiter in self.limiters)

    def forget(self, key: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return max(limiter.num_requeues(key) for limiter in self.limiters)


def default_controller_rate_limiter(clock: Clock = SYSTEM_CLOCK) -> MaxOfRateLimiter:
    """client-go's ``DefaultControllerRateLimiter``: per-key 5 ms → 1000 s, global 10 qps / 100."""
    return MaxOfRateLimiter(ExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(10.0, 100, clock))
