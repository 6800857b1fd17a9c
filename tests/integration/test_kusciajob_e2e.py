"""KusciaJobs end to end: job controller → KusciaTask controller → co-scheduler → real RunP agents
for alice and bob (the tasks' two-domain network of ``tests/integration/task_network.py``), each
task a real process per party.

A three-task DAG succeeds (each process reads its cluster define and allocated ports and writes a
file); a party's failure reaches the job message, an Event, ``atoll job describe`` and ``atoll job
logs``; Stop ends both parties' running pods; Suspend then Restart re-runs only the unfinished task.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from atoll.api import errors, kinds
from tests.conftest import RunningServer, eventually
from tests.integration import task_network as network
from tests.integration.jobs import (
    AIMG,
    KJ,
    KT,
    NS,
    alias_of,
    command,
    create_domains,
    events_of,
    job,
    job_controller,
    run_atoll,
    task,
    wait_created,
    wait_phase,
)


async def atoll_cli(server: RunningServer, *args: str) -> str:
    rc, out, err = await run_atoll(server, *args)
    assert rc == 0, err
    return out


@pytest.mark.slow
async def test_three_task_dag_job_succeeds_on_real_agents(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    async with network.task_network(tmp_path) as net:
        client = net.client
        await create_domains(client, "alice", "bob")
        async with job_controller(client):
            parties = [{"domainID": "alice", "role": "host"}, {"domainID": "bob", "role": "guest"}]
            fields = {"appImage": "atoll-test", "parties": parties, "taskInputConfig": json.dumps({"out": str(out)})}
            body = job(
                "e2e",
                task("left", **fields),
                task("right", **fields),
                task("join", "left", "right", **fields),
                maxParallelism=2,
            )
            await client.create(KJ, body)
            done = await wait_phase(client, "e2e", "Succeeded", within=120)
    ids = {t["alias"]: t["taskID"] for t in done["spec"]["tasks"]}
    assert done["status"]["taskStatus"] == dict.fromkeys(ids.values(), "Succeeded")
    records = {p.name: json.loads(p.read_text()) for p in out.iterdir()}
    assert sorted(records) == sorted(f"{tid}-{d}.json" for tid in ids.values() for d in ("alice", "bob"))
    for tid in ids.values():
        alice, bob = records[f"{tid}-alice.json"], records[f"{tid}-bob.json"]
        assert [p["name"] for p in alice["cluster_define"]["parties"]] == ["alice", "bob"]
        for record in (alice, bob):
            ports = [p["port"] for p in record["allocated_ports"]["ports"]]
            assert len(ports) == len(set(ports)) == 2  # svc and ctl, distinct


@pytest.mark.slow
async def test_a_party_failure_reaches_the_job_naming_the_party(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    async with network.task_network(tmp_path) as net:
        client = net.client
        await create_domains(client, "alice", "bob")
        async with job_controller(client):
            parties = [{"domainID": "alice", "role": "host"}, {"domainID": "bob", "role": "guest"}]
            config = json.dumps({"out": str(out), "exit": {"bob": 3}})
            await client.create(KJ, job("e2e-fail", task("psi", appImage="atoll-test", parties=parties,
                                                          taskInputConfig=config)))  # fmt: skip
            failed = await wait_phase(client, "e2e-fail", "Failed", within=120)

            async def warned() -> None:
                events = await events_of(client, "e2e-fail")
                seen = [(e["type"], e["reason"], e["message"]) for e in events]
                assert seen == [("Warning", "TaskFailed", failed["status"]["message"])], seen  # said once

            await eventually(warned)
            logs = await atoll_cli(net.server, "job", "logs", "e2e-fail", "--party", "bob")
            described = await atoll_cli(net.server, "job", "describe", "e2e-fail")
    message = failed["status"]["message"]
    tid = failed["spec"]["tasks"][0]["taskID"]
    assert message.startswith(f"task 'psi' ({tid}) failed: bob/guest: pod {tid}-guest-0 "), message
    assert "exited with code 3" in message and "bob gives up: no input table" in message
    assert f"==> task psi / party bob / pod {tid}-guest-0 [main] <==" in logs
    assert "bob gives up: no input table" in logs  # the failed pod was kept with its log
    pod_line = next(line for line in described.splitlines() if f"└── pod {tid}-guest-0 " in line)
    assert "Failed on bob-node" in pod_line and "exited with code 3" in pod_line, described
    bob_row = next(line for line in described.splitlines() if "│ bob" in line)
    assert "psi" in bob_row and "exited with code 3" in bob_row, described


def sleeper_image() -> dict[str, object]:
    """An AppImage whose task runs until it is stopped."""
    container = {
        "name": "main",
        "workingDir": "/",
        "command": [sys.executable, "-c", "import time; print('working', flush=True); time.sleep(300)"],
        "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}},
    }
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "AppImage",
        "metadata": {"name": "atoll-sleeper"},
        "spec": {
            "image": {"name": "app", "tag": "v1"},
            "deployTemplates": [{"name": "main", "replicas": 1, "spec": {"containers": [container]}}],
        },
    }


@pytest.mark.slow
async def test_stop_ends_the_running_pods_of_both_parties(tmp_path: Path) -> None:
    async with network.task_network(tmp_path) as net:
        client = net.client
        await create_domains(client, "alice", "bob")
        await client.create(AIMG, sleeper_image())
        async with job_controller(client):
            parties = [{"domainID": "alice", "role": "host"}, {"domainID": "bob", "role": "guest"}]
            await client.create(KJ, job("e2e-stop", task("long", appImage="atoll-sleeper", parties=parties)))
            (kt,) = await wait_created(client, "e2e-stop", {"long"}, within=30)
            tid = kt["metadata"]["name"]

            async def both_running() -> list[tuple[str, str]]:
                status = (await client.get(KT, tid, NS)).get("status") or {}
                pods = [(p["namespace"], p["podName"]) for p in (status.get("podStatuses") or {}).values()
                        if p.get("podPhase") == "Running"]  # fmt: skip
                assert len(pods) == 2, status
                return pods

            pods = await eventually(both_running, 60)
            await command(client, "e2e-stop", "Stop", 1)
            stopped = await wait_phase(client, "e2e-stop", "Failed", within=30)
            assert stopped["status"]["message"] == "Party: alice execute the cmd: Stop."

            async def pods_gone() -> None:
                for namespace, name in pods:
                    try:
                        await client.get(kinds.PODS, name, namespace)
                    except errors.NotFound:
                        continue
                    raise AssertionError(f"pod {namespace}/{name} still exists")

            await eventually(pods_gone, 60)
            final = await client.get(KT, tid, NS)
            assert final["status"]["phase"] == "Failed" and final["status"]["reason"] == "KusciaJobStopped"


@pytest.mark.slow
async def test_suspend_then_restart_reruns_only_the_unfinished_task(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    async with network.task_network(tmp_path) as net:
        client = net.client
        await create_domains(client, "alice", "bob")
        await client.create(AIMG, sleeper_image())
        async with job_controller(client):
            parties = [{"domainID": "alice", "role": "host"}, {"domainID": "bob", "role": "guest"}]
            quick = task("quick", appImage="atoll-test", parties=parties, taskInputConfig=json.dumps({"out": str(out)}))
            long = task("long", "quick", appImage="atoll-sleeper", parties=parties)
            await client.create(KJ, job("e2e-susp", quick, long))
            by_alias = {alias_of(t): t for t in await wait_created(client, "e2e-susp", {"quick", "long"}, 60)}
            first_long = by_alias["long"]["metadata"]["uid"]

            async def long_running() -> None:
                status = (await client.get(KT, by_alias["long"]["metadata"]["name"], NS)).get("status") or {}
                assert status.get("phase") == "Running", status

            await eventually(long_running, 60)
            await command(client, "e2e-susp", "Suspend", 1)
            await wait_phase(client, "e2e-susp", "Suspended", within=30)
            await command(client, "e2e-susp", "Restart", 2)

            async def rerun() -> None:
                again = await client.get(KT, by_alias["long"]["metadata"]["name"], NS)
                assert again["metadata"]["uid"] != first_long
                assert (again.get("status") or {}).get("phase") == "Running", again.get("status")

            await eventually(rerun, 60)
            job_now = await wait_phase(client, "e2e-susp", "Running")
            assert job_now["status"]["taskStatus"][by_alias["quick"]["metadata"]["name"]] == "Succeeded"
            quick_now = await client.get(KT, by_alias["quick"]["metadata"]["name"], NS)
            assert quick_now["metadata"]["uid"] == by_alias["quick"]["metadata"]["uid"]  # not re-run
            assert len(list(out.iterdir())) == 2  # the quick task ran once per party, not again
            await command(client, "e2e-susp", "Stop", 3)
            await wait_phase(client, "e2e-susp", "Failed", within=30)
