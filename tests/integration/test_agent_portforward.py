"""The agent's port-forward WebSocket (atoll/agent/portforward.py) on a real socket, both protocols:
``v4.channel.k8s.io`` as the Python client speaks it and SPDY/3 frames as kubectl's tunnel sends
them, against a real TCP echo server; data sent before the pod connection is up is not lost, a
refused port is reported on the error stream, and FIN half-closes the pod connection."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from atoll.agent import spdy
from atoll.agent.portforward import serve_portforward
from tests.conftest import free_port
from tests.unit.test_spdy import Client as SpdyClient


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"echo:")
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()  # the client half-closed: finish ours too


@pytest.fixture
async def agent() -> AsyncIterator[tuple[str, int]]:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    app = web.Application()
    app.router.add_get("/portForward/{namespace}/{pod}", lambda r: serve_portforward(r.match_info["pod"], "", r))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"ws://127.0.0.1:{port}/portForward/ns/pod", echo.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()
        echo.close()


async def test_v4_channels_keep_data_sent_before_the_connection(agent: tuple[str, int]) -> None:
    url, target = agent
    closed = free_port()
    async with aiohttp.ClientSession() as session, session.ws_connect(
            url, params={"ports": f"{target},{closed}"}, protocols=("v5.channel.k8s.io", "v4.channel.k8s.io")) as ws:
        assert ws.protocol == "v4.channel.k8s.io"
        await ws.send_bytes(b"\x00early")  # before the agent has connected to the pod
        seen: dict[int, bytes] = {}
        while seen.get(0, b"").count(b"early") == 0 or 3 not in seen:
            msg = await asyncio.wait_for(ws.receive(), 10)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            seen[msg.data[0]] = seen.get(msg.data[0], b"") + msg.data[1:]
    prefix, refused = target.to_bytes(2, "little"), closed.to_bytes(2, "little")
    assert seen[0] == prefix + b"echo:early" and seen[1] == prefix
    assert seen[2] == refused and seen[3].startswith(refused + f"error forwarding port {closed} to pod pod".encode())


def _fins(frames: list[spdy.Frame]) -> set[int]:
    return {f.stream_id for f in frames if not f.control and f.fin}


async def _frames(ws: aiohttp.ClientWebSocketResponse, reader: spdy.FrameReader,
                  done: Callable[[list[spdy.Frame]], bool]) -> list[spdy.Frame]:
    """Frames from the agent until ``done`` says enough."""
    frames: list[spdy.Frame] = []
    while not done(frames):
        msg = await asyncio.wait_for(ws.receive(), 10)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        frames += reader.feed(msg.data)
    return frames


async def test_spdy_tunnel_streams(agent: tuple[str, int]) -> None:
    url, target = agent
    client, reader = SpdyClient(), spdy.FrameReader()
    async with aiohttp.ClientSession() as session, session.ws_connect(
            url, protocols=("SPDY/3.1+portforward.k8s.io",)) as ws:
        await ws.send_bytes(client.syn_stream(1, {"streamtype": "error", "port": str(target), "requestid": "0"}))
        await ws.send_bytes(client.syn_stream(3, {"streamtype": "data", "port": str(target), "requestid": "0"})
                            + spdy.FrameWriter.data(3, b"ping", fin=True))  # data and FIN before any reply
        frames = await _frames(ws, reader, lambda fs: _fins(fs) >= {1, 3})  # the pod closed: both streams end
        await ws.send_bytes(struct.pack(">HHII", 0x8003, spdy.PING, 4, 11))
        pong = await _frames(ws, reader, bool)
        free = free_port()
        await ws.send_bytes(client.syn_stream(5, {"streamtype": "error", "port": str(free), "requestid": "1"})
                            + client.syn_stream(7, {"streamtype": "data", "port": str(free), "requestid": "1"}))
        failed = await _frames(ws, reader, lambda fs: _fins(fs) >= {5, 7})
    assert [(f.type, f.stream_id) for f in frames[:2]] == [(spdy.SYN_REPLY, 1), (spdy.SYN_REPLY, 3)]
    data = [f for f in frames[2:] if not f.control]
    assert b"".join(f.payload for f in data if f.stream_id == 3) == b"echo:ping"
    assert pong[0].type == spdy.PING and spdy.ping_id(pong[0]) == 11
    errors = [f for f in failed if not f.control and f.stream_id == 5]
    assert errors and errors[0].payload.startswith(f"error forwarding port {free} to pod pod".encode())
    assert errors[0].fin


async def test_an_oversized_message_closes_the_stream_not_the_agent(agent: tuple[str, int]) -> None:
    """Regression (review): stream WebSockets were unbounded (``max_msg_size=0``), so one tenant's
    single huge message, or a small permessage-deflate one that inflates, was buffered whole."""
    from atoll.client.kubelet import STREAM_MESSAGE_MAX

    url, target = agent
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, params={"ports": str(target)}, protocols=("v4.channel.k8s.io",),
                                      max_msg_size=0) as ws:
            try:
                await ws.send_bytes(b"\x00" + bytes(STREAM_MESSAGE_MAX + 1))
            except ConnectionError:
                pass  # refused while still sending
            # unbounded, the agent would relay it to the echo server and keep the session open
            while (msg := await asyncio.wait_for(ws.receive(), 10)).type == aiohttp.WSMsgType.BINARY:
                assert not msg.data[1:].startswith(b"echo:"), "the oversized message was relayed"
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                                aiohttp.WSMsgType.ERROR), msg
            assert msg.type != aiohttp.WSMsgType.CLOSE or msg.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG, msg
        async with session.ws_connect(url, params={"ports": str(target)}, protocols=("v4.channel.k8s.io",)) as ws:
            await ws.send_bytes(b"\x00still-serving")  # the agent itself is unharmed
            seen = b""
            while b"still-serving" not in seen:
                msg = await asyncio.wait_for(ws.receive(), 10)
                assert msg.type == aiohttp.WSMsgType.BINARY, msg
                seen += msg.data[1:] if msg.data[0] == 0 else b""
