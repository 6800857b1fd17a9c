"""RunK pod start overhead: bind on the master -> Running in the institution's cluster, against the
same pods started directly in that cluster.

    .venv/bin/python bench/bench_runk.py [--pods 200] [--keep DIR]

Two in-process control planes on 127.0.0.1 (the domain's master; the institution's cluster with
its scheduler and one RunP agent) and a RunK agent for domain alice joined to the master. Phase
*direct*: N pods created in the institution namespace (scheduled there, run by its RunP agent);
phase *runk*: N pods created on the master bound to the RunK node, forwarded by the agent. Each
pod's latency is creation -> first seen ``Running`` in the institution's cluster (a watch on its
pods). Prints p50/p99 of both and the ratio, and the process CPU seconds per pod of each phase
(everything runs in one process: the difference is the RunK agent plus the master's share — an
upper bound of the agent's own cost).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.agent.agent import Agent  # noqa: E402
from atoll.agent.config import AgentConfig, Timers  # noqa: E402
from atoll.agent.runk.settings import RunKSettings  # noqa: E402
from atoll.agent.runp.images import ImageStore  # noqa: E402
from atoll.api import kinds  # noqa: E402
from atoll.client import Client  # noqa: E402
from atoll.mirror import keys  # noqa: E402
from atoll.node.config import NodeConfig  # noqa: E402
from atoll.node.kubeconfig import admin_kubeconfig, dump  # noqa: E402
from atoll.node.master import MasterNode  # noqa: E402
from atoll.pki import PKI  # noqa: E402
from atoll.runtime import Informer  # noqa: E402
from bench._common import percentile  # noqa: E402

JSON = dict[str, Any]
NS = "inst"
TOLERATION = {"key": "kuscia.secretflow/agent", "operator": "Exists", "effect": "NoSchedule"}
TIMERS = Timers(lease_duration=20, lease_renew=2, status_check=5)


@dataclass
class Cluster:
    node: MasterNode
    task: asyncio.Task[None]
    kubeconfig: Path


@contextlib.asynccontextmanager
async def cluster(data_dir: Path, controllers: tuple[str, ...]) -> AsyncIterator[Cluster]:
    node = MasterNode(NodeConfig(mode="master", domain_id="kuscia-system", data_dir=data_dir, api_port=0,
                                 controllers=controllers))
    task = asyncio.create_task(node.run())
    await asyncio.wait_for(node.ready.wait(), 60)
    kubeconfig = data_dir / "admin.kubeconfig"
    kubeconfig.write_text(dump(admin_kubeconfig(PKI(data_dir / "pki"), node.url)))
    try:
        yield Cluster(node, task, kubeconfig)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def image(data_dir: Path) -> None:
    src = data_dir.parent / "image-src"
    (src / "bin").mkdir(parents=True, exist_ok=True)
    ImageStore(data_dir / "agent" / "images").load(src, "app:v1")


async def start_agent(kubeconfig: Path, config: AgentConfig) -> tuple[asyncio.Task[None], Client]:
    client = Client.from_kubeconfig(kubeconfig, pool_size=8)
    agent = Agent(client, config)
    task = asyncio.create_task(agent.run())
    await asyncio.wait_for(agent.ready.wait(), 60)
    return task, client


def pod(name: str, namespace: str, node: str = "") -> JSON:
    spec: JSON = {"containers": [{"name": "main", "image": "app:v1", "command": ["sleep", "120"],
                                  "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}],
                  "restartPolicy": "Never", "tolerations": [TOLERATION], "terminationGracePeriodSeconds": 0}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


class RunningWatch:
    """First time each institution pod (by its source name or own name) is seen Running."""

    def __init__(self, client: Client) -> None:
        self.seen: dict[str, float] = {}
        self.informer = Informer(client, kinds.PODS, NS)
        self.informer.add_handler(on_add=self._see, on_update=lambda _o, n: self._see(n))

    def _see(self, obj: JSON) -> None:
        if (obj.get("status") or {}).get("phase") != "Running":
            return
        annotations = obj["metadata"].get("annotations") or {}
        name = annotations.get(keys.VIRTUAL_POD_NAME) or obj["metadata"]["name"]
        self.seen.setdefault(str(name), time.monotonic())


async def phase(label: str, client: Client, watch: RunningWatch, names: list[str], namespace: str,
                node: str) -> tuple[list[float], float]:
    cpu0 = _cpu()
    created: dict[str, float] = {}

    async def create(name: str) -> None:
        created[name] = time.monotonic()
        await client.create(kinds.PODS, pod(name, namespace, node), namespace)

    await asyncio.gather(*(create(n) for n in names))
    deadline = time.monotonic() + 60 + len(names)
    while not all(n in watch.seen for n in names):
        if time.monotonic() > deadline:
            missing = [n for n in names if n not in watch.seen]
            raise SystemExit(f"{label}: {len(missing)} pods never ran (first: {missing[:3]})")
        await asyncio.sleep(0.05)
    return [watch.seen[n] - created[n] for n in names], _cpu() - cpu0


def kill_leftovers(base: Path) -> None:
    """SIGKILL the process groups of the pods run under ``base`` (and their children)."""
    marker = str(base)
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().decode(errors="replace")
            cwd = os.readlink(f"/proc/{name}/cwd")
        except OSError:
            continue
        if marker in cmd or cwd.startswith(marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(name), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(name), signal.SIGKILL)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main(pods: int, base: Path) -> None:
    async with cluster(base / "inst", ("scheduler",)) as inst, cluster(base / "master", ()) as master:
        async with Client.from_kubeconfig(inst.kubeconfig) as ic, Client.from_kubeconfig(master.kubeconfig) as mc:
            await ic.create(kinds.NAMESPACES, {"metadata": {"name": NS}})
            await mc.create(kinds.NAMESPACES, {"metadata": {"name": "alice"}})
            worker_dir = base / "worker"
            image(worker_dir)
            capacity = {"cpu": "64", "memory": "64Gi", "pods": str(4 * pods + 10)}
            worker = AgentConfig(domain="inst", data_dir=worker_dir, node_name="inst-node", capacity=capacity,
                                 timers=TIMERS, stop_pods_on_exit=True, serving_csr_timeout=0)
            runk = AgentConfig(domain="alice", data_dir=base / "alice", node_name="alice-runk", capacity=capacity,
                               timers=TIMERS, serving_csr_timeout=0, runtime="runk",
                               runk=RunKSettings(namespace=NS, kubeconfig_file=str(inst.kubeconfig)))
            agents = [await start_agent(inst.kubeconfig, worker), await start_agent(master.kubeconfig, runk)]
            watch = RunningWatch(ic)
            informer = asyncio.create_task(watch.informer.run())
            await watch.informer.wait_synced()
            try:
                direct, direct_cpu = await phase("direct", ic, watch, [f"direct-{i}" for i in range(pods)], NS, "")
                forwarded, runk_cpu = await phase("runk", mc, watch, [f"runk-{i}" for i in range(pods)], "alice",
                                                  "alice-runk")
            finally:
                informer.cancel()
                for task, client in agents:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    await client.close()
                kill_leftovers(base)
    print(f"pods per phase: {pods} (machine: {os.cpu_count()} CPUs)")
    print(f"{'':<28}{'p50 ms':>10}{'p99 ms':>10}{'CPU s/pod':>12}")
    print(f"{'direct (institution)':<28}{percentile(direct, .5) * 1e3:>10.0f}{percentile(direct, .99) * 1e3:>10.0f}"
          f"{direct_cpu / pods:>12.4f}")
    print(f"{'runk (master -> inst.)':<28}{percentile(forwarded, .5) * 1e3:>10.0f}"
          f"{percentile(forwarded, .99) * 1e3:>10.0f}"
          f"{runk_cpu / pods:>12.4f}")
    print(f"ratio runk/direct: p50 {statistics.median(forwarded) / statistics.median(direct):.2f}, "
          f"p99 {percentile(forwarded, .99) / percentile(direct, .99):.2f}; "
          f"extra CPU per forwarded pod {(runk_cpu - direct_cpu) / pods * 1e3:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--keep", type=Path, default=None, help="keep the data under DIR")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        asyncio.run(main(args.pods, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-runk-") as tmp:
            asyncio.run(main(args.pods, Path(tmp)))
