"""The portable SQL of the kine log, rendered once per dialect's placeholder style.

Statements are written with ``?`` placeholders; ``Queries.render`` rewrites them to ``$1``
(PostgreSQL) or ``%s`` (MySQL). Dialects override only what genuinely differs (schema, the
insert's ``RETURNING``, insert-or-ignore).

Every hot query is an index range: ``latest`` and ``list`` walk ``(name, id)``; ``after`` and
compaction walk the primary key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from atoll.store.rows import COLUMNS

NO_LIMIT = 1 << 62

LATEST = f"SELECT {COLUMNS} FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1"
INSERT = (
    "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, value, old_value) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_WITH_ID = (
    "INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, value, old_value) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
AFTER = f"SELECT {COLUMNS} FROM kine WHERE id > ? ORDER BY id LIMIT ?"
# latest row per name at a revision, streamed in name order so LIMIT stops the scan early
_LIST = (
    f"SELECT {', '.join('k.' + c.strip() for c in COLUMNS.split(','))} FROM kine k "
    "WHERE k.name >= ? {hi} AND k.deleted = 0 AND k.id = "
    "(SELECT MAX(k2.id) FROM kine k2 WHERE k2.name = k.name AND k2.id <= ?) "
    "ORDER BY k.name LIMIT ?"
)
LIST_RANGE = _LIST.format(hi="AND k.name < ?")
LIST_FROM = _LIST.format(hi="")
MAX_REVISION = "SELECT MAX(id) FROM kine"
META = "SELECT name, value FROM kine_meta"
SET_META = "UPDATE kine_meta SET value = ? WHERE name = ? AND value < ?"
SUPERSEDED = "SELECT prev_revision FROM kine WHERE id > ? AND id <= ? AND prev_revision != 0"
DELETE_TOMBSTONES = "DELETE FROM kine WHERE deleted = 1 AND id > ? AND id <= ?"
COMPACT_REV, COMPACT_DONE = "compact_rev", "compact_done"


def delete_ids(count: int) -> str:
    return f"DELETE FROM kine WHERE id IN ({', '.join('?' * count)})"


@dataclass(frozen=True, slots=True)
class Queries:
    """One dialect's rendering of the statements above."""

    latest: str
    insert: str
    insert_with_id: str
    after: str
    list_range: str
    list_from: str
    max_revision: str
    meta: str
    set_meta: str
    superseded: str
    delete_tombstones: str
    param: Callable[[int], str]

    @classmethod
    def build(cls, param: Callable[[int], str], *, insert_suffix: str = "") -> Queries:
        def r(sql: str) -> str:
            return render(sql, param)

        return cls(
            latest=r(LATEST),
            insert=r(INSERT) + insert_suffix,
            insert_with_id=r(INSERT_WITH_ID),
            after=r(AFTER),
            list_range=r(LIST_RANGE),
            list_from=r(LIST_FROM),
            max_revision=MAX_REVISION,
            meta=META,
            set_meta=r(SET_META),
            superseded=r(SUPERSEDED),
            delete_tombstones=r(DELETE_TOMBSTONES),
            param=param,
        )

    def delete_ids(self, count: int) -> str:
        return render(delete_ids(count), self.param)


def render(sql: str, param: Callable[[int], str]) -> str:
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(param(i))
        out.append(part)
    return "".join(out)
