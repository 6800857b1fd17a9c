"""``gateway.egressAddress`` with a real Envoy: a RunK lite's egress listener bound to a non-loopback
address of the lite (here 127.0.0.2, another address on Linux's loopback interface, standing in for
the pod IP) tunnels raw TCP to the peer's service, and is not served on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from atoll.api import kinds
from tests.conftest import eventually, free_port
from tests.gateway.network import CDRS, Network, cdr, egress_service, network, service

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
EGRESS_HOST = "127.0.0.2"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Network]:
    async with network(tmp_path_factory.mktemp("egress")) as n:
        svc, eps = service("raw", "bob", 9000, n.upstream["tcp"])
        await n.apply(kinds.SERVICES, svc)
        await n.apply(kinds.ENDPOINTS, eps)
        n.upstream["egress"] = free_port()
        await n.apply(kinds.SERVICES, egress_service("raw-bob", "alice", n.upstream["egress"], "raw.bob.svc", 9000,
                                                     "bob"))  # fmt: skip
        await n.start_gateway("alice", listener={"egress_host": EGRESS_HOST})
        await n.start_gateway("bob")
        await n.apply(CDRS, cdr("alice", "bob", n.gateways["bob"].external))
        yield n


async def round_trip(host: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"from a runk pod \x00")
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(17), 10)
    finally:
        writer.close()


async def answered(host: str, port: int) -> bytes:
    """One round trip; a listener or tunnel not up yet is "not yet" for ``eventually``."""
    try:
        return await round_trip(host, port)
    except (OSError, asyncio.IncompleteReadError) as exc:
        raise AssertionError(f"{host}:{port} not serving yet: {exc!r}") from exc


async def test_egress_listener_on_a_non_loopback_address_reaches_the_peer(net: Network) -> None:
    await net.wait_ready("alice-bob")
    port = net.upstream["egress"]
    assert await eventually(lambda: answered(EGRESS_HOST, port), 20) == b"FROM A RUNK POD \x00"
    with pytest.raises(OSError):  # bound to the configured address only, not 127.0.0.1
        await round_trip("127.0.0.1", port)
