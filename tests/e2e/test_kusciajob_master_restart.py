"""Issue 10 end to end: the master (a real ``atoll start`` with every controller) is killed with
SIGKILL while the first task of a running KusciaJob runs on two real RunP lites (alice and bob),
then restarted on the same data dir. The job must still succeed, with no KusciaTask created twice,
no pod process started twice and no port handed to two live tasks at once.

The DAG is ``a`` then ``b`` and ``c`` in parallel (``maxParallelism: 2``), so two tasks hold ports
at the same time after the restart, when the port allocator's memory is empty. Every task process
appends one line to ``starts.log`` when it starts and one to ``ends.log`` when it ends (with the
ports it was given): the line counts show what ran how often, the times show what overlapped.
"""

from __future__ import annotations

import functools
import itertools
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from atoll.api import kinds
from atoll.client import Client
from tests.conftest import eventually, start_master_process
from tests.integration.agents import kill_leftovers
from tests.integration.jobs import AIMG, KJ, KT, NS, alias_of, created_tasks, job, seed, task
from tests.integration.lite_procs import init_lite, node_ready, start, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

JSON = dict[str, Any]
DOMAINS = ("alice", "bob")
IMAGE = "restart-app"
RUN_SECONDS = 4
LEADER_TAKEOVER = 60.0
"""The restarted master waits for the killed one's controller Lease (12 s) to expire first."""

SCRIPT = """
import json, os, pathlib, sys, time
out = pathlib.Path(json.loads(os.environ["TASK_INPUT_CONFIG"])["out"])
line = {
    "task": os.environ["TASK_ID"], "domain": os.environ["KUSCIA_DOMAIN_ID"], "pid": os.getpid(),
    "ports": json.loads(os.environ["ALLOCATED_PORTS"]), "port_env": os.environ.get("KUSCIA_PORT_SVC_NUMBER"),
}
def append(name, record):
    with open(out / name, "a") as f:
        f.write(json.dumps(record) + "\\n")
append("starts.log", {**line, "time": time.time()})
time.sleep(float(sys.argv[1]))
append("ends.log", {**line, "time": time.time()})
"""


def app_image() -> JSON:
    container = {
        "name": "main",
        "workingDir": "/",
        "command": [sys.executable, "-c", SCRIPT, str(RUN_SECONDS)],
        "ports": [{"name": "svc", "scope": "Cluster", "protocol": "GRPC"}],
    }
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "AppImage",
        "metadata": {"name": IMAGE},
        "spec": {
            "image": {"name": "app", "tag": "v1"},
            "deployTemplates": [{"name": "main", "replicas": 1, "spec": {"containers": [container]}}],
        },
    }


def records(path: Path) -> list[JSON]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def task_ports(kt: JSON) -> set[int]:
    """Every port ``status.allocatedPorts`` of a KusciaTask holds (any domain, any role)."""
    entries = (kt.get("status") or {}).get("allocatedPorts") or []
    return {int(p) for e in entries for p in (e.get("namedPort") or {}).values()}


def env_ports(record: JSON) -> set[int]:
    return {int(p["port"]) for p in record["ports"]["ports"]}


async def phase_of(client: Client, name: str) -> str:
    return str(((await client.get(KT, name, NS)).get("status") or {}).get("phase", ""))


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()  # SIGKILL: no graceful shutdown, nothing flushed
    proc.wait(timeout=15)


async def test_job_survives_a_master_killed_mid_task(tmp_path: Path) -> None:
    data_dir = tmp_path / "master"
    data_dir.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    master, server = start_master_process(data_dir)
    lites: list[subprocess.Popen[bytes]] = []
    try:
        async with Client.from_kubeconfig(server.kubeconfig) as client:
            await seed(client, *DOMAINS)
            for domain in DOMAINS:
                await eventually(functools.partial(client.get, kinds.NAMESPACES, domain), 30)
            lites = [start(init_lite(server, tmp_path / "lites", d)) for d in DOMAINS]
            for domain in DOMAINS:
                await eventually(functools.partial(node_ready, client, f"{domain}-node"), 60)
            await client.create(AIMG, app_image())
            config = json.dumps({"out": str(out)})
            tasks = [task("a", appImage=IMAGE, taskInputConfig=config),
                     task("b", "a", appImage=IMAGE, taskInputConfig=config),
                     task("c", "a", appImage=IMAGE, taskInputConfig=config)]  # fmt: skip
            await client.create(KJ, job("restart", *tasks, maxParallelism=2))

            async def first_running() -> JSON:
                created = await created_tasks(client, "restart")
                assert len(created) == 1, (created, (await client.get(KJ, "restart", NS)).get("status"))
                assert await phase_of(client, created[0]["metadata"]["name"]) == "Running"
                assert len(records(out / "starts.log")) >= 1  # a pod process of the task runs
                return created[0]

            first: JSON = await eventually(first_running, 60)
            assert not records(out / "ends.log"), "the first task ended before the master was killed"
        kill(master)
        master, server = start_master_process(data_dir)
        async with Client.from_kubeconfig(server.kubeconfig) as client:

            async def job_succeeded() -> JSON:
                obj = await client.get(KJ, "restart", NS)
                phase = (obj.get("status") or {}).get("phase")
                assert phase != "Failed", obj.get("status")
                assert phase == "Succeeded", obj.get("status")
                return obj

            await eventually(job_succeeded, LEADER_TAKEOVER + 6 * RUN_SECONDS + 30, every=0.5)
            kts = await created_tasks(client, "restart")
            by_alias = {alias_of(t): t for t in kts}
            assert sorted(alias_of(t) for t in kts) == ["a", "b", "c"]  # one KusciaTask per task
            assert by_alias["a"]["metadata"]["uid"] == first["metadata"]["uid"]  # not created again
            assert len({t["metadata"]["uid"] for t in kts}) == 3
            assert all((t.get("status") or {}).get("phase") == "Succeeded" for t in kts)

        starts, ends = records(out / "starts.log"), records(out / "ends.log")
        names = {t["metadata"]["name"] for t in kts}
        expected = Counter({(n, d): 1 for n in names for d in DOMAINS})
        assert Counter((r["task"], r["domain"]) for r in starts) == expected, starts  # no pod started twice
        assert Counter((r["task"], r["domain"]) for r in ends) == expected, ends

        # A pod's ports are its task's ports (env = status), and no two tasks hold one port at once:
        # neither in status (tasks whose lifetimes overlap) nor in the processes (runs that overlap).
        status_ports = {t["metadata"]["name"]: task_ports(t) for t in kts}
        for r in starts:
            assert env_ports(r) and env_ports(r) <= status_ports[r["task"]], (r, status_ports)
            assert r["port_env"] and int(r["port_env"]) in env_ports(r)
        assert not status_ports[by_alias["b"]["metadata"]["name"]] & status_ports[by_alias["c"]["metadata"]["name"]]
        end_of = {(r["task"], r["domain"]): r["time"] for r in ends}
        runs = [(r["time"], end_of[(r["task"], r["domain"])], r["task"], env_ports(r)) for r in starts]
        for (s1, e1, t1, p1), (s2, e2, t2, p2) in itertools.combinations(runs, 2):
            if t1 != t2 and s1 < e2 and s2 < e1:
                assert not p1 & p2, f"{t1} and {t2} ran at once with ports {p1 & p2}"
    finally:
        kill(master)
        for proc in lites:
            stop(proc)
        for domain in DOMAINS:
            kill_leftovers(tmp_path / "lites" / domain)
