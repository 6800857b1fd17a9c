"""Each reason a route cannot become Ready has its own condition reason and an actionable message
(one shared network: the master, alice's real gateway, and bob's gateway as a wrong endpoint)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import kinds
from tests.conftest import eventually, free_port
from tests.gateway.network import CDRS, Network, cdr, domain, network, service

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Network]:
    async with network(tmp_path_factory.mktemp("gw"), ("alice", "bob")) as n:
        await n.start_gateway("alice")
        await n.start_gateway("bob")
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


async def test_handshake_401_from_another_gateway(net: Network) -> None:
    await peer(net, "heidi")  # the endpoint is bob's gateway, which does not serve heidi's handshake
    await net.apply(CDRS, cdr("alice", "heidi", net.gateways["bob"].external))
    ready = await net.wait_ready("alice-heidi", "False", "HandshakeUnauthorized")
    assert "401 unauthorized." in ready["message"] and "Domain bob.bob-gw" in ready["message"]


async def test_authentication_none_accepts_the_source_without_token(net: Network) -> None:
    svc, eps = service("web", "alice", 80, net.upstream["http"])
    await net.apply(kinds.SERVICES, svc)
    await net.apply(kinds.ENDPOINTS, eps)
    route = cdr("bob", "alice", net.gateways["alice"].external)
    route["spec"]["authenticationType"] = "None"
    del route["spec"]["tokenConfig"]
    await net.apply(CDRS, route)
    await net.wait_ready("bob-alice", "True", "Success")

    async def call() -> None:
        async with aiohttp.ClientSession() as session:
            url = f"{net.gateways['bob'].internal_url}/none"
            async with session.get(url, headers={"Host": "web.alice.svc"}) as response:
                assert response.status == 200, response.status

    await eventually(call, 15, every=0.2)
    assert "kuscia-token" not in net.seen[-1] and net.seen[-1]["kuscia-source"] == "bob"


async def test_get_cdr_ready_column(net: Network) -> None:
    await net.apply(CDRS, cdr("alice", "bob", net.gateways["bob"].external))
    await net.wait_ready("alice-bob", "True", "Success")
    table = await net.client.request(
        "GET", "/apis/kuscia.secretflow/v1alpha1/clusterdomainroutes",
        params={"fieldSelector": "metadata.name=alice-bob"},
    )  # fmt: skip
    assert table["items"][0]["status"]["conditions"][-1]["status"] == "True"
