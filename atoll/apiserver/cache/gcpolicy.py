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
* after each automatic full collection (all garbage then is gone), freeze the survivors, so the
  next full collection walks only what was promoted since — short pauses, about a quarter of the
  work. Frozen objects are still freed by reference counting (cached JSON has no cycles);
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

CHECK_INTERVAL = 1.0
RECLAIM_INTERVAL = 600.0


@dataclass(slots=True)
class GCPolicy:
    reclaim_interval: float = RECLAIM_INTERVAL
    full_collections: int = 0  # automatic full collections seen so far
    freezes: int = 0
    reclaim_at: float = 0.0

    def start(self, now: float) -> None:
        """Collect once and freeze what exists (call after the initial load)."""
        gc.collect()
        gc.freeze()
        self.full_collections = gc.get_stats()[2]["collections"]
        self.reclaim_at = now + self.reclaim_interval

    def step(self, now: float) -> str:
        """Called periodically: ``"freeze"`` after a full collection, ``"reclaim"`` when the frozen
        objects were handed back to the collector, ``""`` otherwise."""
        collections = gc.get_stats()[2]["collections"]
        if now >= self.reclaim_at:
            self.reclaim_at = now + self.reclaim_interval
            self.full_collections = collections
            gc.unfreeze()
            return "reclaim"
        if collections != self.full_collections:
            self.full_collections = collections
            gc.freeze()
            self.freezes += 1
            return "freeze"
        return ""


async def run(policy: GCPolicy | None = None, check_interval: float = CHECK_INTERVAL) -> None:
    """Apply ``policy`` until cancelled (then unfreeze, so nothing stays exempt from collection)."""
    policy = policy or GCPolicy()
    policy.start(time.monotonic())
    try:
        while True:
            await asyncio.sleep(check_interval)
            policy.step(time.monotonic())
    finally:
        gc.unfreeze()
