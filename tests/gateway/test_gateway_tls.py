"""TLS and mTLS on the external listener (one shared network): a route over TLS, plaintext sent
to a TLS endpoint (Kuscia's WRONG_VERSION_NUMBER trap, here a clear reason), and an MTLS route
whose client certificate was issued by the destination."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from atoll.api import kinds
from atoll.gateway import crypto
from tests.gateway.network import CDRS, Network, cdr, domain, network, service

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


CERTS: dict[str, bytes] = {}


def tls_listener(key: rsa.RSAPrivateKey, name: str, protocol: str) -> dict[str, str]:
    CERTS[name] = crypto.self_signed_cert(key, f"{name}_ENVOY_EXTERNAL")
    cert = CERTS[name].decode()
    return {"protocol": protocol, "server_cert_pem": cert, "server_key_pem": crypto.private_key_pem(key),
            "client_ca_pem": cert}  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Network]:
    async with network(tmp_path_factory.mktemp("gw"), ("alice", "tina", "mia")) as n:
        svc, eps = service("web", "mia", 80, n.upstream["http"])
        await n.apply(kinds.SERVICES, svc)
        await n.apply(kinds.ENDPOINTS, eps)
        await n.start_gateway("alice")
        await n.start_gateway("tina", tls_listener(n.gateways["tina"].key, "tina", "TLS"))
        await n.start_gateway("mia", tls_listener(n.gateways["mia"].key, "mia", "MTLS"))
        yield n


async def curl(*args: str) -> subprocess.CompletedProcess[str]:
    command = ["curl", "-ksv", *args]
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=20)


async def test_tls_route_to_a_tls_gateway(net: Network) -> None:
    await net.apply(CDRS, cdr("alice", "tina", net.gateways["tina"].external, tls=True))
    await net.wait_ready("alice-tina", "True", "Success")
    out = await curl(f"https://127.0.0.1:{net.gateways['tina'].external}/")
    assert out.stdout == "unauthorized." and "kuscia-error-message: Domain tina.tina-gw" in out.stderr


async def test_plaintext_to_a_tls_endpoint(net: Network) -> None:
    await net.apply(kinds.DOMAINS, domain("ulf", rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    await net.apply(CDRS, cdr("alice", "ulf", net.gateways["tina"].external, tls=False))
    ready = await net.wait_ready("alice-ulf", "False", "TLSMismatch")
    assert "isTLS: true" in ready["message"]


async def test_mtls_route_with_a_client_certificate_from_the_destination(net: Network) -> None:
    mia, alice = net.gateways["mia"], net.gateways["alice"]
    mia_cert = CERTS["mia"]  # the CA of mia's listener
    client = crypto.issue_client_cert(mia.key, mia_cert, alice.key.public_key(), "alice")
    route = cdr("alice", "mia", mia.external, tls=True)
    route["spec"]["authenticationType"] = "MTLS"
    del route["spec"]["tokenConfig"]
    route["spec"]["mTLSConfig"] = {"sourceClientCert": base64.b64encode(client).decode(),
                                   "tlsCA": base64.b64encode(mia_cert).decode()}  # fmt: skip
    await net.apply(CDRS, route)
    await net.wait_ready("alice-mia", "True", "Success")

    async def call() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{alice.internal_url}/m", headers={"Host": "web.mia.svc"}) as response:
                assert response.status == 200, (response.status, await response.text())
                assert await response.text() == "hello web.mia.svc /m 0"

    from tests.conftest import eventually

    await eventually(call, 15, every=0.2)
    out = await curl(f"https://127.0.0.1:{mia.external}/")  # no client certificate: no TLS session
    assert out.returncode != 0 and out.stdout == ""
    # a certificate from mia for another subject cannot speak for alice
    mallory = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (net.tmp / "mallory.crt").write_bytes(crypto.issue_client_cert(mia.key, mia_cert, mallory.public_key(), "mallory"))
    (net.tmp / "mallory.key").write_text(crypto.private_key_pem(mallory))
    (net.tmp / "alice.crt").write_bytes(client)
    (net.tmp / "alice.key").write_text(crypto.private_key_pem(alice.key))
    for who, status in (("mallory", "401"), ("alice", "200")):
        out = await curl(f"https://127.0.0.1:{mia.external}/x", "--cert", str(net.tmp / f"{who}.crt"),
                         "--key", str(net.tmp / f"{who}.key"), "-H", "Kuscia-Source: alice",
                         "-H", "Kuscia-Host: web.mia.svc", "-H", 'x-forwarded-client-cert: Subject="CN=alice"',
                         "-o", "/dev/null", "-w", "%{http_code}")  # fmt: skip
        assert out.stdout == status, (who, out.stdout, out.stderr[-400:])
