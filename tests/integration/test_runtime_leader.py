"""Leader election with two electors against the fake API server (short durations).

Aspects: exactly one leads; the Lease carries holderIdentity, MicroTime acquire/renew times and
leaseTransitions; when the leader stops renewing, the other takes over only after the lease
duration; releasing on cancel hands over at once; a leader that loses the lease has its work
cancelled and its on_stopped_leading called.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from atoll.client import Client
from atoll.runtime.leader import LEASES, LeaderElector
from tests.conftest import eventually
from tests.integration.fake_kube import FakeKube

MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def elector(client: Client, identity: str, *, release: bool = True) -> LeaderElector:
    return LeaderElector(
        client,
        name="atoll-controllers",
        namespace="kube-system",
        identity=identity,
        lease_duration=1.5,
        renew_deadline=1.0,
        retry_period=0.2,
        release_on_cancel=release,
    )


class Work:
    def __init__(self) -> None:
        self.leading: set[str] = set()
        self.started: dict[str, float] = {}
        self.stopped: list[str] = []
        self.cancelled: list[str] = []

    def run(self, name: str) -> tuple[object, object]:
        async def start() -> None:
            assert not self.leading, f"{name} started while {self.leading} leads"
            self.leading.add(name)
            self.started[name] = asyncio.get_running_loop().time()
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


async def test_one_leader_and_takeover_after_lease_duration(client: Client, fake: FakeKube) -> None:
    work = Work()
    a, b = elector(client, "a", release=False), elector(client, "b", release=False)
    task_a = asyncio.create_task(a.run(*work.run("a")))  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    task_b = asyncio.create_task(b.run(*work.run("b")))  # type: ignore[arg-type]
    await asyncio.sleep(1.0)
    assert work.leading == {"a"} and a.is_leader and not b.is_leader
    lease = await client.get(LEASES, "atoll-controllers", "kube-system")
    spec = lease["spec"]
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 2
    assert MICRO.match(spec["acquireTime"]) and MICRO.match(spec["renewTime"])
    assert spec["leaseTransitions"] == 0
    renewed = spec["renewTime"]
    await asyncio.sleep(0.5)
    assert (await client.get(LEASES, "atoll-controllers", "kube-system"))["spec"]["renewTime"] > renewed

    task_a.cancel()  # a dies without releasing: b must wait out the lease
    stopped_at = asyncio.get_running_loop().time()
    await asyncio.gather(task_a, return_exceptions=True)
    await eventually(lambda: "b" in work.leading, 5)
    waited = work.started["b"] - stopped_at
    assert 1.2 <= waited <= 3.0, waited
    lease = await client.get(LEASES, "atoll-controllers", "kube-system")
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
    task_b.cancel()
    await asyncio.gather(task_b, return_exceptions=True)
    assert work.stopped == ["a", "b"] and work.cancelled == ["a", "b"]


async def test_release_on_cancel_hands_over_at_once(client: Client) -> None:
    work = Work()
    a, b = elector(client, "a"), elector(client, "b")
    task_a = asyncio.create_task(a.run(*work.run("a")))  # type: ignore[arg-type]
    await eventually(lambda: "a" in work.leading, 5)
    task_b = asyncio.create_task(b.run(*work.run("b")))  # type: ignore[arg-type]
    await asyncio.sleep(0.3)
    task_a.cancel()
    released_at = asyncio.get_running_loop().time()
    await asyncio.gather(task_a, return_exceptions=True)
    await eventually(lambda: "b" in work.leading, 5)
    assert work.started["b"] - released_at < 1.0
    task_b.cancel()
    await asyncio.gather(task_b, return_exceptions=True)


async def test_losing_the_lease_cancels_the_work(client: Client, fake: FakeKube) -> None:
    work = Work()
    a = elector(client, "a")
    task_a = asyncio.create_task(a.run(*work.run("a")))  # type: ignore[arg-type]
    await eventually(lambda: "a" in work.leading, 5)
    lease = await client.get(LEASES, "atoll-controllers", "kube-system")
    lease["spec"]["holderIdentity"] = "intruder"
    fake.put(LEASES, lease)  # someone else now holds it (e.g. after a long pause of ours)
    await eventually(lambda: work.cancelled == ["a"], 3)
    assert work.stopped == ["a"] and not a.is_leader
    # a campaigns again and wins once the intruder's lease expires
    await eventually(lambda: "a" in work.leading, 5)
    assert (await client.get(LEASES, "atoll-controllers", "kube-system"))["spec"]["leaseTransitions"] == 1
    task_a.cancel()
    await asyncio.gather(task_a, return_exceptions=True)


async def test_renew_failures_past_the_deadline_lose_leadership(client: Client, fake: FakeKube) -> None:
    work = Work()
    a = elector(client, "a")
    task_a = asyncio.create_task(a.run(*work.run("a")))  # type: ignore[arg-type]
    await eventually(lambda: "a" in work.leading, 5)
    fake.inject_failure("PUT", "/leases/atoll-controllers", 500, times=100)
    await eventually(lambda: work.cancelled == ["a"], 3)
    task_a.cancel()
    await asyncio.gather(task_a, return_exceptions=True)


def test_durations_must_be_ordered(client: Client) -> None:
    with pytest.raises(ValueError):
        LeaderElector(client, name="x", namespace="y", lease_duration=1, renew_deadline=2, retry_period=0.1)


