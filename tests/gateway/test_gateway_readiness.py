"""The ``gateway`` readiness check with a real Envoy: a master whose external port is held by
another program answers ``/readyz/gateway`` 500 naming the port (and ``/readyz`` fails, the check
gates it); once the port is free Envoy binds it and both answer 200."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from tests.conftest import eventually, free_port, start_until_ready
from tests.gateway.test_master_gateway import client_token, key_data

pytestmark = pytest.mark.slow


async def _get(node: MasterNode, path: str) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {client_token(node)}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{node.url}{path}", ssl=False, headers=headers) as response:
            return response.status, await response.text()


async def test_taken_external_port_fails_readyz_gateway_until_freed(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("127.0.0.1", free_port()))
    taken.listen()
    external = taken.getsockname()[1]
    config = NodeConfig(
        mode="master", domain_id="kuscia-system", data_dir=tmp_path / "master", api_port=0, controllers=(),
        domain_key_data=key_data(key),
        extra={"gateway": {"externalHost": "127.0.0.1", "externalPort": external, "internalPort": free_port(),
                           "instance": "master-gw"}},
    )  # fmt: skip
    node = MasterNode(config)
    master = await start_until_ready(node.run(), node.ready, 30, "master not ready")
    try:

        async def failing() -> None:
            status, body = await _get(node, "/readyz/gateway")
            assert status == 500 and f"127.0.0.1:{external}" in body, (status, body)
            assert body.count("\n") == 1 and "Address already in use" in body, body

        await eventually(failing, 30, every=0.2)
        status, verbose = await _get(node, "/readyz?verbose")
        assert status == 500 and "[-]gateway failed: reason withheld\n" in verbose, verbose
        assert verbose.endswith("readyz check failed\n")
        status, _ = await _get(node, "/readyz?exclude=gateway")  # the API server alone is ready
        assert status == 200
        taken.close()

        async def serving() -> None:
            assert await _get(node, "/readyz/gateway") == (200, "ok")
            assert await _get(node, "/readyz") == (200, "ok")

        await eventually(serving, 30, every=0.5)
        status, verbose = await _get(node, "/readyz?verbose")
        assert status == 200 and "[+]gateway ok\n" in verbose, verbose
    finally:
        taken.close()
        master.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await master
