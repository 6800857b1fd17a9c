"""A two-domain network for KusciaTask tests: an in-process master, real RunP agents for alice and
bob (2 CPUs each), and the task controllers plus the scheduler on a FakeClock.

The tests play the KusciaJob controller: they create KusciaTasks directly (contract C1).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atoll.api import kinds
from atoll.api.kuscia_tasks import APPIMAGES, KUSCIATASKS
from atoll.client import Client
from atoll.controllers import ControllerContext, kusciatask, taskresourcegroup
from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from atoll.runtime import FakeClock, Manager
from atoll.scheduler import RetrySettings
from atoll.scheduler import setup as setup_scheduler
from tests.conftest import RunningServer, _write_kubeconfig, start_until_ready
from tests.integration.agents import RunningAgent, agent_config, kill_leftovers, load_image, start_agent

JSON = dict[str, Any]
DOMAINS = ("alice", "bob")
CAPACITY = {"cpu": "2", "memory": "4Gi", "pods": "20"}

TASK_SCRIPT = """
import json, os, pathlib, sys
out = pathlib.Path(json.loads(os.environ["TASK_INPUT_CONFIG"])["out"])
me = os.environ["KUSCIA_DOMAIN_ID"]
record = {
    "cluster_define": json.loads(os.environ["TASK_CLUSTER_DEFINE"]),
    "allocated_ports": json.loads(os.environ["ALLOCATED_PORTS"]),
    "port_env": os.environ.get("KUSCIA_PORT_SVC_NUMBER"),
    "conf": pathlib.Path("/etc/kuscia/task.conf").read_text(),
}
(out / f"{os.environ['TASK_ID']}-{me}.json").write_text(json.dumps(record))
code = int(json.loads(os.environ["TASK_INPUT_CONFIG"]).get("exit", {}).get(me, 0))
if code:
    print(f"{me} gives up: no input table", file=sys.stderr)
sys.exit(code)
"""


def app_image(name: str = "atoll-test", cpu: str = "1") -> JSON:
    container = {
        "name": "main",
        "workingDir": "/",
        "command": [sys.executable, "-c", TASK_SCRIPT],
        "ports": [{"name": "svc", "scope": "Cluster", "protocol": "GRPC"}, {"name": "ctl", "scope": "Domain"}],
        "configVolumeMounts": [{"mountPath": "/etc/kuscia/task.conf", "subPath": "task.conf"}],
        "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}},
    }
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "AppImage",
        "metadata": {"name": name},
        "spec": {
            "image": {"name": "app", "tag": "v1"},
            "configTemplates": {
                "task.conf": "task={{.TASK_ID}} port={{{.ALLOCATED_PORTS.ports[name=svc].port}}}\n"
            },
            "deployTemplates": [{"name": "main", "replicas": 1, "spec": {"containers": [container]}}],
        },
    }


def kuscia_task(
    name: str, out: Path, *, image: str = "atoll-test", lifecycle: int = 300, bob_replicas: int = 1, **input_config: Any
) -> JSON:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "KusciaTask",
        "metadata": {"name": name, "namespace": "cross-domain"},
        "spec": {
            "initiator": "alice",
            "taskInputConfig": json.dumps({"out": str(out), **input_config}),
            "scheduleConfig": {
                "lifecycleSeconds": lifecycle,
                "retryIntervalSeconds": 30,
                "resourceReservedSeconds": 30,
            },
            "parties": [
                {"domainID": "alice", "role": "host", "appImageRef": image},
                {"domainID": "bob", "role": "guest", "appImageRef": image, "template": {"replicas": bob_replicas}},
            ],
        },
    }


@dataclass
class TaskNetwork:
    server: RunningServer
    client: Client
    clock: FakeClock
    agents: dict[str, RunningAgent]
    base: Path
    controllers: asyncio.Task[None] | None = None

    async def get_task(self, name: str) -> JSON:
        return await self.client.get(KUSCIATASKS, name, "cross-domain")

    def start_controllers(self) -> None:
        """A fresh controller manager (new informers, new port allocator: nothing in memory)."""
        manager = Manager(self.client)
        ctx = ControllerContext(self.client, workers=2)
        kusciatask.setup(manager, ctx, clock=self.clock)
        taskresourcegroup.setup(manager, ctx, clock=self.clock)
        settings = RetrySettings(initial_backoff=0.2, max_backoff=1.0, flush_interval=5.0)
        setup_scheduler(manager, ctx, clock=self.clock, settings=settings)
        self.controllers = asyncio.create_task(manager.run())

    async def stop_controllers(self) -> None:
        if self.controllers is not None:
            self.controllers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.controllers
            self.controllers = None


@contextlib.asynccontextmanager
async def task_network(base: Path) -> AsyncIterator[TaskNetwork]:
    config = NodeConfig(mode="master", domain_id="kuscia-system", data_dir=base / "master", api_port=0, controllers=())
    node = MasterNode(config)
    master = await start_until_ready(node.run(), node.ready, 30, "master did not become ready in 30 s")
    kubeconfig, token, ca = _write_kubeconfig(config.data_dir, node.url)
    server = RunningServer(node.url, config.data_dir, kubeconfig, token, ca, node)
    clock = FakeClock()
    agents: dict[str, RunningAgent] = {}
    async with server.client() as client:
        for domain in DOMAINS:
            await client.create(kinds.NAMESPACES, {"metadata": {"name": domain}})
        await client.create(APPIMAGES, app_image())
        network = TaskNetwork(server, client, clock, agents, base)
        network.start_controllers()
        try:
            for domain in DOMAINS:
                agent = dataclasses.replace(agent_config(server, base / domain, domain), capacity=dict(CAPACITY))
                load_image(base / domain)
                agents[domain] = await start_agent(server, agent)
            yield network
        finally:
            for agent in agents.values():
                await agent.stop()
            for domain in DOMAINS:
                kill_leftovers(base / domain)
            await network.stop_controllers()
    master.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await master
