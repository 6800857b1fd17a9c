"""The periodic trim pass collects only for a flood's tail (``TAIL_COLLECT`` closed connections),
not for every connection that closed; it trims either way."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from atoll.apiserver.cache import trim


@pytest.fixture
def collections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    calls: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(1) or 0)
    monkeypatch.setattr(trim, "trim_now", lambda: True)
    monkeypatch.setattr(trim._Churn, "closed", 0)
    monkeypatch.setattr(trim._Churn, "scheduled", False)
    monkeypatch.setattr(trim._Churn, "last", 0.0)
    yield calls


async def test_a_few_closed_connections_only_trim(collections: list[int]) -> None:
    trims: list[int] = []
    loop = asyncio.get_running_loop()
    for _ in range(trim.TAIL_COLLECT - 1):
        trim.connection_closed()
    assert trim.periodic_pass(loop, trims.append) is False
    assert collections == [] and trims == [0]
    assert trim._Churn.closed == trim.TAIL_COLLECT - 1  # kept: they count towards the next pass


async def test_a_flood_tail_is_collected(collections: list[int]) -> None:
    trims: list[int] = []
    loop = asyncio.get_running_loop()
    for _ in range(trim.TAIL_COLLECT):
        trim.connection_closed()
    assert trim.periodic_pass(loop, trims.append) is True
    assert collections == [1] and trim._Churn.closed == 0
    assert trim.periodic_pass(loop, trims.append) is False  # nothing closed since
    assert collections == [1] and trims == [0]
