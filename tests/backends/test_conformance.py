"""One conformance suite for every store dialect (SQLite, PostgreSQL, MySQL/MariaDB)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import pytest

from atoll.store.base import (
    Compacted,
    Event,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    WatchLagged,
)
from atoll.store.log import LogStore
from atoll.store.rows import FILL_PREFIX, fill_row
from atoll.store.sqlite import SQLiteDriver

from .conftest import StoreFactory


async def collect(it: AsyncIterator[list[Event]], until: int, within: float = 5.0) -> list[Event]:
    """Events from ``it`` until one with revision >= ``until`` arrives."""
    out: list[Event] = []

    async def run() -> None:
        async for batch in it:
            out.extend(batch)
            if out and out[-1].revision >= until:
                return

    await asyncio.wait_for(run(), within)
    return out


def assert_sequential(events: list[Event], after: int) -> None:
    revs = [e.revision for e in events]
    assert revs == list(range(after + 1, after + 1 + len(revs))), revs


# ---- create / get / update / delete ------------------------------------------------------------


async def test_create_get(store: LogStore) -> None:
    rev = await store.create("/r/a", b"one")
    assert rev > 0
    kv = await store.get("/r/a")
    assert kv is not None
    assert (kv.key, kv.value, kv.revision, kv.create_revision) == ("/r/a", b"one", rev, rev)
    assert await store.get("/r/missing") is None
    with pytest.raises(KeyExists):
        await store.create("/r/a", b"two")
    assert await store.current_revision() == rev


async def test_update_precondition(store: LogStore) -> None:
    r1 = await store.create("/r/a", b"1")
    r2 = await store.update("/r/a", b"2", r1)
    assert r2 > r1
    with pytest.raises(RevisionMismatch) as err:
        await store.update("/r/a", b"3", r1)
    assert err.value.current == r2
    with pytest.raises(KeyNotFound):
        await store.update("/r/nope", b"x", r1)
    kv = await store.get("/r/a")
    assert kv is not None and (kv.value, kv.revision, kv.create_revision) == (b"2", r2, r1)
    r3 = await store.update("/r/a", b"3", 0)  # 0 = unconditional
    assert r3 > r2


async def test_delete_and_recreate(store: LogStore) -> None:
    r1 = await store.create("/r/a", b"1")
    r2 = await store.update("/r/a", b"2", r1)
    with pytest.raises(RevisionMismatch):
        await store.delete("/r/a", r1)
    ev = await store.delete("/r/a", r2)
    assert ev.deleted and not ev.created
    assert (ev.key, ev.value, ev.prev_value, ev.prev_revision, ev.create_revision) == (
        "/r/a",
        b"2",
        b"2",
        r2,
        r1,
    )
    assert await store.get("/r/a") is None
    with pytest.raises(KeyNotFound):
        await store.delete("/r/a", ev.revision)
    r4 = await store.create("/r/a", b"again")
    kv = await store.get("/r/a")
    assert kv is not None and kv.create_revision == r4 > ev.revision


# ---- list ----------------------------------------------------------------------------------------


async def test_list_prefix_revision_and_pages(store: LogStore) -> None:
    keys = [f"/l/a/{i:02d}" for i in range(10)]
    revs = [await store.create(k, k.encode()) for k in keys]
    await store.create("/l/ab", b"sibling")
    await store.create("/l/b/0", b"other")
    mid = revs[4]
    await store.update(keys[0], b"new", revs[0])
    await store.delete(keys[1], revs[1])

    now = await store.list("/l/a/")
    assert [kv.key for kv in now.items] == [k for k in keys if k != keys[1]]
    assert now.items[0].value == b"new" and not now.more
    assert now.revision == await store.current_revision()

    then = await store.list("/l/a/", revision=mid)
    assert [kv.key for kv in then.items] == keys[:5]
    assert then.items[0].value == keys[0].encode() and then.revision == mid

    seen, start = [], ""
    while True:
        page = await store.list("/l/a/", limit=3, start_key=start, revision=now.revision)
        seen += [kv.key for kv in page.items]
        if not page.more:
            break
        assert len(page.items) == 3
        start = page.items[-1].key + "\x00"
    assert seen == [kv.key for kv in now.items]


async def test_list_byte_order(store: LogStore) -> None:
    keys = ["/u/a", "/u/B", "/u/z", "/u/~", "/u/é", "/u/日本", "/u/a b", "/u/a ", "/u/\U0001f600"]
    for k in keys:
        await store.create(k, b"v")
    listed = await store.list("/u/")
    assert [kv.key for kv in listed.items] == sorted(keys)
    assert [kv.key for kv in (await store.list("/u/a")).items] == ["/u/a", "/u/a ", "/u/a b"]
    assert len((await store.list("")).items) == len(keys)


# ---- watch ---------------------------------------------------------------------------------------


async def test_watch_history_then_live(store: LogStore) -> None:
    revs = [await store.create(f"/w/{i}", b"v") for i in range(5)]
    start = revs[1]
    it = store.watch(start)
    first = await asyncio.wait_for(anext(it), 5)  # history from the database
    live = [store.create(f"/w/live{i}", b"v") for i in range(20)]
    more = await asyncio.gather(*live)
    events = first + await collect(it, max(more))
    assert_sequential(events, start)
    assert {e.revision for e in events} == {*revs[2:], *more}
    await it.aclose()


async def test_watch_event_fields(store: LogStore) -> None:
    it = store.watch(await store.current_revision())
    r1 = await store.create("/e/a", b"1")
    r2 = await store.update("/e/a", b"2", r1)
    ev = await store.delete("/e/a", r2)
    events = await collect(it, ev.revision)
    assert [(e.created, e.deleted) for e in events] == [(True, False), (False, False), (False, True)]
    assert [e.value for e in events] == [b"1", b"2", b"2"]
    assert [e.prev_value for e in events] == [None, b"1", b"2"]
    assert [e.prev_revision for e in events] == [0, r1, r2]
    assert all(e.create_revision == r1 for e in events)
    assert events[-1] == ev


async def test_watch_slow_watcher_is_ended(store_factory: StoreFactory) -> None:
    store = await store_factory(queue_size=2)
    it = store.watch(await store.current_revision())
    first = asyncio.ensure_future(anext(it))
    await asyncio.sleep(0.05)
    for i in range(8):  # separate commits, separate poller batches
        await store.create(f"/s/{i}", b"v")
        await asyncio.sleep(0.02)
    await first
    with pytest.raises(WatchLagged):
        async for _ in it:
            pass


async def test_watch_ends_on_close(store_factory: StoreFactory) -> None:
    store = await store_factory()
    it = store.watch(await store.current_revision())
    task = asyncio.ensure_future(anext(it))
    await asyncio.sleep(0.05)
    await store.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(task, 5)


async def test_gap_is_filled(store: LogStore, tmp_path: object) -> None:
    """A hole in the ids (a rolled-back insert) is plugged; watchers neither stall nor skip."""
    base = await store.create("/g/a", b"v")
    it = store.watch(base)
    row = ("/g/b", 1, 0, 0, 0, b"late", None)
    if isinstance(store.driver, SQLiteDriver):
        raw = sqlite3.connect(store.driver.path)
        raw.execute(
            "INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, value, old_value)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (base + 2, *row),
        )
        raw.commit()
        raw.close()
    else:
        driver = store.driver
        await driver._execute(driver.queries.insert_with_id, (base + 2, driver._key(row[0]), *row[1:]))  # type: ignore[attr-defined]
    store.wake()
    events = await collect(it, base + 2)
    assert [e.revision for e in events] == [base + 1, base + 2]
    assert events[0].key == fill_row(base + 1).name and events[0].key.startswith(FILL_PREFIX)
    assert events[0].deleted and events[1].key == "/g/b"
    after = await store.create("/g/c", b"v")  # writes continue past the filled hole
    assert after > base + 2 and (await store.get("/g/b")) is not None


# ---- compaction ----------------------------------------------------------------------------------


async def test_compaction(store: LogStore) -> None:
    r1 = await store.create("/c/a", b"1")
    r2 = await store.update("/c/a", b"2", r1)
    r3 = await store.create("/c/b", b"1")
    ev = await store.delete("/c/b", r3)
    live = store.watch(ev.revision)
    live_first = asyncio.ensure_future(anext(live))
    r5 = await store.update("/c/a", b"3", r2)
    assert (await live_first)[0].revision == r5
    snapshot = await store.list("/c/", revision=r5)

    compacted = await store.compact(r5)
    assert compacted == r5 == await store.compacted_revision()
    with pytest.raises(Compacted):
        store_it = store.watch(r1)
        await anext(store_it)
    with pytest.raises(Compacted):
        await store.list("/c/", revision=r2)
    assert await store.list("/c/", revision=r5) == snapshot
    assert [(kv.key, kv.value) for kv in (await store.list("/c/")).items] == [("/c/a", b"3")]
    assert await store.current_revision() >= r5

    # a live watcher keeps going; a watch from the compacted revision itself is fine
    r6 = await store.update("/c/a", b"4", r5)
    assert [e.revision for e in await collect(live, r6)] == [r6]
    assert [e.revision for e in await collect(store.watch(r5), r6)] == [r6]
    await store.create("/c/b", b"again")  # a compacted tombstone does not block re-creation
    assert await store.compact(r6) == r6
    assert await store.compact(r1) == r6  # never goes backwards


async def test_compaction_never_outruns_the_poller(store: LogStore) -> None:
    rev = await store.create("/c/x", b"v")
    assert await store.compact(rev + 1000) <= await store.current_revision()


# ---- concurrency and group commit --------------------------------------------------------------


async def test_concurrent_creates(store: LogStore) -> None:
    start = await store.current_revision()
    it = store.watch(start)
    revs = await asyncio.gather(*(store.create(f"/cc/{i}", b"v") for i in range(200)))
    assert len(set(revs)) == 200
    events = await collect(it, max(revs), within=10)
    real = [e for e in events if not e.key.startswith(FILL_PREFIX)]
    assert [e.revision for e in events] == sorted(e.revision for e in events)
    assert {e.revision for e in real} == set(revs)
    assert len((await store.list("/cc/")).items) == 200


async def test_concurrent_updates_one_winner(store: LogStore) -> None:
    rev = await store.create("/cu/k", b"0")
    for _ in range(3):
        results = await asyncio.gather(
            *(store.update("/cu/k", str(i).encode(), rev) for i in range(20)), return_exceptions=True
        )
        won = [r for r in results if isinstance(r, int)]
        assert len(won) == 1, results
        assert all(isinstance(r, RevisionMismatch) for r in results if not isinstance(r, int))
        rev = won[0]
        kv = await store.get("/cu/k")
        assert kv is not None and kv.revision == rev


async def test_lost_races_across_replicas_leave_no_gap(store_factory: StoreFactory) -> None:
    """Writers on two replicas racing on one key's revision: exactly one wins each round, and the
    ids the losers burnt are filled by the losers themselves, so a watch (and a consistent read)
    never waits for the poller's gap timeout (set to 60 s here: a hole would time the test out)."""
    a, b = await store_factory(gap_timeout=60), await store_factory(gap_timeout=60)
    shared = store_factory.backend != "sqlite"  # type: ignore[attr-defined]
    if getattr(a.driver, "sequence", True) is False:
        pytest.skip("MySQL without sequences: a lost race leaves a hole for the poller")
    rev = await a.create("/race/k", b"0")
    it = b.watch(rev)
    for round_ in range(15):
        writes = [s.update("/race/k", f"{round_}-{i}".encode(), rev) for i in range(4) for s in (a, b)]
        results = await asyncio.gather(*writes, return_exceptions=True)
        won = [r for r in results if isinstance(r, int)]
        assert len(won) == 1, results
        assert all(isinstance(r, RevisionMismatch) for r in results if not isinstance(r, int))
        rev = won[0]
        if shared:  # a consistent read on the other replica is not held up (SQLite: one writer process)
            async with asyncio.timeout(2):
                assert (await b.list("/race/")).items[0].revision == rev
    last = await a.create("/race/after", b"v")
    events = await collect(it, last, within=5)
    assert_sequential(events, events[0].revision - 1)
    assert a.gaps_filled == b.gaps_filled == 0
    raced = getattr(a.driver, "raced", 0) + getattr(b.driver, "raced", 0)
    fills = [e for e in events if e.key.startswith(FILL_PREFIX)]
    assert len(fills) == raced
    if shared:
        assert raced > 0, "no race was lost: the test did not exercise anything"


