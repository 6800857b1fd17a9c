"""Selected watches resuming on a restarted master: the cost of giving the replayed rows their
previous states (``cache/prelist.py``).

    .venv/bin/python bench/bench_replay_restart.py [--objects 2000] [--watches 50] [--size 1024] [--pinned]

A store (SQLite) holds ``--objects`` ConfigMaps of ``--size`` bytes of data, created, compacted,
then each patched once (half leave the selector ``app=a``): a new ``WatchCache`` on it replays those
patches with no earlier row of their keys. Then ``--watches`` watches with ``app=a`` (``--pinned``:
``metadata.name=cm0``, which needs no previous state) start at once
from the compacted revision (agents and informers reconnecting), each as ``watchstart.begin`` does
it. Reported: wall time until all are registered, store reads (``get``/``list`` calls) meanwhile,
and the same for a second wave. Runs against whichever ``atoll`` sits next to this file (the code
before kept ``WatchCache.prepare_replay``, read from the store).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.api.kinds import CONFIGMAPS  # noqa: E402
from atoll.apiserver.cache.watchcache import WatchCache  # noqa: E402
from atoll.apiserver.registry.lists import make_matcher  # noqa: E402
from atoll.store.sqlite import SQLiteStore  # noqa: E402

NS = "bench"


def value(name: str, app: str, size: int) -> bytes:
    obj = {"metadata": {"name": name, "namespace": NS, "labels": {"app": app}}, "data": {"k": "x" * size}}
    return orjson.dumps(obj)


async def fill(path: Path, objects: int, size: int) -> int:
    """Create, compact, patch every object once; the compacted revision."""
    store = SQLiteStore(path)
    await store.start()
    try:
        revs = [await store.create(CONFIGMAPS.key(NS, f"cm{i}"), value(f"cm{i}", "a", size)) for i in range(objects)]
        start = revs[-1]
        await store.compact(start)
        for i, rev in enumerate(revs):
            await store.update(CONFIGMAPS.key(NS, f"cm{i}"), value(f"cm{i}", "b" if i % 2 else "a", size), rev)
        return start
    finally:
        await store.close()


async def wave(cache: WatchCache, watches: int, start: int, fields: str) -> tuple[float, int]:
    """Start ``watches`` selected watches from ``start`` at once: seconds, store reads."""
    reads = [0]
    store: Any = cache._store
    for name in ("get", "list"):
        original = getattr(store, name)

        async def counted(*a: Any, _original: Any = original, **kw: Any) -> Any:
            reads[0] += 1
            return await _original(*a, **kw)

        setattr(store, name, counted)
    prefix, matcher = CONFIGMAPS.key_prefix(NS), make_matcher(CONFIGMAPS, "" if fields else "app=a", fields)

    async def one() -> int:
        if hasattr(cache, "prepare_replay"):  # the code before
            await cache.prepare_replay(prefix, start)
        watcher, initial = cache.watch(prefix, matcher, start)
        cache.stop(watcher)
        return len(initial)

    began = time.perf_counter()
    sent = await asyncio.gather(*(one() for _ in range(watches)))
    spent = time.perf_counter() - began
    for name in ("get", "list"):
        delattr(store, name)
    assert len(set(sent)) == 1, sent  # every watch replays the same events
    return spent, reads[0]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--watches", type=int, default=50)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--pinned", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        start = await fill(path, args.objects, args.size)
        store = SQLiteStore(path)
        await store.start()
        cache = WatchCache(store)
        task = asyncio.create_task(cache.run())
        try:
            await cache.wait_ready()
            # a row after the replayed window: once it is applied, the whole window is replayed
            await cache.wait_for(await store.create(CONFIGMAPS.key("other", "mark"), value("mark", "z", 0)))
            for n in (1, 2):
                spent, reads = await wave(cache, args.watches, start, "metadata.name=cm0" if args.pinned else "")
                print(
                    f"wave {n}: {args.watches} watches x {args.objects} replayed rows: {spent * 1e3:.1f} ms, "
                    f"{reads} store reads"
                )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
