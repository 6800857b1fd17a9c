"""A lite node's own ``/metrics`` (issue 11: "Envoy's stats exported on the node's /metrics"):
a real lite with its gateway (real Envoy) serves the process's registry on ``metrics.port``
(plain, 127.0.0.1) and on the agent's kubelet-style HTTPS server (API server's client cert only);
the same plain port answers ``/readyz/gateway`` (500 naming a taken external port, then 200)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.cli.status import _lite_status
from atoll.node.config import ConfigError, NodeConfig
from atoll.node.lite import LiteNode, issue_agent_certificate
from atoll.node.lite_metrics import metrics_port
from tests.conftest import RunningServer, eventually, free_port

pytestmark = pytest.mark.slow
ENVOY_SERIES = 'envoy_server_live{domain="alice"'


def key_data(key: rsa.RSAPrivateKey) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return base64.b64encode(pem).decode()


async def scrape(url: str, ssl_context: ssl.SSLContext | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, ssl=ssl_context if ssl_context is not None else False) as response:
            return response.status, await response.text()


async def test_lite_serves_envoy_stats_on_its_metrics(api_server: RunningServer, tmp_path: Path) -> None:
    data = tmp_path / "alice"
    issue_agent_certificate(api_server.data_dir, data, "alice")
    port, log_port = free_port(), free_port()
    config = NodeConfig(
        mode="lite", domain_id="alice", data_dir=data, kubeconfig=str(api_server.kubeconfig),
        domain_key_data=key_data(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        extra={"gateway": {"externalHost": "127.0.0.1", "externalPort": free_port(), "internalPort": free_port(),
                           "instance": "alice-gw"},
               "agent": {"nodeName": "alice-node", "logPort": log_port},
               "datamesh": {"enabled": False},
               "metrics": {"port": port}},
    )  # fmt: skip
    lite = LiteNode(config)
    task = asyncio.create_task(lite.run())
    try:
        async def plain() -> None:
            assert not task.done(), task
            try:
                status, text = await scrape(f"http://127.0.0.1:{port}/metrics")
            except aiohttp.ClientConnectorError as exc:  # not bound yet
                raise AssertionError(exc) from exc
            assert status == 200 and ENVOY_SERIES in text, text[-2000:]

        await eventually(plain, 40, every=0.5)
        assert await scrape(f"http://127.0.0.1:{port}/readyz/gateway") == (200, "ok")
        status, verbose = await scrape(f"http://127.0.0.1:{port}/readyz?verbose")
        assert status == 200 and "[+]gateway ok\n" in verbose, verbose
        assert api_server.node is not None
        pki = api_server.node.pki
        trusted = ssl.create_default_context(cafile=str(api_server.ca_file))
        trusted.check_hostname = False
        trusted.load_cert_chain(str(pki.kubelet_client_cert), str(pki.kubelet_client_key))
        status, text = await scrape(f"https://127.0.0.1:{log_port}/metrics", trusted)
        assert status == 200 and ENVOY_SERIES in text
        anonymous = ssl.create_default_context(cafile=str(api_server.ca_file))
        anonymous.check_hostname = False
        with pytest.raises(aiohttp.ClientError):  # no client certificate: refused in the TLS handshake
            await scrape(f"https://127.0.0.1:{log_port}/metrics", anonymous)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with pytest.raises(aiohttp.ClientError):  # the port closes with the node
        await scrape(f"http://127.0.0.1:{port}/metrics")


async def test_lite_readyz_names_its_taken_gateway_port(
    api_server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        external = taken.getsockname()[1]
        config = NodeConfig(
            mode="lite", domain_id="alice", data_dir=tmp_path / "alice", kubeconfig=str(api_server.kubeconfig),
            domain_key_data=key_data(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            extra={"gateway": {"externalHost": "127.0.0.1", "externalPort": external, "internalPort": free_port(),
                               "instance": "alice-gw"},
                   "agent": {"nodeName": "alice-node", "logPort": free_port()},
                   "datamesh": {"enabled": False},
                   "metrics": {"port": port}},
        )  # fmt: skip
        task = asyncio.create_task(LiteNode(config).run())
        try:

            async def failing() -> None:
                assert not task.done(), task
                try:
                    status, text = await scrape(f"http://127.0.0.1:{port}/readyz/gateway")
                except aiohttp.ClientConnectorError as exc:  # not bound yet
                    raise AssertionError(exc) from exc
                assert status == 500 and f"cannot bind '127.0.0.1:{external}'" in text, text

            await eventually(failing, 40, every=0.5)
            assert (await scrape(f"http://127.0.0.1:{port}/readyz"))[0] == 500
            await asyncio.to_thread(_lite_status, config)
            line = capsys.readouterr().out.splitlines()[-1]
            assert line.startswith("gateway:   NOT serving: envoy rejected Listener") and str(external) in line
            taken.close()

            async def serving() -> None:
                assert await scrape(f"http://127.0.0.1:{port}/readyz/gateway") == (200, "ok")

            await eventually(serving, 30, every=0.5)
            await asyncio.to_thread(_lite_status, config)
            assert capsys.readouterr().out.splitlines()[-1] == "gateway:   serving"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def test_metrics_port_setting() -> None:
    assert metrics_port({}) == 0
    assert metrics_port({"metrics": {"port": 9091}}) == 9091
    with pytest.raises(ConfigError, match=r"^metrics\.port: must be an integer port"):
        metrics_port({"metrics": {"port": "x"}})
    with pytest.raises(ConfigError, match=r"^metrics: must be a mapping"):
        metrics_port({"metrics": 3})
