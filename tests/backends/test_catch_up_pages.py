"""A watch catching up from the database sizes its pages by the rows it has seen: 100 rows of a
1 MB object's history must not be read as 100 MB pages (``log.CATCH_UP_BYTES``). The bound
follows the previous page, so the first page of large rows after small ones can still be large."""

from __future__ import annotations

import asyncio

import pytest

from atoll.store import log
from atoll.store.log import LogStore


def test_next_page_follows_the_row_size() -> None:
    assert log._next_page_rows(8, 8 * 1000) == log.CATCH_UP_ROWS  # small rows: the row cap
    assert log._next_page_rows(8, 8 * 2**20) == 8  # 1 MB rows: 8 MB pages
    assert log._next_page_rows(8, 8 * 3 * 2**20) == 2
    assert log._next_page_rows(1, 50 * 2**20) == 1  # never zero
    assert log._next_page_rows(0, 0) == log.CATCH_UP_ROWS


async def test_catch_up_pages_are_bounded_in_bytes_and_complete(
    store: LogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log, "CATCH_UP_BYTES", 40_000)
    small = [await store.create(f"/c/small-{i}", b"s" * 100) for i in range(10)]
    large = [await store.create(f"/c/large-{i}", b"L" * 10_000) for i in range(150)]
    it = store.watch(small[0] - 1)
    pages: list[list[int]] = []
    while not pages or pages[-1][-1] < large[-1]:
        pages.append([e.revision for e in await asyncio.wait_for(anext(it), 5)])
    await it.aclose()
    revisions = [r for page in pages for r in page]
    assert revisions == [*small, *large]  # every row once, in order
    large_pages = [p for p in pages if p[0] >= large[0]]
    assert len(large_pages) >= 10, pages
    # ~40 KB of 10 KB rows, once a page of them was seen (the page after small rows may be 100 rows)
    assert all(len(p) <= 5 for p in large_pages), pages
