"""Helpers for pooling tests: Atoll control planes in this event loop (one computing, workers with
a RunP agent each), the binding/policy/pod objects a Kubeocean user writes, and waits."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atoll.api import kinds
from atoll.client import Client
from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from atoll.pooling.kinds import CLUSTERBINDINGS, RESOURCELEASINGPOLICIES
from tests.conftest import RunningServer, _write_kubeconfig, start_until_ready
from tests.integration.agents import RunningAgent, kill_leftovers, running_agent

JSON = dict[str, Any]
WORKER_CONTROLLERS = ("namespace", "garbagecollector", "nodelifecycle", "scheduler", "persistentvolume")


@dataclass
class Plane:
    """One control plane in this loop; ``stop``/``start`` simulate its API going down and back."""

    config: NodeConfig
    node: MasterNode | None = None
    task: asyncio.Task[None] | None = None
    server: RunningServer | None = None
    client: Client | None = None

    async def start(self) -> RunningServer:
        self.node = MasterNode(self.config)
        self.task = await start_until_ready(self.node.run(), self.node.ready, 30, "master not ready in 30 s")
        if self.config.api_port == 0:  # keep the port across restarts
            self.config.api_port = int(self.node.url.rsplit(":", 1)[1])
        kubeconfig, token, ca = _write_kubeconfig(self.config.data_dir, self.node.url)
        self.server = RunningServer(self.node.url, self.config.data_dir, kubeconfig, token, ca, self.node)
        if self.client is None:
            self.client = self.server.client()
        return self.server

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None


@dataclass
class Pool:
    computing: Plane
    workers: dict[str, Plane]
    agents: dict[str, RunningAgent] = field(default_factory=dict)
    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @property
    def client(self) -> Client:
        assert self.computing.client is not None
        return self.computing.client

    def worker(self, name: str) -> Client:
        client = self.workers[name].client
        assert client is not None
        return client


def plane(base: Path, name: str, controllers: tuple[str, ...], extra: JSON | None = None) -> Plane:
    return Plane(NodeConfig(mode="master", domain_id="kuscia-system", data_dir=base / name, api_port=0,
                            controllers=controllers, extra=extra or {}))


@contextlib.asynccontextmanager
async def pool_of(base: Path, computing: Plane, workers: tuple[str, ...]) -> Any:
    """Start ``computing`` and one plane + RunP agent per worker name; stop everything after."""
    pool = Pool(computing, {})
    try:
        await computing.start()
        for name in workers:
            pool.workers[name], pool.agents[name] = await pool.stack.enter_async_context(worker_of(base, name))
        yield pool
    finally:
        await pool.stack.aclose()
        await computing.stop()
        if computing.client is not None:
            await computing.client.close()


@contextlib.asynccontextmanager
async def worker_of(base: Path, name: str) -> AsyncIterator[tuple[Plane, RunningAgent]]:
    """A worker plane with a RunP agent of domain ``name`` (its pods' namespace); stopped after."""
    worker = plane(base, name, WORKER_CONTROLLERS)
    try:
        server = await worker.start()
        async with running_agent(server, base / f"{name}-agent", name) as agent:
            yield worker, agent
    finally:
        await worker.stop()
        if worker.client is not None:
            await worker.client.close()
        kill_leftovers(base / f"{name}-agent")


async def bind(client: Client, name: str, cluster_id: str, worker: RunningServer | None, **spec: Any) -> None:
    """The kubeconfig Secret and the ClusterBinding of a Kubeocean user (as in its tutorial). Physical
    pods go to the worker domain's own namespace (``cb-w1`` → ``w1``): an Atoll agent runs only pods
    of its domain's namespaces."""
    if worker is not None:
        secret = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": f"{name}-kubeconfig", "namespace": "kubeocean-system"},
                  "data": {"kubeconfig": base64.b64encode(worker.kubeconfig.read_bytes()).decode()}}
        await client.create(kinds.SECRETS, secret, "kubeocean-system")
    body = {"apiVersion": "cloud.tencent.com/v1beta1", "kind": "ClusterBinding", "metadata": {"name": name},
            "spec": {"clusterID": cluster_id, "mountNamespace": name.removeprefix("cb-"),
                     "secretRef": {"name": f"{name}-kubeconfig", "namespace": "kubeocean-system"}, **spec}}
    await client.create(CLUSTERBINDINGS, body)


async def lease_policy(worker: Client, name: str, binding: str, **spec: Any) -> JSON:
    body = {"apiVersion": "cloud.tencent.com/v1beta1", "kind": "ResourceLeasingPolicy", "metadata": {"name": name},
            "spec": {"cluster": binding, **spec}}
    created: JSON = await worker.create(RESOURCELEASINGPOLICIES, body)
    return created


def pooled_pod(name: str, cluster_id: str, script: str, *, namespace: str = "team", **spec: Any) -> JSON:
    """A pod that tolerates the vnode taints and asks for one worker cluster's vnodes."""
    container = {"name": "main", "image": "app:v1", "command": ["sh", "-c", script],
                 "resources": {"requests": {"cpu": "100m", "memory": "16Mi"}}}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 2,
            "nodeSelector": {"kubeocean.io/physical-cluster-id": cluster_id},
            "tolerations": [{"key": "kubeocean.io/vnode", "operator": "Exists"},
                            {"key": "kuscia.secretflow/agent", "operator": "Exists"}],
            "containers": [container],
            **spec,
        },
    }
