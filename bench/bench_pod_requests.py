"""The master's CPU per request kind of a pod's lifecycle, each kind measured on its own.

    .venv/bin/python bench/bench_pod_requests.py [--pods N] [--rounds R] [--concurrency C]
        [--agent-connections A] [--no-watchers]

A real ``atoll start`` master (as ``bench_pods.py`` starts it) serves, per round, N requests of each
kind ``bench_pods.py`` makes per pod, one kind after the other, with C in flight, from a load
generator in its own process (so the master's CPU is not mixed with the client's):

* ``configmap create``: a small ConfigMap (the reference: what is not pod-specific);
* ``pod create``: ``POST pods`` of a pod bound to a node, as ``bench_pods.py`` creates it;
* ``status Running`` / ``status Succeeded``: ``PUT pods/status`` with the status an agent writes
  (``atoll.agent.runp.status.pod_status``'s shape), User-Agent ``atoll-agent``, over the agent's
  own connections (``--agent-connections``, 8 as ``AGENT_CONNECTIONS``: fewer writes in flight make
  smaller commit batches, and each write dearer);
* ``event``: ``POST events`` of a ``Started`` event as the agent records it;
* ``pod delete``: ``DELETE`` of the Succeeded pod (removed at once).

Unless ``--no-watchers``, two watches are open while it runs, the fan-out of ``bench_pods.py`` per
pod: one on the namespace (the benchmark's) and one on the node's pods (``fieldSelector=
spec.nodeName``, an agent's); they hold two of the benchmark's C connections (so C >= 3), and a
phase ends when they have seen its events. The
master's CPU (``/proc/<pid>/stat``, 10 ms ticks) over a phase ÷ N is printed per kind in µs, the
median over the rounds (the first round also pays the one-time costs of a fresh master: it is
printed apart, and left out of the median when there are more rounds). ``ATOLL_PYSPY=PREFIX``
samples the master with py-spy as ``bench_pods.py`` does (``PREFIX-master.txt``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.api import kinds  # noqa: E402
from atoll.client import Client  # noqa: E402
from bench._common import cpu_seconds  # noqa: E402
from bench.bench_pods import start_master, start_samplers, stop_samplers  # noqa: E402

JSON = dict[str, Any]
NAMESPACE = "bench"
NODE = "bench-node"
KINDS = ("configmap create", "pod create", "status Running", "event", "status Succeeded", "pod delete")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def pod_body(name: str) -> JSON:
    return {
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": "Never",
            "containers": [
                {"name": "main", "image": "bench:v1", "command": ["sh", "-c", f"sleep 1; date +%s.%N > /tmp/m/{name}"]}
            ],
        },
    }


def _condition(kind: str, ok: bool, reason: str = "") -> JSON:
    out: JSON = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None, "lastTransitionTime": now()}
    if reason and not ok:
        out["reason"] = reason
    return out


def status_body(pod: JSON, phase: str) -> JSON:
    """The body of an agent's ``PUT pods/status`` (``atoll.agent.runp.status.pod_status``'s shape)."""
    md = pod["metadata"]
    running = phase == "Running"
    state = (
        {"running": {"startedAt": now()}}
        if running
        else {
            "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": now(),
                "finishedAt": now(),
                "containerID": f"runp://{md['uid']}-main-0",
            }
        }
    )
    reason = "" if running else "PodCompleted"
    status = {
        "phase": phase,
        "conditions": [
            _condition("PodReadyToStartContainers", True),
            _condition("Initialized", True, reason),
            _condition("Ready", running, reason),
            _condition("ContainersReady", running, reason),
            _condition("PodScheduled", True),
        ],
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": now(),
        "containerStatuses": [
            {
                "name": "main",
                "state": state,
                "lastState": {},
                "ready": running,
                "restartCount": 0,
                "image": "bench:v1",
                "imageID": "sha256:" + "0" * 64,
                "started": running,
                "containerID": f"runp://{md['uid']}-main-0",
            }
        ],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": md["name"], "namespace": NAMESPACE, "uid": md["uid"]},
        "status": status,
    }


def event_body(pod: JSON) -> JSON:
    md, stamp = pod["metadata"], now()
    return {
        "metadata": {"name": f"{md['name']}.{os.urandom(8).hex()}", "namespace": NAMESPACE},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": NAMESPACE,
            "name": md["name"],
            "uid": md["uid"],
            "fieldPath": "spec.containers{main}",
        },
        "reason": "Started",
        "message": "Started container main",
        "type": "Normal",
        "source": {"component": "kubelet", "host": NODE},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "reportingComponent": "kubelet",
        "reportingInstance": NODE,
    }


class Watchers:
    """The namespace's and the node's pod watches; ``wait(n)`` returns once each has received n events."""

    def __init__(self, client: Client, rv: str, enabled: bool) -> None:
        self.seen = [0, 0]
        self.target = 0
        self.reached = asyncio.Event()
        self.tasks = (
            [
                asyncio.create_task(self._watch(client, rv, i, sel))
                for i, sel in enumerate((None, f"spec.nodeName={NODE}"))
            ]
            if enabled
            else []
        )

    async def _watch(self, client: Client, rv: str, i: int, selector: str | None) -> None:
        async for _kind, _obj in client.watch(kinds.PODS, NAMESPACE, resource_version=rv, field_selector=selector):
            self.seen[i] += 1
            if min(self.seen) >= self.target:
                self.reached.set()

    async def wait(self, total: int) -> None:
        self.target = total
        if not self.tasks or min(self.seen) >= total:
            return
        self.reached.clear()
        await self.reached.wait()


async def _calls(n: int, conc: int, call: Callable[[int], Awaitable[Any]]) -> None:
    """``call(i)`` for i < n, ``conc`` in flight."""
    gate = asyncio.Semaphore(conc)

    async def one(i: int) -> None:
        async with gate:
            await call(i)

    await asyncio.gather(*(one(i) for i in range(n)))


class Round:
    """One round: N requests of each kind, kind after kind (the pods of the round go through them)."""

    def __init__(self, bench: Client, agent: Client, r: int) -> None:
        self.bench, self.agent, self.r = bench, agent, r
        self.pods: dict[int, JSON] = {}

    async def cm(self, i: int) -> None:
        await self.bench.create(
            kinds.CONFIGMAPS,
            {"metadata": {"name": f"c{self.r}-{i}", "namespace": NAMESPACE}, "data": {"payload": "x" * 256}},
        )

    async def create(self, i: int) -> None:
        self.pods[i] = await self.bench.create(kinds.PODS, pod_body(f"p{self.r}-{i}"))

    async def running(self, i: int) -> None:
        self.pods[i] = await self.agent.update(kinds.PODS, status_body(self.pods[i], "Running"), subresource="status")

    async def event(self, i: int) -> None:
        await self.agent.create(kinds.EVENTS, event_body(self.pods[i]))

    async def succeeded(self, i: int) -> None:
        await self.agent.update(kinds.PODS, status_body(self.pods[i], "Succeeded"), subresource="status")

    async def delete(self, i: int) -> None:
        await self.bench.delete(kinds.PODS, self.pods[i]["metadata"]["name"], NAMESPACE)

    def calls(self) -> tuple[tuple[str, Callable[[int], Awaitable[None]], int], ...]:
        """(kind, call, watch events per call) in lifecycle order."""
        return (
            ("configmap create", self.cm, 0),
            ("pod create", self.create, 1),
            ("status Running", self.running, 1),
            ("event", self.event, 0),
            ("status Succeeded", self.succeeded, 1),
            ("pod delete", self.delete, 1),
        )


async def client_job(
    kubeconfig: str, pid: int, n: int, rounds: int, conc: int, watch: bool, agent_pool: int = 8
) -> list[dict[str, float]]:
    bench = Client.from_kubeconfig(kubeconfig, pool_size=conc)
    agent = Client.from_kubeconfig(kubeconfig, pool_size=agent_pool, user_agent="atoll-agent/bench")
    results = []
    try:
        await bench.create(kinds.NAMESPACES, {"metadata": {"name": NAMESPACE}})
        await bench.create(kinds.NODES, {"metadata": {"name": NODE}})
        await asyncio.gather(*(bench.get(kinds.NAMESPACES, NAMESPACE) for _ in range(conc)))
        await asyncio.gather(*(agent.get(kinds.NAMESPACES, NAMESPACE) for _ in range(agent_pool)))
        rv = (await bench.list(kinds.PODS, NAMESPACE))["metadata"]["resourceVersion"]
        watchers = Watchers(bench, rv, watch)
        events = 0
        for r in range(rounds):
            out: dict[str, float] = {}
            for name, call, per_call in Round(bench, agent, r).calls():
                before = cpu_seconds(pid)
                await _calls(n, conc, call)
                events += per_call * n
                await watchers.wait(events)
                await asyncio.sleep(0.2)  # the in-process controllers' share of the phase
                out[name] = (cpu_seconds(pid) - before) / n * 1e6
            results.append(out)
        for task in watchers.tasks:
            task.cancel()
    finally:
        await bench.close()
        await agent.close()
    return results


def report(results: list[dict[str, float]]) -> None:
    steady = results[1:] if len(results) > 1 else results
    print(f"master CPU per request, µs (first round | median of the other {len(steady)})")
    for name in KINDS:
        print(
            f"  {name:<20}{results[0][name]:>8.0f} |{statistics.median(r[name] for r in steady):>8.0f}   "
            + " ".join(f"{r[name]:.0f}" for r in steady)
        )
    pod = [sum(r[k] for k in KINDS[1:]) for r in results]
    print(f"  {'pod lifecycle':<20}{pod[0]:>8.0f} |{statistics.median(pod[1:] or pod):>8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=1000, help="requests of each kind per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=20, help="the benchmark's requests in flight")
    parser.add_argument("--agent-connections", type=int, default=8, help="the agent's (status, events) in flight")
    parser.add_argument("--no-watchers", dest="watchers", action="store_false")
    parser.add_argument("--client", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        kubeconfig, pid = args.client
        out = asyncio.run(
            client_job(
                kubeconfig, int(pid), args.pods, args.rounds, args.concurrency, args.watchers, args.agent_connections
            )
        )
        print(json.dumps(out))
        return
    with tempfile.TemporaryDirectory(prefix="atoll-bench-podreq-") as tmp:
        master, kubeconfig = start_master(Path(tmp))
        try:
            cmd = [
                sys.executable,
                __file__,
                "--client",
                str(kubeconfig),
                str(master.pid),
                "--pods",
                str(args.pods),
                "--rounds",
                str(args.rounds),
                "--concurrency",
                str(args.concurrency),
                "--agent-connections",
                str(args.agent_connections),
            ]
            if not args.watchers:
                cmd.append("--no-watchers")
            samplers = start_samplers({"master": master.pid})  # ATOLL_PYSPY=PREFIX, as bench_pods.py
            done = subprocess.run(cmd, capture_output=True, check=False, cwd=REPO)
            stop_samplers(samplers)
            if done.returncode != 0:
                raise SystemExit(done.stderr.decode()[-3000:])
            report(json.loads(done.stdout))
        finally:
            master.terminate()
            master.wait(timeout=20)
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
