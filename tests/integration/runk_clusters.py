"""Helpers for RunK tests: in-process control planes (a domain's master, an institution's cluster
with a RunP agent) and RunK agents joined to the master that forward into the institution."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from atoll.agent.config import AgentConfig
from atoll.agent.runk.settings import RunKSettings
from atoll.api import kinds
from atoll.client import Client
from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from tests.conftest import RunningServer, _write_kubeconfig, start_until_ready
from tests.integration.agents import RunningAgent, agent_config, kill_leftovers, load_image, start_agent

JSON = dict[str, Any]
INSTITUTION_NS = "inst"
AGENT_TOLERATION = {"key": "kuscia.secretflow/agent", "operator": "Exists", "effect": "NoSchedule"}


@contextlib.asynccontextmanager
async def in_process_master(data_dir: Path, controllers: tuple[str, ...] = ()) -> AsyncIterator[RunningServer]:
    config = NodeConfig(mode="master", domain_id="kuscia-system", data_dir=data_dir, api_port=0,
                        controllers=controllers)
    node = MasterNode(config)
    task = await start_until_ready(node.run(), node.ready, 30, "master did not become ready in 30 s")
    kubeconfig, token, ca = _write_kubeconfig(config.data_dir, node.url)
    try:
        yield RunningServer(node.url, config.data_dir, kubeconfig, token, ca, node)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def institution_cluster(base: Path) -> AsyncIterator[RunningServer]:
    """The institution's cluster: a control plane with its scheduler, namespace ``inst`` and one
    RunP agent (``inst-node``, image ``app:v1`` loaded) that provisions local-path claims."""
    async with in_process_master(base / "master", ("scheduler", "persistentvolume")) as server:
        async with server.client() as c:
            await ensure_namespace(c, INSTITUTION_NS)
        data = base / "worker"
        load_image(data)
        worker = await start_agent(server, agent_config(server, data, "inst"))
        try:
            yield server
        finally:
            await worker.stop()
            kill_leftovers(data)


def runk_config(master: RunningServer, data_dir: Path, domain: str, kubeconfig: Path, **runk: Any) -> AgentConfig:
    base = agent_config(master, data_dir, domain)
    settings = RunKSettings(namespace=INSTITUTION_NS, kubeconfig_file=str(kubeconfig), **runk)
    return dataclasses.replace(base, node_name=f"{domain}-runk", runtime="runk", runk=settings,
                               capacity={"cpu": "8", "memory": "16Gi"})


async def start_runk(master: RunningServer, config: AgentConfig) -> RunningAgent:
    return await start_agent(master, config)


async def ensure_namespace(client: Client, name: str) -> None:
    with contextlib.suppress(Exception):
        await client.create(kinds.NAMESPACES, {"metadata": {"name": name}})


def task_pod(name: str, node: str, command: list[str], *, namespace: str, **spec: Any) -> JSON:
    container = {"name": "main", "image": "app:v1", "command": command,
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"kuscia.secretflow/task-id": name, "kuscia.secretflow/communication-role-server":
                                "true"}},
        "spec": {"nodeName": node, "containers": [container], "restartPolicy": "Never",
                 "tolerations": [AGENT_TOLERATION], **spec},
    }
