"""The watch cache's key order: each resource's keys kept sorted, so a LIST (or a page of one) is
two bisections and a slice instead of a sort.

A resource's list is built on its first ordered read and then kept up to date by every add and
remove (``insort`` / bisect + ``del``: O(log n) + a memmove), never discarded.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

END = "\U0010ffff"
"""Sorts after every key character: ``prefix + END`` bounds the keys under ``prefix``."""


class KeyOrder:
    def __init__(self) -> None:
        self._sorted: dict[str, list[str]] = {}  # resource prefix -> its keys, sorted

    def clear(self) -> None:
        self._sorted.clear()

    def added(self, rprefix: str, key: str) -> None:
        keys = self._sorted.get(rprefix)
        if keys is not None:
            bisect.insort(keys, key)

    def removed(self, rprefix: str, key: str) -> None:
        keys = self._sorted.get(rprefix)
        if keys is not None:
            at = bisect.bisect_left(keys, key)
            if at < len(keys) and keys[at] == key:
                del keys[at]

    def keys(self, rprefix: str, bucket: Mapping[str, object]) -> list[str]:
        """The resource's sorted keys (built from ``bucket``, its objects, on first use)."""
        keys = self._sorted.get(rprefix)
        if keys is None:
            keys = self._sorted[rprefix] = sorted(bucket)
        return keys

    def count(self, rprefix: str, prefix: str, start_key: str) -> int | None:
        """Keys under ``prefix`` at or after ``start_key``; None while the order is not built."""
        keys = self._sorted.get(rprefix)
        if keys is None:
            return None
        return bisect.bisect_left(keys, prefix + END) - bisect.bisect_left(keys, max(prefix, start_key))
