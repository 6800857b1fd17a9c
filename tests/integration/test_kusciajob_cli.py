"""``atoll job describe`` and ``atoll job logs`` as real subprocesses against a real master (and, for
logs, a real agent running the task's pod as a process), and the quickstart job of Kuscia's
documentation (§7) applied unchanged with the real kubectl."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from atoll.api import errors, kinds
from atoll.client import Client
from tests.conftest import RunningServer, eventually, kubectl_binary, kubectl_environ
from tests.integration.agents import pod, running_agent
from tests.integration.jobs import (
    KJ,
    job,
    run_atoll,
    running_master,
    seed,
    set_task,
    task,
    task_ids,
    wait_created,
    wait_phase,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]  # atoll, kubectl, agent processes


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def master(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    async with running_master(tmp_path_factory.mktemp("kj-cli") / "master") as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(master: RunningServer) -> AsyncIterator[Client]:
    async with master.client() as c:
        await seed(c, "alice", "bob")
        yield c


async def test_describe_shows_the_dag_party_phases_and_first_failure(master: RunningServer, client: Client) -> None:
    await client.create(KJ, job("desc", task("prep"), task("train", "prep"), scheduleMode="BestEffort"))
    await wait_created(client, "desc", {"prep"})
    ids = await task_ids(client, "desc")
    reason = "pod desc-prep-0 exited with code 2: ValueError: column id1 not found"
    await set_task(client, ids["prep"], "Failed", f"party bob: {reason}", failed_party="bob")
    await wait_phase(client, "desc", "Failed")

    async def warned() -> str:
        rc, out, err = await run_atoll(master, "job", "describe", "desc")
        assert rc == 0, err
        assert "Warning events" in out, out
        return out

    out = await eventually(warned, 30)
    lines = out.splitlines()
    assert any(line.startswith("Phase") and "Failed" in line for line in lines), out
    message = f"task 'prep' ({ids['prep']}) failed: party bob: {reason}"
    assert any("Message" in line and message in line for line in lines), out
    prep = next(i for i, line in enumerate(lines) if f"prep  {ids['prep']}" in line)
    assert "Failed" in lines[prep]
    assert "alice: Running" in lines[prep + 1] and f"bob: Failed  party bob: {reason}" in lines[prep + 2], out
    train = next(line for line in lines if f"train  {ids['train']}" in line)
    assert "after prep" in train and "not created (waiting for dependencies)" in train
    failure_row = next(line for line in lines if "│ bob" in line)
    assert "prep" in failure_row and reason in failure_row, out
    assert any("TaskFailed" in line for line in lines)

    rc, _, err = await run_atoll(master, "job", "describe", "nope")
    assert rc == 1 and err.strip() == 'error: kusciajobs.kuscia.secretflow "nope" not found'


async def test_logs_print_the_task_pods_logs(master: RunningServer, client: Client, tmp_path: Path) -> None:
    await client.create(KJ, job("logjob", task("a")))
    (kt,) = await wait_created(client, "logjob", {"a"})
    tid = kt["metadata"]["name"]
    try:
        await client.create(kinds.NAMESPACES, {"metadata": {"name": "alice"}})
    except errors.AlreadyExists:
        pass
    async with running_agent(master, tmp_path / "alice", "alice"):
        body = pod(f"{tid}-0", "alice-node", ["sh", "-c", "echo psi done by alice"], namespace="alice",
                   restartPolicy="Never")  # fmt: skip
        body["metadata"]["labels"] = {"kuscia.secretflow/task-uid": kt["metadata"]["uid"]}
        await client.create(kinds.PODS, body)

        async def finished() -> None:
            got = await client.get(kinds.PODS, f"{tid}-0", "alice")
            assert got["status"].get("phase") == "Succeeded", got["status"]

        await eventually(finished, 30)
        rc, out, err = await run_atoll(master, "job", "logs", "logjob", "--party", "alice")
        assert rc == 0, err
        assert out.splitlines() == [f"==> task a / party alice / pod {tid}-0 [main] <==", "psi done by alice"]
        rc, out, _ = await run_atoll(master, "job", "logs", "logjob", "--party", "bob")
        assert out.strip() == f"==> task a ({tid}): no pods in bob <=="
    rc, _, err = await run_atoll(master, "job", "logs", "logjob", "--task", "zz")
    assert rc == 2 and "job logjob has no task 'zz' (tasks: a)" in err


QUICKSTART_JOB = """\
apiVersion: kuscia.secretflow/v1alpha1
kind: KusciaJob
metadata:
  name: secretflow-task-20230406162606
  namespace: cross-domain
spec:
  initiator: alice
  scheduleMode: BestEffort
  maxParallelism: 2
  tasks:
    - taskID: secretflow-task-20230406162606-single-psi
      alias: single-psi
      priority: 100
      appImage: atoll-psi
      taskInputConfig: '{"sf_datasource_config":{"alice":{"id":"default-data-source"},"bob":{"id":"default-data-source"}},"sf_input_ids":["alice-table","bob-table"],"sf_output_uris":["psi-output.csv","psi-output.csv"]}'
      parties:
        - domainID: alice
          bandwidthLimits:
            - destinationID: bob
              limitKBps: 100
        - domainID: bob
          bandwidthLimits:
            - destinationID: alice
              limitKBps: 100
"""  # noqa: E501


async def test_quickstart_job_applies_unchanged_with_kubectl(
    master: RunningServer, client: Client, tmp_path: Path
) -> None:
    kubectl = kubectl_binary()
    manifest = tmp_path / "job.yaml"
    manifest.write_text(QUICKSTART_JOB)

    async def run(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            kubectl, "--kubeconfig", str(master.kubeconfig), *args, env=kubectl_environ(tmp_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        return out.decode()

    assert "created" in await run("apply", "-f", str(manifest))
    name, tid = "secretflow-task-20230406162606", "secretflow-task-20230406162606-single-psi"
    (created,) = await wait_created(client, name, {"single-psi"})
    assert created["metadata"]["name"] == tid
    parties = created["spec"]["parties"]
    assert [p["domainID"] for p in parties] == ["alice", "bob"]
    assert parties[0]["bandwidthLimits"] == [{"destinationID": "bob", "limitKBps": 100}]
    await set_task(client, tid, "Succeeded")
    await wait_phase(client, name, "Succeeded")
    table = (await run("get", "kj", "-n", "cross-domain", name)).splitlines()
    assert table[0].split() == ["NAME", "STARTTIME", "COMPLETIONTIME", "LASTRECONCILETIME", "PHASE"]
    assert table[1].split()[0] == name and table[1].split()[-1] == "Succeeded"
