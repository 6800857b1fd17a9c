"""Deployment benchmark: N replicas over two RunP agents (real ``atoll start`` processes).

    .venv/bin/python bench/bench_deployments.py [--replicas 200] [--rounds 3]

A master and two lite agents (domains alice and bob) run as processes. An agent runs only its own
domain's pods, so the workload is split in two: each domain's namespace gets half of it (pods
placed on the domain's node by the ``DomainPlacement`` admission). Each pod runs ``sleep 3600``.
Three phases, each timed from the first write to the last pod Ready (seen on pod watches), with
the master's CPU seconds (``/proc/<pid>/stat``):

1. N bare pods created directly (20 creates in flight) — the baseline; then deleted;
2. one Deployment of N/2 replicas per domain — ratio against (1) for time and master CPU per pod
   (target ≤ 1.3); with ``--rounds R`` (1) and (2) run R times (earlier rounds' Deployments are
   deleted, their pods awaited gone) and the median ratio is printed too — on a shared 2-core
   machine one round's ratio moves by ±0.3. Each phase starts once the master has been free of
   writes for a second, so one phase's trailing writes (the agents' late Events) are not billed
   to the next;
3. a rolling update of both (``maxSurge: 25%``, ``maxUnavailable: 25%``): time until both rollouts
   are complete, and the lowest number of Ready, not-terminating pods of each Deployment seen on
   the watch during the update, against ``replicas - maxUnavailable`` (it must never be below).

It also prints the master's write requests per phase (``apiserver_request_total`` deltas), which
shows what the workload controllers add to the bare pods' writes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.api import kinds  # noqa: E402
from atoll.client import Client  # noqa: E402
from bench.bench_pods import cpu_seconds, create_domains, start_agent, start_master  # noqa: E402

JSON = dict[str, Any]
DOMAINS = ("alice", "bob")


_WRITES = ("POST", "PUT", "PATCH", "DELETE", "CREATE", "UPDATE", "APPLY", "DELETECOLLECTION")


async def writes(client: Client) -> dict[str, float]:
    """The master's write requests so far by ``verb resource`` (its ``apiserver_request_total``)."""
    text = await client.request("GET", "/metrics")
    out: dict[str, float] = {}
    for line in str(text).splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(part.split("=", 1) for part in line[line.index("{") + 1:line.index("}")].split(","))
        verb, resource = labels.get("verb", "").strip('"'), labels.get("resource", "").strip('"')
        if verb.upper() in _WRITES:
            key = f"{verb} {resource}"
            out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


async def quiesce(client: Client, quiet: float = 1.0, limit: float = 30.0) -> None:
    """Wait until the master has taken no write for ``quiet`` seconds (at most ``limit``): the
    previous phase's trailing writes (the agents' late ``Started`` Events, deletions) are not
    billed to the next one."""
    deadline, last = time.monotonic() + limit, await writes(client)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        now = await writes(client)
        if now == last:
            return
        last = now


def delta(before: dict[str, float], after: dict[str, float]) -> str:
    moved = {k: after[k] - before.get(k, 0.0) for k in after if after[k] - before.get(k, 0.0) >= 1}
    return ", ".join(f"{k} {int(v)}" for k, v in sorted(moved.items(), key=lambda kv: -kv[1]))


def kill_pods(base: Path) -> None:
    """Pods outlive their agent (by design): end every process group started under ``base``."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if str(base).encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    group = os.getpgid(int(entry))
                    if group != os.getpgrp():
                        os.killpg(group, signal.SIGKILL)


def pod_spec(version: str) -> JSON:
    return {"terminationGracePeriodSeconds": 1, "containers": [{
        "name": "main", "image": "bench:v1", "command": ["sleep", "3600"],
        "env": [{"name": "VERSION", "value": version}]}]}


def ready(pod: JSON) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return not pod["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class PodWatch:
    """Ready pods (by name) per ``namespace/app``, from one watch per domain namespace."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.ready: dict[str, set[str]] = {}
        self.changed = asyncio.Event()
        self.min_ready: dict[str, int] = {}
        self.present: set[str] = set()

    async def run(self, namespace: str) -> None:
        rv = (await self.client.list(kinds.PODS, namespace))["metadata"]["resourceVersion"]
        async for kind, pod in self.client.watch(kinds.PODS, namespace, resource_version=rv):
            if kind == "BOOKMARK":
                continue
            app = f"{namespace}/" + (pod["metadata"].get("labels") or {}).get("app", "")
            names = self.ready.setdefault(app, set())
            if kind == "DELETED":
                self.present.discard(f"{namespace}/{pod['metadata']['name']}")
            else:
                self.present.add(f"{namespace}/{pod['metadata']['name']}")
            if kind != "DELETED" and ready(pod):
                names.add(pod["metadata"]["name"])
            else:
                names.discard(pod["metadata"]["name"])
            if app in self.min_ready:
                self.min_ready[app] = min(self.min_ready[app], len(names))
            self.changed.set()

    async def until(self, app: str, count: int) -> None:
        async with asyncio.timeout(600):
            while len(self.ready.get(app, ())) < count:
                self.changed.clear()
                await self.changed.wait()

    async def until_empty(self) -> None:
        async with asyncio.timeout(600):
            while self.present:
                self.changed.clear()
                await self.changed.wait()