async def test_group_commit_isolates_failures(store: LogStore) -> None:
    await store.create("/gc/taken", b"v")
    ops = [store.create(f"/gc/{i}", b"v") for i in range(20)]
    ops.insert(7, store.create("/gc/taken", b"again"))
    ops.insert(13, store.update("/gc/nope", b"x", 1))
    results = await asyncio.gather(*ops, return_exceptions=True)
    assert isinstance(results[7], KeyExists) and isinstance(results[13], KeyNotFound)
    good = [r for i, r in enumerate(results) if i not in (7, 13)]
    assert all(isinstance(r, int) for r in good) and len(set(good)) == 20
    assert len((await store.list("/gc/")).items) == 21


async def test_two_instances_share_one_database(store_factory: StoreFactory) -> None:
    a = await store_factory()
    b = await store_factory(poll_interval=0.2)  # SQLite has no cross-process notify: poll
    it = b.watch(await b.current_revision())
    first = asyncio.ensure_future(anext(it))
    await asyncio.sleep(0.05)
    rev = await a.create("/two/k", b"v")
    # b's poller finds the row (a ceiling, not a latency promise: the pick-up delay is the poll
    # interval, 0.2 s here, plus however late a loaded machine runs the poll)
    batch = await asyncio.wait_for(first, 30)
    assert batch[-1].revision == rev and batch[-1].key == "/two/k"
    kv = await b.get("/two/k")
    assert kv is not None and kv.revision == rev
    with pytest.raises(KeyExists):
        await b.create("/two/k", b"other")
