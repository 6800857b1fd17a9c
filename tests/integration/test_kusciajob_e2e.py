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
from tests.integration.jobs import KJ, job, task, wait_phase

network = pytest.importorskip("tests.integration.task_network", reason="needs the KusciaTask controllers")
pytest.importorskip("atoll.controllers.kusciatask", reason="needs the KusciaTask controllers")


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
