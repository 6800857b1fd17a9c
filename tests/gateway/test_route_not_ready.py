"""Each reason a route cannot become Ready has its own condition reason and an actionable message
(one shared network: the master, alice's real gateway, and bob's gateway as a wrong endpoint)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import kinds
from atoll.gateway import crypto
from tests.conftest import free_port
from tests.gateway.network import CDRS, Network, cdr, domain, network

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Network]:
    async with network(tmp_path_factory.mktemp("gw"), ("alice", "bob", "tina")) as n:
        await n.start_gateway("alice")
        await n.start_gateway("bob")
        tina = n.gateways["tina"].key
        cert = crypto.self_signed_cert(tina, "tina_ENVOY_EXTERNAL").decode()
        pem = tina.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        await n.start_gateway("tina", {"protocol": "TLS", "server_cert_pem": cert, "server_key_pem": pem})
        yield n


async def peer(net: Network, name: str, *, cert: bool = True) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if cert else None
    await net.apply(kinds.DOMAINS, domain(name, key))


async def test_peer_domain_missing(net: Network) -> None:
    await net.apply(CDRS, cdr("alice", "dave", free_port()))
    ready = await net.wait_ready("alice-dave", "False", "DomainNotFound")
    assert ready["message"].startswith("Domain dave does not exist")


async def test_peer_cert_missing(net: Network) -> None:
    await peer(net, "erin", cert=False)
    await net.apply(CDRS, cdr("alice", "erin", free_port()))
    ready = await net.wait_ready("alice-erin", "False", "DomainCertMissing")
    assert "Domain erin has no spec.cert" in ready["message"]


async def test_endpoint_refused(net: Network) -> None:
    await peer(net, "frank")
    port = free_port()
    await net.apply(CDRS, cdr("alice", "frank", port))
    ready = await net.wait_ready("alice-frank", "False", "EndpointRefused")
    assert f"127.0.0.1:{port}" in ready["message"]


async def test_tls_on_a_plaintext_endpoint(net: Network) -> None:
    await peer(net, "grace")
    await net.apply(CDRS, cdr("alice", "grace", net.gateways["bob"].external, tls=True))
    ready = await net.wait_ready("alice-grace", "False", "TLSMismatch")
    assert "isTLS: false" in ready["message"]


async def test_tls_route_to_a_tls_gateway(net: Network) -> None:
    await net.apply(CDRS, cdr("alice", "tina", net.gateways["tina"].external, tls=True))
    await net.wait_ready("alice-tina", "True", "Success")
    command = ["curl", "-ksv", f"https://127.0.0.1:{net.gateways['tina'].external}/"]
    out = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=20)
    assert out.stdout == "unauthorized." and "kuscia-error-message: Domain tina.tina-gw" in out.stderr


async def test_plaintext_to_a_tls_endpoint(net: Network) -> None:
    await peer(net, "ulf")
    await net.apply(CDRS, cdr("alice", "ulf", net.gateways["tina"].external, tls=False))
    ready = await net.wait_ready("alice-ulf", "False", "TLSMismatch")
    assert "isTLS: true" in ready["message"]


async def test_handshake_401_from_another_gateway(net: Network) -> None:
    await peer(net, "heidi")  # the endpoint is bob's gateway, which does not serve heidi's handshake
    await net.apply(CDRS, cdr("alice", "heidi", net.gateways["bob"].external))
    ready = await net.wait_ready("alice-heidi", "False", "HandshakeUnauthorized")
    assert "401 unauthorized." in ready["message"] and "Domain bob.bob-gw" in ready["message"]


async def test_get_cdr_ready_column(net: Network) -> None:
    await net.apply(CDRS, cdr("alice", "bob", net.gateways["bob"].external))
    await net.wait_ready("alice-bob", "True", "Success")
    table = await net.client.request(
        "GET", "/apis/kuscia.secretflow/v1alpha1/clusterdomainroutes",
        params={"fieldSelector": "metadata.name=alice-bob"},
    )  # fmt: skip
    assert table["items"][0]["status"]["conditions"][-1]["status"] == "True"
