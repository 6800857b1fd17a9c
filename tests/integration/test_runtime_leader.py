"""Leader election with two electors against the real API server behind a fault proxy (short
durations).

Aspects: exactly one leads; the Lease carries holderIdentity, MicroTime acquire/renew times and
leaseTransitions; when the leader stops renewing, the other takes over only after the lease
duration; releasing on cancel hands over at once; a leader that loses the lease has its work
cancelled and its on_stopped_leading called; a leader renews with one PUT per ``renew_period``
(client-go's optimistic fast path) and reads the Lease only when someone else wrote it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest

from atoll.api.clock import SYSTEM_CLOCK, Clock, FakeClock
from atoll.client import Client
from atoll.runtime.leader import LEASES, LeaderElector
from tests.conftest import RunningServer, eventually
from tests.integration.faults import FaultProxy

pytestmark = pytest.mark.controllers()  # the API server alone
STEP = 0.05
MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def elector(client: Client, identity: str, *, release: bool = True, clock: Clock = SYSTEM_CLOCK) -> LeaderElector:
    return LeaderElector(
        client,
        name="atoll-controllers",
        namespace="kube-system",
        identity=identity,
        lease_duration=1.5,
        renew_deadline=1.0,
        retry_period=0.2,
        release_on_cancel=release,
        clock=clock,
    )


async def run_clock(clock: FakeClock, seconds: float, sleepers: int, until: Callable[[], bool] | None = None) -> None:
    """Move ``clock`` on in small steps, each time until the ``sleepers`` electors are waiting on
    it again (their API calls done), for ``seconds`` or until ``until()`` holds."""
    for _ in range(round(seconds / STEP)):
        if until is not None and until():
            return
        clock.advance(STEP)
        await eventually(lambda: clock.sleepers == sleepers)
    assert until is None or until(), "the condition did not hold in time"


class Work:
    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.leading: set[str] = set()
        self.started: dict[str, float] = {}
        self.stopped: list[str] = []
        self.cancelled: list[str] = []

    def run(self, name: str) -> tuple[object, object]:
        async def start() -> None:
            assert not self.leading, f"{name} started while {self.leading} leads"
            self.leading.add(name)
            self.started[name] = self.clock.monotonic()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(name)
                raise
            finally:
                self.leading.discard(name)

        def stop() -> None:
            self.stopped.append(name)

        return start, stop


async def test_one_leader_and_takeover_after_lease_duration(client: Client) -> None:
    clock = FakeClock()
    work = Work(clock)
    a, b = elector(client, "a", release=False, clock=clock), elector(client, "b", release=False, clock=clock)
    task_a = asyncio.create_task(a.run(*work.run("a")))  # type: ignore[arg-type]
    await eventually(lambda: "a" in work.leading and clock.sleepers == 1)  # a leads and renews
    task_b = asyncio.create_task(b.run(*work.run("b")))  # type: ignore[arg-type]
    await eventually(lambda: clock.sleepers == 2)  # b found the lease held and waits to retry
    await run_clock(clock, 1.0, sleepers=2)
    assert work.leading == {"a"} and a.is_leader and not b.is_leader
    lease = await client.get(LEASES, "atoll-controllers", "kube-system")
    spec = lease["spec"]
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 2
    assert MICRO.match(spec["acquireTime"]) and MICRO.match(spec["renewTime"])
    assert spec["leaseTransitions"] == 0
    renewed = spec["renewTime"]
    await run_clock(clock, 0.5, sleepers=2)
    assert (await client.get(LEASES, "atoll-controllers", "kube-system"))["spec"]["renewTime"] > renewed

    task_a.cancel()  # a dies without releasing: b must wait out the lease
    await asyncio.gather(task_a, return_exceptions=True)
    stopped_at = clock.monotonic()
    await run_clock(clock, 5.0, sleepers=1, until=lambda: "b" in work.leading)
    waited = work.started["b"] - stopped_at
    # b notices a's last renewal up to one of its retries (0.2 s, jittered up to x2.2) after it was
    # written (a may already be dead then), counts the lease duration from there, and acquires at
    # its next retry after that
    retry = 0.2 * 2.2
    assert 1.5 - retry - STEP <= waited <= 1.5 + 2 * retry + STEP, waited
    lease = await client.get(LEASES, "atoll-controllers", "kube-system")
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
    task_b.cancel()
    await asyncio.gather(task_b, return_exceptions=True)
    assert work.stopped == ["a", "b"] and work.cancelled == ["a", "b"]


async def test_release_on_cancel_hands_over_at_once(client: Client) -> None:
    clock = FakeClock()
    work = Work(clock)
    a, b = elector(client, "a", clock=clock), elector(client, "b", clock=clock)
    task_a = asyncio.create_task(a.run(*work.run("a")))  # type: ignore[arg-type]
    await eventually(lambda: "a" in work.leading and clock.sleepers == 1)
    task_b = asyncio.create_task(b.run(*work.run("b")))  # type: ignore[arg-type]
    await eventually(lambda: clock.sleepers == 2)
    await run_clock(clock, 0.3, sleepers=2)
    task_a.cancel()  # released: b need not wait out the lease duration (1.5 s)
    await asyncio.gather(task_a, return_exceptions=True)
    released_at = clock.monotonic()
    await run_clock(clock, 1.0, sleepers=1, until=lambda: "b" in work.leading)
    assert work.started["b"] - released_at <= 0.2 * 2.2 + STEP
    task_b.cancel()
    await asyncio.gather(task_b, return_exceptions=True)


async def test_losing_the_lease_cancels_the_work(client: Client, api_server: RunningServer) -> None:
    work = Work()
    a = elector(client, "a")
    task_a = asyncio.create_task(a.run(*work.run("a")))  # type: ignore[arg-type]
    await eventually(lambda: "a" in work.leading, 15)
    lease = await client.get(LEASES, "atoll-controllers", "kube-system")
    lease["spec"]["holderIdentity"] = "intruder"
    async with api_server.client() as someone:  # someone else now holds it (e.g. after a long pause of ours)
        await someone.update(LEASES, lease)
    await eventually(lambda: work.cancelled == ["a"], 15)
    assert work.stopped == ["a"] and not a.is_leader
    # a campaigns again and wins once the intruder's lease expires
    await eventually(lambda: "a" in work.leading, 15)
    assert (await client.get(LEASES, "atoll-controllers", "kube-system"))["spec"]["leaseTransitions"] == 1
    task_a.cancel()
    await asyncio.gather(task_a, return_exceptions=True)


async def test_renew_failures_past_the_deadline_lose_leadership(client: Client, faults: FaultProxy) -> None:
    work = Work()
    a = elector(client, "a")
    task_a = asyncio.create_task(a.run(*work.run("a")))  # type: ignore[arg-type]
    await eventually(lambda: "a" in work.leading, 15)
    faults.inject_failure("PUT", "/leases/atoll-controllers", 500, times=100)
    await eventually(lambda: work.cancelled == ["a"], 15)
    task_a.cancel()
    await asyncio.gather(task_a, return_exceptions=True)


def count_calls(monkeypatch: pytest.MonkeyPatch, client: Client) -> dict[str, int]:
    """Count the client's Lease reads and writes from now on (by method name)."""
    calls = {"get": 0, "update": 0}
    for method in calls:
        original = getattr(client, method)

        async def counted(*args: object, _m: str = method, _f: Any = original, **kwargs: object) -> Any:
            calls[_m] += 1
            return await _f(*args, **kwargs)

        monkeypatch.setattr(client, method, counted)
    return calls


