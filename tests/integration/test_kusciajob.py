"""The KusciaJob controller against a real in-process master (one per module).

The KusciaTask controller lives on another branch, so these tests play it: they patch each
KusciaTask's status (Running / Succeeded / Failed with a message naming the party) and watch the
job controller react — DAG order, validation, maxParallelism, priority, Strict vs BestEffort,
stage commands, failure propagation and the cross-domain admission rule.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from atoll.api import errors
from atoll.client import Client
from tests.conftest import RunningServer, eventually
from tests.integration.jobs import (
    KJ,
    KT,
    NS,
    alias_of,
    command,
    created_tasks,
    events_of,
    get_job,
    job,
    running_master,
    seed,
    set_task,
    task,
    task_ids,
    wait_created,
    wait_phase,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def master(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    async with running_master(tmp_path_factory.mktemp("kj") / "master") as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(master: RunningServer) -> AsyncIterator[Client]:
    async with master.client() as c:
        await seed(c, "alice", "bob")
        yield c


# -- the DAG ----------------------------------------------------------------------------------------


async def test_dag_runs_in_dependency_order(client: Client) -> None:
    await client.create(KJ, job("dag", task("a"), task("b"), task("c", "a", "b"), maxParallelism=3))
    first = await wait_created(client, "dag", {"a", "b"})
    ids = await task_ids(client, "dag")
    assert all(tid.startswith("dag-") for tid in ids.values())  # Kuscia's default task IDs, written to the spec
    one = first[0]
    assert one["metadata"]["labels"]["kuscia.secretflow/controller"] == "kuscia-job"
    assert one["metadata"]["ownerReferences"][0]["kind"] == "KusciaJob"
    assert [p["domainID"] for p in one["spec"]["parties"]] == ["alice", "bob"]
    assert one["spec"]["parties"][0]["appImageRef"] == "atoll-psi"
    obj = await wait_phase(client, "dag", "Running")
    assert obj["status"]["taskStatus"] == {ids["a"]: "Pending", ids["b"]: "Pending"}
    assert obj["status"]["partyTaskCreateStatus"][ids["a"]][1]["domainID"] == "bob"
    assert obj["status"]["approveStatus"] == {"alice": "JobAccepted", "bob": "JobAccepted"}
    assert obj["status"]["stageStatus"] == {"alice": "JobCreateStageSucceeded", "bob": "JobCreateStageSucceeded"}

    await set_task(client, ids["a"], "Running")
    await set_task(client, ids["a"], "Succeeded")

    async def a_recorded() -> None:
        assert (await get_job(client, "dag"))["status"]["taskStatus"][ids["a"]] == "Succeeded"

    await eventually(a_recorded)
    assert len(await created_tasks(client, "dag")) == 2  # c still waits for b
    await set_task(client, ids["b"], "Succeeded")
    await wait_created(client, "dag", {"a", "b", "c"})
    await set_task(client, ids["c"], "Succeeded")
    done = await wait_phase(client, "dag", "Succeeded")
    status = done["status"]
    assert status["taskStatus"] == dict.fromkeys(ids.values(), "Succeeded")
    assert status["startTime"] <= status["completionTime"] <= status["lastReconcileTime"]
    assert {c["type"] for c in status["conditions"] if c["status"] == "True"} >= {"JobValidated", "JobStartSucceeded"}


# -- validation -------------------------------------------------------------------------------------

CASES = {
    "unknown-dep": ([task("a"), task("b", "zz")], {}, "task 'b' depends on unknown task alias 'zz'"),
    "cycle": ([task("a", "b"), task("b", "a")], {}, "cycled dependencies: a -> b -> a"),
    "dup-alias": ([task("a"), task("a")], {}, "duplicate task alias 'a'"),
    "dup-id": ([task("a", taskID="same-id"), task("b", taskID="same-id")], {}, "duplicate task ID 'same-id'"),
    "initiator": ([task("a")], {"initiator": "carol"}, "initiator domain 'carol' does not exist"),
    "party": (
        [task("a", parties=[{"domainID": "alice"}, {"domainID": "dave"}])],
        {},
        "task 'a': party domain 'dave' does not exist",
    ),
    "image": ([task("a", appImage="secretflow-image")], {}, "task 'a': AppImage 'secretflow-image' does not exist"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_validation_failure_names_the_culprit(client: Client, case: str) -> None:
    tasks, spec, message = CASES[case]
    name = f"bad-{case}"
    await client.create(KJ, job(name, *tasks, **spec))
    obj = await wait_phase(client, name, "Failed")
    assert obj["status"]["reason"] == "ValidateFailed"
    assert obj["status"]["message"] == message
    cond = next(c for c in obj["status"]["conditions"] if c["type"] == "JobValidated")
    assert cond["status"] == "False" and cond["message"] == message
    assert await created_tasks(client, name) == []

    async def warned() -> None:
        assert [(e["type"], e["reason"], e["message"]) for e in await events_of(client, name)] == [
            ("Warning", "ValidateFailed", message)
        ]

    await eventually(warned)


async def test_more_than_128_tasks_is_refused(client: Client) -> None:
    """The CRD schema (maxItems 128) refuses it at the API, before the controller sees it."""
    body = job("too-many", *(task(f"t{i}") for i in range(129)))
    with pytest.raises(errors.Invalid) as refused:
        await client.create(KJ, body)
    assert "spec.tasks" in refused.value.message


# -- scheduling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("parallelism", [1, 2])
async def test_max_parallelism_counts_pending_and_running_tasks(client: Client, parallelism: int) -> None:
    name = f"par-{parallelism}"
    await client.create(KJ, job(name, task("a"), task("b"), task("c"), maxParallelism=parallelism))
    first = await wait_created(client, name, {"a", "b"} if parallelism == 2 else {"a"})
    await set_task(client, first[0]["metadata"]["name"], "Running")  # Running still counts
    await set_task(client, first[-1]["metadata"]["name"], "Running")
    obj = await wait_phase(client, name, "Running")
    assert len(obj["status"]["taskStatus"]) == parallelism
    await set_task(client, first[0]["metadata"]["name"], "Succeeded")
    more = await wait_created(client, name, {"a", "b", "c"} if parallelism == 2 else {"a", "b"})
    assert len([t for t in more if (t.get("status") or {}).get("phase") != "Succeeded"]) == parallelism


async def test_priority_orders_ready_tasks(client: Client) -> None:
    tasks = [task("low", priority=1), task("high", priority=100), task("mid", priority=50)]
    await client.create(KJ, job("prio", *tasks, maxParallelism=1))
    order: list[str] = []
    for expected in ("high", "mid", "low"):  # maxParallelism 1: exactly the next one by priority appears
        items = await wait_created(client, "prio", {*order, expected})
        newest = next(t for t in items if alias_of(t) == expected)
        order.append(expected)
        await set_task(client, newest["metadata"]["name"], "Succeeded")
    await wait_phase(client, "prio", "Succeeded")


@pytest.mark.parametrize("mode", ["BestEffort", "Strict"])
async def test_tolerable_task_failure_does_not_fail_the_job(client: Client, mode: str) -> None:
    name = f"tol-{mode.lower()}"
    await client.create(KJ, job(name, task("opt", tolerable=True), task("main"), scheduleMode=mode, maxParallelism=2))
    await wait_created(client, name, {"opt", "main"})
    ids = await task_ids(client, name)
    await set_task(client, ids["opt"], "Failed", "party bob: exit code 3", failed_party="bob")
    await set_task(client, ids["main"], "Succeeded")
    obj = await wait_phase(client, name, "Succeeded")
    assert obj["status"]["taskStatus"] == {ids["opt"]: "Failed", ids["main"]: "Succeeded"}


@pytest.mark.parametrize("mode", ["Strict", "BestEffort"])
async def test_critical_failure_fails_strict_at_once_best_effort_after_others(client: Client, mode: str) -> None:
    name = f"crit-{mode.lower()}"
    await client.create(KJ, job(name, task("a"), task("b"), scheduleMode=mode, maxParallelism=2))
    await wait_created(client, name, {"a", "b"})
    ids = await task_ids(client, name)
    reason = "party bob: pod crit-b-0 failed: exit code 2 (ValueError: no column id1)"
    await set_task(client, ids["a"], "Failed", reason, failed_party="bob")
    if mode == "Strict":
        obj = await wait_phase(client, name, "Failed")
        stopped = await client.get(KT, ids["b"], NS)  # the other task was stopped
        assert stopped["status"]["phase"] == "Failed" and stopped["status"]["reason"] == "KusciaJobStopped"
    else:
        obj = await wait_phase(client, name, "Running")
        await set_task(client, ids["b"], "Succeeded")
        obj = await wait_phase(client, name, "Failed")
    assert obj["status"]["message"] == f"task 'a' ({ids['a']}) failed: {reason}"
    assert obj["status"]["completionTime"]

    async def warned() -> None:
        events = {(e["type"], e["reason"], e["message"]) for e in await events_of(client, name)}
        assert ("Warning", "TaskFailed", obj["status"]["message"]) in events

    await eventually(warned)


# -- stage commands ---------------------------------------------------------------------------------


async def test_stop_fails_the_job_and_stops_its_tasks(client: Client) -> None:
    await client.create(KJ, job("stop", task("a")))
    (a,) = await wait_created(client, "stop", {"a"})
    await set_task(client, a["metadata"]["name"], "Running")
    await command(client, "stop", "Stop", 1, trigger="bob")
    obj = await wait_phase(client, "stop", "Failed")
    assert obj["status"]["message"] == "Party: bob execute the cmd: Stop."
    assert obj["status"]["stageStatus"] == {"alice": "JobStopStageSucceeded", "bob": "JobStopStageSucceeded"}
    assert obj["status"]["taskStatus"] == {a["metadata"]["name"]: "Failed"}
    assert obj["metadata"]["annotations"]["atoll.io/job-stage-handled"] == "Stop/1"

    async def stopped() -> None:
        t = await client.get(KT, a["metadata"]["name"], NS)
        assert t["status"]["phase"] == "Failed" and t["status"]["message"] == "Job was stopped"
        assert t["status"]["reason"] == "KusciaJobStopped" and t["status"]["completionTime"]
        assert [p["phase"] for p in t["status"]["partyTaskStatus"]] == ["Failed", "Failed"]

    await eventually(stopped)

    async def recorded() -> None:
        seen = {(e["type"], e["reason"], e["message"]) for e in await events_of(client, "stop")}
        assert ("Normal", "JobStop", "Party: bob execute the cmd: Stop.") in seen, seen

    await eventually(recorded)


async def test_cancel_is_final(client: Client) -> None:
    await client.create(KJ, job("cancel", task("a")))
    await wait_created(client, "cancel", {"a"})
    await command(client, "cancel", "Cancel", 1)
    obj = await wait_phase(client, "cancel", "Cancelled")
    assert obj["status"]["completionTime"]
    await command(client, "cancel", "Restart", 2)

    async def ignored() -> None:
        got = await get_job(client, "cancel")
        assert got["metadata"].get("annotations", {}).get("atoll.io/job-stage-handled") == "Cancel/1"

    await eventually(ignored)  # a Cancelled job is finished: Restart is not acted on
    assert (await get_job(client, "cancel"))["status"]["phase"] == "Cancelled"


async def test_suspend_then_restart_reruns_only_unfinished_tasks(client: Client) -> None:
    await client.create(KJ, job("susp", task("a"), task("b"), task("c", "a", "b"), maxParallelism=2))
    await wait_created(client, "susp", {"a", "b"})
    ids = await task_ids(client, "susp")
    await set_task(client, ids["a"], "Succeeded")
    await set_task(client, ids["b"], "Running")
    await command(client, "susp", "Suspend", 1)
    obj = await wait_phase(client, "susp", "Suspended")
    assert obj["status"]["taskStatus"] == {ids["a"]: "Succeeded", ids["b"]: "Failed"}
    assert "completionTime" not in obj["status"]
    a_uid = (await client.get(KT, ids["a"], NS))["metadata"]["uid"]
    b_uid = (await client.get(KT, ids["b"], NS))["metadata"]["uid"]

    await command(client, "susp", "Restart", 2)

    async def b_recreated() -> None:
        b = await client.get(KT, ids["b"], NS)
        assert b["metadata"]["uid"] != b_uid and not (b.get("status") or {}).get("phase")

    await eventually(b_recreated)
    obj = await wait_phase(client, "susp", "Running")
    assert obj["status"]["stageStatus"]["alice"] == "JobRestartStageSucceeded"
    assert (await client.get(KT, ids["a"], NS))["metadata"]["uid"] == a_uid  # succeeded: kept, not re-run
    await set_task(client, ids["b"], "Succeeded")
    await wait_created(client, "susp", {"a", "b", "c"})
    await set_task(client, ids["c"], "Succeeded")
    await wait_phase(client, "susp", "Succeeded")


async def test_restart_after_failure(client: Client) -> None:
    await client.create(KJ, job("rerun", task("a")))
    (a,) = await wait_created(client, "rerun", {"a"})
    tid = a["metadata"]["name"]
    await set_task(client, tid, "Failed", "party alice: killed", failed_party="alice")
    await wait_phase(client, "rerun", "Failed")
    await command(client, "rerun", "Restart", 1)

    async def recreated() -> None:
        again = await client.get(KT, tid, NS)
        assert again["metadata"]["uid"] != a["metadata"]["uid"]

    await eventually(recreated)
    obj = await wait_phase(client, "rerun", "Running")
    assert "completionTime" not in obj["status"] and not obj["status"].get("message")
    await set_task(client, tid, "Succeeded")
    await wait_phase(client, "rerun", "Succeeded")


# -- admission --------------------------------------------------------------------------------------


async def test_job_outside_cross_domain_is_refused(client: Client) -> None:
    body = job("elsewhere", task("a"))
    body["metadata"]["namespace"] = "default"
    with pytest.raises(errors.Invalid) as refused:
        await client.create(KJ, body, "default")
    assert "belongs in namespace 'cross-domain'" in refused.value.message
    assert refused.value.details is not None
    assert refused.value.details["causes"][0]["field"] == "metadata.namespace"


async def test_task_id_taken_by_another_job_fails_with_create_task_failed(client: Client) -> None:
    await client.create(KJ, job("owner", task("a", taskID="shared-task")))
    await wait_created(client, "owner", {"a"})
    await client.create(KJ, job("thief", task("a", taskID="shared-task")))
    obj = await wait_phase(client, "thief", "Failed")
    assert obj["status"]["reason"] == "CreateTaskFailed"
    assert "'shared-task' is already used by a KusciaTask of owner" in obj["status"]["message"]
