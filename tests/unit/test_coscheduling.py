"""The KusciaScheduling plugin on its own: PreFilter verdicts, the gang wait in Permit, the
reservation window on a FakeClock, and the TaskResource marks (against an in-memory client)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from atoll.api.errors import NotFound
from atoll.runtime import Cache, FakeClock
from atoll.scheduler.framework import Code, CycleState, Status
from atoll.scheduler.plugins.coscheduling import KusciaScheduling
from tests.conftest import eventually

JSON = dict[str, Any]


class FakeClient:
    """``get`` / ``update`` of TaskResources kept in the same Cache the plugin reads."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.updates: list[JSON] = []

    async def get(self, rd: Any, name: str, namespace: str | None = None) -> JSON:
        obj = self.cache.get(name, namespace)
        if obj is None:
            raise NotFound(f"{name} not found")
        return copy.deepcopy(obj)

    async def update(self, rd: Any, body: JSON, *, subresource: str | None = None) -> JSON:
        self.updates.append(body)
        self.cache.upsert(body)
        return body


def task_resource(phase: str, *, min_pods: int = 2, reason: str = "") -> JSON:
    status: JSON = {"phase": phase}
    if reason:
        status["conditions"] = [{"type": "Failed", "status": "True", "reason": reason}]
    return {
        "metadata": {"name": "t-abc", "namespace": "bob", "resourceVersion": "1"},
        "spec": {"minReservedPods": min_pods, "resourceReservedSeconds": 30,
                 "pods": [{"name": "t-0"}, {"name": "t-1"}]},
        "status": status,
    }


def pod(name: str, tr: str | None = "t-abc") -> JSON:
    annotations = {} if tr is None else {"kuscia.secretflow/task-resource": tr}
    return {"metadata": {"name": name, "namespace": "bob", "annotations": annotations}, "spec": {}}


def plugin_with(tr: JSON | None) -> tuple[KusciaScheduling, FakeClient, FakeClock]:
    cache = Cache()
    if tr is not None:
        cache.upsert(tr)
    client = FakeClient(cache)
    clock = FakeClock()
    return KusciaScheduling(client, cache, clock), client, clock  # type: ignore[arg-type]


def test_pre_filter_verdicts() -> None:
    plugin, _, _ = plugin_with(task_resource("Reserving"))
    assert plugin.pre_filter(CycleState(), pod("t-0", tr=None)).ok  # an ordinary pod
    assert plugin.pre_filter(CycleState(), pod("t-0", tr="")).code is Code.PENDING
    assert plugin.pre_filter(CycleState(), pod("t-0", tr="other")).code is Code.PENDING
    assert plugin.pre_filter(CycleState(), pod("t-0")).ok
    failed, _, _ = plugin_with(task_resource("Failed", reason="0/1 nodes are available: 1 Insufficient cpu."))
    status = failed.pre_filter(CycleState(), pod("t-0"))
    assert status.code is Code.UNSCHEDULABLE
    assert status.message == (
        "domain [bob] can not reserve resources for pods: 0/1 nodes are available: 1 Insufficient cpu."
    )


async def test_permit_waits_for_the_whole_party_then_pre_bind_for_schedulable() -> None:
    plugin, client, _ = plugin_with(task_resource("Reserving"))
    states = {n: CycleState() for n in ("t-0", "t-1")}
    for name, state in states.items():
        assert plugin.pre_filter(state, pod(name)).ok
    plugin.reserve(states["t-0"], pod("t-0"), "bob-node")
    first = asyncio.create_task(plugin.permit(states["t-0"], pod("t-0"), "bob-node"))
    await asyncio.sleep(0)  # let the permit run up to its wait
    assert not first.done()  # one of two pods reserved: waiting
    plugin.reserve(states["t-1"], pod("t-1"), "bob-node")
    assert (await asyncio.wait_for(first, 10)).ok
    assert (await plugin.permit(states["t-1"], pod("t-1"), "bob-node")).ok

    binds = [asyncio.create_task(plugin.pre_bind(states[n], pod(n), "bob-node")) for n in states]
    await eventually(lambda: client.cache.get("t-abc", "bob")["status"]["phase"] == "Reserved", 5)
    # marked once, by one pod
    assert len(client.updates) == 1 and not any(b.done() for b in binds)
    schedulable = copy.deepcopy(client.cache.get("t-abc", "bob"))
    schedulable["status"]["phase"] = "Schedulable"  # what the TaskResourceGroup does when all parties reserved
    client.cache.upsert(schedulable)
    plugin.on_task_resource(None, schedulable)
    assert all(s.ok for s in await asyncio.wait_for(asyncio.gather(*binds), 10))


async def test_reservation_window_runs_out_on_the_clock_and_fails_the_task_resource() -> None:
    plugin, client, clock = plugin_with(task_resource("Reserving"))
    state = CycleState()
    plugin.pre_filter(state, pod("t-0"))
    plugin.reserve(state, pod("t-0"), "bob-node")
    waiting = asyncio.create_task(plugin.permit(state, pod("t-0"), "bob-node"))
    await eventually(lambda: clock.sleepers == 1, 5)  # the reservation window's timer is set
    clock.advance(29)  # fires only timers that are due: none
    assert not waiting.done()
    clock.advance(1)
    status: Status = await asyncio.wait_for(waiting, 10)
    assert status.code is Code.UNSCHEDULABLE
    assert status.message == "only 1/2 pods of task resource bob/t-abc were reserved within 30s"
    tr = client.cache.get("t-abc", "bob")
    assert tr["status"]["phase"] == "Failed" and tr["status"]["conditions"][-1]["reason"] == status.message


async def test_a_pod_that_fits_nowhere_fails_its_task_resource_in_the_schedulers_words() -> None:
    plugin, client, _ = plugin_with(task_resource("Reserving"))
    state = CycleState()
    plugin.pre_filter(state, pod("t-1"))
    why = Status(Code.UNSCHEDULABLE, ("Insufficient cpu (requested 1, free 0.5)",), "NodeResourcesFit")
    plugin.post_filter(state, pod("t-1"), {"bob-node": why})
    # the mark is written in the background
    await eventually(lambda: client.cache.get("t-abc", "bob")["status"]["phase"] == "Failed", 5)
    tr = client.cache.get("t-abc", "bob")
    assert tr["status"]["conditions"][-1]["reason"] == (
        "pod t-1: 0/1 nodes are available: 1 Insufficient cpu (requested 1, free 0.5)."
    )
