"""DataMesh inside a real lite process (``atoll start`` of a lite with a ``datamesh`` block):
served with the lite's credentials, handed to pods as ``DATAMESH_ADDR``, and ``atoll data add|ls``
against that lite's config."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from atoll.api import kinds
from atoll.datamesh.constants import DOMAINDATAS
from tests.conftest import REPO, RunningServer, eventually, free_port
from tests.datamesh.conftest import ensure_domain
from tests.integration.agents import kill_leftovers
from tests.integration.lite_procs import ATOLL, init_lite, start, stop

pytestmark = pytest.mark.slow


@dataclass
class Lite:
    config: Path
    data_dir: Path
    addr: str
    proc: subprocess.Popen[bytes]


def post(addr: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(f"http://{addr}/api/v1/datamesh/{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def start_lite(master: RunningServer, base: Path, domain: str) -> Lite:
    config = init_lite(master, base, domain)
    doc = yaml.safe_load(config.read_text())
    port = free_port()
    doc["datamesh"] = {"httpPort": port}
    config.write_text(yaml.safe_dump(doc))
    proc = start(config)
    addr = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://{addr}/healthZ", timeout=1):
                return Lite(config, base / domain, addr, proc)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                log = (config.parent / "agent.log").read_text()[-3000:]
                raise AssertionError(f"lite did not serve DataMesh: {log}") from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def lites(master: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Lite]]:
    async def domains() -> None:
        async with master.client() as client:
            for domain in ("alice", "bob"):
                await ensure_domain(client, domain)

    asyncio.run(domains())
    base = tmp_path_factory.mktemp("lite")
    started: dict[str, Lite] = {}
    try:
        for domain in ("alice", "bob"):
            started[domain] = start_lite(master, base, domain)
        yield started
    finally:
        for domain, lite in started.items():
            stop(lite.proc)
            kill_leftovers(base / domain)


@pytest.fixture
def lite(lites: dict[str, Lite]) -> Lite:
    return lites["alice"]


def atoll(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ATOLL, *args], capture_output=True, text=True, cwd=REPO, timeout=60)


def test_lite_serves_its_domain(lite: Lite) -> None:
    reply = post(lite.addr, "domaindatasource/query", {"datasource_id": "default-data-source"})
    assert reply["status"]["code"] == 0, reply
    assert reply["data"]["info"]["localfs"] == {"path": str(lite.data_dir / "var" / "storage" / "data")}


async def test_data_add_and_ls(lite: Lite, master: RunningServer, tmp_path: Path) -> None:
    table = tmp_path / "people.csv"
    table.write_text("id,age\nu1,30\nu2,41\n")
    added = await asyncio.to_thread(atoll, "data", "add", "alice", str(table), "--name", "people",
                                    "--columns", "id:str,age:int", "-c", str(lite.config))
    assert added.returncode == 0, added.stderr
    copied = lite.data_dir / "var" / "storage" / "data" / "people.csv"
    assert copied.read_text() == table.read_text()
    async with master.client() as client:
        obj = await client.get(DOMAINDATAS, "people", "alice")
    assert obj["spec"]["columns"] == [{"name": "id", "type": "str"}, {"name": "age", "type": "int"}]
    assert obj["spec"]["relativeURI"] == "people.csv" and obj["spec"]["author"] == "alice"
    queried = await asyncio.to_thread(post, lite.addr, "domaindata/query", {"domaindata_id": "people"})
    assert queried["data"]["vendor"] == "manual"

    for config in (lite.config, master.data_dir / "atoll.yaml"):  # the lite's identity, or the master's admin
        listed = await asyncio.to_thread(atoll, "data", "ls", "alice", "-c", str(config))
        assert listed.returncode == 0, listed.stderr
        header, row = listed.stdout.splitlines()[:2]
        assert header.split() == ["ID", "NAME", "TYPE", "DATASOURCE", "RELATIVE", "URI", "VENDOR", "COLUMNS"]
        assert row.split() == ["people", "people", "table", "default-data-source", "people.csv", "manual",
                               "id:str,age:int"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "x", "--columns", "id"], "--columns: 'id' must be NAME:TYPE"),
        (["--name", "x", "--columns", "id:str,zip:int"], "['zip'] not in the header"),
        (["--name", "Bad_Name"], "domaindata_id:"),
        (["--name", "x", "--datasource", "nope"], "datasource 'nope' not found"),
    ],
)
def test_data_add_errors_are_one_line(lite: Lite, tmp_path: Path, args: list[str], message: str) -> None:
    table = tmp_path / "t.csv"
    table.write_text("id,age\nu1,30\n")
    result = atoll("data", "add", "alice", str(table), *args, "-c", str(lite.config))
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr


def test_data_add_needs_the_domains_lite(lite: Lite, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("id\n1\n")
    result = atoll("data", "add", "bob", str(table), "--name", "t", "-c", str(lite.config))
    assert result.returncode == 1 and "config of bob's lite" in result.stderr


async def test_pods_get_the_datamesh_address(lite: Lite, master: RunningServer, tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "env-probe", "namespace": "alice"},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kuscia.secretflow/namespace": "alice"},
            "tolerations": [{"key": "kuscia.secretflow/agent", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "main", "image": "app:v1", "command": [
                "sh", "-c", f'echo "$DATAMESH_ADDR $DATAMESH_GRPC_ADDR $ATOLL_PYTHON" > {out}']}],
        },
    }
    async with master.client() as client:
        await client.create(kinds.PODS, pod, "alice")

        async def succeeded() -> None:
            got = await client.get(kinds.PODS, "env-probe", "alice")
            assert (got.get("status") or {}).get("phase") == "Succeeded", got.get("status")

        await eventually(succeeded, 60)
    addr, grpc_addr, python = out.read_text().split()
    assert addr == lite.addr and python == sys.executable  # the lite's interpreter, for Python app images
    assert grpc_addr.startswith("127.0.0.1:") and grpc_addr != addr


def psi_pod(domain: str, me: int, ports: list[int], task_id: str) -> dict[str, Any]:
    parties = ["alice", "bob"]
    cluster = {"parties": [{"name": p, "role": "", "services": [{"portName": "psi",
                                                                "endpoints": [f"127.0.0.1:{ports[i]}"]}]}
                           for i, p in enumerate(parties)], "selfPartyIdx": me, "selfEndpointIdx": 0}
    config = {"sf_cluster_desc": {"parties": parties}, "sf_input_ids": ["people-a", "people-b"],
              "sf_output_ids": ["psi-output", "psi-output"], "sf_output_uris": ["psi-output.csv"] * 2,
              "sf_node_eval_param": {"attr_paths": ["input/input_ds1/keys", "input/input_ds2/keys"],
                                     "attrs": [{"ss": ["id"]}, {"ss": ["id"]}]}}
    env = {"TASK_ID": task_id, "TASK_INPUT_CONFIG": json.dumps(config), "TASK_CLUSTER_DEFINE": json.dumps(cluster),
           "ALLOCATED_PORTS": json.dumps({"ports": [{"name": "psi", "port": ports[me], "scope": "Cluster",
                                                     "protocol": "HTTP"}]})}
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{task_id}-0", "namespace": domain},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kuscia.secretflow/namespace": domain},
            "tolerations": [{"key": "kuscia.secretflow/agent", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "psi", "image": "atoll-psi:0.1", "command": ["atoll-psi"],
                            "ports": [{"name": "psi", "containerPort": ports[me]}],
                            "env": [{"name": k, "value": v} for k, v in env.items()]}],
        },
    }


async def test_psi_image_runs_as_pods_on_two_lites(lites: dict[str, Lite], master: RunningServer,
                                                   tmp_path: Path) -> None:
    """The built-in image (C4) loaded into each lite; its pods find DataMesh and Python from the lite."""
    image = REPO / "atoll" / "apps" / "psi"
    rows = {"alice": [f"id{i}" for i in range(300)], "bob": [f"id{i}" for i in range(200, 450)]}
    for domain, suffix in (("alice", "a"), ("bob", "b")):
        lite = lites[domain]
        loaded = await asyncio.to_thread(atoll, "image", "load", "-c", str(lite.config), str(image),
                                         "--name", "atoll-psi:0.1")
        assert loaded.returncode == 0, loaded.stderr
        table = tmp_path / f"people-{suffix}.csv"
        table.write_text("id,x\n" + "".join(f"{k},{domain}\n" for k in rows[domain]))
        added = await asyncio.to_thread(atoll, "data", "add", domain, str(table), "--name", f"people-{suffix}",
                                        "-c", str(lite.config))
        assert added.returncode == 0, added.stderr
    ports = [free_port(), free_port()]
    async with master.client() as client:
        for me, domain in enumerate(("alice", "bob")):
            await client.create(kinds.PODS, psi_pod(domain, me, ports, "psi-pods"), domain)

        async def both_succeeded() -> None:
            for domain in ("alice", "bob"):
                got = await client.get(kinds.PODS, "psi-pods-0", domain)
                assert (got.get("status") or {}).get("phase") == "Succeeded", (domain, got.get("status"))

        await eventually(both_succeeded, 90)
        for domain in ("alice", "bob"):
            out = await client.get(DOMAINDATAS, "psi-output", domain)
            assert out["spec"]["vendor"] == "atoll-psi" and out["spec"]["author"] == domain
    for domain in ("alice", "bob"):
        written = (lites[domain].data_dir / "var" / "storage" / "data" / "psi-output.csv").read_text().splitlines()
        assert written[0] == "id,x" and sorted(r.split(",")[0] for r in written[1:]) == sorted(
            f"id{i}" for i in range(200, 300))
