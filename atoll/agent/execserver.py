"""The agent's exec endpoint: the kubelet's ``GET /exec/{namespace}/{pod}/{container}`` as a
WebSocket speaking the remotecommand protocol ``v5.channel.k8s.io`` (``v4`` accepted).

Query: ``command`` (repeated), ``stdin``, ``stdout``, ``stderr``, ``tty``. Every binary message
starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (the final ``Status`` JSON:
``Success``, or ``Failure``/``NonZeroExitCode`` with the exit code as an ``ExitCode`` cause),
4 resize (``{"Width": w, "Height": h}``), and in v5 255 close (``[255, channel]``: the client
closed its stdin — how ``kubectl cp`` ends a tar stream). The command runs in the pod's sandbox:
the container's environment and working directory (the running attempt's), its own session;
with ``tty`` on a pseudo-terminal. The same mutual-TLS rule as the log endpoint applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from atoll.agent.runp.runtime import RunP
from atoll.agent.runp.stdio import terminal_output
from atoll.client.kubelet import STREAM_MESSAGE_MAX

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
CHUNK = 32 * 1024


def _flag(query: Any, name: str) -> bool:
    return str(query.get(name, "")).lower() in ("1", "true")


def exit_status(code: int) -> dict[str, Any]:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: exit status {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def channel_message(msg: Any) -> bytes:
    """A message's bytes: binary as is, text (the Python client sends str stdin that way) in UTF-8."""
    if msg.type == WSMsgType.BINARY:
        return bytes(msg.data)
    if msg.type == WSMsgType.TEXT:
        return str(msg.data).encode()
    return b""


def _failure(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "reason": "InternalError", "message": message}


class ExecSession:
    """One exec: a process in the sandbox wired to a WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, query: Any) -> None:
        self.ws = ws
        self.tty = _flag(query, "tty")
        self.want_stdin = _flag(query, "stdin")
        self.v5 = ws.ws_protocol == PROTOCOLS[0]
        self.proc: asyncio.subprocess.Process | None = None
        self.master_fd: int | None = None

    async def run(self, command: list[str], env: dict[str, str], cwd: str) -> None:
        try:
            await self._start(command, env, cwd)
        except OSError as exc:
            await self._send(ERROR, orjson.dumps(_failure(f"exec {command[0]!r}: {exc.strerror or exc}")))
            return
        assert self.proc is not None
        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(self._read_client())
            outputs = [tg.create_task(self._pump_pty())] if self.tty else [
                tg.create_task(self._pump(self.proc.stdout, STDOUT)),
                tg.create_task(self._pump(self.proc.stderr, STDERR))]
            code = await self.proc.wait()
            await asyncio.gather(*outputs)
            reader.cancel()
        await self._send(ERROR, orjson.dumps(exit_status(code)))

    async def _start(self, command: list[str], env: dict[str, str], cwd: str) -> None:
        stdin = asyncio.subprocess.PIPE if self.want_stdin else asyncio.subprocess.DEVNULL
        if not self.tty:
            self.proc = await asyncio.create_subprocess_exec(
                *command, env=env, cwd=cwd, stdin=stdin, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True)
            return
        master, slave = os.openpty()
        self.master_fd = master
        os.set_blocking(master, False)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *command, env={**env, "TERM": env.get("TERM", "xterm")}, cwd=cwd, stdin=slave, stdout=slave,
                stderr=slave, start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        finally:
            os.close(slave)

    async def _send(self, channel: int, data: bytes) -> None:
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await self.ws.send_bytes(bytes([channel]) + data)

    async def _pump(self, stream: asyncio.StreamReader | None, channel: int) -> None:
        while stream is not None and (data := await stream.read(CHUNK)):
            await self._send(channel, data)

    async def _pump_pty(self) -> None:
        assert self.master_fd is not None
        try:
            async for data in terminal_output(self.master_fd):
                await self._send(STDOUT, data)
        finally:
            os.close(self.master_fd)

    async def _read_client(self) -> None:
        async for msg in self.ws:
            raw = channel_message(msg)
            if not raw:
                continue
            channel, data = raw[0], raw[1:]
            if channel == STDIN:
                await self._write_stdin(data)
            elif channel == RESIZE and self.master_fd is not None:
                self._resize(data)
            elif channel == CLOSE and data[:1] == bytes([STDIN]):
                self._close_stdin()

    async def _write_stdin(self, data: bytes) -> None:
        if self.master_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.master_fd, data)
        elif self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                self.proc.stdin.write(data)
                await self.proc.stdin.drain()

    def _close_stdin(self) -> None:
        if self.master_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.master_fd, b"\x04")  # ^D on a terminal
        elif self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()

    def _resize(self, data: bytes) -> None:
        try:
            size = orjson.loads(data)
            packed = struct.pack("HHHH", int(size.get("Height", 0)), int(size.get("Width", 0)), 0, 0)
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            return
        assert self.master_fd is not None
        with contextlib.suppress(OSError):
            fcntl.ioctl(self.master_fd, termios.TIOCSWINSZ, packed)


async def serve_exec(runtime: RunP, request: web.Request) -> web.StreamResponse:
    ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
    worker = runtime.worker(ns, pod)
    runner = worker.runners.get(container) if worker else None
    ctx = runner.exec_context if runner else None
    rec = worker.record(container) if worker else None
    if worker is None or runner is None or ctx is None or rec is None or rec.state != "running":
        raise web.HTTPNotFound(text=f'container "{container}" in pod "{pod}" is not running on this node')
    command = request.query.getall("command", [])
    if not command:
        raise web.HTTPBadRequest(text="you must specify at least one command for the container")
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=STREAM_MESSAGE_MAX)
    await ws.prepare(request)
    if ws.ws_protocol is None:
        await ws.close(message=b"no supported remotecommand protocol (v5.channel.k8s.io, v4.channel.k8s.io)")
        return ws
    await ExecSession(ws, request.query).run(list(command), dict(ctx.env), ctx.cwd)
    await ws.close()
    return ws
