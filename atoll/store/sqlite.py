"""SQLite dialect: one writer thread with group commit, WAL readers.

Writes are queued to a single dedicated thread that owns the only writing connection. The event
loop hands over every operation submitted during one loop iteration with one queue put (one
wake-up of the thread, not one per write); the thread takes everything queued, runs each
operation (check-then-insert: inside the one write transaction no one else can interleave) and
commits the whole batch with one ``COMMIT`` (one WAL fsync point), then hops back to the event
loop once per batch: it publishes the batch's events first (so the watch cache applies them before
the writers resume, and a writer's read-your-write wait finds its revision already applied) and
then resolves the callers' futures. A failing operation (``KeyExists``, ``RevisionMismatch``) only
fails itself; a failed ``COMMIT`` fails the batch.

``journal_mode=WAL`` + ``synchronous=NORMAL``: a committed batch survives a crash of the process
(kill -9); only an OS crash or power loss can lose the last transactions. WAL checkpoints run on
their own thread (``sqlite_checkpoint``), not inside a batch's ``COMMIT``. Point reads run on
the event loop's own connection (microseconds; WAL readers never wait for the writer); lists
and log scans run on a small reader thread pool.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from atoll.files import private_dir, private_file, tighten
from atoll.store import sql
from atoll.store.base import CorruptDatabase, Event, StoreError
from atoll.store.commits import COMMITS
from atoll.store.log import LogStore
from atoll.store.rows import Batch, NewRow, Row, Rows, fill_row, new_event, plan_create, plan_delete, plan_update
from atoll.store.sqlite_checkpoint import SAFETY_NET_PAGES, Checkpointer

T = TypeVar("T")
Op = Callable[[sqlite3.Connection, Batch], Any]  # may append the events it committed

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS kine (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        created INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        create_revision INTEGER NOT NULL,
        prev_revision INTEGER NOT NULL,
        value BLOB,
        old_value BLOB)""",
    "CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name, id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision)",
    "CREATE TABLE IF NOT EXISTS kine_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO kine_meta(name, value) VALUES ('compact_rev', 0), ('compact_done', 0)",
]
Q = sql.Queries.build(lambda i: "?")
MAX_BATCH = 2000
FILL = Q.insert_with_id.replace("INSERT", "INSERT OR IGNORE", 1)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=256)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class SQLiteDriver:
    """The ``Driver`` for one SQLite file."""

    ordered_commits = True
    publishes_commits = True  # _finish publishes every committed batch: no poller read per write
    poll_interval = 1.0

    def __init__(self, path: Path, *, readers: int = 2) -> None:
        self.path = path
        self._readers = readers
        self._ops: queue.SimpleQueue[list[tuple[Op, asyncio.Future[Any]]] | None] = queue.SimpleQueue()
        self._pending: list[tuple[Op, asyncio.Future[Any]]] = []  # submitted in this loop iteration
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._publish: Callable[[Batch], None] = lambda events: None
        self._read: sqlite3.Connection | None = None
        self.local_high = 0  # highest revision this process committed (set on the writer thread)
        self.checkpointer = Checkpointer(path, _connect)

    async def open(self, wake: Callable[[], None], publish: Callable[[Batch], None]) -> None:
        self._loop, self._publish = asyncio.get_running_loop(), publish
        if not self.path.parent.exists():
            private_dir(self.path.parent)
        private_file(self.path)  # 0600 before SQLite opens it; its -wal/-shm files inherit the mode
        tighten(self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm"))
        try:
            writer = _connect(self.path)
            writer.execute("PRAGMA journal_mode = WAL")
            writer.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_NET_PAGES}")
            for stmt in SCHEMA:
                writer.execute(stmt)
            writer.execute("SELECT MAX(id) FROM kine").fetchone()
        except sqlite3.DatabaseError as exc:
            raise CorruptDatabase(self.path, str(exc)) from None
        self._read = _connect(self.path)
        self._pool = ThreadPoolExecutor(self._readers, thread_name_prefix="atoll-sqlite-read")
        self._thread = threading.Thread(target=self._writer, args=(writer,), name="atoll-sqlite-write")
        self._thread.daemon = True
        self._thread.start()
        self.checkpointer.start()

    async def close(self) -> None:
        if self._thread is not None:
            self._hand_over()  # writes submitted in this very iteration still run
            self._ops.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            await asyncio.get_running_loop().run_in_executor(None, self.checkpointer.stop)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for conn in [*self._conns, *([self._read] if self._read else [])]:
            conn.close()

    # ---- the writer thread ----------------------------------------------------------------

    def _submit(self, op: Op) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._hand_over)
        self._pending.append((op, fut))
        return fut

    def _hand_over(self) -> None:
        """Everything submitted since the last hand-over, to the writer thread in one put."""
        pending, self._pending = self._pending, []
        if pending:
            self._ops.put(pending)

    def _writer(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                item = self._ops.get()
                if item is None:
                    return
                batch, stop = item, False
                while len(batch) < MAX_BATCH:
                    try:
                        nxt = self._ops.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch += nxt
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[tuple[Op, asyncio.Future[Any]]]) -> None:
        results: list[tuple[bool, Any]] = []
        events: Batch = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, _ in batch:
                try:
                    results.append((True, op(conn, events)))
                except (StoreError, sqlite3.IntegrityError) as exc:
                    results.append((False, exc))
            conn.execute("COMMIT")
            COMMITS.commits += 1
            COMMITS.writes += len(batch)
            if events:
                self.local_high = max(self.local_high, events[-1].revision)
            self.checkpointer.wrote(len(events) or 1)  # compaction deletes write pages too
        except Exception as exc:  # the batch did not commit: everyone in it fails
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results, events = [(False, exc)] * len(batch), []
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._finish, batch, results, events)

    def _finish(
        self, batch: list[tuple[Op, asyncio.Future[Any]]], results: list[tuple[bool, Any]], events: Batch
    ) -> None:
        try:
            self._publish(events)  # first (see the module docstring); also for writes whose caller was cancelled
        finally:
            for (_, fut), (ok, value) in zip(batch, results, strict=True):
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)

    # ---- operations (run on the writer thread, inside the batch transaction) ---------------

    @staticmethod
    def _latest(conn: sqlite3.Connection, key: str) -> Row | None:
        rows = conn.execute(Q.latest, (key,)).fetchall()
        return rows[0] if rows else None

    @staticmethod
    def _insert(conn: sqlite3.Connection, row: NewRow, events: Batch) -> Event:
        rowid = conn.execute(Q.insert, row).lastrowid
        assert rowid is not None
        event = new_event(rowid, row)
        events.append(event)
        return event

    async def create(self, key: str, value: bytes) -> int:
        def op(conn: sqlite3.Connection, events: Batch) -> int:
            return self._insert(conn, plan_create(key, value, self._latest(conn, key)), events).revision

        result: int = await self._submit(op)
        return result

    async def update(self, key: str, value: bytes, expected: int) -> int:
        def op(conn: sqlite3.Connection, events: Batch) -> int:
            row = plan_update(key, value, expected, self._latest(conn, key))
            return self._insert(conn, row, events).revision

        result: int = await self._submit(op)
        return result

    async def delete(self, key: str, expected: int) -> Event:
        def op(conn: sqlite3.Connection, events: Batch) -> Event:
            return self._insert(conn, plan_delete(key, expected, self._latest(conn, key)), events)

        result: Event = await self._submit(op)
        return result

    async def fill(self, revision: int) -> None:
        def op(conn: sqlite3.Connection, events: Batch) -> None:
            conn.execute(FILL, (revision, *fill_row(revision)))

        await self._submit(op)

    async def set_compact_rev(self, revision: int) -> None:
        def op(conn: sqlite3.Connection, events: Batch) -> None:
            conn.execute(Q.set_meta, (revision, sql.COMPACT_REV, revision))

        await self._submit(op)

    async def compact_range(self, lo: int, hi: int) -> None:
        def op(conn: sqlite3.Connection, events: Batch) -> None:
            ids = [r[0] for r in conn.execute(Q.superseded, (lo, hi))]
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                conn.execute(Q.delete_ids(len(chunk)), chunk)
            conn.execute(Q.delete_tombstones, (lo, hi))
            conn.execute(Q.set_meta, (hi, sql.COMPACT_DONE, hi))

        await self._submit(op)

    # ---- reads -----------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.path)
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    async def _in_pool(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(self._reader()))

    def _conn(self) -> sqlite3.Connection:
        assert self._read is not None, "store not started"
        return self._read

    async def latest(self, key: str) -> Row | None:
        return self._latest(self._conn(), key)

    async def max_revision(self) -> int:
        return int(self._conn().execute(Q.max_revision).fetchall()[0][0] or 0)

    async def meta(self) -> tuple[int, int]:
        values = dict(self._conn().execute(Q.meta).fetchall())
        return int(values[sql.COMPACT_REV]), int(values[sql.COMPACT_DONE])

    async def after(self, revision: int, limit: int) -> Rows:
        return await self._in_pool(lambda c: c.execute(Q.after, (revision, limit)).fetchall())

    async def list(self, lo: str, hi: str | None, revision: int, limit: int) -> Rows:
        n = limit or sql.NO_LIMIT
        if hi is None:
            return await self._in_pool(lambda c: c.execute(Q.list_from, (lo, revision, n)).fetchall())
        return await self._in_pool(lambda c: c.execute(Q.list_range, (lo, hi, revision, n)).fetchall())


class SQLiteStore(LogStore):
    """The embedded store: ``SQLiteStore(Path("state.db"))``, then ``await start()``."""

    def __init__(self, path: Path, **options: Any) -> None:
        super().__init__(SQLiteDriver(path), **options)
