"""The SQLite writer thread's hand-over: writes submitted in one loop iteration share one batch,
a batch's events reach watchers before its writers resume, and closing runs what was submitted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from atoll.store.base import KeyExists
from atoll.store.sqlite import SQLiteDriver, SQLiteStore
from tests.conftest import eventually


async def test_watchers_have_a_batch_before_its_writers_resume(tmp_path: Path) -> None:
    """The watch cache's read-your-write wait needs no timer when the cache (a watcher, like this
    one) has applied the event by the time the writer resumes."""
    store = SQLiteStore(tmp_path / "state.db")
    await store.start()
    watched: list[int] = []
    late: list[int] = []

    async def follow() -> None:
        async for batch in store.watch(0):
            watched.extend(e.revision for e in batch)

    follower = asyncio.create_task(follow())
    await eventually(lambda: bool(store._subs))  # the follower is subscribed
    try:

        async def write(i: int) -> None:
            rev = await store.create(f"/k/{i}", b"v")
            if rev not in watched:
                late.append(rev)

        for _ in range(5):
            await asyncio.gather(*(write(len(watched) + i) for i in range(10)))
    finally:
        follower.cancel()
        await store.close()
    assert watched == list(range(1, 51))
    assert late == [], "writers resumed before a watcher had their events"


async def test_one_iterations_writes_share_a_batch(tmp_path: Path) -> None:
    driver = SQLiteDriver(tmp_path / "state.db")
    batches: list[list[int]] = []
    await driver.open(lambda: None, lambda events: batches.append([e.revision for e in events]))
    try:
        await asyncio.gather(*(driver.create(f"/k/{i}", b"v") for i in range(20)))
        with_conflict = await asyncio.gather(
            driver.create("/k/0", b"again"), driver.create("/k/x", b"v"), return_exceptions=True
        )
    finally:
        await driver.close()
    assert batches[0] == list(range(1, 21))  # submitted in one iteration: one transaction
    assert isinstance(with_conflict[0], KeyExists)  # a failing write fails only itself
    assert with_conflict[1] == 21


async def test_close_runs_writes_submitted_in_the_same_iteration(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    await store.start()
    # run the create up to its wait: submitted (synchronously, in this very step), not yet handed to
    # the writer thread, which happens in a later loop iteration
    driver = store.driver
    assert isinstance(driver, SQLiteDriver)
    create = driver.create("/k/late", b"v")
    submitted = create.send(None)
    assert isinstance(submitted, asyncio.Future) and driver._pending
    await store.close()
    assert await asyncio.wait_for(submitted, 5) == 1
    create.close()
    reopened = SQLiteStore(tmp_path / "state.db")
    await reopened.start()
    try:
        kv = await reopened.get("/k/late")
        assert kv is not None and kv.value == b"v"
    finally:
        await reopened.close()
