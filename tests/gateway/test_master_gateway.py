"""The master's gateway (started by MasterNode from the ``gateway:`` config block) routes
``apiserver.master.svc`` to the API server: a lite's gateway reaches the master API through the
authenticated route, with the domain's service-account token added by the master's gateway."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import kinds
from atoll.controllers import ControllerContext
from atoll.controllers import domainroute as route_controllers
from atoll.gateway.binary import EnvoyBinaryError, find_envoy
from atoll.gateway.model import ListenerOptions
from atoll.gateway.module import GatewayModule, GatewayOptions
from atoll.node.config import ConfigError, NodeConfig
from atoll.node.gateway import gateway_options
from atoll.node.master import MasterNode
from atoll.node.pki import init_pki
from atoll.runtime import Manager
from tests.conftest import ATOLL, REPO, eventually, free_port, start_until_ready
from tests.gateway.network import CDRS, cdr, domain

pytestmark = pytest.mark.slow


def key_data(key: rsa.RSAPrivateKey) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return base64.b64encode(pem).decode()


async def test_lite_reaches_master_api_through_gateways(tmp_path: Path) -> None:
    master_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    alice_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    external = free_port()
    config = NodeConfig(
        mode="master", domain_id="kuscia-system", data_dir=tmp_path / "master", api_port=0, controllers=("domain",),
        domain_key_data=key_data(master_key),
        extra={"gateway": {"externalHost": "127.0.0.1", "externalPort": external, "internalPort": free_port(),
                           "instance": "master-gw"}},
    )  # fmt: skip
    node = MasterNode(config)

    async def register(request: web.Request) -> web.Response:  # contract C3: the node's own routes
        return web.json_response({"registered": request.headers.get("Kuscia-Source")})

    node.gateway_routes.append(web.post("/register", register))
    master = await start_until_ready(node.run(), node.ready, 30, "master not ready")
    async with node.client() as client:
        manager = Manager(client)
        route_controllers.setup(manager, ControllerContext(client), monitor_period=0.3)
        controllers = asyncio.create_task(manager.run())
        gw_task = None
        try:
            await eventually(lambda: _gateway_ready(node), 30)
            # the master creates its own Domain (kuscia-system, spec.cert of its domain key) at start
            own = await client.get(kinds.DOMAINS, "kuscia-system")
            assert own["spec"]["cert"]
            await client.create(kinds.DOMAINS, domain("alice", alice_key))
            await eventually(lambda: client.get(kinds.SERVICEACCOUNTS, "alice", "alice"), 20)
            path = "/api/v1/namespaces/alice/serviceaccounts/alice/token"
            token = (await client.request("POST", path, body={"spec": {"expirationSeconds": 3600}}))["status"]["token"]
            route = cdr("alice", "kuscia-system", external)
            route["spec"]["requestHeadersToAdd"] = {"Authorization": f"Bearer {token}"}
            await client.create(CDRS, route)
            internal = free_port()
            options = GatewayOptions(
                domain="alice", domain_key=alice_key, run_dir=tmp_path / "alice", instance="alice-gw",
                listeners=ListenerOptions("127.0.0.1", free_port(), "127.0.0.1", internal),
            )  # fmt: skip
            alice = GatewayModule(client, options)
            gw_task = await start_until_ready(alice.run(), alice.ready, 30, "alice's gateway not ready")

            async def through_gateway() -> None:
                async with aiohttp.ClientSession() as session:
                    url = f"http://127.0.0.1:{internal}/api/v1/namespaces/alice/configmaps"
                    async with session.get(url, headers={"Host": "apiserver.master.svc"}) as response:
                        assert response.status == 200, (response.status, await response.text())
                        assert (await response.json())["kind"] == "ConfigMapList"

            await eventually(through_gateway, 20, every=0.2)
            async with aiohttp.ClientSession() as session:
                headers = {"Kuscia-Host": "kuscia-handshake.master.svc", "Kuscia-Source": "alice"}
                async with session.post(f"http://127.0.0.1:{external}/register", headers=headers) as response:
                    assert (response.status, await response.json()) == (200, {"registered": "alice"})

            async def metrics() -> None:  # Envoy's statistics are on the master's /metrics
                headers = {"Authorization": f"Bearer {client_token(node)}"}
                async with aiohttp.ClientSession() as session:
                    async with session.get(f"{node.url}/metrics", ssl=False, headers=headers) as response:
                        assert 'envoy_server_live{domain="kuscia-system"' in await response.text()

            await eventually(metrics, 20, every=0.5)
        finally:
            for task in (gw_task, controllers, master):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task


def client_token(node: MasterNode) -> str:
    return node.pki.admin_token.read_text().strip()


async def _gateway_ready(node: MasterNode) -> None:
    assert node.gateway is not None and node.gateway.ready.is_set()


def test_missing_envoy_binary_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(EnvoyBinaryError, match=r"^envoy binary /nope/envoy does not exist or is not executable$"):
        find_envoy("/nope/envoy")
    config = NodeConfig(mode="lite", domain_id="alice", data_dir=tmp_path, extra={"gateway": {}})
    with pytest.raises(ConfigError, match=r"^domainKeyData: required by the gateway"):
        gateway_options(config)


def test_atoll_start_with_a_missing_envoy_is_one_line(tmp_path: Path) -> None:
    config = NodeConfig(
        mode="master", domain_id="kuscia-system", data_dir=tmp_path / "data", api_port=free_port(),
        domain_key_data=key_data(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        extra={"gateway": {"envoyBinary": str(tmp_path / "no-envoy")}},
    )  # fmt: skip
    init_pki(config)  # what `atoll init` creates; `atoll start` refuses a node without it
    path = tmp_path / "atoll.yaml"
    path.write_text(config.to_yaml())
    out = subprocess.run([*ATOLL, "start", "-c", str(path)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines[-1].endswith(f"gateway: envoy binary {tmp_path / 'no-envoy'} does not exist or is not executable")
    assert "Traceback" not in out.stderr
