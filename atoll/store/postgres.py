"""PostgreSQL dialect: asyncpg pool, ``COLLATE "C"`` keys, LISTEN/NOTIFY wake-ups.

After its writes commit, a replica sends ``NOTIFY atoll_kine`` from a separate statement,
coalesced to at most one in flight: a NOTIFY inside the writing transaction would serialise
every commit on PostgreSQL's notify lock (one fsync each, no group commit). Every replica keeps
one listening connection that wakes its poller, so a write through any replica reaches every
replica's watchers in a couple of round trips. A 500 ms poll ticker covers a lost listener.

Sequence values are taken before commit, so rows can become visible out of order for the length
of a commit; the poller waits for the next wake-up. A lost insert race leaves no hole: the insert
takes its id with ``nextval`` in a CTE, skips the row on a ``(name, prev_revision)`` conflict and
writes a fill row under the same id in the same statement (``INSERT_OR_FILL``), so no watcher or
acknowledgement ever waits for the poller's ``gap_timeout`` because two writers raced on one key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from atoll.store import sql
from atoll.store.generic import AsyncSQLDriver, Conflict
from atoll.store.log import LogStore
from atoll.store.rows import FILL_PREFIX, Batch, NewRow, Row, Rows

log = logging.getLogger(__name__)

CHANNEL = "atoll_kine"
SCHEMA = """
SELECT pg_advisory_xact_lock(7206254911);
CREATE TABLE IF NOT EXISTS kine (
    id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision BIGINT NOT NULL,
    prev_revision BIGINT NOT NULL,
    value BYTEA,
    old_value BYTEA);
CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name, id);
CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision);
CREATE TABLE IF NOT EXISTS kine_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO kine_meta(name, value) VALUES ('compact_rev', 0), ('compact_done', 0)
    ON CONFLICT DO NOTHING;
"""


_COLS = "id, name, created, deleted, create_revision, prev_revision, value, old_value"
INSERT_OR_FILL = f"""
WITH n AS (SELECT nextval('kine_id_seq') AS id),
ins AS (
    INSERT INTO kine({_COLS}) SELECT id, $1, $2, $3, $4, $5, $6, $7 FROM n
    ON CONFLICT (name, prev_revision) DO NOTHING RETURNING id),
fill AS (
    INSERT INTO kine({_COLS}) SELECT id, '{FILL_PREFIX}' || id, 0, 1, 0, 0, ''::bytea, NULL FROM n
    WHERE NOT EXISTS (SELECT 1 FROM ins) RETURNING id)
SELECT (SELECT id FROM ins), (SELECT id FROM fill)
"""


class PostgresDriver(AsyncSQLDriver):
    """The ``Driver`` for one PostgreSQL database (which must exist)."""

    queries = sql.Queries.build(lambda i: f"${i}", insert_suffix=" RETURNING id")
    poll_interval = 0.5

    def __init__(self, dsn: str, *, pool_size: int = 16) -> None:
        self.dsn, self._pool_size = dsn, pool_size
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._notifier: asyncio.Task[None] | None = None
        self._notify_again = False

    async def open(self, wake: Callable[[], None], publish: Callable[[Batch], None]) -> None:
        self._pool = await asyncpg.create_pool(self.dsn, min_size=2, max_size=self._pool_size)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(SCHEMA)
        self._listener = await asyncpg.connect(self.dsn)
        await self._listener.add_listener(CHANNEL, lambda *_: wake())

    async def close(self) -> None:
        if self._notifier is not None:
            with contextlib.suppress(Exception):
                await self._notifier
        if self._listener is not None:
            await self._listener.close()
        if self._pool is not None:
            await self._pool.close()

    def _written(self) -> None:
        if self._notifier is None or self._notifier.done():
            self._notifier = asyncio.create_task(self._notify())
        else:
            self._notify_again = True

    async def _notify(self) -> None:
        while True:
            self._notify_again = False
            try:
                await self._p().execute(f"NOTIFY {CHANNEL}")
            except Exception as exc:  # the other replicas' poll ticker still picks the write up
                log.warning("store: NOTIFY failed: %s", exc)
                return
            if not self._notify_again:
                return

    def _p(self) -> asyncpg.Pool:
        assert self._pool is not None, "store not started"
        return self._pool

    async def _fetch(self, query: str, args: Sequence[Any]) -> list[Row]:
        rows: list[Row] = await self._p().fetch(query, *args)
        return rows

    async def _execute(self, query: str, args: Sequence[Any]) -> None:
        await self._p().execute(query, *args)

    async def _insert(self, row: NewRow) -> int:
        inserted, filled = await self._p().fetchrow(INSERT_OR_FILL, *row)
        if inserted is None:  # lost the race on (name, prev_revision); the id is already filled
            self.raced += 1
            self._written()  # the fill row is a commit the other replicas' pollers should see
            raise Conflict(row.name, int(filled))
        return int(inserted)

    async def list(self, lo: str, hi: str | None, revision: int, limit: int) -> Rows:
        # text cannot hold NUL, so no key does: "a\x00..." (a continuation) starts at "a\x01"
        nul = lo.find("\x00")
        return await super().list(lo if nul < 0 else lo[:nul] + "\x01", hi, revision, limit)

    def _is_conflict(self, exc: BaseException) -> bool:
        return isinstance(
            exc, Conflict | asyncpg.UniqueViolationError | asyncpg.DeadlockDetectedError | asyncpg.SerializationError
        )


class PostgresStore(LogStore):
    """``PostgresStore("postgresql://user:pw@host:5432/db")``, then ``await start()``."""

    def __init__(self, dsn: str, *, pool_size: int = 16, **options: Any) -> None:
        super().__init__(PostgresDriver(dsn, pool_size=pool_size), **options)
