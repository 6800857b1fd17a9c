"""Time-driven workload behaviour on an injected clock: a CronJob fires (and misses its starting
deadline), a Job's activeDeadlineSeconds, ttlSecondsAfterFinished, suspend and pod-failure
backoff, a Deployment's progressDeadlineSeconds. A real in-process master without controllers;
the workload controllers run on their own manager with an ``OffsetClock`` that tests move. No
node runs pods, so pods stay Pending unless a test reports their end (as a kubelet would)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from atoll.api import errors
from atoll.api.clock import OffsetClock
from atoll.api.kinds import CRONJOBS, DEPLOYMENTS, EVENTS, JOBS, NAMESPACES, PODS, REPLICASETS
from atoll.api.timestamps import format_time
from atoll.client import Client
from atoll.controllers import ControllerContext, cronjob, deployment, job, replicaset
from atoll.runtime import Manager
from tests.conftest import RunningServer, eventually
from tests.integration.jobs import running_master

pytestmark = pytest.mark.asyncio(loop_scope="module")
NS = "timers"
JSON = dict[str, Any]


@dataclass
class Env:
    client: Client
    clock: OffsetClock


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def master(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    async with running_master(tmp_path_factory.mktemp("timers") / "master", controllers=()) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(master: RunningServer) -> AsyncIterator[Env]:
    clock = OffsetClock()
    async with master.client() as client:
        await client.create(NAMESPACES, {"metadata": {"name": NS}})
        manager = Manager(client)
        ctx = ControllerContext(client, workers=2)
        for module in (replicaset, deployment, job, cronjob):
            module.setup(manager, ctx, clock=clock)
        running = asyncio.create_task(manager.run())
        try:
            yield Env(client, clock)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


def template(restart: str = "Never", labels: JSON | None = None) -> JSON:
    meta = {"labels": labels} if labels else {}
    return {"metadata": meta, "spec": {"restartPolicy": restart,
                                       "containers": [{"name": "main", "image": "app:v1", "command": ["true"]}]}}


def condition(obj: JSON, kind: str) -> JSON:
    found = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)
    assert found is not None, f"no {kind} condition yet: {obj.get('status')}"
    return found


async def pods_of(client: Client, label: str) -> list[JSON]:
    return (await client.list(PODS, NS, label_selector=label))["items"]


async def test_cronjob_fires_on_the_clock_in_its_time_zone(env: Env) -> None:
    c = env.client
    spec = {"schedule": "*/5 * * * *", "timeZone": "Asia/Kolkata", "concurrencyPolicy": "Replace",
            "jobTemplate": {"spec": {"template": template()}}}
    await c.create(CRONJOBS, {"metadata": {"name": "tick"}, "spec": spec}, NS)
    now = env.clock.now()
    # Kolkata is UTC+5:30, so its 5-minute marks are UTC's 5-minute marks too
    boundary = (int(now // 300) + 1) * 300
    env.clock.advance(boundary - now + 1)

    async def first_job() -> JSON:
        jobs = (await c.list(JOBS, NS))["items"]
        assert [j["metadata"]["name"] for j in jobs] == [f"tick-{boundary // 60}"], jobs
        return jobs[0]

    first = await eventually(first_job)
    assert first["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == format_time(boundary)

    async def reported() -> None:
        status = (await c.get(CRONJOBS, "tick", NS))["status"]
        assert status.get("lastScheduleTime") == format_time(boundary)
        assert [a["name"] for a in status.get("active") or []] == [first["metadata"]["name"]]

    await eventually(reported)
    env.clock.advance(300)  # Replace: the still-running first Job is deleted, the next one created

    async def replaced() -> None:
        names = [j["metadata"]["name"] for j in (await c.list(JOBS, NS))["items"]
                 if not j["metadata"].get("deletionTimestamp")]
        assert names == [f"tick-{boundary // 60 + 5}"], names

    await eventually(replaced)
    await c.patch(CRONJOBS, "tick", {"spec": {"startingDeadlineSeconds": 10}}, NS)
    env.clock.advance(300 + 60)  # a minute past the next mark: too late to start

    async def missed() -> None:
        events = (await c.list(EVENTS, NS, field_selector="involvedObject.name=tick"))["items"]
        assert any(e["reason"] == "MissSchedule" for e in events), [e["reason"] for e in events]

    await eventually(missed)


async def test_job_deadline_fails_it_and_ttl_deletes_it(env: Env) -> None:
    c = env.client
    spec = {"parallelism": 2, "completions": 4, "activeDeadlineSeconds": 30, "ttlSecondsAfterFinished": 60,
            "template": template()}
    await c.create(JOBS, {"metadata": {"name": "deadline"}, "spec": spec}, NS)

    async def two_pods() -> None:
        assert len(await pods_of(c, "job-name=deadline")) == 2

    await eventually(two_pods)
    env.clock.advance(31)

    async def failed() -> JSON:
        got = await c.get(JOBS, "deadline", NS)
        assert condition(got, "Failed")["reason"] == "DeadlineExceeded"
        return got

    got = await eventually(failed)
    assert condition(got, "FailureTarget")["status"] == "True" and await pods_of(c, "job-name=deadline") == []
    env.clock.advance(61)

    async def deleted() -> None:
        try:
            await c.get(JOBS, "deadline", NS)
        except errors.NotFound:
            return
        raise AssertionError("the finished Job is still there")

    await eventually(deleted)


async def test_suspended_job_runs_no_pods_until_resumed(env: Env) -> None:
    c = env.client
    await c.create(JOBS, {"metadata": {"name": "later"}, "spec": {"suspend": True, "template": template()}}, NS)

    async def suspended() -> JSON:
        got = await c.get(JOBS, "later", NS)
        assert condition(got, "Suspended")["status"] == "True"
        return got

    got = await eventually(suspended)
    assert "startTime" not in got["status"] and await pods_of(c, "job-name=later") == []
    await c.patch(JOBS, "later", {"spec": {"suspend": False}}, NS)

    async def resumed() -> None:
        got = await c.get(JOBS, "later", NS)
        assert condition(got, "Suspended")["reason"] == "JobResumed" and got["status"].get("startTime")
        assert len(await pods_of(c, "job-name=later")) == 1

    await eventually(resumed)


async def fail_pod(c: Client, pod: JSON, now: float) -> None:
    """What the node agent reports for a pod whose container exited 1."""
    stamp = format_time(now)
    status = {"phase": "Failed", "containerStatuses": [{
        "name": "main", "image": "app:v1", "imageID": "", "ready": False, "restartCount": 0,
        "state": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": stamp, "finishedAt": stamp}}}]}
    await c.patch(PODS, pod["metadata"]["name"], {"status": status}, NS, subresource="status")


async def test_failed_pods_are_replaced_after_an_exponential_backoff(env: Env) -> None:
    c = env.client
    await c.create(JOBS, {"metadata": {"name": "flaky"}, "spec": {"backoffLimit": 3, "template": template()}}, NS)
    for failures in (1, 2):
        pods = await eventually(lambda: _live(c, "flaky", 1))
        await fail_pod(c, pods[0], env.clock.now())

        async def counted(n: int = failures) -> None:
            assert (await c.get(JOBS, "flaky", NS))["status"].get("failed") == n

        await eventually(counted)  # the reconcile that counted the failure decided not to replace it yet
        assert await _live(c, "flaky", 0) == []
        env.clock.advance(10 * 2 ** (failures - 1) - 2)
        assert await _live(c, "flaky", 0) == [], "not before the backoff (10 s, then 20 s)"
        env.clock.advance(3)
    await eventually(lambda: _live(c, "flaky", 1))


async def _live(c: Client, name: str, count: int) -> list[JSON]:
    live = [p for p in await pods_of(c, f"job-name={name}") if p["status"].get("phase") != "Failed"]
    assert len(live) == count, live
    return live


async def test_deployment_without_progress_exceeds_its_deadline(env: Env) -> None:
    c = env.client
    labels = {"app": "stuck"}
    spec = {"replicas": 2, "progressDeadlineSeconds": 60, "selector": {"matchLabels": labels},
            "template": template("Always", labels)}
    await c.create(DEPLOYMENTS, {"metadata": {"name": "stuck"}, "spec": spec}, NS)

    async def progressing() -> None:
        got = await c.get(DEPLOYMENTS, "stuck", NS)
        assert condition(got, "Progressing")["status"] == "True"
        assert condition(got, "Available")["status"] == "False"
        assert len(await pods_of(c, "app=stuck")) == 2
        # all progress is reported (both pods counted as updated): from here on nothing changes
        assert (got["status"].get("updatedReplicas"), got["status"].get("replicas")) == (2, 2), got["status"]

    await eventually(progressing)
    env.clock.advance(61)

    async def timed_out() -> None:
        got = await c.get(DEPLOYMENTS, "stuck", NS)
        cond = condition(got, "Progressing")
        assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
        rs = (await c.list(REPLICASETS, NS, label_selector="app=stuck"))["items"][0]
        assert cond["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.'

    await eventually(timed_out)


async def test_replicaset_adopts_matching_orphans_and_releases_pods_that_stop_matching(env: Env) -> None:
    c = env.client
    labels = {"app": "adopt"}
    orphan = {"metadata": {"name": "orphan", "labels": labels}, "spec": template("Always")["spec"]}
    await c.create(PODS, orphan, NS)
    spec = {"replicas": 2, "selector": {"matchLabels": labels}, "template": template("Always", labels)}
    rs = await c.create(REPLICASETS, {"metadata": {"name": "adopter"}, "spec": spec}, NS)

    async def adopted() -> list[JSON]:
        pods = await pods_of(c, "app=adopt")
        assert len(pods) == 2, [p["metadata"]["name"] for p in pods]  # the orphan counts: one new pod only
        refs = {p["metadata"]["name"]: p["metadata"].get("ownerReferences") or [] for p in pods}
        assert [r["uid"] for r in refs["orphan"]] == [rs["metadata"]["uid"]] and refs["orphan"][0]["controller"]
        return pods

    await eventually(adopted)
    await c.patch(PODS, "orphan", {"metadata": {"labels": {"app": "elsewhere"}}}, NS)

    async def released() -> None:
        got = await c.get(PODS, "orphan", NS)
        assert not got["metadata"].get("ownerReferences"), got["metadata"]
        assert len(await pods_of(c, "app=adopt")) == 2, "a replacement for the released pod"

    await eventually(released)


async def test_pod_creation_events_are_aggregated_and_rate_limited_like_client_go(env: Env) -> None:
    """30 pods of one ReplicaSet: 9 ``SuccessfulCreate`` Events, then one combined Event whose count
    goes up, 25 writes in all (the spam filter's burst); the 5 beyond it are dropped. Five minutes
    later (on the clock) the bucket has one token again."""
    c = env.client
    labels = {"app": "noisy"}
    spec = {"replicas": 30, "selector": {"matchLabels": labels}, "template": template("Always", labels)}
    await c.create(REPLICASETS, {"metadata": {"name": "noisy"}, "spec": spec}, NS)

    async def created() -> list[JSON]:
        assert len(await pods_of(c, "app=noisy")) == 30
        events = [e for e in (await c.list(EVENTS, NS, field_selector="involvedObject.name=noisy"))["items"]
                  if e["reason"] == "SuccessfulCreate"]
        assert sum(e["count"] for e in events) == 25, [(e["message"], e["count"]) for e in events]
        return events

    events = await eventually(created)
    combined = [e for e in events if e["message"].startswith("(combined from similar events): Created pod: noisy-")]
    assert len(events) == 10 and len(combined) == 1 and combined[0]["count"] == 16, [e["message"] for e in events]
    env.clock.advance(300)
    await c.patch(REPLICASETS, "noisy", {"spec": {"replicas": 31}}, NS)

    async def one_more() -> None:
        again = (await c.get(EVENTS, combined[0]["metadata"]["name"], NS))
        assert again["count"] == 17, again["count"]

    await eventually(one_more)
