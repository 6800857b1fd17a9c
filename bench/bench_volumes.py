"""Volume binding benchmark: what a local-path claim adds to placing a pod.

    .venv/bin/python bench/bench_volumes.py [--pods N] [--quick] [--keep DIR]

A master process (all controllers and the scheduler) and two Node objects publishing a
local-path root (no agents: this measures the control plane only). Reference: N pods without
volumes, created 20 in flight, until all are bound to a node. Ours: N claims of the default
``local-path`` class (WaitForFirstConsumer) and N pods using them, until every pod is bound and
every claim ``Bound`` to its provisioned volume — the scheduler's selected-node annotation, the
provisioner's PersistentVolume and the two-sided binding included. Printed: seconds and master
CPU for both, and ``ours / reference`` ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.api import kinds  # noqa: E402
from atoll.api.storage import LOCAL_PATH_ROOT  # noqa: E402
from atoll.client import Client  # noqa: E402
from bench._common import cpu_seconds, run_in_data_dir  # noqa: E402
from bench.bench_pods import start_master  # noqa: E402

JSON = dict[str, Any]
NS = "bench"
PVCS = kinds.kind("", "persistentvolumeclaims")
IN_FLIGHT = 20


async def add_nodes(client: Client, base: Path) -> None:
    resources = {"cpu": "64", "memory": "256Gi", "pods": "1000"}
    for name in ("vol-a", "vol-b"):
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name},
                             "annotations": {LOCAL_PATH_ROOT: str(base / name)}},
                "status": {"capacity": resources, "allocatable": resources,
                           "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}
        created = await client.create(kinds.NODES, body)
        await client.update(kinds.NODES, {**created, "status": body["status"]}, subresource="status")


def pod(name: str, claim: str | None) -> JSON:
    spec: JSON = {"containers": [{"name": "main", "image": "app:v1", "command": ["true"]}]}
    if claim:
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def claim(name: str) -> JSON:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


async def in_flight(jobs: list[Any]) -> None:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(job: Any) -> None:
        async with gate:
            await job

    await asyncio.gather(*(one(j) for j in jobs))


async def until(check: Any, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        await asyncio.sleep(0.1)


async def phase(client: Client, master: int, prefix: str, n: int, volumes: bool) -> tuple[float, float]:
    cpu, started = cpu_seconds(master), time.monotonic()
    if volumes:
        await in_flight([client.create(PVCS, claim(f"{prefix}-{i}"), NS) for i in range(n)])
    await in_flight([client.create(kinds.PODS, pod(f"{prefix}-{i}", f"{prefix}-{i}" if volumes else None), NS)
                     for i in range(n)])

    async def done() -> bool:
        pods = [p for p in (await client.list(kinds.PODS, NS))["items"] if p["metadata"]["name"].startswith(prefix)]
        if sum(1 for p in pods if (p.get("spec") or {}).get("nodeName")) < n:
            return False
        if not volumes:
            return True
        claims = (await client.list(PVCS, NS))["items"]
        return sum(1 for c in claims if (c.get("status") or {}).get("phase") == "Bound") >= n

    await until(done)
    return time.monotonic() - started, cpu_seconds(master) - cpu


async def run(base: Path, n: int) -> None:
    master, kubeconfig = start_master(base)
    try:
        async with Client.from_kubeconfig(kubeconfig) as client:
            await client.create(kinds.NAMESPACES, {"metadata": {"name": NS}})
            await add_nodes(client, base)
            await asyncio.sleep(2)  # informers settle
            ref_s, ref_cpu = await phase(client, master.pid, "bare", n, volumes=False)
            our_s, our_cpu = await phase(client, master.pid, "vol", n, volumes=True)
    finally:
        master.terminate()
        master.wait(30)
    load = os.getloadavg()[0]
    print(f"{n} pods, load {load:.1f}")
    print(f"reference: bare pods bound            {ref_s:6.2f} s  master CPU {ref_cpu:5.2f} s")
    print(f"ours: pods + local-path claims bound  {our_s:6.2f} s  master CPU {our_cpu:5.2f} s")
    print(f"ours / reference: time {our_s / ref_s:.2f}, master CPU {our_cpu / max(ref_cpu, 1e-3):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="30 pods")
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    n = 30 if args.quick else args.pods
    run_in_data_dir(args.keep, "bench-volumes-", lambda base: run(base, n))


if __name__ == "__main__":
    main()
