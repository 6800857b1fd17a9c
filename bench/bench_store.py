"""Store write throughput against the physical reference: raw sqlite3 single-row commits.

Run: ``.venv/bin/python bench/bench_store.py [--ops N]``. Prints creates/s of ``SQLiteStore`` at
1 and 32 concurrent tasks (group commit) and of a plain ``sqlite3`` loop committing one kine-style
row per transaction on the same pragmas (WAL, synchronous=NORMAL), measured in the same run, and
the ratios ours / reference. Also reports watch delivery (events/s to one watcher) and a
prefix list of all rows.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from atoll.store.sqlite import SCHEMA, SQLiteStore

VALUE = b"x" * 600  # a typical small object's JSON


def reference(path: Path, ops: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for stmt in SCHEMA:
        conn.execute(stmt)
    insert = (
        "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, value, old_value)"
        " VALUES (?, 1, 0, 0, 0, ?, NULL)"
    )
    began = time.perf_counter()
    for i in range(ops):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(insert, (f"/registry/ref/{i:08d}", VALUE))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - began
    conn.close()
    return ops / elapsed


async def ours(path: Path, ops: int, concurrency: int) -> tuple[float, float, float]:
    store = SQLiteStore(path)
    await store.start()
    try:
        start_rev = await store.current_revision()
        per_task = ops // concurrency
        ops = per_task * concurrency
        received = 0

        async def watcher() -> None:
            nonlocal received
            async for batch in store.watch(start_rev):
                received += len(batch)
                if received >= ops:
                    return

        watching = asyncio.create_task(watcher())
        await asyncio.sleep(0)

        async def worker(w: int) -> None:
            for i in range(per_task):
                await store.create(f"/registry/c{concurrency}/{w:03d}/{i:08d}", VALUE)

        began = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        wrote = time.perf_counter() - began
        await asyncio.wait_for(watching, 30)
        watched = time.perf_counter() - began
        began = time.perf_counter()
        listed = await store.list(f"/registry/c{concurrency}/")
        list_s = time.perf_counter() - began
        assert len(listed.items) == per_task * concurrency
        return per_task * concurrency / wrote, ops / watched, len(listed.items) / list_s
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ref = reference(Path(tmp) / "ref.db", args.ops)
        print(f"reference  raw sqlite3, 1 row per commit : {ref:9.0f} commits/s")
        for concurrency in (1, 32):
            rate, watch_rate, list_rate = asyncio.run(ours(Path(tmp) / f"c{concurrency}.db", args.ops, concurrency))
            print(
                f"ours       {concurrency:2d} concurrent creates      : {rate:9.0f} creates/s"
                f"  ours/reference = {rate / ref:5.2f}"
                f"   (watch {watch_rate:7.0f} ev/s, list {list_rate:8.0f} rows/s)"
            )


if __name__ == "__main__":
    main()
