"""Leasing windows, reclaim grace and the unschedulable timeout on an injected clock: one computing
and one worker control plane (with a RunP agent), a binding's syncer driven by a FakeClock that
starts on Monday 2026-01-05 12:00 UTC, so hours pass in milliseconds."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from atoll.api import kinds
from atoll.api.clock import FakeClock
from atoll.api.errors import NotFound
from atoll.mirror.names import target_name
from atoll.mirror.podspec import Placement, build_target_pod
from atoll.pooling.context import SyncerSettings
from atoll.pooling.kinds import CLUSTERBINDINGS, RESOURCELEASINGPOLICIES
from atoll.pooling.syncer import Syncer
from tests.conftest import eventually
from tests.integration.pooling import Pool, bind, lease_policy, plane, pool_of, pooled_pod

JSON = dict[str, Any]
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]
MONDAY_NOON = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC).timestamp()
VNODE = "vnode-cls-w1-w1-node"
WINDOW = {"start": "08:00", "end": "17:59", "days": ["monday", "tuesday", "wednesday", "thursday", "friday"]}


@dataclass
class Timed:
    pool: Pool
    clock: FakeClock
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        syncer = Syncer("cb-w1", self.pool.client, self.pool.worker("w1"), clock=self.clock,
                        settings=SyncerSettings(lease_duration=4))
        self.task = asyncio.create_task(syncer.run())

    async def stop(self) -> None:
        """What a crash (or kill -9) of the process hosting the syncer leaves behind."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def timed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Timed]:
    base: Path = tmp_path_factory.mktemp("windows")
    computing = plane(base, "computing", ("namespace", "garbagecollector", "scheduler"))
    async with pool_of(base, computing, ("w1",)) as pool:
        await pool.client.create(kinds.NAMESPACES, {"metadata": {"name": "team"}})
        await bind(pool.client, "cb-w1", "cls-w1", None)
        await lease_policy(pool.worker("w1"), "rlp1", "cb-w1", timeWindows=[WINDOW], forceReclaim=True,
                           gracefulReclaimPeriodSeconds=600)
        timed = Timed(pool, FakeClock(start=MONDAY_NOON))
        timed.start()
        try:
            yield timed
        finally:
            await timed.stop()


async def taints(pool: Pool) -> dict[str, JSON]:
    node = await pool.client.get(kinds.NODES, VNODE)
    assert (node.get("status") or {}).get("allocatable"), "vnode status not written yet"
    return {t["key"]: t for t in node["spec"].get("taints") or ()}


async def phase(pool: Pool, name: str, want: str) -> JSON:
    pod: JSON = await pool.client.get(kinds.PODS, name, "team")
    assert pod.get("status", {}).get("phase") == want, pod.get("status")
    return pod


