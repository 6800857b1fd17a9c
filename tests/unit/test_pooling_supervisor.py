"""The syncer pool: a failing syncer is reported and restarted with backoff on the injected clock,
without touching its neighbours; a fingerprint change restarts it at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from atoll.api.clock import FakeClock
from atoll.pooling.supervisor import SyncerPool
from tests.conftest import eventually


async def test_failures_are_reported_and_retried_with_backoff() -> None:
    clock = FakeClock()
    reports: list[tuple[str, bool, str]] = []
    attempts = {"bad": 0, "good": 0}
    healthy_started = asyncio.Event()

    async def report(name: str, ok: bool, message: str) -> None:
        reports.append((name, ok, message))

    async def bad(started: Callable[[], None]) -> None:
        attempts["bad"] += 1
        raise ConnectionError(f"worker unreachable (attempt {attempts['bad']})")

    async def good(started: Callable[[], None]) -> None:
        attempts["good"] += 1
        started()
        healthy_started.set()
        await asyncio.Event().wait()

    pool = SyncerPool(report, clock=clock, backoff_initial=1, backoff_max=4)
    host = asyncio.create_task(pool.run())
    await asyncio.sleep(0)
    assert pool.ensure("bad", "v1", bad) and pool.ensure("good", "v1", good)
    assert not pool.ensure("good", "v1", good)  # same fingerprint: left alone
    await healthy_started.wait()

    async def failed_once() -> None:
        assert ("bad", False, "ConnectionError: worker unreachable (attempt 1)") in reports
        assert clock.sleepers == 1

    await eventually(failed_once)
    for expected, delay in ((2, 1), (3, 2), (4, 4), (5, 4)):  # 1 s doubling, capped at 4 s
        clock.advance(delay)

        async def attempted(n: int = expected) -> None:
            assert attempts["bad"] == n and clock.sleepers == 1

        await eventually(attempted)
    assert pool.running("good") and attempts["good"] == 1 and ("good", True, "") in reports
    assert pool.restarts["bad"] == 5

    assert pool.ensure("good", "v2", good)  # spec or Secret changed: restarted at once
    await eventually(lambda: _equals(attempts["good"], 2))
    host.cancel()
    await asyncio.gather(host, return_exceptions=True)


async def _equals(value: int, expected: int) -> None:
    assert value == expected
