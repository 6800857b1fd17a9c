"""A small Atoll network for gateway tests: a master (API server + domain/route controllers on a
manual clock), real Envoy gateways per domain on free 127.0.0.1 ports, and upstream servers
(HTTP echo, gRPC echo with raw-bytes methods, TCP upper-caser)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import errors, kinds
from atoll.api.clock import OffsetClock
from atoll.client import Client
from atoll.controllers import ControllerContext
from atoll.controllers import domainroute as route_controllers
from atoll.gateway import crypto
from atoll.gateway.model import ListenerOptions
from atoll.gateway.module import GatewayModule, GatewayOptions
from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from atoll.runtime import Manager
from tests.conftest import _write_kubeconfig, eventually, free_port, start_until_ready

JSON = dict[str, Any]
CDRS = kinds.kind("kuscia.secretflow", "clusterdomainroutes")
GRPC_METHOD = "/echo.Echo/Say"


def domain(name: str, key: rsa.RSAPrivateKey | None) -> JSON:
    spec: JSON = {}
    if key is not None:
        spec["cert"] = base64.b64encode(crypto.self_signed_cert(key, name)).decode()
    return {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain", "metadata": {"name": name}, "spec": spec}


def cdr(source: str, destination: str, port: int, *, tls: bool = False, period: int = 0) -> JSON:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "ClusterDomainRoute",
        "metadata": {"name": f"{source}-{destination}"},
        "spec": {
            "source": source,
            "destination": destination,
            "authenticationType": "Token",
            "endpoint": {"host": "127.0.0.1", "ports": [{"name": "http", "port": port, "protocol": "HTTP",
                                                          "isTLS": tls}]},
            "tokenConfig": {"tokenGenMethod": "RSA-GEN", "rollingUpdatePeriod": period},
        },
    }  # fmt: skip


def service(name: str, namespace: str, port: int, target: int, **annotations: str) -> tuple[JSON, JSON]:
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
           "spec": {"ports": [{"name": "p", "port": port, "protocol": "TCP"}]}}  # fmt: skip
    subsets = [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "p", "port": target}]}]
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": namespace},
                 "subsets": subsets}  # fmt: skip
    return svc, endpoints


def egress_service(name: str, namespace: str, port: int, host: str, remote_port: int, dst: str) -> JSON:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": {"atoll.io/egress": "true"},
                         "annotations": {"atoll.io/egress-host": host, "atoll.io/egress-port": str(remote_port),
                                         "atoll.io/egress-domain": dst}},
            "spec": {"ports": [{"name": "p", "port": port, "protocol": "TCP"}]}}  # fmt: skip


@dataclass
class Gateway:
    name: str
    key: rsa.RSAPrivateKey
    external: int
    internal: int
    module: GatewayModule | None = None
    task: asyncio.Task[None] | None = None

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.internal}"

    @property
    def external_url(self) -> str:
        return f"http://127.0.0.1:{self.external}"


@dataclass
class Network:
    client: Client
    clock: OffsetClock
    tmp: Path
    kubeconfig: Path
    gateways: dict[str, Gateway] = field(default_factory=dict)
    upstream: dict[str, int] = field(default_factory=dict)
    seen: list[dict[str, str]] = field(default_factory=list)

    async def start_gateway(self, name: str, listener: dict[str, Any] | None = None, **options: Any) -> Gateway:
        gw = self.gateways[name]
        listeners = ListenerOptions("127.0.0.1", gw.external, "127.0.0.1", gw.internal, access_log_dir=str(self.tmp),
                                    **(listener or {}))  # fmt: skip
        opts = GatewayOptions(
            domain=name, domain_key=gw.key, run_dir=self.tmp / f"gw-{name}", instance=f"{name}-gw",
            listeners=listeners, **options,
        )  # fmt: skip
        gw.module = GatewayModule(self.client, opts, clock=self.clock)
        gw.task = await start_until_ready(gw.module.run(), gw.module.ready, 30, f"gateway {name} not ready")
        return gw

    async def stop_gateway(self, name: str) -> None:
        gw = self.gateways[name]
        if gw.task is not None:
            gw.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gw.task
            gw.task = None

    async def ready(self, name: str) -> JSON:
        obj = await self.client.get(CDRS, name)
        conditions = (obj.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        assert ready is not None, f"{name}: no Ready condition yet"
        return dict(ready)

    async def wait_ready(self, name: str, status: str = "True", reason: str | None = None, within: float = 60) -> JSON:
        async def check() -> JSON:
            ready = await self.ready(name)
            assert ready["status"] == status, ready
            assert reason is None or ready["reason"] == reason, ready
            return ready

        return await eventually(check, within, every=0.1)

    async def apply(self, rd: Any, obj: JSON) -> None:
        with contextlib.suppress(errors.AlreadyExists):
            await self.client.create(rd, obj, (obj.get("metadata") or {}).get("namespace"))


async def _upstreams(net: Network) -> AsyncIterator[None]:
    async def echo(request: web.Request) -> web.StreamResponse:
        net.seen.append({k.lower(): v for k, v in request.headers.items()})
        body = await request.read()
        return web.Response(text=f"hello {request.host} {request.path} {len(body)}")

    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    net.upstream["http"] = free_port()
    await web.TCPSite(runner, "127.0.0.1", net.upstream["http"]).start()

    async def upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data.upper())
            await writer.drain()
        writer.close()

    net.upstream["tcp"] = free_port()
    tcp = await asyncio.start_server(upper, "127.0.0.1", net.upstream["tcp"])

    async def say(request: bytes, context: Any) -> bytes:
        return b"echo:" + request

    async def count(request: bytes, context: Any) -> AsyncIterator[bytes]:
        for i in range(int(request)):
            yield str(i).encode()
            await asyncio.sleep(0.01)

    grpc_server = grpc.aio.server()
    methods = {"Say": grpc.unary_unary_rpc_method_handler(say), "Count": grpc.unary_stream_rpc_method_handler(count)}
    handler = grpc.method_handlers_generic_handler("echo.Echo", methods)
    grpc_server.add_generic_rpc_handlers((handler,))
    net.upstream["grpc"] = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    try:
        yield
    finally:
        await grpc_server.stop(0)
        tcp.close()
        await runner.cleanup()


@contextlib.asynccontextmanager
async def network(tmp: Path, domains: tuple[str, ...] = ("alice", "bob")) -> AsyncIterator[Network]:
    config = NodeConfig(mode="master", domain_id="kuscia-system", data_dir=tmp / "master", api_port=0,
                        controllers=("domain",))  # fmt: skip
    node = MasterNode(config)
    master = await start_until_ready(node.run(), node.ready, 30, "master did not become ready in 30 s")
    clock = OffsetClock()
    async with node.client() as client:
        kubeconfig, _, _ = _write_kubeconfig(config.data_dir, node.url)
        net = Network(client, clock, tmp, kubeconfig)
        manager = Manager(client)
        route_controllers.setup(manager, ControllerContext(client), clock=clock, monitor_period=0.3)
        controllers = asyncio.create_task(manager.run())
        upstreams = _upstreams(net)
        await anext(upstreams)
        try:
            for name in domains:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                net.gateways[name] = Gateway(name, key, free_port(), free_port())
                await net.apply(kinds.DOMAINS, domain(name, key))

            async def namespaces() -> None:
                for name in domains:
                    await client.get(kinds.NAMESPACES, name)

            await eventually(namespaces, 20)
            yield net
        finally:
            for name in list(net.gateways):
                await net.stop_gateway(name)
            controllers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await controllers
            with contextlib.suppress(StopAsyncIteration):
                await anext(upstreams)
            master.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await master
