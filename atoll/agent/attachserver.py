"""The agent's attach endpoint: the kubelet's ``GET /attach/{namespace}/{pod}/{container}`` as a
WebSocket speaking remotecommand ``v5.channel.k8s.io`` (``v4`` accepted), the channels of
:mod:`atoll.agent.execserver`.

Attaching joins the running attempt instead of starting a process. Output: what the container
writes from the moment of attaching, read from the attempt's log file (the container writes it
directly; with ``tty`` the agent copies the terminal into it), so the log keeps everything whether
or not anyone is attached. stdout and stderr share that file, so both arrive on the stdout
channel. Input (``stdin=true``, when the container has ``stdin: true``) goes to the agent-held
pipe or terminal (:mod:`atoll.agent.runp.stdio`), resizes to the terminal; v5's stdin close (and,
with ``stdinOnce``, the end of the first session that had stdin) closes the container's stdin.
The session ends with a ``Success`` status when the attempt ends, or when the client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from atoll.agent.execserver import CLOSE, ERROR, PROTOCOLS, RESIZE, STDIN, STDOUT, channel_message, exit_status
from atoll.agent.runp.logs import log_path
from atoll.agent.runp.runtime import RunP
from atoll.agent.runp.stdio import ContainerStdio
from atoll.client.kubelet import STREAM_MESSAGE_MAX

POLL_SECONDS = 0.05
CHUNK = 1 << 20


def _flag(query: Any, name: str) -> bool:
    return str(query.get(name, "")).lower() in ("1", "true")


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as f:
            if f.seek(0, 2) < offset:  # rotated (copy + truncate)
                offset = 0
            f.seek(offset)
            data = f.read(CHUNK)
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)


class AttachSession:
    def __init__(self, ws: web.WebSocketResponse, query: Any, worker: Any, container: str, path: Path) -> None:
        self.ws = ws
        self.worker = worker
        self.container = container
        self.path = path
        rec = worker.record(container)
        self.attempt = rec.attempt
        runner = worker.runners.get(container)
        self.stdio: ContainerStdio | None = runner.stdio if runner is not None else None
        self.want_stdin = _flag(query, "stdin") and self.stdio is not None
        self.want_stdout = _flag(query, "stdout") or _flag(query, "stderr")

    async def run(self) -> None:
        try:
            offset = self.path.stat().st_size
        except FileNotFoundError:
            offset = 0
        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(self._read_client())
            output = tg.create_task(self._tail(offset))
            await asyncio.wait([reader, output], return_when=asyncio.FIRST_COMPLETED)
            reader.cancel()
            output.cancel()
        if self.stdio is not None:
            self.stdio.detached(self.want_stdin)
        if output.done() and not output.cancelled():
            await self._send(ERROR, orjson.dumps(exit_status(0)))

    def _running(self) -> bool:
        rec = self.worker.record(self.container)
        return not self.worker.gone and rec is not None and rec.attempt == self.attempt and rec.state == "running"

    async def _tail(self, offset: int) -> None:
        while True:
            running = self._running()
            if running and _size(self.path) == offset:  # one stat per poll; read (in a thread) only when grown
                await asyncio.sleep(POLL_SECONDS)
                continue
            data, offset = await asyncio.to_thread(_read_from, self.path, offset)
            if data:
                if self.want_stdout:
                    await self._send(STDOUT, data)
                continue
            if not running:
                return
            await asyncio.sleep(POLL_SECONDS)

    async def _send(self, channel: int, data: bytes) -> None:
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await self.ws.send_bytes(bytes([channel]) + data)

    async def _read_client(self) -> None:
        async for msg in self.ws:
            raw = channel_message(msg)
            if not raw or self.stdio is None:
                continue
            channel, data = raw[0], raw[1:]
            if channel == STDIN and self.want_stdin:
                await self.stdio.write(data)
            elif channel == RESIZE:
                with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                    size = orjson.loads(data)
                    self.stdio.resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
            elif channel == CLOSE and data[:1] == bytes([STDIN]) and self.want_stdin:
                self.stdio.close_stdin()


async def serve_attach(runtime: RunP, request: web.Request) -> web.StreamResponse:
    ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
    worker = runtime.worker(ns, pod)
    rec = worker.record(container) if worker else None
    if worker is None or rec is None or rec.state != "running":
        raise web.HTTPNotFound(text=f'container "{container}" in pod "{pod}" is not running on this node')
    path = log_path(runtime.config.root, ns, pod, worker.uid, container, rec.attempt)
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=STREAM_MESSAGE_MAX)
    await ws.prepare(request)
    if ws.ws_protocol is None:
        await ws.close(message=b"no supported remotecommand protocol (v5.channel.k8s.io, v4.channel.k8s.io)")
        return ws
    await AttachSession(ws, request.query, worker, container, path).run()
    await ws.close()
    return ws
