"""The revisioned key-value log every backend implements (kine's model, see docs/architecture.md).

One append-only table; each row is one revision of one key and its row id *is* the global revision
(= Kubernetes ``resourceVersion``). Creating, updating and deleting a key all append a row:

- ``create``  fails with ``KeyExists`` if the key currently exists;
- ``update``  and ``delete`` carry the revision the caller last saw (``expected``) and fail with
  ``RevisionMismatch`` if the key has moved on (optimistic concurrency, no row locks), or with
  ``KeyNotFound`` if the key does not exist;
- ``watch``   yields every row after a revision, in revision order, with no gaps;
- ``compact`` removes superseded rows up to a revision; watching or listing from a revision at or
  below the compacted one raises ``Compacted`` (the API server turns it into 410 Gone).

Values are opaque bytes to the store (the API server stores object JSON without
``metadata.resourceVersion``, which it derives from the row's revision on read).
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class StoreError(Exception):
    """Base of the store's own errors (the API server maps them to Statuses)."""


class CorruptDatabase(StoreError):
    """The database file cannot be opened as an Atoll store: which file, what is wrong, what to do."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(
            f"{path}: the database cannot be read ({problem}). It is damaged or not an Atoll database. "
            f"Restore it from a backup (docs/operations.md, Backups), or move it aside to start with an empty "
            f"store; `atoll store check -c <config>` checks a database without starting the node."
        )
        self.path = path
        self.problem = problem


class KeyExists(StoreError):
    pass


class KeyNotFound(StoreError):
    pass


class RevisionMismatch(StoreError):
    def __init__(self, key: str, current: int) -> None:
        super().__init__(f"{key}: current revision is {current}")
        self.key, self.current = key, current


class Compacted(StoreError):
    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"too old resource version: {requested} ({compacted})")
        self.requested, self.compacted = requested, compacted


class WatchLagged(Compacted):
    """A watcher fell too far behind the log and was ended; like ``Compacted``, re-list."""

    def __init__(self, revision: int) -> None:
        StoreError.__init__(self, f"watcher too slow, events from revision {revision} were not consumed")
        self.requested, self.compacted = revision, revision


@dataclass(frozen=True, slots=True)
class KeyValue:
    """The current state of one key."""

    key: str
    value: bytes
    revision: int  # mod revision: the row that wrote this value
    create_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One row of the log, as seen by a watcher."""

    revision: int
    key: str
    value: bytes  # new value; for a delete, the last value before deletion
    created: bool
    deleted: bool
    create_revision: int
    prev_revision: int  # revision of the value this row replaced (0 for a create)
    prev_value: bytes | None = None


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the store revision the list was read at
    more: bool  # True when ``limit`` cut the result short


class Store(Protocol):
    """A revisioned log. All methods are safe to call concurrently from one event loop."""

    async def start(self) -> None:
        """Open connections, create the schema if missing, start the watch poller."""

    async def close(self) -> None:
        """Stop the poller, end all watches, close connections. Idempotent."""

    async def create(self, key: str, value: bytes) -> int:
        """Append a create row and return its revision; ``KeyExists`` if the key is live."""

    async def update(self, key: str, value: bytes, expected: int) -> int:
        """Append an update if the key's current revision is ``expected``; return the new revision."""

    async def delete(self, key: str, expected: int) -> Event:
        """Append a delete row (the tombstone carries the last value); return it as an event."""

    async def get(self, key: str) -> KeyValue | None:
        """The key's current value, or None if it does not exist."""

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start_key: str = "") -> ListResult:
        """Live keys under ``prefix`` (>= ``start_key``), in key order, as of ``revision`` (0 =
        now), at most ``limit`` of them (0 = all)."""

    async def current_revision(self) -> int:
        """The highest revision written (by any replica sharing the database)."""

    @property
    def exclusive(self) -> bool:
        """True while this process is known to be the store's only writer."""

    async def compacted_revision(self) -> int:
        """Revisions at or below this one may have been compacted away."""

    def watch(self, from_revision: int) -> AsyncIterator[builtins.list[Event]]:
        """Every row with revision > ``from_revision``, in batches, in order, forever.

        Raises ``Compacted`` at once if ``from_revision`` is below the compacted revision. The
        iterator ends when the store closes. Rows written by other replicas are picked up by
        polling (or LISTEN/NOTIFY); local writes wake the poller immediately."""

    async def compact(self, revision: int) -> int:
        """Delete rows superseded at or before ``revision``; return the new compacted revision."""
