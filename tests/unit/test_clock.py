"""The fake clock wakes sleepers in deadline order only when advanced; timestamps round-trip."""

from __future__ import annotations

import asyncio

import pytest

from atoll.api.clock import SYSTEM_CLOCK, FakeClock, OffsetClock
from atoll.api.timestamps import format_micro_time, format_time, parse_time, try_parse_time


async def test_fake_clock_wakes_sleepers_when_their_deadline_comes() -> None:
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 10)), asyncio.create_task(sleeper("early", 5))]
    await asyncio.sleep(0)
    assert clock.sleepers == 2
    clock.advance(4.9)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(0.1)
    await asyncio.sleep(0)
    assert woke == ["early"]
    clock.advance(5)
    await asyncio.gather(*tasks)
    assert woke == ["early", "late"] and clock.monotonic() == 10.0


def test_fake_clock_moves_wall_and_monotonic_time_together() -> None:
    clock = FakeClock(start=1000.0)
    clock.advance(2.5)
    assert (clock.now(), clock.monotonic()) == (1002.5, 2.5)
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_system_clock_is_real_time() -> None:
    before = SYSTEM_CLOCK.now()
    await SYSTEM_CLOCK.sleep(0)
    assert SYSTEM_CLOCK.now() >= before and SYSTEM_CLOCK.monotonic() > 0


def test_kubernetes_time_formats_and_parses() -> None:
    assert format_time(0) == "1970-01-01T00:00:00Z"
    assert format_time(1.9) == "1970-01-01T00:00:01Z"
    assert format_micro_time(1.25) == "1970-01-01T00:00:01.250000Z"
    assert parse_time("1970-01-01T00:00:01.250000Z") == 1.25
    assert parse_time("1970-01-01T01:00:00+01:00") == 0.0
    assert try_parse_time("yesterday") is None
    with pytest.raises(ValueError):
        parse_time("yesterday")


async def test_fake_clock_timers_fire_in_due_order_and_can_be_cancelled() -> None:
    clock = FakeClock(start=0.0)
    fired: list[str] = []
    clock.call_later(2, lambda: fired.append("two"))
    cancelled = clock.call_later(1, lambda: fired.append("cancelled"))
    clock.call_later(1, lambda: fired.append("one"))
    cancelled.cancel()
    clock.advance(1.5)
    assert fired == ["one"] and clock.sleepers == 1
    clock.advance(0.5)
    assert fired == ["one", "two"] and clock.sleepers == 0


async def test_offset_clock_keeps_real_time_flowing_and_wakes_sleepers_early() -> None:
    clock = OffsetClock()
    before = clock.now()
    sleeper = asyncio.create_task(clock.sleep(3600))
    await asyncio.sleep(0)
    clock.advance(3600)
    await asyncio.wait_for(sleeper, 5)
    assert clock.now() - before >= 3600
