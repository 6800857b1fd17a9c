"""How SQLite's group commit is batching: transactions committed and the writes they carried.

The writer thread adds to one process-wide :data:`COMMITS` after each ``COMMIT``; the API server
exposes it as ``atoll_sqlite_commits_total`` and ``atoll_sqlite_committed_writes_total`` (writes
per commit is how well concurrent writers share commits: a lone write pays a whole transaction).
Only the writer thread adds, so plain integers suffice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CommitCounts:
    commits: int = 0
    writes: int = 0


COMMITS = CommitCounts()