async def bare_pods(client: Client, watch: PodWatch, n: int, master: int) -> tuple[float, float]:
    gate = asyncio.Semaphore(20)

    async def create(i: int) -> None:
        body = {"metadata": {"name": f"bare-{i}", "labels": {"app": "bare"}}, "spec": pod_spec("1")}
        async with gate:
            await client.create(kinds.PODS, body, DOMAINS[i % 2])

    cpu0, t0 = cpu_seconds(master), time.monotonic()
    await asyncio.gather(*(create(i) for i in range(n)))
    for domain in DOMAINS:
        await watch.until(f"{domain}/bare", n // 2)
    return time.monotonic() - t0, cpu_seconds(master) - cpu0


async def deployment(client: Client, watch: PodWatch, n: int, master: int, name: str = "web") -> tuple[float, float]:
    body = {"metadata": {"name": name}, "spec": {
        "replicas": n // 2, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec("1")}}}
    cpu0, t0 = cpu_seconds(master), time.monotonic()
    for domain in DOMAINS:
        await client.create(kinds.DEPLOYMENTS, body, domain)
    for domain in DOMAINS:
        await watch.until(f"{domain}/{name}", n // 2)
    return time.monotonic() - t0, cpu_seconds(master) - cpu0


async def rolled_out(client: Client, domain: str, n: int) -> None:
    while True:
        d = await client.get(kinds.DEPLOYMENTS, "web", domain)
        st = d.get("status") or {}
        if (st.get("observedGeneration", 0) >= d["metadata"]["generation"] and st.get("updatedReplicas") == n
                and st.get("availableReplicas") == n and st.get("replicas") == n):
            return
        await asyncio.sleep(0.2)


async def rolling_update(client: Client, watch: PodWatch, n: int, master: int) -> tuple[float, float, int]:
    for domain in DOMAINS:
        watch.min_ready[f"{domain}/web"] = len(watch.ready.get(f"{domain}/web", ()))
    cpu0, t0 = cpu_seconds(master), time.monotonic()
    for domain in DOMAINS:
        await client.patch(kinds.DEPLOYMENTS, "web", {"spec": {"template": {"spec": pod_spec("2")}}}, domain,
                           patch_type="strategic")
    await asyncio.gather(*(rolled_out(client, d, n // 2) for d in DOMAINS))
    return time.monotonic() - t0, cpu_seconds(master) - cpu0, min(watch.min_ready.pop(f"{d}/web") for d in DOMAINS)


async def run(base: Path, n: int, rounds: int = 1) -> None:
    master, kubeconfig = start_master(base)
    agents = {}
    try:
        agents = {d: start_agent(base, kubeconfig, d) for d in ("alice", "bob")}
        async with Client.from_kubeconfig(kubeconfig) as client:
            for domain in agents:
                for _ in range(300):
                    try:
                        await client.get(kinds.NODES, f"{domain}-node")
                        break
                    except Exception:
                        await asyncio.sleep(0.1)
            await create_domains(client, list(DOMAINS))
            watch = PodWatch(client)
            watchers = [asyncio.create_task(watch.run(d)) for d in DOMAINS]
            await asyncio.sleep(1)
            ratios: list[float] = []
            for r in range(rounds):  # bare pods, then a Deployment of as many; the last one is rolled
                name = "web" if r == rounds - 1 else f"web-r{r}"
                await quiesce(client)
                w0 = await writes(client)
                bare_t, bare_cpu = await bare_pods(client, watch, n, master.pid)
                w1 = await writes(client)
                for domain in DOMAINS:
                    await client.delete_collection(kinds.PODS, domain, label_selector="app=bare")
                await watch.until_empty()
                await quiesce(client)
                w2 = await writes(client)
                dep_t, dep_cpu = await deployment(client, watch, n, master.pid, name)
                w3 = await writes(client)
                ratios.append(dep_cpu / bare_cpu)
                if rounds > 1:
                    print(f"round {r + 1}: bare pods {bare_cpu:.2f} s, Deployment {dep_cpu:.2f} s master CPU, "
                          f"ratio {ratios[-1]:.2f}", flush=True)
                if name != "web":
                    for domain in DOMAINS:
                        await client.delete(kinds.DEPLOYMENTS, name, domain)
                    await watch.until_empty()
            roll_t, roll_cpu, lowest = await rolling_update(client, watch, n, master.pid)
            for watcher in watchers:
                watcher.cancel()
    finally:
        for proc in (*agents.values(), master):
            proc.terminate()
            proc.wait(timeout=30)
        kill_pods(base)
    half = n // 2
    floor = half - half * 25 // 100
    print(f"{n} replicas over 2 agents (a Deployment of {half} per domain)")
    print(f"{'phase':<28}{'seconds':>10}{'master CPU s':>14}{'CPU ms/pod':>12}")
    print(f"{'bare pods -> all Ready':<28}{bare_t:>10.1f}{bare_cpu:>14.1f}{bare_cpu / n * 1000:>12.1f}")
    print(f"{'Deployment -> all Ready':<28}{dep_t:>10.1f}{dep_cpu:>14.1f}{dep_cpu / n * 1000:>12.1f}")
    print(f"{'rolling update (25%/25%)':<28}{roll_t:>10.1f}{roll_cpu:>14.1f}{roll_cpu / n * 1000:>12.1f}")
    print(f"Deployment / bare pods: time {dep_t / bare_t:.2f}, master CPU per pod {dep_cpu / bare_cpu:.2f} "
          "(target <= 1.3)")
    if rounds > 1:
        print(f"median over {rounds} rounds: master CPU per pod {statistics.median(ratios):.2f} (target <= 1.3)")
    print(f"writes, bare pods: {delta(w0, w1)}")
    print(f"writes, Deployment: {delta(w2, w3)}")
    print(f"lowest Ready during the update: {lowest} (floor replicas - maxUnavailable = {floor}): "
          f"{'never below' if lowest >= floor else 'DROPPED BELOW'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1, help="bare/Deployment rounds (the ratio's median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atoll-bench-deploy-") as tmp:
        asyncio.run(run(Path(tmp), args.replicas, args.rounds))


if __name__ == "__main__":
    main()