async def test_leader_renews_with_one_put_per_renew_period(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    work = Work(clock)
    a = LeaderElector(client, name="atoll-controllers", namespace="kube-system", identity="a", lease_duration=1.5,
                      renew_deadline=1.0, retry_period=0.2, renew_period=0.4, clock=clock)
    task_a = asyncio.create_task(a.run(*work.run("a")))  # type: ignore[arg-type]
    await eventually(lambda: "a" in work.leading and clock.sleepers == 1)
    calls = count_calls(monkeypatch, client)
    await run_clock(clock, 1.0, sleepers=1)  # renewals at 0.4 and 0.8
    assert calls == {"get": 0, "update": 2}
    renewed = (await client.get(LEASES, "atoll-controllers", "kube-system"))["spec"]["renewTime"]

    # someone else writes the Lease (a label): the optimistic PUT conflicts, the same attempt reads
    # the Lease and renews it, and a keeps leading
    lease = await client.get(LEASES, "atoll-controllers", "kube-system")
    lease["metadata"]["labels"] = {"touched": "yes"}
    await client.update(LEASES, lease)
    calls.update(get=0, update=0)
    await run_clock(clock, 0.4, sleepers=1)  # the renewal at 1.2
    assert calls == {"get": 1, "update": 2}
    lease = await client.get(LEASES, "atoll-controllers", "kube-system")
    assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["renewTime"] > renewed
    assert lease["metadata"]["labels"] == {"touched": "yes"} and a.is_leader and work.cancelled == []
    task_a.cancel()
    await asyncio.gather(task_a, return_exceptions=True)


def test_durations_must_be_ordered(client: Client) -> None:
    with pytest.raises(ValueError):
        LeaderElector(client, name="x", namespace="y", lease_duration=1, renew_deadline=2, retry_period=0.1)
    with pytest.raises(ValueError):
        LeaderElector(client, name="x", namespace="y", lease_duration=3, renew_deadline=2, retry_period=0.1,
                      renew_period=2)


