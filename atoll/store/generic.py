"""The network-database half of a ``Driver``: kine's writes over an async connection pool.

PostgreSQL and MySQL differ only in how a statement is sent, how an insert reports its id, and
how a duplicate key is recognised; everything else (check-then-insert, retry on conflict,
compaction, fill rows) is written once here.

Writes need no explicit transaction: the latest row is read, the new row is planned, and the
insert is its own autocommit statement. ``UNIQUE(name, prev_revision)`` makes the insert fail if
anyone wrote the key in between; a duplicate primary key means a gap-filler took our sequence
value. Either way the write is re-planned from a fresh read, which turns a lost race into the
right ``KeyExists`` / ``RevisionMismatch`` / ``KeyNotFound``. A dialect that knows the id its lost
insert burnt writes a fill row under it at once (``Conflict``), so the race leaves no hole for the
poller to wait on; ``raced`` counts those.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from atoll.store import sql
from atoll.store.base import Event, StoreError
from atoll.store.rows import Batch, NewRow, Row, Rows, fill_row, new_event, plan_create, plan_delete, plan_update

RETRIES = 50


class Conflict(Exception):
    """An insert lost a race on ``(name, prev_revision)``; ``filled`` is the id it left filled."""

    def __init__(self, name: str, filled: int) -> None:
        super().__init__(f"{name}: lost an insert race (revision {filled} filled)")
        self.filled = filled


class AsyncSQLDriver(ABC):
    """Shared ``Driver`` logic; subclasses provide the four primitives below."""

    ordered_commits = False
    poll_interval = 0.5
    queries: sql.Queries
    raced = 0  # lost insert races whose burnt id this driver filled itself

    @abstractmethod
    async def _fetch(self, query: str, args: Sequence[Any]) -> Rows: ...

    @abstractmethod
    async def _execute(self, query: str, args: Sequence[Any]) -> None: ...

    @abstractmethod
    async def _insert(self, row: NewRow) -> int:
        """Insert and return the new id."""

    @abstractmethod
    def _is_conflict(self, exc: BaseException) -> bool:
        """True for errors that mean "re-read and re-plan": duplicate key, deadlock."""

    def _key(self, key: str) -> Any:
        return key

    def _written(self) -> None:
        """Hook: a write committed (PostgreSQL tells the other replicas)."""
        return None

    async def open(self, wake: Callable[[], None], publish: Callable[[Batch], None]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # ---- writes -------------------------------------------------------------------------------

    async def _write(self, key: str, plan: Callable[[Row | None], NewRow]) -> tuple[int, NewRow]:
        for _ in range(RETRIES):
            row = plan(await self.latest(key))
            try:
                rev = await self._insert(row)
            except Exception as exc:
                if not self._is_conflict(exc):
                    raise
                continue
            self._written()
            return rev, row
        raise StoreError(f"{key}: gave up after {RETRIES} conflicting writes")

    async def create(self, key: str, value: bytes) -> int:
        rev, _ = await self._write(key, lambda latest: plan_create(key, value, latest))
        return rev

    async def update(self, key: str, value: bytes, expected: int) -> int:
        rev, _ = await self._write(key, lambda latest: plan_update(key, value, expected, latest))
        return rev

    async def delete(self, key: str, expected: int) -> Event:
        rev, row = await self._write(key, lambda latest: plan_delete(key, expected, latest))
        return new_event(rev, row)

    async def fill(self, revision: int) -> None:
        row = fill_row(revision)
        try:
            await self._execute(self.queries.insert_with_id, (revision, self._key(row.name), *row[1:]))
        except Exception as exc:
            if not self._is_conflict(exc):  # a duplicate: the real row (or another filler) won
                raise

    # ---- reads --------------------------------------------------------------------------------

    async def latest(self, key: str) -> Row | None:
        rows = await self._fetch(self.queries.latest, (self._key(key),))
        return rows[0] if rows else None

    async def list(self, lo: str, hi: str | None, revision: int, limit: int) -> Rows:
        n = limit or sql.NO_LIMIT
        if hi is None:
            return await self._fetch(self.queries.list_from, (self._key(lo), revision, n))
        return await self._fetch(self.queries.list_range, (self._key(lo), self._key(hi), revision, n))

    async def after(self, revision: int, limit: int) -> Rows:
        return await self._fetch(self.queries.after, (revision, limit))

    async def max_revision(self) -> int:
        rows = await self._fetch(self.queries.max_revision, ())
        return int(rows[0][0] or 0)

    async def meta(self) -> tuple[int, int]:
        rows = await self._fetch(self.queries.meta, ())
        values = {(n if isinstance(n, str) else n.decode()): int(v) for n, v in rows}
        return values[sql.COMPACT_REV], values[sql.COMPACT_DONE]

    # ---- compaction ---------------------------------------------------------------------------

    async def set_compact_rev(self, revision: int) -> None:
        await self._execute(self.queries.set_meta, (revision, sql.COMPACT_REV, revision))

    async def compact_range(self, lo: int, hi: int) -> None:
        """Idempotent, so no transaction: a crash half-way is finished by the next compaction."""
        ids = [int(r[0]) for r in await self._fetch(self.queries.superseded, (lo, hi))]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            await self._execute(self.queries.delete_ids(len(chunk)), chunk)
        await self._execute(self.queries.delete_tombstones, (lo, hi))
        await self._execute(self.queries.set_meta, (hi, sql.COMPACT_DONE, hi))
