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


@pytest.fixture(scope="module")
def lite(master: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lite]:
    async def domain() -> None:
        async with master.client() as client:
            await ensure_domain(client, "alice")

    asyncio.run(domain())
    base = tmp_path_factory.mktemp("lite")
    config = init_lite(master, base, "alice")
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
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                log = (config.parent / "agent.log").read_text()[-3000:]
                raise AssertionError(f"lite did not serve DataMesh: {log}") from None
            time.sleep(0.1)
    try:
        yield Lite(config, base / "alice", addr, proc)
    finally:
        stop(proc)
        kill_leftovers(base / "alice")


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

    listed = await asyncio.to_thread(atoll, "data", "ls", "alice", "-c", str(lite.config))
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
            "containers": [{"name": "main", "image": "app:v1",
                            "command": ["sh", "-c", f'echo "$DATAMESH_ADDR $ATOLL_PYTHON" > {out}']}],
        },
    }
    async with master.client() as client:
        await client.create(kinds.PODS, pod, "alice")

        async def succeeded() -> None:
            got = await client.get(kinds.PODS, "env-probe", "alice")
            assert (got.get("status") or {}).get("phase") == "Succeeded", got.get("status")

        await eventually(succeeded, 60)
    addr, python = out.read_text().split()
    assert addr == lite.addr and python == sys.executable  # the lite's interpreter, for Python app images
