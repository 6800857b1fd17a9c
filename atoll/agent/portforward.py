"""The agent's port-forward endpoint: the kubelet's ``GET /portForward/{namespace}/{pod}`` as a
WebSocket, in either of the two protocols clients speak.

- ``v4.channel.k8s.io`` (the Python client's ``portforward()``, query ``ports=`` repeated or
  comma-separated): port *i* uses channel ``2i`` for data and ``2i+1`` for errors; the server
  opens one TCP connection per port at once and starts both channels with the port number (two
  bytes, little endian). The WebSocket closes when every connection has ended.
- ``SPDY/3.1+portforward.k8s.io`` (kubectl ≥ 1.31, KEP-4006): SPDY tunnelled in the WebSocket's
  binary messages (:mod:`atoll.agent.spdy`). For each local connection kubectl opens an *error*
  and a *data* stream (headers ``streamType``, ``port``, ``requestID``); the data stream is
  relayed to a new TCP connection, a failure is written on the error stream, and both streams
  are finished when the pod's side closes.

RunP pods share the node's network namespace, so a pod's port is ``127.0.0.1:<port>`` on the
node (what the kubelet's port-forward reaches inside the pod's namespace); a process that listens
only on the pod IP (the node's address) is reached there when loopback refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import WSMsgType, web

from atoll.agent import spdy
from atoll.client.kubelet import STREAM_MESSAGE_MAX

V4 = "v4.channel.k8s.io"
SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
PROTOCOLS = (V4, SPDY_TUNNEL)
LOOPBACK = "127.0.0.1"
CHUNK = 256 * 1024


def parse_ports(query: Any) -> list[int]:
    """``ports`` of the v4 protocol (repeated or comma-separated), each 1-65535."""
    raw = [p for v in query.getall("ports", []) for p in str(v).split(",") if p.strip()]
    ports = []
    for value in raw:
        if not value.strip().isdigit() or not 0 < int(value) < 65536:
            raise web.HTTPBadRequest(text=f"invalid port {value!r}: ports must be integers in 1-65535")
        ports.append(int(value))
    return ports


async def connect(hosts: tuple[str, ...], port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to ``port`` on the first of ``hosts`` that accepts it."""
    for host in hosts[:-1]:
        try:
            return await asyncio.open_connection(host, port)
        except ConnectionRefusedError:
            continue
    return await asyncio.open_connection(hosts[-1], port)


def _refused(port: int, pod: str, exc: OSError) -> bytes:
    return f"error forwarding port {port} to pod {pod}: {exc.strerror or exc}".encode()


async def _send(ws: web.WebSocketResponse, data: bytes) -> None:
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await ws.send_bytes(data)


