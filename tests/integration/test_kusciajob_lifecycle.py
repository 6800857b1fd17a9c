"""KusciaJob approval (``enableWorkloadApprove``) and garbage collection (injected clock) against a
real in-process master configured with ``enableWorkloadApprove: true``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from atoll.api import errors
from atoll.api.clock import FakeClock
from atoll.client import Client
from atoll.controllers import ControllerContext
from atoll.controllers.kusciajob import setup_gc
from atoll.runtime import Manager
from atoll.runtime.metrics import REGISTRY
from tests.conftest import RunningServer, eventually
from tests.integration.jobs import (
    KJ,
    NS,
    created_tasks,
    get_job,
    job,
    run_atoll,
    running_master,
    seed,
    task,
    wait_created,
    wait_phase,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def master(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("kj-approve") / "master"
    async with running_master(data_dir, enable_workload_approve=True) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(master: RunningServer) -> AsyncIterator[Client]:
    async with master.client() as c:
        await seed(c, "alice", "bob")
        yield c


async def approve(client: Client, name: str, domain: str, verdict: str) -> None:
    """What KusciaAPI's ApproveJob does: the party's entry in ``status.approveStatus``."""
    await client.patch(KJ, name, {"status": {"approveStatus": {domain: verdict}}}, NS, subresource="status")


async def test_job_waits_for_every_party_to_approve(client: Client) -> None:
    await client.create(KJ, job("approved", task("a")))
    obj = await wait_phase(client, "approved", "AwaitingApproval")
    assert obj["status"]["approveStatus"] == {"alice": "JobAccepted"}  # the initiator's own acceptance
    assert await created_tasks(client, "approved") == []
    await approve(client, "approved", "bob", "JobAccepted")
    await wait_created(client, "approved", {"a"})
    obj = await wait_phase(client, "approved", "Running")
    assert obj["status"]["approveStatus"] == {"alice": "JobAccepted", "bob": "JobAccepted"}


@pytest.mark.slow  # runs `atoll job approve` as a process
async def test_a_rejection_ends_the_job(master: RunningServer, client: Client) -> None:
    await client.create(KJ, job("rejected", task("a")))
    await wait_phase(client, "rejected", "AwaitingApproval")
    rc, out, err = await run_atoll(master, "job", "approve", "rejected", "--party", "bob", "--reject")
    assert rc == 0 and out.strip() == "kusciajob.kuscia.secretflow/rejected: bob JobRejected", err
    rc, _, err = await run_atoll(master, "job", "approve", "rejected", "--party", "carol")
    assert rc == 2 and "'carol' is not a party of job rejected (parties: alice, bob)" in err
    obj = await wait_phase(client, "rejected", "ApprovalReject")
    assert obj["status"]["message"] == "Party: bob approval reject."
    assert obj["status"]["completionTime"]
    assert await created_tasks(client, "rejected") == []


def _gc_passes(name: str) -> float:
    return (
        REGISTRY.get_sample_value("controller_runtime_reconcile_total", {"controller": name, "result": "requeue_after"})
        or 0.0
    )


async def test_finished_jobs_are_collected_after_the_retention(client: Client) -> None:
    """The collector runs on its own manager with a fake clock; only advancing it deletes the job."""
    await client.create(KJ, job("old", task("a", appImage="missing-image")))
    finished = await wait_phase(client, "old", "Failed")  # validation failure: finished at once
    await client.create(KJ, job("live", task("a")))
    await wait_phase(client, "live", "AwaitingApproval")  # not finished: never collected
    clock = FakeClock(start=time.time())
    manager = Manager(client)
    setup_gc(
        manager,
        ControllerContext(client, job_gc_duration_hours=1),
        clock=clock,
        scan_period=0.05,
        name="test-gc",
    )
    running = asyncio.create_task(manager.run())
    try:
        passes = _gc_passes("test-gc")

        async def rechecked() -> None:
            assert _gc_passes("test-gc") >= passes + 3

        await eventually(rechecked)  # the collector looked at the finished job several times...
        assert (await get_job(client, "old"))["metadata"]["uid"] == finished["metadata"]["uid"]  # ...and kept it
        clock.advance(3601)

        async def collected() -> None:
            try:
                await get_job(client, "old")
            except errors.NotFound:
                return
            raise AssertionError("the expired job is still there")

        await eventually(collected)
        assert (await get_job(client, "live"))["status"]["phase"] == "AwaitingApproval"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
