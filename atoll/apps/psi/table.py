"""The party's CSV table: one streaming pass to read distinct keys, one to write matched rows.

Keys are the values of the key columns (joined with U+001F when there are several). Duplicate
keys are sent once (the peer learns the number of distinct keys, not the multiplicity); every
input row whose key is in the intersection is written, with the input's header.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

SEP = "\x1f"


class TableError(ValueError):
    """An input table that cannot be used (missing file or key column)."""


def _key_indexes(header: list[str], keys: tuple[str, ...], path: Path) -> list[int]:
    if not header:
        raise TableError(f"{path}: empty file (no header)")
    wanted = keys or (header[0],)
    missing = [k for k in wanted if k not in header]
    if missing:
        raise TableError(f"{path}: key column(s) {missing} not in the header {header}")
    return [header.index(k) for k in wanted]


def _key(row: list[str], idx: list[int]) -> str:
    return row[idx[0]] if len(idx) == 1 else SEP.join(row[i] for i in idx)


class KeyReader:
    """Distinct keys in first-seen order, in batches; ``index`` maps each key to its position."""

    def __init__(self, path: Path, keys: tuple[str, ...]) -> None:
        self.path, self.keys = path, keys
        self.index: dict[str, int] = {}
        self.rows = 0

    def batches(self, size: int) -> Iterator[list[bytes]]:
        try:
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                idx = _key_indexes(next(reader, []), self.keys, self.path)
                index, batch = self.index, []
                for row in reader:
                    self.rows += 1
                    key = _key(row, idx)
                    if key in index:
                        continue
                    index[key] = len(index)
                    batch.append(key.encode())
                    if len(batch) == size:
                        yield batch
                        batch = []
                if batch:
                    yield batch
        except FileNotFoundError:
            raise TableError(f"{self.path}: no such file") from None


def write_matches(source: Path, target: Path, keys: tuple[str, ...], matched: set[str], sort: bool) -> int:
    """Rows of ``source`` whose key is in ``matched`` → ``target`` (atomically); the row count."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    count = 0
    with open(source, newline="", encoding="utf-8") as f, open(tmp, "w", newline="", encoding="utf-8") as out:
        reader, writer = csv.reader(f), csv.writer(out, lineterminator="\n")
        header = next(reader, [])
        idx = _key_indexes(header, keys, source)
        writer.writerow(header)
        rows: Iterable[list[str]] = (row for row in reader if _key(row, idx) in matched)
        if sort:
            rows = sorted(rows, key=lambda r: _key(r, idx))
        for row in rows:
            writer.writerow(row)
            count += 1
    os.replace(tmp, target)
    return count