async def test_window_closes_evicts_after_grace_and_reopens(timed: Timed) -> None:
    pool, clock = timed.pool, timed.clock
    assert "kubeocean.io/out-of-time-windows" not in await eventually(lambda: taints(pool), 30)
    await pool.client.create(kinds.PODS, pooled_pod("p1", "cls-w1", "sleep 600"), "team")
    await eventually(lambda: phase(pool, "p1", "Running"), 30)

    clock.advance(6 * 3600)  # Monday 18:00: the window (08:00-17:59) has closed

    async def reclaiming() -> JSON:
        taint: JSON = (await taints(pool)).get("kubeocean.io/out-of-time-windows") or {}
        assert taint.get("effect") == "NoExecute", taint  # forceReclaim
        return taint

    taint = await eventually(reclaiming, 30)
    assert taint["timeAdded"] == "2026-01-05T18:00:00Z"
    clock.advance(599)  # inside the 600 s grace
    await phase(pool, "p1", "Running")
    clock.advance(2)

    async def evicted() -> None:
        pods = [(p["metadata"]["name"], p["metadata"].get("deletionTimestamp"), p.get("status", {}).get("phase"))
                for p in (await pool.client.list(kinds.PODS, "team"))["items"]]
        assert "p1" not in [p[0] for p in pods], (pods, clock.now(), clock.sleepers)
        with pytest.raises(NotFound):
            await pool.worker("w1").get(kinds.PODS, target_name("team", "p1"), "w1")

    await eventually(evicted, 30)

    rlp = await pool.worker("w1").get(RESOURCELEASINGPOLICIES, "rlp1")
    rlp["spec"]["forceReclaim"] = False
    await pool.worker("w1").update(RESOURCELEASINGPOLICIES, rlp)

    async def no_schedule() -> None:
        taint = (await taints(pool)).get("kubeocean.io/out-of-time-windows") or {}
        assert taint.get("effect") == "NoSchedule", taint

    await eventually(no_schedule, 30)
    policy = await pool.worker("w1").get(RESOURCELEASINGPOLICIES, "rlp1")
    assert (policy["status"]["phase"], policy["status"]["activeTimeWindow"]) == ("Inactive", False)

    tuesday_8 = dt.datetime(2026, 1, 6, 8, 0, tzinfo=dt.UTC).timestamp()
    clock.advance(tuesday_8 - clock.now())

    async def open_again() -> None:
        assert "kubeocean.io/out-of-time-windows" not in await taints(pool)

    await eventually(open_again, 30)
    await pool.client.create(kinds.PODS, pooled_pod("p2", "cls-w1", "echo back"), "team")
    await eventually(lambda: phase(pool, "p2", "Succeeded"), 30)
    await pool.client.delete(kinds.PODS, "p2", "team")


async def test_unschedulable_in_the_worker_for_five_minutes(timed: Timed) -> None:
    pool, clock = timed.pool, timed.clock
    worker = pool.worker("w1")
    await worker.patch(kinds.NODES, "w1-node", {"spec": {"unschedulable": True}})

    async def cordon_mirrored() -> None:
        assert "kubeocean.io/physical-node-unschedulable" in await taints(pool)

    await eventually(cordon_mirrored, 30)
    pod = pooled_pod("stuck", "cls-w1", "echo never")
    pod["spec"]["tolerations"].append({"key": "kubeocean.io/physical-node-unschedulable", "operator": "Exists"})
    await pool.client.create(kinds.PODS, pod, "team")

    async def created_pending() -> None:
        physical = await worker.get(kinds.PODS, target_name("team", "stuck"), "w1")
        assert not physical["spec"].get("nodeName")

    await eventually(created_pending, 30)

    async def given_up() -> None:
        # the syncer starts the 5 minutes when it first sees the pod unscheduled, which may be just
        # after this test saw it: move time on until it gives up
        clock.advance(301)
        events = (await pool.client.list(kinds.EVENTS, "team"))["items"]
        physical = [(p["metadata"]["name"], p["spec"].get("nodeName"), p.get("status", {}).get("phase"))
                    for p in (await worker.list(kinds.PODS, "w1"))["items"]]
        assert any(e["reason"] == "FailedSchedulingPod" and e["involvedObject"]["name"] == "stuck" for e in events), (
            [e["reason"] for e in events], physical)
        current = await pool.client.get(kinds.PODS, "stuck", "team")
        assert (current["status"].get("phase"), current["status"].get("reason")) == ("Failed", "PhysicalPodLost")

    await eventually(given_up, 20, every=0.5)
    await worker.patch(kinds.NODES, "w1-node", {"spec": {"unschedulable": False}})
    await pool.client.delete(kinds.PODS, "stuck", "team")
    binding = await pool.client.get(CLUSTERBINDINGS, "cb-w1")
    assert "kubeocean.io/clusterbinding-syncer" in binding["metadata"]["finalizers"]


def claims(token: str) -> JSON:
    payload = token.split(".")[1]
    decoded: JSON = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


