"""MySQL / MariaDB dialect: aiomysql pool, ``VARBINARY`` keys, polling plus local wake-ups.

Keys are ``VARBINARY`` so comparisons are byte order (= code point order of UTF-8) with no
PAD SPACE surprises; they are sent encoded and decoded on read. MySQL has no LISTEN/NOTIFY,
so the poller ticks every 150 ms (local writes still wake it at once). Sessions run at READ
COMMITTED; a duplicate key or an InnoDB deadlock on the unique index re-plans the write.

On MariaDB (10.3+) ids come from the sequence ``kine_seq`` instead of ``AUTO_INCREMENT``: a lost
insert race burns its id either way, but ``LASTVAL(kine_seq)`` names the burnt id on the same
connection, so the writer fills it at once (one extra round trip, only after a conflict) and the
poller never waits ``gap_timeout`` for it. MySQL has no sequences: there a lost race leaves a
hole that the poller fills after ``gap_timeout`` (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import aiomysql
import pymysql  # type: ignore[import-untyped]
import pymysql.converters  # type: ignore[import-untyped]

from atoll.store import sql
from atoll.store.endpoint import MySQLParams
from atoll.store.generic import AsyncSQLDriver
from atoll.store.log import LogStore
from atoll.store.rows import FILL_PREFIX, Batch, NewRow, Row

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS kine (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name VARBINARY(2048) NOT NULL,
        created INT NOT NULL,
        deleted INT NOT NULL,
        create_revision BIGINT UNSIGNED NOT NULL,
        prev_revision BIGINT UNSIGNED NOT NULL,
        value LONGBLOB,
        old_value LONGBLOB,
        UNIQUE KEY kine_name_prev_revision_uindex (name, prev_revision),
        KEY kine_name_id_index (name, id)
    ) ENGINE=InnoDB""",
    "CREATE TABLE IF NOT EXISTS kine_meta (name VARCHAR(64) PRIMARY KEY, value BIGINT NOT NULL)",
    "INSERT INTO kine_meta(name, value) VALUES ('compact_rev', 0), ('compact_done', 0)"
    " ON DUPLICATE KEY UPDATE value = value",
]
DUPLICATE, DEADLOCK, LOCK_WAIT = 1062, 1213, 1205
SEQUENCE = "CREATE SEQUENCE IF NOT EXISTS kine_seq"
_COLS = "id, name, created, deleted, create_revision, prev_revision, value, old_value"
INSERT_SEQ = f"INSERT INTO kine({_COLS}) VALUES (NEXTVAL(kine_seq), %s, %s, %s, %s, %s, %s, %s)"
FILL_LAST = (
    f"INSERT INTO kine({_COLS}) "
    f"VALUES (LASTVAL(kine_seq), CONCAT('{FILL_PREFIX}', LASTVAL(kine_seq)), 0, 1, 0, 0, '', NULL)"
)

# aiomysql 0.3 escapes bytes with a PyMySQL helper that PyMySQL >= 1.2 replaced by a string
# (PyMySQL/PyMySQL#1274); put the equivalent function back so BLOB/VARBINARY parameters work.
if not callable(aiomysql.connection.escape_bytes_prefixed):
    aiomysql.connection.escape_bytes_prefixed = pymysql.converters.escape_bytes


class MySQLDriver(AsyncSQLDriver):
    """The ``Driver`` for one MySQL/MariaDB database (which must exist)."""

    queries = sql.Queries.build(lambda i: "%s")
    poll_interval = 0.15

    def __init__(self, params: MySQLParams, *, pool_size: int = 16) -> None:
        self.params, self._pool_size = params, pool_size
        self._pool: aiomysql.Pool | None = None
        self.sequence = False  # MariaDB: ids from kine_seq, lost races filled by the writer

    async def open(self, wake: Callable[[], None], publish: Callable[[Batch], None]) -> None:
        p = self.params
        self._pool = await aiomysql.create_pool(
            minsize=1,
            maxsize=self._pool_size,
            host=p.host,
            port=p.port,
            user=p.user,
            password=p.password,
            db=p.db,
            charset="utf8mb4",
            autocommit=True,
            init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        )
        async with self._p().acquire() as conn, conn.cursor() as cur:
            await cur.execute("SET SESSION sql_notes = 0")  # no "already exists" warnings
            for stmt in SCHEMA:
                await cur.execute(stmt)
            await cur.execute("SELECT VERSION()")
            self.sequence = "mariadb" in str((await cur.fetchone())[0]).lower()
            if self.sequence:
                await cur.execute(SEQUENCE)
                await cur.execute("SELECT COALESCE(MAX(id), 0) FROM kine")
                high = int((await cur.fetchone())[0])
                await cur.execute(f"SELECT SETVAL(kine_seq, {high})")  # only ever moves forward
            await cur.execute("SET SESSION sql_notes = 1")

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()

    def _p(self) -> aiomysql.Pool:
        assert self._pool is not None, "store not started"
        return self._pool

    def _key(self, key: str) -> Any:
        return key.encode()

    async def _fetch(self, query: str, args: Sequence[Any]) -> list[Row]:
        async with self._p().acquire() as conn, conn.cursor() as cur:
            await cur.execute(query, tuple(args))
            rows: list[Row] = list(await cur.fetchall())
            return rows

    async def _execute(self, query: str, args: Sequence[Any]) -> None:
        async with self._p().acquire() as conn, conn.cursor() as cur:
            await cur.execute(query, tuple(args))

    async def _insert(self, row: NewRow) -> int:
        async with self._p().acquire() as conn, conn.cursor() as cur:
            if not self.sequence:
                await cur.execute(self.queries.insert, (row.name.encode(), *row[1:]))
                return int(cur.lastrowid)
            try:
                await cur.execute(INSERT_SEQ, (row.name.encode(), *row[1:]))
                return int(cur.lastrowid)
            except pymysql.err.MySQLError as exc:
                if self._is_conflict(exc):
                    await self._fill_burnt(cur)
                raise

    async def _fill_burnt(self, cur: aiomysql.Cursor) -> None:
        """The failed insert took ``LASTVAL(kine_seq)`` on this connection: fill it now."""
        try:
            await cur.execute(FILL_LAST)
        except pymysql.err.MySQLError as exc:  # someone filled it already; else the poller will
            if not self._is_conflict(exc):
                raise
            return
        self.raced += 1

    def _is_conflict(self, exc: BaseException) -> bool:
        return (
            isinstance(exc, pymysql.err.MySQLError)
            and bool(exc.args)
            and exc.args[0]
            in (
                DUPLICATE,
                DEADLOCK,
                LOCK_WAIT,
            )
        )


class MySQLStore(LogStore):
    """``MySQLStore(MySQLParams(host=..., db=...))``, then ``await start()``."""

    def __init__(self, params: MySQLParams, *, pool_size: int = 16, **options: Any) -> None:
        super().__init__(MySQLDriver(params, pool_size=pool_size), **options)
