"""The ``atoll-psi`` app: two real processes on localhost pointed at each other, reading and
registering data through real DataMesh services (alice's and bob's) against a real master."""

from __future__ import annotations

import asyncio
import csv
import os
import random
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from atoll.client import Client
from atoll.datamesh.constants import DOMAINDATAS
from tests.conftest import REPO, free_port
from tests.datamesh.conftest import Mesh, call

pytestmark = pytest.mark.slow
PSI_BIN = REPO / "atoll" / "apps" / "psi" / "bin" / "atoll-psi"


def write_csv(path: Path, rows: list[list[str]], header: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


async def register_table(mesh: Mesh, data_id: str, rows: list[list[str]], header: list[str]) -> None:
    write_csv(mesh.data_root / f"{data_id}.csv", rows, header)
    result = await call(mesh, "domaindata/create", {
        "domaindata_id": data_id, "type": "table", "relative_uri": f"{data_id}.csv",
        "columns": [{"name": h, "type": "str"} for h in header]})
    assert result["status"]["code"] == 0, result


def task_env(task_id: str, me: int, ports: list[int], mesh: Mesh, attrs: dict[str, Any],
             outputs: tuple[str, str] = ("psi-out", "psi-out")) -> dict[str, str]:
    parties = ["alice", "bob"]
    cluster = {"parties": [{"name": p, "role": "", "services": [{"portName": "psi",
                                                                "endpoints": [f"127.0.0.1:{ports[i]}"]}]}
                           for i, p in enumerate(parties)], "selfPartyIdx": me, "selfEndpointIdx": 0}
    paths, values = zip(*attrs.items(), strict=True) if attrs else ((), ())
    config = {
        "sf_cluster_desc": {"parties": parties},
        "sf_input_ids": [f"{task_id}-alice", f"{task_id}-bob"],
        "sf_output_ids": list(outputs),
        "sf_output_uris": [f"{o}.csv" for o in outputs],
        "sf_node_eval_param": {"domain": "data_prep", "name": "psi", "version": "1.0.0",
                               "attr_paths": list(paths), "attrs": list(values)},
        "atoll_psi": {"batch_size": 64, "connect_timeout_seconds": 30, "peer_timeout_seconds": 30},
    }
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update({
        "ATOLL_PYTHON": sys.executable, "PYTHONPATH": str(REPO), "TASK_ID": task_id,
        "TASK_INPUT_CONFIG": orjson.dumps(config).decode(), "TASK_CLUSTER_DEFINE": orjson.dumps(cluster).decode(),
        "ALLOCATED_PORTS": orjson.dumps({"ports": [{"name": "psi", "port": ports[me], "scope": "Cluster",
                                                    "protocol": "HTTP"}]}).decode(),
        "DATAMESH_ADDR": mesh.server.addr, "KUSCIA_DOMAIN_ID": mesh.domain,
    })
    return env


async def run_psi(meshes: dict[str, Mesh], task_id: str, attrs: dict[str, Any],
                  **kw: Any) -> list[tuple[int, str, str]]:
    """Both parties as real processes; (exit code, stdout, stderr) per party."""
    ports = [free_port(), free_port()]
    procs = [await asyncio.create_subprocess_exec(
        str(PSI_BIN), env=task_env(task_id, i, ports, meshes[p], attrs, **kw),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for i, p in enumerate(("alice", "bob"))]
    results = []
    async with asyncio.timeout(120):
        for proc in procs:
            out, err = await proc.communicate()
            results.append((proc.returncode or 0, out.decode(), err.decode()))
    return results


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def keys_attr(**extra: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {"input/input_ds1/keys": {"ss": ["id"]}, "input/input_ds2/keys": {"ss": ["uid"]}}
    attrs.update(extra)
    return attrs


async def test_random_sets_with_known_overlap(meshes: dict[str, Mesh], admin: Client) -> None:
    rng = random.Random(7)
    common = {f"c{rng.getrandbits(40)}" for _ in range(700)}
    only_a = {f"a{rng.getrandbits(40)}" for _ in range(900)}
    only_b = {f"b{rng.getrandbits(40)}" for _ in range(500)}
    a_rows = [[k, str(i)] for i, k in enumerate(sorted(common | only_a))]
    rng.shuffle(a_rows)
    b_rows = [[f"x{i}", k] for i, k in enumerate(sorted(common | only_b))]
    await register_table(meshes["alice"], "t1-alice", a_rows, ["id", "score"])
    await register_table(meshes["bob"], "t1-bob", b_rows, ["name", "uid"])

    results = await run_psi(meshes, "t1", keys_attr())
    assert [r[0] for r in results] == [0, 0], results
    summaries = [orjson.loads(r[1].strip().splitlines()[-1]) for r in results]
    assert [s["intersection"] for s in summaries] == [700, 700]
    assert summaries[0]["peer_distinct"] == len(common | only_b)

    alice_out = read_csv(meshes["alice"].data_root / "psi-out.csv")
    assert alice_out[0] == ["id", "score"]
    assert [r[0] for r in alice_out[1:]] == sorted(common)  # sort_result defaults to true
    assert {tuple(r) for r in alice_out[1:]} == {tuple(r) for r in a_rows if r[0] in common}
    bob_out = read_csv(meshes["bob"].data_root / "psi-out.csv")
    assert bob_out[0] == ["name", "uid"] and sorted(r[1] for r in bob_out[1:]) == sorted(common)

    for domain in ("alice", "bob"):
        registered = await admin.get(DOMAINDATAS, "psi-out", domain)
        assert registered["spec"]["vendor"] == "atoll-psi" and registered["spec"]["relativeURI"] == "psi-out.csv"
        assert registered["spec"]["attributes"]["task_id"] == "t1"


async def test_empty_overlap(meshes: dict[str, Mesh]) -> None:
    await register_table(meshes["alice"], "t2-alice", [[f"a{i}", "1"] for i in range(100)], ["id", "v"])
    await register_table(meshes["bob"], "t2-bob", [["n", f"b{i}"] for i in range(80)], ["name", "uid"])
    allowed = keys_attr(allow_empty_result={"b": True})
    results = await run_psi(meshes, "t2", allowed, outputs=("empty-out", "empty-out"))
    assert [r[0] for r in results] == [0, 0], results
    assert read_csv(meshes["alice"].data_root / "empty-out.csv") == [["id", "v"]]
    refused = await run_psi(meshes, "t2", keys_attr(), outputs=("empty2", "empty2"))
    assert [r[0] for r in refused] == [1, 1]
    assert "intersection is empty" in refused[0][2].strip().splitlines()[-1]


async def test_duplicates_and_a_single_receiver(meshes: dict[str, Mesh], admin: Client) -> None:
    a_rows = [["k1", "1"], ["k2", "2"], ["k1", "3"], ["k3", "4"], ["k2", "5"]]
    b_rows = [["y", "k2"], ["y", "k2"], ["y", "k3"], ["y", "k9"]]
    await register_table(meshes["alice"], "t3-alice", a_rows, ["id", "v"])
    await register_table(meshes["bob"], "t3-bob", b_rows, ["name", "uid"])
    attrs = keys_attr(receiver_parties={"ss": ["alice"]}, sort_result={"b": False})
    results = await run_psi(meshes, "t3", attrs, outputs=("dup-out", "dup-out"))
    assert [r[0] for r in results] == [0, 0], results
    summary = orjson.loads(results[0][1].strip().splitlines()[-1])
    assert (summary["distinct"], summary["peer_distinct"], summary["intersection"]) == (3, 3, 2)
    # every input row with a matched key, in input order
    assert read_csv(meshes["alice"].data_root / "dup-out.csv")[1:] == [["k2", "2"], ["k3", "4"], ["k2", "5"]]
    assert "intersection" not in orjson.loads(results[1][1].strip().splitlines()[-1])  # bob learns nothing
    assert not (meshes["bob"].data_root / "dup-out.csv").exists()


async def test_unreachable_peer_and_bad_input_fail_with_one_line(meshes: dict[str, Mesh]) -> None:
    env = task_env("t4", 0, [free_port(), free_port()], meshes["alice"], keys_attr())
    proc = await asyncio.create_subprocess_exec(str(PSI_BIN), env=env, stderr=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 1
    assert err.decode().strip().splitlines()[-1].startswith("atoll-psi: error: DataMesh domaindata/query")
    await register_table(meshes["alice"], "t4-alice", [["k", "1"]], ["id", "v"])
    config = orjson.loads(env["TASK_INPUT_CONFIG"])
    config["atoll_psi"]["connect_timeout_seconds"] = 1
    env["TASK_INPUT_CONFIG"] = orjson.dumps(config).decode()
    proc = await asyncio.create_subprocess_exec(str(PSI_BIN), env=env, stderr=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 1
    assert "peer bob unreachable" in err.decode().strip().splitlines()[-1]


async def test_an_empty_table_on_one_side(meshes: dict[str, Mesh]) -> None:
    await register_table(meshes["alice"], "t5-alice", [[f"a{i}", "1"] for i in range(10)], ["id", "v"])
    await register_table(meshes["bob"], "t5-bob", [], ["name", "uid"])
    results = await run_psi(meshes, "t5", keys_attr(allow_empty_result={"b": True}), outputs=("e5", "e5"))
    assert [r[0] for r in results] == [0, 0], results
    summaries = [orjson.loads(r[1].strip().splitlines()[-1]) for r in results]
    assert [(s["distinct"], s["peer_distinct"], s["intersection"]) for s in summaries] == [(10, 0, 0), (0, 10, 0)]
    assert read_csv(meshes["bob"].data_root / "e5.csv") == [["name", "uid"]]
