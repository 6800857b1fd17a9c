"""A three-task DAG KusciaJob end to end: job controller → KusciaTask controller → co-scheduler →
real RunP agents for alice and bob, each task a real process per party that reads its cluster
define and allocated ports, writes a file and exits.

Needs the KusciaTask controllers and their two-domain test network (branch ``tasks``); skipped
until they are in the tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest

from atoll.api import errors, kinds
from atoll.controllers import ControllerContext
from atoll.runtime import Manager
from tests.integration.jobs import KJ, events_of, job, run_atoll, task, wait_phase

try:
    from tests.conftest import RunningServer, eventually
except ImportError:  # tests/ is not a package: pytest put tests/ on sys.path
    from conftest import RunningServer, eventually  # type: ignore[no-redef]

network = pytest.importorskip("tests.integration.task_network", reason="needs the KusciaTask controllers")
pytest.importorskip("atoll.controllers.kusciatask", reason="needs the KusciaTask controllers")


async def atoll_cli(server: RunningServer, *args: str) -> str:
    rc, out, err = await run_atoll(server, *args)
    assert rc == 0, err
    return out


@pytest.mark.slow
async def test_three_task_dag_job_succeeds_on_real_agents(tmp_path: Path) -> None:
    from atoll.controllers import kusciajob

    out = tmp_path / "out"
    out.mkdir()
    async with network.task_network(tmp_path) as net:
        client = net.client
        for domain in ("alice", "bob"):
            try:
                await client.create(kinds.DOMAINS, {"metadata": {"name": domain}, "spec": {}})
            except errors.AlreadyExists:
                pass
        manager = Manager(client)
        kusciajob.setup(manager, ControllerContext(client))
        jobs = asyncio.create_task(manager.run())
        try:
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
        finally:
            jobs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jobs
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
    from atoll.controllers import kusciajob

    out = tmp_path / "out"
    out.mkdir()
    async with network.task_network(tmp_path) as net:
        client = net.client
        for domain in ("alice", "bob"):
            await client.create(kinds.DOMAINS, {"metadata": {"name": domain}, "spec": {}})
        manager = Manager(client)
        kusciajob.setup(manager, ControllerContext(client))
        jobs = asyncio.create_task(manager.run())
        try:
            parties = [{"domainID": "alice", "role": "host"}, {"domainID": "bob", "role": "guest"}]
            config = json.dumps({"out": str(out), "exit": {"bob": 3}})
            await client.create(KJ, job("e2e-fail", task("psi", appImage="atoll-test", parties=parties,
                                                          taskInputConfig=config)))  # fmt: skip
            failed = await wait_phase(client, "e2e-fail", "Failed", within=120)

            async def warned() -> None:
                events = await events_of(client, "e2e-fail")
                seen = {(e["type"], e["reason"], e["message"]) for e in events}
                assert ("Warning", "TaskFailed", failed["status"]["message"]) in seen, seen

            await eventually(warned)
            logs = await atoll_cli(net.server, "job", "logs", "e2e-fail", "--party", "bob")
            described = await atoll_cli(net.server, "job", "describe", "e2e-fail")
        finally:
            jobs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jobs
    message = failed["status"]["message"]
    tid = failed["spec"]["tasks"][0]["taskID"]
    assert message.startswith(f"task 'psi' ({tid}) failed: bob/guest: pod {tid}-guest-0 "), message
    assert "exited with code 3" in message and "bob gives up: no input table" in message
    assert f"==> task psi / party bob / pod {tid}-guest-0 [main] <==" in logs
    assert "bob gives up: no input table" in logs  # the failed pod was kept with its log
    bob_row = next(line for line in described.splitlines() if "│ bob" in line)
    assert "psi" in bob_row and "exited with code 3" in bob_row, described
