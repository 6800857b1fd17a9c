"""Garbage-collector policy for a heap that is mostly the watch cache's long-lived objects.

CPython's full (generation 2) collection walks every tracked container in the process, and runs
whenever the objects promoted since the last one exceed a quarter of the old generation. On an
API server that old generation is the watch cache (tens of containers per object, 285k tracked
objects for 6,000 cached Pods and ConfigMaps), and every write promotes a new cached object, so
full collections came every few hundred writes and paused the event loop 75 ms each (measured:
about half the CPU of a Pod create or status update, and every watch event in flight waited).

The policy (``run``):

* after the cache's initial load, collect once and ``gc.freeze()``: what exists then (modules,
  schemas, the loaded objects) is never walked again;
* right after each full collection (a ``gc.callbacks`` hook: all garbage then is gone), freeze
  the survivors, so the next full collection walks only what was promoted since — short pauses,
  about a quarter of the work. Frozen objects are still freed by reference counting (cached JSON
  has no cycles);
* every ``reclaim_interval`` unfreeze everything, so the following full collection also reclaims
  reference cycles that died after being frozen (one long pause per interval instead of one
  every few hundred writes).

The young generations keep CPython's thresholds: raising the first one (tried: 2,000 and 5,000)
saved little CPU but made the second generation's pauses several times longer (median 1 ms at
700, 9 ms at 5,000, in ``bench/bench_writepath.py``), which watch latency pays for.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass

CHECK_INTERVAL = 10.0
RECLAIM_INTERVAL = 600.0


@dataclass(slots=True)
class GCPolicy:
    reclaim_interval: float = RECLAIM_INTERVAL
    freezes: int = 0  # full collections followed by a freeze
    reclaim_at: float = 0.0

    def start(self, now: float) -> None:
        """Collect once and freeze what exists (call after the initial load); from now on every
        full collection ends with a freeze."""
        gc.collect()
        gc.freeze()
        self.reclaim_at = now + self.reclaim_interval
        gc.callbacks.append(self._collected)

    def stop(self) -> None:
        """Back to CPython's behaviour: nothing frozen, no callback."""
        if self._collected in gc.callbacks:
            gc.callbacks.remove(self._collected)
        gc.unfreeze()

    def _collected(self, phase: str, info: dict[str, int]) -> None:
        # Runs right after the collector finished (any thread, GIL held): the generation lists
        # are consistent, and everything left in them survived a full collection.
        if phase == "stop" and info.get("generation") == 2:
            gc.freeze()
            self.freezes += 1

    def step(self, now: float) -> bool:
        """Called periodically: True when the frozen objects were handed back to the collector
        (the next full collection walks, and can free, everything again)."""
        if now < self.reclaim_at:
            return False
        self.reclaim_at = now + self.reclaim_interval
        gc.unfreeze()
        return True


async def run(policy: GCPolicy | None = None, check_interval: float = CHECK_INTERVAL) -> None:
    """Apply ``policy`` until cancelled (then stop it: nothing stays exempt from collection)."""
    policy = policy or GCPolicy()
    policy.start(time.monotonic())
    try:
        while True:
            await asyncio.sleep(check_interval)
            policy.step(time.monotonic())
    finally:
        policy.stop()
