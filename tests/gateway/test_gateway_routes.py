"""alice → bob through two real Envoy gateways, with the real RSA-GEN handshake, on one shared
network per module: HTTP, gRPC and raw TCP; 401s; Ready and HeartBeatTimeout; SIGKILL; NACK."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio
from multidict import CIMultiDict
from prometheus_client import generate_latest

from atoll.api import kinds
from atoll.gateway import crypto
from atoll.gateway.drstatus import DOMAINROUTES
from atoll.runtime.metrics import REGISTRY
from tests.conftest import eventually, free_port, kubectl_binary, kubectl_environ
from tests.gateway.network import CDRS, GRPC_METHOD, Network, cdr, egress_service, network, service

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Network]:
    async with network(tmp_path_factory.mktemp("gw")) as n:
        closed = free_port()
        for name, port, target, access in (
            ("web", 80, n.upstream["http"], None),
            ("grpc", 50051, n.upstream["grpc"], None),
            ("raw", 9000, n.upstream["tcp"], None),
            ("private", 80, n.upstream["http"], "carol"),
            ("shared", 80, n.upstream["http"], "carol,alice"),
            ("down", 80, closed, None),
        ):
            annotations = {"kuscia.secretflow/access-domain": access} if access else {}
            svc, eps = service(name, "bob", port, target, **annotations)
            await n.apply(kinds.SERVICES, svc)
            await n.apply(kinds.ENDPOINTS, eps)
        n.upstream["egress"] = free_port()
        egress = egress_service("raw-bob", "alice", n.upstream["egress"], "raw.bob.svc", 9000, "bob")
        await n.apply(kinds.SERVICES, egress)
        await n.start_gateway("alice")
        await n.start_gateway("bob", handshake_ready_wait=3.0)
        n.upstream["created"] = int(time.monotonic())
        await n.apply(CDRS, cdr("alice", "bob", n.gateways["bob"].external))
        yield n


async def get(url: str, **kwargs: object) -> tuple[int, str, CIMultiDict[str]]:
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as response:  # type: ignore[arg-type]
        return response.status, await response.text(), CIMultiDict(response.headers)


async def alice_token(net: Network) -> tuple[int, str]:
    dr = await net.client.get(DOMAINROUTES, "alice-bob", "alice")
    newest = dr["status"]["tokenStatus"]["tokens"][-1]
    return int(newest["revision"]), crypto.header_token(crypto.decrypt(net.gateways["alice"].key, newest["token"]))


async def test_route_ready_within_10s(net: Network) -> None:
    await net.wait_ready("alice-bob", "True", "Success", within=10)
    table = await net.client.request("GET", "/apis/kuscia.secretflow/v1alpha1/clusterdomainroutes",
                                     params={"includeObject": "None"})  # fmt: skip
    assert table["items"][0]["metadata"]["name"] == "alice-bob"


async def test_http_via_internal_listener_and_proxy(net: Network) -> None:
    await net.wait_ready("alice-bob")
    alice = net.gateways["alice"]
    status, body, _ = await get(f"{alice.internal_url}/hello", headers={"Host": "web.bob.svc"})
    assert (status, body) == (200, "hello web.bob.svc /hello 0")
    seen = net.seen[-1]
    assert seen["kuscia-source"] == "alice" and seen["kuscia-origin-source"] == "alice"
    assert "kuscia-token" not in seen  # checked and stripped by bob
    # a client honouring http_proxy sends absolute-form requests to the internal listener
    status, body, _ = await get("http://web.bob.svc/proxied", proxy=alice.internal_url)
    assert (status, body) == (200, "hello web.bob.svc /proxied 0")


async def test_grpc_through_proxy(net: Network) -> None:
    await net.wait_ready("alice-bob")
    options = [("grpc.http_proxy", net.gateways["alice"].internal_url), ("grpc.enable_http_proxy", 1)]
    async with grpc.aio.insecure_channel("grpc.bob.svc:50051", options=options) as channel:
        say = channel.unary_unary(GRPC_METHOD)
        assert await say(b"hi", timeout=10) == b"echo:hi"


async def test_grpc_h2c_stream_without_proxy(net: Network) -> None:
    """A client that ignores proxy variables: h2c to the internal listener with the service as authority."""
    await net.wait_ready("alice-bob")
    options = [("grpc.default_authority", "grpc.bob.svc:50051"), ("grpc.enable_http_proxy", 0)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{net.gateways['alice'].internal}", options=options) as channel:
        count = channel.unary_stream("/echo.Echo/Count")
        assert [m async for m in count(b"50", timeout=20)] == [str(i).encode() for i in range(50)]


async def test_grpc_with_a_bad_token_is_unauthenticated(net: Network) -> None:
    options = [("grpc.default_authority", "grpc.bob.svc:50051"), ("grpc.enable_http_proxy", 0)]
    metadata = (("kuscia-source", "alice"), ("kuscia-host", "grpc.bob.svc:50051"), ("kuscia-token", "stale"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{net.gateways['bob'].external}", options=options) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary(GRPC_METHOD)(b"hi", timeout=10, metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_raw_tcp_via_egress_port(net: Network) -> None:
    await net.wait_ready("alice-bob")
    reader, writer = await asyncio.open_connection("127.0.0.1", net.upstream["egress"])
    writer.write(b"raw bytes \x00\x01")
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(12), 10) == b"RAW BYTES \x00\x01"
    writer.close()


async def test_no_route_is_a_clear_error(net: Network) -> None:
    status, _, headers = await get(f"{net.gateways['bob'].internal_url}/", headers={"Host": "web.alice.svc"})
    assert status == 404
    assert 'no route from bob to "web.alice.svc"' in headers["Kuscia-Error-Message"]
    status, _, headers = await get(f"{net.gateways['alice'].internal_url}/", headers={"Host": "nope.bob.svc"})
    assert status == 404 and 'Service "nope.bob.svc" not found' in headers["Kuscia-Error-Message"]


async def test_access_domain_annotation(net: Network) -> None:
    await net.wait_ready("alice-bob")
    alice = net.gateways["alice"]
    status, body, headers = await get(f"{alice.internal_url}/", headers={"Host": "private.bob.svc"})
    assert (status, body) == (403, "forbidden.")
    assert "domain alice may not access service private" in headers["Kuscia-Error-Message"]
    assert (await get(f"{alice.internal_url}/", headers={"Host": "shared.bob.svc"}))[0] == 200
    # bob's own processes are not subject to the list
    assert (await get(f"{net.gateways['bob'].internal_url}/", headers={"Host": "private.bob.svc"}))[0] == 200


async def test_upstream_down_names_the_upstream(net: Network) -> None:
    await net.wait_ready("alice-bob")
    status, _, headers = await get(f"{net.gateways['alice'].internal_url}/", headers={"Host": "down.bob.svc"})
    assert status == 503
    assert headers["Kuscia-Error-Message"].startswith("Domain bob.bob-gw: upstream service-bob-down-80 unavailable")


async def test_streams_large_bodies(net: Network) -> None:
    await net.wait_ready("alice-bob")
    body = os.urandom(1 << 20) * 32  # 32 MiB, streamed through alice -> bob -> upstream
    async with aiohttp.ClientSession() as session:
        url = f"{net.gateways['alice'].internal_url}/upload"
        async with session.post(url, data=body, headers={"Host": "web.bob.svc"}) as response:
            assert response.status == 200
            assert await response.text() == f"hello web.bob.svc /upload {len(body)}"


async def test_kubectl_get_cdr_columns(net: Network, tmp_path: Path) -> None:
    await net.wait_ready("alice-bob")
    env = {**kubectl_environ(tmp_path), "KUBECONFIG": str(net.kubeconfig)}
    command = [kubectl_binary(), "get", "cdr"]
    out = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    header, row = (line.split() for line in out.stdout.splitlines()[:2])
    assert header == ["NAME", "SOURCE", "DESTINATION", "HOST", "AUTHENTICATION", "READY"]
    assert row == ["alice-bob", "alice", "bob", "127.0.0.1", "Token", "True"]


async def test_envoy_stats_on_metrics(net: Network) -> None:
    await get(f"{net.gateways['alice'].internal_url}/", headers={"Host": "web.bob.svc"})

    async def exported() -> None:
        text = generate_latest(REGISTRY).decode()
        assert 'envoy_http_downstream_rq_total{domain="alice",envoy_http_conn_manager_prefix="internal"}' in text

    await eventually(exported, 15, every=0.5)


async def test_wrong_and_foreign_tokens_get_401(net: Network) -> None:
    await net.wait_ready("alice-bob")
    _, token = await alice_token(net)
    bob = net.gateways["bob"]
    wrong = base64.b64encode(os.urandom(32)).decode()
    for source, value in (("alice", wrong), ("carol", token), ("bob", token), ("alice", None)):
        headers = {"Kuscia-Source": source, "Kuscia-Host": "web.bob.svc"}
        if value is not None:
            headers["Kuscia-Token"] = value
        status, body, got = await get(bob.external_url, headers=headers)
        assert (status, body) == (401, "unauthorized."), (source, value)
        assert got["Kuscia-Error-Message"] == "Domain bob.bob-gw<--web.bob.svc return http code 401."
    headers = {"Kuscia-Source": "alice", "Kuscia-Host": "web.bob.svc", "Kuscia-Token": token}
    assert (await get(bob.external_url, headers=headers))[0] == 200


async def test_curl_connectivity_check(net: Network) -> None:
    command = ["curl", "-ksv", net.gateways["bob"].external_url]
    out = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=20)
    assert out.stdout == "unauthorized."
    assert "< HTTP/1.1 401 Unauthorized" in out.stderr and "kuscia-error-message: Domain bob.bob-gw" in out.stderr


async def test_envoy_sigkill_is_restarted(net: Network) -> None:
    await net.wait_ready("alice-bob")
    supervisor = net.gateways["bob"].module.supervisor  # type: ignore[union-attr]
    starts, pid = supervisor.starts, supervisor.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    async def traffic() -> None:
        assert supervisor.starts > starts
        status, _, _ = await get(f"{net.gateways['alice'].internal_url}/again", headers={"Host": "web.bob.svc"})
        assert status == 200

    await eventually(traffic, 20, every=0.2)


async def test_rejected_config_keeps_the_previous_one(net: Network) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        await net.apply(kinds.SERVICES, egress_service("clash", "alice", port, "web.bob.svc", 80, "bob"))

        async def event() -> None:
            events = await net.client.list(kinds.EVENTS, "alice")
            assert any(e.get("reason") == "EnvoyConfigRejected" for e in events["items"]), events

        await eventually(event, 15)
        status, _, _ = await get(f"{net.gateways['alice'].internal_url}/", headers={"Host": "web.bob.svc"})
        assert status == 200  # the previous config still serves
        reader, writer = await asyncio.open_connection("127.0.0.1", net.upstream["egress"])
        writer.write(b"x")
        assert await asyncio.wait_for(reader.readexactly(1), 10) == b"X"
        writer.close()

    async def bound_once_free() -> None:  # the rejected listener is offered again and now binds
        try:
            status, body, _ = await get(f"http://127.0.0.1:{port}/late", headers={"Host": "web.bob.svc"})
        except aiohttp.ClientError as exc:
            raise AssertionError(f"egress port {port} not serving yet: {exc}") from None
        assert (status, body) == (200, "hello web.bob.svc /late 0")

    await eventually(bound_once_free, 20, every=0.5)
    await net.client.delete(kinds.SERVICES, "clash", "alice")


async def test_gateway_network_status_and_cdr_endpoint_statuses(net: Network) -> None:
    await net.wait_ready("alice-bob")
    net.clock.advance(15)  # the next Gateway heartbeat carries Envoy's health-check view

    async def reported() -> None:
        gateway = await net.client.get(kinds.kind("kuscia.secretflow", "gateways"), "alice-gw", "alice")
        assert (gateway.get("status") or {}).get("networkStatus") == [
            {"name": "alice-to-bob-http", "type": "DomainRoute", "totalEndpointsCount": 1, "healthyEndpointsCount": 1}
        ]
        route = await net.client.get(CDRS, "alice-bob")
        assert (route.get("status") or {}).get("endpointStatuses") == {"alice-gw-http": {"endpointHealthy": True}}

    await eventually(reported, 15, every=0.2)


async def test_heartbeat_timeout_and_recovery(net: Network) -> None:
    await net.wait_ready("alice-bob")
    await net.stop_gateway("bob")
    net.clock.advance(31)
    ready = await net.wait_ready("alice-bob", "False", "HeartBeatTimeout")
    assert "the source reports it unreachable" in ready["message"]
    assert (await net.client.get(DOMAINROUTES, "alice-bob", "alice"))["status"]["isDestinationUnreachable"] is True
    await net.start_gateway("bob", handshake_ready_wait=3.0)
    net.clock.advance(15)  # alice's next heartbeat
    await net.wait_ready("alice-bob", "True", "Success")
    assert (await net.client.get(DOMAINROUTES, "alice-bob", "alice"))["status"]["isDestinationUnreachable"] is False


async def test_token_rolling_under_load(net: Network) -> None:
    await net.wait_ready("alice-bob")
    first_revision, first_token = await alice_token(net)
    route = cdr("alice", "bob", net.gateways["bob"].external, period=10)
    await net.client.patch(CDRS, "alice-bob", {"spec": {"tokenConfig": route["spec"]["tokenConfig"]}})
    failures: list[int] = []
    done = 0
    url = f"{net.gateways['alice'].internal_url}/load"
    stop = time.monotonic() + 40

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < stop:
            async with session.get(url, headers={"Host": "web.bob.svc"}) as response:
                await response.read()
                done += 1
                if response.status >= 300:
                    failures.append(response.status)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(4)))
    revision, _ = await alice_token(net)
    assert failures == [] and done > 500, (failures[:10], done)
    assert revision >= first_revision + 3, (first_revision, revision)
    headers = {"Kuscia-Source": "alice", "Kuscia-Host": "web.bob.svc", "Kuscia-Token": first_token}
    assert (await get(net.gateways["bob"].external_url, headers=headers))[:2] == (401, "unauthorized.")
    await net.client.patch(CDRS, "alice-bob", {"spec": {"tokenConfig": {"rollingUpdatePeriod": 0}}})


async def test_destination_gateway_not_loaded(net: Network) -> None:
    """A live Gateway of bob that never loads tokens: the next handshake cannot complete."""
    gateways = kinds.kind("kuscia.secretflow", "gateways")
    ghost = {"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Gateway", "metadata": {"name": "ghost"}}
    created = await net.client.create(gateways, ghost, "bob")
    status = {"address": "127.0.0.1", "uptime": "2026-01-01T00:00:00Z", "publicKey": "", "version": "x",
              "heartbeatTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(net.clock.now()))}  # fmt: skip
    await net.client.update(gateways, {**created, "status": status}, subresource="status")
    await net.client.delete(DOMAINROUTES, "alice-bob", "alice")  # forces a fresh handshake
    ready = await net.wait_ready("alice-bob", "False", "DestinationGatewayNotLoaded", within=20)
    assert "ghost" not in ready["message"] and "bob" in ready["message"]
    await net.client.delete(gateways, "ghost", "bob")
    await net.wait_ready("alice-bob", "True", within=30)
