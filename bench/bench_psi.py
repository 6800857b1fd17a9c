"""PSI benchmark: the ``atoll-psi`` app on N x N IDs (50% overlap), two real party processes.

    .venv/bin/python bench/bench_psi.py [--ids 1000000] [--overlap 0.5] [--gateways] [--keep DIR]

Set-up (not timed): a real ``atoll start`` master, Domains alice and bob, a real DataMesh service
per domain (in this process, on free ports), one CSV table per party registered through DataMesh.
Timed: both party processes from spawn to exit, talking to each other directly over HTTP on
127.0.0.1, or with ``--gateways`` through alice's and bob's real Envoy gateways (each party calls
its own gateway's egress port, which tunnels over the Token route to the peer's gateway). Printed: wall time,
rows/s, each party's peak RSS (its own ``getrusage``), and — in the same run — the raw cost of the
group operations alone on this machine: per party, one hash-to-group and two X25519
multiplications per ID (measured on a sample and scaled to N), the physical limit for this
protocol since the two parties run in parallel. Targets: <= 1 GB per party, ours/limit <= 1.5.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import random
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import orjson  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from atoll.api import errors, kinds  # noqa: E402
from atoll.apps.psi.group import Masker, hash_to_group  # noqa: E402
from atoll.client import Client  # noqa: E402
from atoll.datamesh import DataMeshServer, DataMeshSettings  # noqa: E402
from atoll.datamesh.constants import DEFAULT_DATA_SOURCE_ID, DOMAINDATASOURCES  # noqa: E402
from bench._common import free_port, start_master  # noqa: E402
from bench.psi_gateways import domain_with_cert, gateways  # noqa: E402

PSI_BIN = REPO / "atoll" / "apps" / "psi" / "bin" / "atoll-psi"
PARTIES = ("alice", "bob")
SAMPLE = 20000


def write_tables(root: Path, n: int, overlap: float) -> dict[str, int]:
    rng = random.Random(2024)
    common = int(n * overlap)
    ids = {p: [f"{p[0]}{i:09d}" for i in range(n - common)] for p in PARTIES}
    shared = [f"s{i:09d}" for i in range(common)]
    for party in PARTIES:
        rows = ids[party] + shared
        rng.shuffle(rows)
        path = root / party / "var" / "storage" / "data" / f"{party}-table.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "value"])
            writer.writerows((k, str(i)) for i, k in enumerate(rows))
    return {"common": common}


def raw_crypto_seconds_per_id() -> tuple[float, float]:
    """Hash-to-group + two X25519 multiplications for one ID (the per-party work per ID, N = M):
    (wall seconds, CPU seconds) — CPU time is what the operations cost when other work shares the cores."""
    keys = [f"r{i:09d}".encode() for i in range(SAMPLE)]
    mine, theirs = Masker(), Masker()
    peer_points = theirs.mask(hash_to_group(keys))
    start, cpu = time.perf_counter(), time.process_time()
    mine.mask(hash_to_group(keys))
    mine.mask_packed(peer_points)
    return (time.perf_counter() - start) / SAMPLE, (time.process_time() - cpu) / SAMPLE


def task_env(me: int, ports: list[int], addr: str, egress: dict[str, int] | None) -> dict[str, str]:
    def endpoint(i: int) -> str:
        return f"127.0.0.1:{ports[i] if egress is None or i == me else egress[PARTIES[me]]}"

    cluster = {"parties": [{"name": p, "role": "", "services": [{"portName": "psi", "endpoints": [endpoint(i)]}]}
                           for i, p in enumerate(PARTIES)], "selfPartyIdx": me, "selfEndpointIdx": 0}
    config = {
        "sf_cluster_desc": {"parties": list(PARTIES)},
        "sf_input_ids": [f"{p}-table" for p in PARTIES],
        "sf_output_ids": ["psi-output", "psi-output"],
        "sf_output_uris": ["psi-output.csv", "psi-output.csv"],
        "sf_node_eval_param": {"domain": "data_prep", "name": "psi", "version": "1.0.0",
                               "attr_paths": ["input/input_ds1/keys", "input/input_ds2/keys", "sort_result"],
                               "attrs": [{"ss": ["id"]}, {"ss": ["id"]}, {"b": False}]},
    }
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ATOLL_PYTHON": sys.executable, "PYTHONPATH": str(REPO),
        "TASK_ID": "bench-psi", "TASK_INPUT_CONFIG": orjson.dumps(config).decode(),
        "TASK_CLUSTER_DEFINE": orjson.dumps(cluster).decode(),
        "ALLOCATED_PORTS": orjson.dumps({"ports": [{"name": "psi", "port": ports[me], "scope": "Cluster",
                                                    "protocol": "HTTP"}]}).decode(),
        "DATAMESH_ADDR": addr,
    }


async def prepare(client: Client, meshes: dict[str, DataMeshServer], keys: dict[str, Any]) -> None:
    for party in PARTIES:
        try:
            await client.create(kinds.DOMAINS, domain_with_cert(party, keys[party]))
        except errors.AlreadyExists:
            pass
    for party in PARTIES:
        for _ in range(300):
            try:
                await client.get(DOMAINDATASOURCES, DEFAULT_DATA_SOURCE_ID, party)
                break
            except errors.NotFound:
                await asyncio.sleep(0.1)
    async with aiohttp.ClientSession() as http:
        for party, mesh in meshes.items():
            req = {"domaindata_id": f"{party}-table", "type": "table", "relative_uri": f"{party}-table.csv",
                   "columns": [{"name": "id", "type": "str"}, {"name": "value", "type": "int"}]}
            async with http.post(f"http://{mesh.addr}/api/v1/datamesh/domaindata/create", json=req) as resp:
                reply = await resp.json()
                assert reply["status"]["code"] == 0, reply


async def run(args: argparse.Namespace, base: Path) -> None:
    (base / "master").mkdir(parents=True, exist_ok=True)
    master, url = start_master(base / "master")
    try:
        ctx = ssl.create_default_context(cafile=str(base / "master" / "pki" / "ca.crt"))
        token = (base / "master" / "pki" / "admin.token").read_text().strip()
        async with Client(url, ssl_context=ctx, token=token) as client:
            meshes = {p: DataMeshServer(client, p, base / p, DataMeshSettings(http_port=0)) for p in PARTIES}
            for mesh in meshes.values():
                await mesh.start()
            t0 = time.perf_counter()
            facts = await asyncio.to_thread(write_tables, base, args.ids, args.overlap)
            print(f"data        {args.ids:,} x {args.ids:,} IDs, {facts['common']:,} common "
                  f"(written in {time.perf_counter() - t0:.1f} s)")
            keys = {p: rsa.generate_private_key(public_exponent=65537, key_size=2048) for p in PARTIES}
            await prepare(client, meshes, keys)
            per_id = await asyncio.to_thread(raw_crypto_seconds_per_id)
            ports = [free_port(), free_port()]
            async with contextlib.AsyncExitStack() as stack:
                egress = None
                if args.gateways:
                    egress = await stack.enter_async_context(
                        gateways(client, base, keys, dict(zip(PARTIES, ports, strict=True)), free_port))
                    print(f"gateways    alice and bob Envoys up, routes Ready; egress ports {egress}")
                start = time.perf_counter()
                procs = [await asyncio.create_subprocess_exec(
                    str(PSI_BIN), env=task_env(i, ports, meshes[p].addr, egress), stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE) for i, p in enumerate(PARTIES)]
                outputs = [await proc.communicate() for proc in procs]
                wall = time.perf_counter() - start
            for mesh in meshes.values():
                await mesh.close()
    finally:
        master.terminate()
        master.wait(30)
    report(args, outputs, [p.returncode for p in procs], wall, per_id)


def report(args: argparse.Namespace, outputs: list[tuple[bytes, bytes]], codes: list[int | None], wall: float,
           per_id: tuple[float, float]) -> None:
    summaries: list[dict[str, Any]] = []
    for party, (out, err), code in zip(PARTIES, outputs, codes, strict=True):
        if code != 0:
            raise SystemExit(f"{party} failed ({code}): {err.decode()[-2000:]}")
        summaries.append(orjson.loads(out.decode().strip().splitlines()[-1]))
    expected = int(args.ids * args.overlap)
    limit, cpu_limit = per_id[0] * args.ids, per_id[1] * args.ids
    print(f"result      intersection {summaries[0]['intersection']:,} / {summaries[1]['intersection']:,} "
          f"(expected {expected:,}): {'OK' if all(s['intersection'] == expected for s in summaries) else 'WRONG'}")
    print(f"path        {'through alice and bob Envoy gateways' if args.gateways else 'direct 127.0.0.1'}")
    print(f"wall time   {wall:8.1f} s     ({2 * args.ids / wall:,.0f} rows/s over both parties, "
          f"{args.ids / wall:,.0f} IDs/s per party)")
    for s in summaries:
        print(f"party {s['party']:<6}{s['seconds']:8.1f} s     CPU {s['cpu_seconds']:.1f} s "
              f"({s['cpu_seconds'] / cpu_limit:.2f} x raw CPU), peak RSS {s['max_rss_mb']:,} MB (target <= 1024)")
    print(f"raw crypto  {limit:8.1f} s     per party: {per_id[0] * 1e6:.1f} us/ID wall, {per_id[1] * 1e6:.1f} us/ID "
          f"CPU = hash-to-group + 2 x X25519 (sample of {SAMPLE:,}, scaled to {args.ids:,}: {cpu_limit:.1f} s CPU)")
    print(f"ours/limit  {wall / limit:8.2f}       wall / raw wall (target <= 1.5; load average now "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs: other work shares the cores)")
    worst = max(s["cpu_seconds"] for s in summaries)
    print(f"ours/limit  {worst / cpu_limit:8.2f}       CPU of the busier party / raw CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", type=int, default=1_000_000, help="IDs per party")
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--gateways", action="store_true", help="through alice's and bob's Envoy gateways")
    parser.add_argument("--keep", type=Path, help="keep the data here")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        asyncio.run(run(args, args.keep))
        return
    with tempfile.TemporaryDirectory(prefix="bench-psi-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
