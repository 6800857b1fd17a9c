"""Controllers and the manager against the real API server.

Aspects: the four-way result switch (success, requeue_after, error → rate-limited retry,
terminal error) with zero-initialised metrics; owned objects map to their owner's key; the
manager runs controllers only while leading and drains in-flight reconciles on shutdown.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from atoll.api.kinds import CONFIGMAPS, DOMAINS
from atoll.client import Client
from atoll.runtime import (
    Controller,
    LeaderElector,
    Manager,
    ObjectKey,
    Result,
    TerminalError,
    WatchSettings,
    WorkQueue,
    get_logger,
    owner_mapper,
)
from atoll.runtime.metrics import REGISTRY
from atoll.runtime.ratelimit import ExponentialFailureRateLimiter
from tests.conftest import eventually
from tests.integration.faults import configmap

pytestmark = pytest.mark.controllers()  # the API server alone
FAST = WatchSettings(backoff_initial=0.1)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Recording:
    def __init__(self) -> None:
        self.calls: list[ObjectKey] = []
        self.failed_once: set[str] = set()
        self.log = get_logger("test.reconciler")

    async def reconcile(self, key: ObjectKey) -> Result:
        self.calls.append(key)
        self.log.info("reconciling")
        if key.name.startswith("flaky") and key.name not in self.failed_once:
            self.failed_once.add(key.name)
            raise RuntimeError("transient")
        if key.name.startswith("bad"):
            raise TerminalError("spec is wrong")
        if key.name.startswith("poll") and self.calls.count(key) < 3:
            return Result(requeue_after=0.05)
        return Result()


async def test_result_switch_and_metrics(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    assert sample("controller_runtime_reconcile_total", controller="switch", result="error") == 0.0
    rec = Recording()
    manager = Manager(client, settings=FAST)
    queue: WorkQueue[ObjectKey] = WorkQueue("switch", rate_limiter=ExponentialFailureRateLimiter(0.01, 1))
    controller = Controller("switch", rec, queue, workers=3)
    assert sample("controller_runtime_reconcile_total", controller="switch", result="error") == 0.0
    controller.watch(manager.informer(CONFIGMAPS))
    manager.add(controller)
    for name in ("ok", "flaky", "bad", "poll"):
        await client.create(CONFIGMAPS, configmap(name))
    caplog.set_level(logging.INFO)
    task = asyncio.create_task(manager.run())
    await eventually(lambda: len(rec.calls) >= 7, 15)
    await client.create(CONFIGMAPS, configmap("late"))
    await eventually(lambda: ObjectKey("default", "late") in rec.calls, 15)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    names = [k.name for k in rec.calls]
    assert names.count("flaky") == 2 and names.count("poll") == 3 and names.count("bad") == 1
    assert sample("controller_runtime_reconcile_total", controller="switch", result="error") == 1
    assert sample("controller_runtime_reconcile_total", controller="switch", result="terminal_error") == 1
    assert sample("controller_runtime_reconcile_total", controller="switch", result="requeue_after") == 2
    assert sample("controller_runtime_reconcile_errors_total", controller="switch") == 2
    assert sample("controller_runtime_reconcile_time_seconds_count", controller="switch") == len(rec.calls)
    lines = [r for r in caplog.records if r.name == "test.reconciler"]
    assert lines and all(
        getattr(r, "controller", None) == "switch" and getattr(r, "reconcile_id", "") for r in lines
    )
    assert "key=default/ok" in "\n".join(r.getMessage() for r in lines)


async def test_owned_objects_enqueue_their_owner(client: Client) -> None:
    rec = Recording()
    manager = Manager(client, settings=FAST)
    controller: Controller[ObjectKey] = Controller("domains", rec)
    controller.watch(manager.informer(DOMAINS))
    controller.watch(manager.informer(CONFIGMAPS), owner_mapper("Domain", cluster_scoped=True))
    manager.add(controller)
    dom = await client.create(DOMAINS, {"metadata": {"name": "alice"}, "spec": {}})
    task = asyncio.create_task(manager.run())
    await eventually(lambda: ObjectKey(None, "alice") in rec.calls, 15)
    rec.calls.clear()
    owned = configmap("cfg")
    owned["metadata"]["ownerReferences"] = [
        {
            "apiVersion": DOMAINS.api_version,
            "kind": "Domain",
            "name": "alice",
            "uid": dom["metadata"]["uid"],
            "controller": True,
        }
    ]
    await client.create(CONFIGMAPS, owned)
    await eventually(lambda: ObjectKey(None, "alice") in rec.calls, 15)
    assert ObjectKey("default", "cfg") not in rec.calls
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_controllers_run_only_while_leading_and_drain_on_stop(client: Client) -> None:
    started, gate = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    class Slow:
        async def reconcile(self, key: ObjectKey) -> Result:
            started.set()
            await gate.wait()  # held until the test has cancelled the leader: a reconcile in flight
            finished.append(key.name)
            return Result()

    def make(identity: str) -> tuple[Manager, Controller[ObjectKey]]:
        elector = LeaderElector(
            client,
            name="mgr",
            namespace="default",
            identity=identity,
            lease_duration=10.0,  # never lost to a loaded machine; a cancelled leader releases it at once
            renew_deadline=8.0,
            retry_period=0.2,
        )
        manager = Manager(client, leader_election=elector, settings=FAST)
        controller: Controller[ObjectKey] = Controller(f"slow-{identity}", Slow())
        controller.watch(manager.informer(CONFIGMAPS))
        manager.add(controller)
        return manager, controller

    await client.create(CONFIGMAPS, configmap("one"))
    leader, _ = make("a")
    standby, standby_controller = make("b")
    task_a = asyncio.create_task(leader.run())
    await asyncio.wait_for(started.wait(), 30)
    task_b = asyncio.create_task(standby.run())
    # standby caches fill (and stay warm) while another replica leads
    await eventually(lambda: all(i.has_synced for i in standby.informers.informers), 30)
    assert standby.elector is not None and not standby.elector.is_leader
    task_a.cancel()  # mid-reconcile: the reconcile finishes before the manager returns
    gate.set()
    await asyncio.gather(task_a, return_exceptions=True)
    assert finished == ["one"]
    await eventually(lambda: len(finished) == 2, 30)  # b takes over and reconciles
    assert standby_controller.queue.name == "slow-b"
    task_b.cancel()
    await asyncio.gather(task_b, return_exceptions=True)
