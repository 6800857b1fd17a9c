"""WAL checkpoints run on their own thread: the checkpointer copies the WAL back once enough rows
were written, and the data is intact afterwards."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from atoll.store import sqlite_checkpoint
from atoll.store.sqlite import SQLiteStore
from tests.conftest import eventually


async def test_checkpoints_run_off_the_writer_and_keep_every_row(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    await store.start()
    driver = store.driver  # type: ignore[attr-defined]
    try:
        for chunk in range(sqlite_checkpoint.ROWS // 100 + 1):
            await asyncio.gather(*(store.create(f"/k/{chunk}/{i}", b"x" * 500) for i in range(100)))
        await eventually(lambda: driver.checkpointer.checkpoints >= 1, 10)
        busy, frames, copied = sqlite3.connect(path).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and copied == frames, "the WAL is fully copied back (nothing was left behind)"
    finally:
        await store.close()
    rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM kine WHERE name LIKE '/k/%'").fetchone()[0]
    assert rows == (sqlite_checkpoint.ROWS // 100 + 1) * 100
