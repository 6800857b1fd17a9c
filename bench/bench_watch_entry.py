"""Selector entry fan-out: the watch cache's cost of an update that moves an object into (and out
of) the label selector of many watchers, each writing its events through a direct writer.

    .venv/bin/python bench/bench_watch_entry.py [--watchers 100] [--events 2000] [--size 1024] [--rounds 5]

A real ``WatchCache`` (over SQLite, fed rows straight through ``_apply`` as the store's watch
delivers them) with ``--watchers`` label-selected watchers (``app=on``), each idle with a sink that
encodes its events as the HTTP stream's direct writer does (``WatchEvent.line``). One ConfigMap of
``--size`` bytes of data is patched ``--events`` times, its label alternating: every event enters
or leaves every selector. Reported: microseconds of CPU per event for the shared entry (``shared``:
one ADDED and one encoding per fan-out event) and for an ADDED built per watcher (``per-watcher``:
the code before, patched in), in alternated rounds; medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.api.kinds import CONFIGMAPS  # noqa: E402
from atoll.apiserver.cache.watchcache import WatchCache  # noqa: E402
from atoll.apiserver.cache.watchers import SharedEvent, WatchEvent  # noqa: E402
from atoll.apiserver.registry.lists import make_matcher  # noqa: E402
from atoll.store.base import Event  # noqa: E402
from atoll.store.sqlite import SQLiteStore  # noqa: E402

SHARED_ARRIVAL = SharedEvent.arrival


def per_watcher_arrival(self: WatchEvent) -> WatchEvent:
    """The ADDED as built before: a new event (and so a new encoding) for every watcher."""
    return type(self)("ADDED", self.key, self.current, self.previous, self.revision)


async def run_round(cache: WatchCache, watchers: int, events: int, size: int) -> float:
    """CPU microseconds per fan-out event over ``events`` label flips seen by ``watchers``."""
    written = [0]

    def sink(batch: list[WatchEvent]) -> bool:
        written[0] += len(b"".join(e.line() for e in batch))
        return True

    prefix = CONFIGMAPS.key_prefix("bench")
    matcher = make_matcher(CONFIGMAPS, "app=on", "")
    ws = [cache.watch(prefix, matcher, None)[0] for _ in range(watchers)]
    for w in ws:
        w.sink, w.parked = sink, True
    key = CONFIGMAPS.key("bench", "flip")
    data = {"k": "x" * size}
    prev = cache.revision if cache.get(key) is not None else 0
    started = time.process_time()
    for i in range(events):
        rev = cache.revision + 1
        obj = {
            "metadata": {"name": "flip", "namespace": "bench", "labels": {"app": "on" if i % 2 == 0 else "off"}},
            "data": data,
        }
        cache._apply([Event(rev, key, orjson.dumps(obj), prev == 0, False, rev, prev)])
        prev = rev
    spent = time.process_time() - started
    for w in ws:
        cache.stop(w)
    assert written[0] > 0
    return spent / events * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "state.db")
        await store.start()
        cache = WatchCache(store)
        task = asyncio.create_task(cache.run())
        try:
            await cache.wait_ready()
            results: dict[str, list[float]] = {"per-watcher": [], "shared": []}
            for _ in range(args.rounds):  # alternated, so a busy machine slows both alike
                for mode, arrival in (("per-watcher", per_watcher_arrival), ("shared", SHARED_ARRIVAL)):
                    SharedEvent.arrival = arrival  # type: ignore[method-assign]
                    results[mode].append(await run_round(cache, args.watchers, args.events, args.size))
            SharedEvent.arrival = SHARED_ARRIVAL  # type: ignore[method-assign]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.close()
    print(
        f"{args.watchers} watchers, {args.events} events ({args.size} B data, half entering), "
        f"{args.rounds} alternated rounds: CPU us/event, median [min-max]"
    )
    for mode, values in results.items():
        print(f"  {mode:12s} {statistics.median(values):8.1f} [{min(values):.1f}-{max(values):.1f}]")


if __name__ == "__main__":
    asyncio.run(main())
