"""The spawner: a small process per agent that starts the containers' shims for the agent.

``os.posix_spawn`` holds the GIL until the child has exec'd (a vfork): in a burst of pod starts on a
loaded machine the agent's loop stood still for milliseconds per spawn, and the status writes, watch
reads and Events of earlier pods waited behind later pods' spawns. The agent therefore sends each
spawn to this process (``python -m atoll.agent.runp.spawner FD``, started by
:class:`atoll.agent.runp.spawnclient.Spawner`) over a ``SOCK_SEQPACKET`` socket pair and goes on
with its loop. Protocol, one JSON object per message:

* agent → spawner: ``{"id", "command", "env", "cwd", "state", "log", "memory_kb", "nice", "tty"}``
  with the container's stdin pipe or terminal (``tty``) as an ``SCM_RIGHTS`` descriptor when it
  has one; the spawner runs :func:`atoll.agent.runp.process.start` (the log's directory, stale
  pid/exit files removed, the same ``posix_spawn`` of the same shim in its own session);
* spawner → agent: ``{"id", "pid", "start"}`` (start time from ``/proc/<pid>/stat``) or
  ``{"id", "errno", "error"}`` when the spawn failed (the agent reports a StartError);
* spawner → agent: ``{"exit": pid, "code": c}`` once it has reaped a shim (``SIGCHLD``), always
  after that shim's reply; ``c`` is 128+signal for a killed shim, as ``waitpid`` tells it.

The spawner exits when the agent's end closes (the agent exited, even by ``kill -9``): shims live
in their own sessions and are not signalled; orphaned ones are reaped by init, and a restarted
agent adopts them from their pid files. It ignores ``SIGINT`` (a terminal's ^C is the agent's).
"""

from __future__ import annotations

import array
import errno
import os
import select
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import orjson

from atoll.agent.runp import process

JSON = dict[str, Any]
MAX_MESSAGE = 1 << 20
"""Receive buffer: larger than any datagram the socket can carry (its send buffer bounds it)."""
MAX_FDS = 4


def receive(sock: socket.socket, flags: int = 0) -> tuple[bytes, list[int]]:
    """One message and the descriptors that came with it (empty bytes: the peer closed)."""
    data, ancillary, _flags, _addr = sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(MAX_FDS * 4), flags)
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            received = array.array("i")
            received.frombytes(payload[: len(payload) - len(payload) % received.itemsize])
            fds.extend(received)
    return data, fds


def spawn_one(request: JSON, fds: list[int]) -> JSON:
    """Start one shim as asked; the reply to send (pid and start time, or the error)."""
    fd = fds[0] if fds else None
    tty = bool(request.get("tty"))
    try:
        spawned = process.start(
            [str(a) for a in request["command"]], env=dict(request["env"]), cwd=str(request["cwd"]),
            state=Path(request["state"]), log_file=Path(request["log"]), memory_kb=request.get("memory_kb"),
            nice=request.get("nice"), stdin_fd=None if tty else fd, tty_fd=fd if tty else None,
        )
    except OSError as exc:
        return {"id": request.get("id"), "errno": exc.errno or errno.EIO, "error": exc.strerror or str(exc)}
    except Exception as exc:  # a malformed request must not end the spawner
        return {"id": request.get("id"), "errno": errno.EINVAL, "error": f"bad spawn request: {exc!r}"}
    return {"id": request.get("id"), "pid": spawned.pid, "start": spawned.start_time}


def handle(sock: socket.socket) -> bool:
    """Serve every request waiting on ``sock``; False once the agent's end is closed."""
    while True:
        try:
            data, fds = receive(sock, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except ConnectionError:
            return False
        if not data:
            return False
        try:
            try:
                reply = spawn_one(orjson.loads(data), fds)
            except orjson.JSONDecodeError as exc:
                reply = {"id": None, "errno": errno.EINVAL, "error": f"bad spawn request: {exc}"}
        finally:
            for fd in fds:
                os.close(fd)
        if not send(sock, reply):
            return False


def send(sock: socket.socket, message: JSON) -> bool:
    try:
        sock.sendmsg([orjson.dumps(message)])
    except OSError:
        return False
    return True


def reap_children(sock: socket.socket) -> bool:
    """Collect every exited shim and report its code; False once the agent's end is closed."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return True
        code = os.waitstatus_to_exitcode(status)
        if not send(sock, {"exit": pid, "code": 128 - code if code < 0 else code}):
            return False


def serve(sock: socket.socket) -> None:
    """Spawn and reap until the agent's end of ``sock`` closes."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)  # a handler, not SIG_IGN: we reap
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        for fd, _events in poller.poll():
            if fd == wake_r:
                while True:
                    try:
                        if not os.read(wake_r, 512):
                            break
                    except BlockingIOError:
                        break
            elif not handle(sock):
                return
        if not reap_children(sock):
            return


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd = int(argv[1])
    os.set_inheritable(fd, False)  # passed inheritable: the shims must not hold the agent's socket open
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)
    serve(sock)


if __name__ == "__main__":
    main(sys.argv)