async def test_service_account_token_renewed_before_expiry(timed: Timed) -> None:
    """A projected token becomes a worker Secret holding a computing-cluster token bound to the
    virtual pod, renewed once 80 % of its hour has passed (on the injected clock)."""
    pool, clock = timed.pool, timed.clock
    worker = pool.worker("w1")
    await pool.client.create(kinds.SERVICEACCOUNTS, {"metadata": {"name": "runner", "namespace": "team"}}, "team")
    volume = {"name": "kube-api-access", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600, "audience": "vault"}}]}}
    await pool.client.create(kinds.PODS, pooled_pod("tokened", "cls-w1", "sleep 600", serviceAccountName="runner",
                                                    volumes=[volume]), "team")
    pod = await eventually(lambda: phase(pool, "tokened", "Running"), 30)
    name = target_name("team", "tokened-kube-api-access-token")
    first = await worker.get(kinds.SECRETS, name, "w1")
    token = base64.b64decode(first["data"]["token"]).decode()
    issued = claims(token)
    assert issued["sub"] == "system:serviceaccount:team:runner" and issued["aud"] == ["vault"]
    assert issued["kubernetes.io"]["pod"] == {"name": "tokened", "uid": pod["metadata"]["uid"]}
    assert first["metadata"]["labels"]["kubeocean.io/service-account-token"] == "true"
    refresh_at = first["metadata"]["annotations"]["kubeocean.io/token-refresh-at"]

    clock.advance(0.8 * 3600 + 1)

    async def renewed() -> JSON:
        secret: JSON = await worker.get(kinds.SECRETS, name, "w1")
        assert base64.b64decode(secret["data"]["token"]).decode() != token, "token not renewed yet"
        return secret

    second = await eventually(renewed, 30)
    assert second["metadata"]["annotations"]["kubeocean.io/token-refresh-at"] > refresh_at
    assert claims(base64.b64decode(second["data"]["token"]).decode())["kubernetes.io"]["pod"]["name"] == "tokened"
    await pool.client.delete(kinds.PODS, "tokened", "team")

    async def secret_gone() -> None:
        pods = [(p["metadata"]["name"], p["metadata"].get("deletionTimestamp"), p.get("status", {}).get("phase"))
                for p in (await pool.client.list(kinds.PODS, "team"))["items"]]
        assert "tokened" not in [p[0] for p in pods], pods
        with pytest.raises(NotFound):
            await worker.get(kinds.SECRETS, name, "w1")

    await eventually(secret_gone, 30)


async def test_restart_mid_sync_leaves_no_orphan_and_no_duplicate(timed: Timed) -> None:
    """The syncer dies (1) after checkpointing a name but before creating, and (2) after creating but
    before recording the uid; a new syncer resumes both without a second physical pod."""
    pool = timed.pool
    await eventually(lambda: taints(pool), 30)
    await timed.stop()
    worker = pool.worker("w1")
    for name in ("named-only", "created"):
        body = pooled_pod(name, "cls-w1", "echo resumed")
        body["spec"]["nodeName"] = VNODE
        body["metadata"]["annotations"] = {"kubeocean.io/physical-pod-namespace": "pool",
                                           "kubeocean.io/physical-pod-name": target_name("team", name)}
        created = await pool.client.create(kinds.PODS, body, "team")
        if name == "created":
            physical = build_target_pod(created, Placement("w1", "w1-node", VNODE), lambda _k, n: n, {})
            await worker.create(kinds.PODS, physical, "w1")
    before = await worker.get(kinds.PODS, target_name("team", "created"), "w1")
    timed.start()

    async def resumed(name: str) -> JSON:
        pod = await phase(pool, name, "Succeeded")
        assert pod["metadata"]["annotations"].get("kubeocean.io/physical-pod-uid"), pod["metadata"]
        return pod

    for name in ("named-only", "created"):
        await eventually(lambda n=name: resumed(n), 30)  # type: ignore[misc]
    adopted = await pool.client.get(kinds.PODS, "created", "team")
    assert adopted["metadata"]["annotations"]["kubeocean.io/physical-pod-uid"] == before["metadata"]["uid"]
    names = sorted(p["metadata"]["name"] for p in (await worker.list(kinds.PODS, "w1"))["items"])
    assert names == sorted([target_name("team", "named-only"), target_name("team", "created")])
    for name in ("named-only", "created"):
        await pool.client.delete(kinds.PODS, name, "team")
