"""Rows of the kine table and the pure rules that turn a write into a new row.

Every dialect reads rows as tuples in ``COLUMNS`` order and writes ``NewRow``s; the decisions
(does the key exist, does the expected revision match, what does the new row carry) live here
once, so SQLite, PostgreSQL and MySQL cannot drift apart.

A row's ``create_revision`` is stored as 0 for a create row (its own id is not known before
the insert), exactly like kine; readers substitute the row's id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from atoll.store.base import Event, KeyExists, KeyNotFound, KeyValue, RevisionMismatch

COLUMNS = "id, name, created, deleted, create_revision, prev_revision, value, old_value"
FILL_PREFIX = "gap-"  # fill rows: deleted, prev_revision 0, never a live key

Row = Sequence[Any]  # (id, name, created, deleted, create_revision, prev_revision, value, old_value)
Rows = list[Row]
Batch = list[Event]


class NewRow(NamedTuple):
    """The columns of a row about to be inserted (the database assigns the id)."""

    name: str
    created: int
    deleted: int
    create_revision: int
    prev_revision: int
    value: bytes
    old_value: bytes | None


def _name(row: Row) -> str:
    name = row[1]
    return name if isinstance(name, str) else bytes(name).decode()


def create_revision_of(row: Row) -> int:
    return int(row[0]) if row[2] else int(row[4])


def to_event(row: Row) -> Event:
    rev = int(row[0])
    return Event(
        revision=rev,
        key=_name(row),
        value=bytes(row[6]) if row[6] is not None else b"",
        created=bool(row[2]),
        deleted=bool(row[3]),
        create_revision=rev if row[2] else int(row[4]),
        prev_revision=int(row[5]),
        prev_value=bytes(row[7]) if row[7] is not None else None,
    )


def to_kv(row: Row) -> KeyValue:
    value = row[6]
    data = bytes(value) if value is not None else b""
    return KeyValue(_name(row), data, int(row[0]), create_revision_of(row))


def new_event(revision: int, row: NewRow) -> Event:
    return Event(
        revision=revision,
        key=row.name,
        value=row.value,
        created=bool(row.created),
        deleted=bool(row.deleted),
        create_revision=revision if row.created else row.create_revision,
        prev_revision=row.prev_revision,
        prev_value=row.old_value,
    )


def fill_row(revision: int) -> NewRow:
    return NewRow(f"{FILL_PREFIX}{revision}", 0, 1, 0, 0, b"", None)


def plan_create(key: str, value: bytes, latest: Row | None) -> NewRow:
    if latest is not None and not latest[3]:
        raise KeyExists(key)
    return NewRow(key, 1, 0, 0, int(latest[0]) if latest is not None else 0, value, None)


def _check(key: str, expected: int, latest: Row | None) -> Row:
    if latest is None or latest[3]:
        raise KeyNotFound(key)
    if expected and int(latest[0]) != expected:
        raise RevisionMismatch(key, int(latest[0]))
    return latest


def plan_update(key: str, value: bytes, expected: int, latest: Row | None) -> NewRow:
    """``expected == 0`` means unconditional (no real revision is 0)."""
    row = _check(key, expected, latest)
    old = bytes(row[6]) if row[6] is not None else b""
    return NewRow(key, 0, 0, create_revision_of(row), int(row[0]), value, old)


def plan_delete(key: str, expected: int, latest: Row | None) -> NewRow:
    """The tombstone carries the last value as both value and old value."""
    row = _check(key, expected, latest)
    old = bytes(row[6]) if row[6] is not None else b""
    return NewRow(key, 0, 1, create_revision_of(row), int(row[0]), old, old)


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no bound).

    Keys compare by code point (= UTF-8 byte order in every dialect's collation)."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:
                nxt = 0xE000
            return "".join(chars) + chr(nxt)
    return None