class ChannelForward:
    """``v4.channel.k8s.io``: one TCP connection per requested port; what the client sends before
    the connection is up waits in a queue."""

    def __init__(self, ws: web.WebSocketResponse, pod: str, hosts: tuple[str, ...], ports: list[int]) -> None:
        self.ws, self.pod, self.hosts, self.ports = ws, pod, hosts, ports
        self.inbound: list[asyncio.Queue[bytes | None]] = [asyncio.Queue() for _ in ports]
        self.refused: set[int] = set()  # ports whose pod connection failed: what the client sends is dropped

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            pumps = [tg.create_task(self._port(i, port)) for i, port in enumerate(self.ports)]
            reader = tg.create_task(self._read_client())
            ports = tg.create_task(asyncio.wait(pumps))
            await asyncio.wait([ports, reader], return_when=asyncio.FIRST_COMPLETED)
            for task in (reader, ports, *pumps):
                task.cancel()

    async def _port(self, index: int, port: int) -> None:
        prefix = port.to_bytes(2, "little")
        await _send(self.ws, bytes([2 * index]) + prefix)
        await _send(self.ws, bytes([2 * index + 1]) + prefix)
        try:
            reader, writer = await connect(self.hosts, port)
        except OSError as exc:
            self.refused.add(index)
            self.inbound[index] = asyncio.Queue()  # let go of what was queued for it
            await _send(self.ws, bytes([2 * index + 1]) + _refused(port, self.pod, exc))
            return
        to_pod = asyncio.create_task(to_connection(self.inbound[index], writer))
        try:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(CHUNK):
                    await _send(self.ws, bytes([2 * index]) + data)
        finally:
            to_pod.cancel()
            writer.close()

    async def _read_client(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.BINARY or len(msg.data) < 2 or msg.data[0] % 2:
                continue
            index = msg.data[0] // 2
            if index < len(self.inbound) and index not in self.refused:
                self.inbound[index].put_nowait(bytes(msg.data[1:]))


async def to_connection(queue: asyncio.Queue[bytes | None], writer: asyncio.StreamWriter) -> None:
    """Write what the client sends (queued) to the pod's connection; ``None`` half-closes it."""
    while (data := await queue.get()) is not None:
        writer.write(data)
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            await writer.drain()
    with contextlib.suppress(OSError):
        if writer.can_write_eof():
            writer.write_eof()


class SpdyForward:
    """``SPDY/3.1+portforward.k8s.io``: SPDY streams over the WebSocket, a TCP connection per data stream."""

    def __init__(self, ws: web.WebSocketResponse, pod: str, hosts: tuple[str, ...]) -> None:
        self.ws, self.pod, self.hosts = ws, pod, hosts
        self.reader, self.writer = spdy.FrameReader(), spdy.FrameWriter()
        self.error_streams: dict[str, int] = {}  # requestID → error stream id
        self.inbound: dict[int, asyncio.Queue[bytes | None]] = {}  # data stream → bytes for the pod
        self.last_stream = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            try:
                async for msg in self.ws:
                    if msg.type != WSMsgType.BINARY:
                        continue
                    for frame in self.reader.feed(msg.data):
                        if not await self._frame(tg, frame):
                            return
            except spdy.ProtocolError:
                await _send(self.ws, self.writer.goaway(self.last_stream, spdy.RST_PROTOCOL_ERROR))
            finally:
                for task in self.tasks:  # the client is gone: leave no relay behind
                    task.cancel()

    async def _frame(self, tg: asyncio.TaskGroup, frame: spdy.Frame) -> bool:
        if not frame.control:
            queue = self.inbound.get(frame.stream_id)
            if queue is not None:
                if frame.payload:
                    queue.put_nowait(frame.payload)
                if frame.fin:
                    queue.put_nowait(None)
            return True
        if frame.type == spdy.SYN_STREAM:
            await self._syn_stream(tg, frame)
        elif frame.type == spdy.PING:
            await _send(self.ws, self.writer.ping(spdy.ping_id(frame)))
        elif frame.type == spdy.RST_STREAM:
            queue = self.inbound.pop(frame.stream_id, None)
            if queue is not None:
                queue.put_nowait(None)
        elif frame.type == spdy.GOAWAY:
            return False
        return True

    async def _syn_stream(self, tg: asyncio.TaskGroup, frame: spdy.Frame) -> None:
        headers = self.reader.syn_stream_headers(frame)
        stream = frame.stream_id
        self.last_stream = max(self.last_stream, stream)
        await _send(self.ws, self.writer.syn_reply(stream))
        kind, request = headers.get("streamtype", ""), headers.get("requestid", "")
        if kind == "error":
            self.error_streams[request] = stream
        elif kind == "data":
            port = headers.get("port", "")
            self.inbound[stream] = asyncio.Queue()
            task = tg.create_task(self._forward(stream, request, int(port) if port.isdigit() else 0))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            await _send(self.ws, self.writer.rst_stream(stream, spdy.RST_PROTOCOL_ERROR))

    async def _forward(self, stream: int, request: str, port: int) -> None:
        error_stream = self.error_streams.get(request)
        try:
            if not 0 < port < 65536:
                raise OSError(f"invalid port {port}")
            reader, writer = await connect(self.hosts, port)
        except OSError as exc:
            self.inbound.pop(stream, None)  # later data frames of this stream are dropped, not queued
            if error_stream is not None:
                await _send(self.ws, self.writer.data(error_stream, _refused(port, self.pod, exc), fin=True))
            await _send(self.ws, self.writer.data(stream, fin=True))
            return
        to_pod = asyncio.create_task(to_connection(self.inbound[stream], writer))
        try:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(CHUNK):
                    await _send(self.ws, self.writer.data(stream, data))
            await _send(self.ws, self.writer.data(stream, fin=True))
            if error_stream is not None:
                await _send(self.ws, self.writer.data(error_stream, fin=True))
            await to_pod  # the client may still be sending (half-closed on our side)
        finally:
            to_pod.cancel()
            writer.close()
            self.inbound.pop(stream, None)


async def serve_portforward(pod: str, pod_ip: str, request: web.Request) -> web.StreamResponse:
    """Serve one port-forward WebSocket for ``pod`` (the caller checked it runs here)."""
    hosts = (LOOPBACK,) if pod_ip in ("", LOOPBACK) else (LOOPBACK, pod_ip)
    ports = parse_ports(request.query)
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=STREAM_MESSAGE_MAX)
    await ws.prepare(request)
    if ws.ws_protocol == SPDY_TUNNEL:
        await SpdyForward(ws, pod, hosts).run()
    elif ws.ws_protocol == V4 and ports:
        await ChannelForward(ws, pod, hosts, ports).run()
    else:
        await ws.close(message=b"port-forward needs v4.channel.k8s.io with ports, or SPDY/3.1+portforward.k8s.io")
        return ws
    await ws.close()
    return ws
