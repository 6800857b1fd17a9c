"""A full two-domain network for the PSI app: an in-process master with every controller (domain,
routes, KusciaTask, TaskResourceGroup, endpoints, scheduler), real Envoy gateways for alice and bob
with Token routes both ways, real RunP agents, real DataMesh services, the ``atoll-psi`` image
loaded on both agents and its AppImage applied."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.agent.runp.images import ImageStore
from atoll.api import errors, kinds
from atoll.api.kuscia_tasks import APPIMAGES
from atoll.client import Client
from atoll.controllers import CONTROLLERS, ControllerContext, kusciatask
from atoll.datamesh import DataMeshServer, DataMeshSettings
from atoll.datamesh.constants import DEFAULT_DATA_SOURCE_ID, DOMAINDATASOURCES
from atoll.gateway import crypto
from atoll.gateway.model import ListenerOptions
from atoll.gateway.module import GatewayModule, GatewayOptions
from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from atoll.runtime import Manager
from tests.conftest import REPO, RunningServer, _write_kubeconfig, eventually, free_port, start_until_ready
from tests.integration.agents import RunningAgent, agent_config, kill_leftovers, start_agent

JSON = dict[str, Any]
DOMAINS = ("alice", "bob")
CDRS = kinds.kind("kuscia.secretflow", "clusterdomainroutes")
PSI_IMAGE = REPO / "atoll" / "apps" / "psi"
CAPACITY = {"cpu": "4", "memory": "8Gi", "pods": "20"}


@dataclass
class PsiNetwork:
    client: Client
    base: Path
    meshes: dict[str, DataMeshServer] = field(default_factory=dict)
    agents: dict[str, RunningAgent] = field(default_factory=dict)
    gateways: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def data_root(self, domain: str) -> Path:
        return self.base / domain / "var" / "storage" / "data"

    def egress_log(self, domain: str) -> Path:
        return self.base / f"gw-logs-{domain}" / "egress.log"


def _domain(name: str, key: rsa.RSAPrivateKey) -> JSON:
    cert = base64.b64encode(crypto.self_signed_cert(key, name)).decode()
    return {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain", "metadata": {"name": name},
            "spec": {"cert": cert}}


def _cdr(source: str, destination: str, port: int) -> JSON:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1", "kind": "ClusterDomainRoute",
        "metadata": {"name": f"{source}-{destination}"},
        "spec": {"source": source, "destination": destination, "authenticationType": "Token",
                 "endpoint": {"host": "127.0.0.1", "ports": [{"name": "http", "port": port, "protocol": "HTTP"}]},
                 "tokenConfig": {"tokenGenMethod": "RSA-GEN", "rollingUpdatePeriod": 0}},
    }


async def _route_ready(client: Client, name: str) -> None:
    obj = await client.get(CDRS, name)
    ready = {c.get("type"): c.get("status") for c in (obj.get("status") or {}).get("conditions") or []}
    assert ready.get("Ready") == "True", obj.get("status")


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def host_wide_ports(manager: Manager, client: Client) -> None:
    """The KusciaTask controller, skipping ports that other programs hold on this shared machine.

    The allocator already shares one port space between the domains (both lites run on this
    host); what it cannot know is that other programs (other test runs) bind ports of
    20000-32767 here, so the test marks those busy and picks again.
    """
    ports = kusciatask.setup(manager, ControllerContext(client)).ports
    allocate = ports.allocate

    def host_free(owner: str, wanted: dict[str, int]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for domain, count in wanted.items():  # each call records its picks before the next domain's
            while True:
                picked = allocate(owner, {domain: count})[domain]
                if all(_bindable(p) for p in picked):
                    break
            out[domain] = picked
        return out

    ports.allocate = host_free  # type: ignore[method-assign,assignment]


@contextlib.asynccontextmanager
async def psi_network(base: Path) -> AsyncIterator[PsiNetwork]:
    controllers = (*(c for c in CONTROLLERS if c != "kusciatask"), "scheduler")
    config = NodeConfig(mode="master", domain_id="kuscia-system", data_dir=base / "master", api_port=0,
                        controllers=controllers)
    node = MasterNode(config)
    master = await start_until_ready(node.run(), node.ready, 30, "master did not become ready in 30 s")
    kubeconfig, token, ca = _write_kubeconfig(config.data_dir, node.url)
    server = RunningServer(node.url, config.data_dir, kubeconfig, token, ca, node)
    async with server.client() as client:
        net = PsiNetwork(client, base)
        manager = Manager(client)
        host_wide_ports(manager, client)
        tasks = asyncio.create_task(manager.run())
        try:
            await _build(net, server)
            yield net
        finally:
            await _stop(tasks)
            for agent in net.agents.values():
                await agent.stop()
            for domain in DOMAINS:
                kill_leftovers(base / domain)
            for mesh in net.meshes.values():
                await mesh.close()
            for task in net.gateways.values():
                await _stop(task)
    await _stop(master)


async def _build(net: PsiNetwork, server: RunningServer) -> None:
    client, base = net.client, net.base
    keys = {d: rsa.generate_private_key(public_exponent=65537, key_size=2048) for d in DOMAINS}
    external = {d: free_port() for d in DOMAINS}
    for domain in DOMAINS:
        await client.create(kinds.DOMAINS, _domain(domain, keys[domain]))
    for domain in DOMAINS:
        await eventually(functools.partial(client.get, DOMAINDATASOURCES, DEFAULT_DATA_SOURCE_ID, domain), 30)
        (base / f"gw-logs-{domain}").mkdir(parents=True, exist_ok=True)
        listeners = ListenerOptions("127.0.0.1", external[domain], "127.0.0.1", free_port(),
                                    access_log_dir=str(base / f"gw-logs-{domain}"))
        options = GatewayOptions(domain=domain, domain_key=keys[domain], run_dir=base / f"gw-{domain}",
                                 instance=f"{domain}-gw", listeners=listeners)
        module = GatewayModule(client, options)
        net.gateways[domain] = await start_until_ready(module.run(), module.ready, 30, f"gateway {domain}")
    for source, destination in (("alice", "bob"), ("bob", "alice")):
        await client.create(CDRS, _cdr(source, destination, external[destination]))
    for name in ("alice-bob", "bob-alice"):
        await eventually(functools.partial(_route_ready, client, name), 60)
    appimage = yaml.safe_load((PSI_IMAGE / "appimage.yaml").read_text())
    with contextlib.suppress(errors.AlreadyExists):
        await client.create(APPIMAGES, appimage)
    for domain in DOMAINS:
        mesh = DataMeshServer(client, domain, base / domain, DataMeshSettings(), None)
        await mesh.start()
        net.meshes[domain] = mesh
        ImageStore(base / domain / "agent" / "images").load(PSI_IMAGE, "atoll-psi:0.1")
        cfg = agent_config(server, base / domain, domain)
        cfg = dataclasses.replace(cfg, capacity=dict(CAPACITY),
                                  pod_env={**mesh.pod_env(), "ATOLL_PYTHON": sys.executable})
        net.agents[domain] = await start_agent(server, cfg)
