"""Background WAL checkpoints for the SQLite store, off the writer thread's commit path.

SQLite's automatic checkpoint runs inside the ``COMMIT`` that crosses its threshold: that batch's
writers (and every watch event behind them) wait for the copy of the WAL into the database and its
two fsyncs — 10-20 ms here, the worst tail of a commit. Instead the writer connection keeps only a
far threshold as a safety net (``SAFETY_NET_PAGES``, a WAL of ~64 MiB), and this thread, on its own
connection, runs ``PRAGMA wal_checkpoint(PASSIVE)`` once ``ROWS`` rows were written or ``INTERVAL``
seconds passed with anything written. A passive checkpoint never blocks the writer or readers; the
WAL restarts from its beginning at the next write after a checkpoint that copied everything.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

ROWS = 1000
INTERVAL = 2.0
SAFETY_NET_PAGES = 16384


class Checkpointer:
    """One thread checkpointing ``path``'s WAL; the writer thread reports what it wrote."""

    def __init__(self, path: Path, connect: Callable[[Path], sqlite3.Connection]) -> None:
        self._path, self._connect = path, connect
        self._written = 0  # rows since the last checkpoint (written on the writer thread)
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.checkpoints = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="atoll-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def wrote(self, rows: int) -> None:
        """Called by the writer thread after each commit: cheap, wakes the thread at ``ROWS``."""
        self._written += rows
        if self._written >= ROWS:
            self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        conn = self._connect(self._path)
        try:
            while not self._stopping:
                self._wake.wait(INTERVAL)
                self._wake.clear()
                if self._written and not self._stopping:
                    self._written = 0
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
        except sqlite3.Error:
            pass  # the writer's own safety-net threshold still bounds the WAL
        finally:
            conn.close()
