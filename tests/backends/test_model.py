"""Property test: the SQLite store against an in-memory model of the kine log.

Random create/update/delete (right and wrong preconditions), lists at past revisions, and
compactions; at the end a watch from the compacted revision must replay exactly the model's
log after it.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from atoll.store.base import Compacted, Event, KeyExists, KeyNotFound, RevisionMismatch, StoreError
from atoll.store.sqlite import SQLiteStore

KEYS = st.sampled_from(["/m/a", "/m/b", "/m/b/c", "/m/é", "/n/x"])
VALUES = st.binary(max_size=8)


class StoreModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.TemporaryDirectory()
        self.store = SQLiteStore(Path(self.dir.name) / "state.db")
        self.run(self.store.start())
        self.live: dict[str, tuple[bytes, int]] = {}  # key -> (value, revision)
        self.history: list[dict[str, tuple[bytes, int]]] = [{}]  # state after each revision
        self.log: list[tuple[int, str, bool]] = []  # (revision, key, deleted)
        self.compacted = 0

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def commit(self, rev: int, key: str, deleted: bool) -> None:
        assert rev == len(self.history), (rev, len(self.history))
        self.history.append(dict(self.live))
        self.log.append((rev, key, deleted))

    def expect(self, coro, error: type[StoreError]) -> None:  # type: ignore[no-untyped-def]
        try:
            self.run(coro)
        except error:
            return
        raise AssertionError(f"expected {error.__name__}")

    @rule(key=KEYS, value=VALUES)
    def create(self, key: str, value: bytes) -> None:
        if key in self.live:
            self.expect(self.store.create(key, value), KeyExists)
            return
        rev = self.run(self.store.create(key, value))
        self.live[key] = (value, rev)
        self.commit(rev, key, False)

    @rule(key=KEYS, value=VALUES, stale=st.booleans())
    def update(self, key: str, value: bytes, stale: bool) -> None:
        if key not in self.live:
            self.expect(self.store.update(key, value, 1), KeyNotFound)
            return
        current = self.live[key][1]
        if stale:
            self.expect(self.store.update(key, value, current - 1 or 10**9), RevisionMismatch)
            return
        rev = self.run(self.store.update(key, value, current))
        self.live[key] = (value, rev)
        self.commit(rev, key, False)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        if key not in self.live:
            self.expect(self.store.delete(key, 1), KeyNotFound)
            return
        ev: Event = self.run(self.store.delete(key, self.live[key][1]))
        assert ev.value == self.live[key][0]
        del self.live[key]
        self.commit(ev.revision, key, True)

    @precondition(lambda self: len(self.history) > 1)
    @rule(data=st.data())
    def list_at(self, data: st.DataObject) -> None:
        rev = data.draw(st.integers(1, len(self.history) - 1))
        prefix = data.draw(st.sampled_from(["/", "/m/", "/m/b", "/n/"]))
        if rev < self.compacted:
            self.expect(self.store.list(prefix, revision=rev), Compacted)
            return
        got = self.run(self.store.list(prefix, revision=rev))
        want = sorted((k, v) for k, v in self.history[rev].items() if k.startswith(prefix))
        assert [(kv.key, (kv.value, kv.revision)) for kv in got.items] == want

    @precondition(lambda self: len(self.history) > 1)
    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        rev = data.draw(st.integers(1, len(self.history) - 1))
        self.compacted = max(self.compacted, rev)
        assert self.run(self.store.compact(rev)) == self.compacted

    @invariant()
    def current_state(self) -> None:
        got = self.run(self.store.list("/"))
        assert {kv.key: (kv.value, kv.revision) for kv in got.items} == self.live

    def teardown(self) -> None:
        try:
            end = len(self.history) - 1
            if end > self.compacted:
                self.run(self.check_replay(end))
        finally:
            self.run(self.store.close())
            self.loop.close()
            self.dir.cleanup()

    async def check_replay(self, end: int) -> None:
        events: list[Event] = []
        async with asyncio.timeout(5):
            async for batch in self.store.watch(self.compacted):
                events += batch
                if events[-1].revision >= end:
                    break
        want = [(r, k, d) for r, k, d in self.log if r > self.compacted]
        assert [(e.revision, e.key, e.deleted) for e in events] == want


TestStoreModel = StoreModel.TestCase
TestStoreModel.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
