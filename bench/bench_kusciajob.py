"""KusciaJob orchestration overhead against a real ``atoll start`` master.

    .venv/bin/python bench/bench_kusciajob.py [--jobs 100] [--parallel 1 8]

``--jobs`` two-party jobs of one task each are applied, ``--parallel`` of them in flight at a
time. This process plays the KusciaTask controller with a task that takes no time: every new
KusciaTask is marked ``Succeeded`` (both parties) as soon as its watch event arrives. So
apply → ``Succeeded`` is pure orchestration: job controller (validate, spec update with the
default task ID, status writes, task creation) + API server + watch delivery, plus one status
patch round trip of the simulated task controller. Prints jobs/min, p50/p99 of that latency, the
job controller's reconciles and writes per job, and the master's CPU seconds per job (from
``/proc/<pid>/stat``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.api import kinds  # noqa: E402
from atoll.client import Client  # noqa: E402
from bench._common import cpu_seconds, run_in_data_dir, start_master  # noqa: E402
from bench.bench_domains import metric  # noqa: E402

JSON = dict[str, Any]
KJ = kinds.kind("kuscia.secretflow", "kusciajobs")
KT = kinds.kind("kuscia.secretflow", "kusciatasks")
AIMG = kinds.kind("kuscia.secretflow", "appimages")
NS = "cross-domain"


async def seed(client: Client) -> None:
    for name in ("alice", "bob"):
        await client.create(kinds.DOMAINS, {"metadata": {"name": name}, "spec": {}})
    container = {"name": "app", "command": ["true"], "workingDir": "/work"}
    image = {
        "metadata": {"name": "bench-app"},
        "spec": {
            "image": {"name": "bench", "tag": "1"},
            "deployTemplates": [{"name": "app", "spec": {"containers": [container]}}],
        },
    }
    await client.create(AIMG, image)


def job(name: str) -> JSON:
    parties = [{"domainID": "alice"}, {"domainID": "bob"}]
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "KusciaJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "initiator": "alice",
            "tasks": [{"alias": "t", "appImage": "bench-app", "taskInputConfig": "{}", "parties": parties}],
        },
    }


async def task_runner(client: Client) -> None:
    """The simulated KusciaTask controller: every new task succeeds at once."""
    listed = await client.list(KT, NS)
    async for kind, obj in client.watch(KT, NS, resource_version=listed["metadata"]["resourceVersion"]):
        if kind == "ADDED" and not (obj.get("status") or {}).get("phase"):
            status = {
                "phase": "Succeeded",
                "completionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "partyTaskStatus": [{"domainID": d, "phase": "Succeeded"} for d in ("alice", "bob")],
            }
            await client.patch(KT, obj["metadata"]["name"], {"status": status}, NS, subresource="status")


async def job_tracker(client: Client, done: dict[str, asyncio.Event]) -> None:
    """Set ``done[name]`` once job ``name`` is seen ``Succeeded`` (in the list or the watch after it)."""

    def seen(obj: JSON) -> None:
        name = obj["metadata"]["name"]
        if (obj.get("status") or {}).get("phase") == "Succeeded" and name in done:
            done[name].set()

    listed = await client.list(KJ, NS)
    for obj in listed["items"]:
        seen(obj)
    async for kind, obj in client.watch(KJ, NS, resource_version=listed["metadata"]["resourceVersion"]):
        if kind != "BOOKMARK":
            seen(obj)


async def run(args: argparse.Namespace, data_dir: Path) -> None:
    proc, url = start_master(data_dir, controllers="kusciajob")
    try:
        ctx = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.crt"))
        token = (data_dir / "pki" / "admin.token").read_text().strip()
        async with Client(url, ssl_context=ctx, token=token, pool_size=64) as client:
            await seed(client)
            helpers = [asyncio.create_task(task_runner(client))]
            # a warm-up job: the controller manager has won its lease and synced its informers
            warm: dict[str, asyncio.Event] = {"warmup": asyncio.Event()}
            helpers.append(asyncio.create_task(job_tracker(client, warm)))
            await client.create(KJ, job("warmup"))
            await asyncio.wait_for(warm["warmup"].wait(), 60)
            helpers.pop().cancel()
            for parallel in args.parallel:
                done_events: dict[str, asyncio.Event] = {}
                tracker = asyncio.create_task(job_tracker(client, done_events))
                await asyncio.sleep(0.2)  # the tracker's watch is open
                prefix = f"p{parallel}"
                done_events.update({f"{prefix}-{i:04d}": asyncio.Event() for i in range(args.jobs)})
                await measure_with(client, proc.pid, prefix, args.jobs, parallel, done_events)
                tracker.cancel()
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def measure_with(
    client: Client, pid: int, prefix: str, jobs: int, parallel: int, done: dict[str, asyncio.Event]
) -> None:
    latencies: list[float] = []
    limit = asyncio.Semaphore(parallel)
    reconciles0 = await metric(client, "controller_runtime_reconcile_total", "kusciajob")
    writes0 = await metric(client, "controller_writes_total", "kusciajob")
    cpu0 = cpu_seconds(pid)

    async def one(name: str) -> None:
        async with limit:
            started = time.monotonic()
            await client.create(KJ, job(name))
            await asyncio.wait_for(done[name].wait(), 120)
            latencies.append(time.monotonic() - started)

    started = time.monotonic()
    await asyncio.gather(*(one(name) for name in list(done)))
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(pid) - cpu0
    reconciles = await metric(client, "controller_runtime_reconcile_total", "kusciajob") - reconciles0
    writes = await metric(client, "controller_writes_total", "kusciajob") - writes0
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"parallel {parallel:2d}: {jobs} jobs in {elapsed:6.2f} s = {jobs / elapsed * 60:6.0f} jobs/min; "
        f"apply->Succeeded p50 {p50 * 1000:5.0f} ms, p99 {p99 * 1000:5.0f} ms; per job: "
        f"{reconciles / jobs:4.1f} reconciles, {writes / jobs:4.1f} controller writes, "
        f"{cpu / jobs * 1000:5.1f} ms master CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--keep", type=Path, help="keep the master's data dir here")
    args = parser.parse_args()
    run_in_data_dir(args.keep, "atoll-bench-kusciajob-", lambda data_dir: run(args, data_dir))


if __name__ == "__main__":
    main()
