"""The agent's end of its spawner processes (:mod:`atoll.agent.runp.spawner`): spawns without
blocking the agent's loop, and the exit codes of the shims they started.

:class:`Spawner` (one per agent) spreads spawns over :data:`SPAWNERS` :class:`SpawnerProcess`
objects. :meth:`SpawnerProcess.request` sends a spawn and returns a future at once; the reply is
read by a reader callback of the loop. The spawner is started lazily, restarted when it died (its end of the socket
reads end-of-file), and after :data:`MAX_FAILURES` deaths in a row without one successful spawn the
agent spawns in-process (``process.start``, as before the spawner existed) and logs why. A
request too large for one datagram (an environment of hundreds of KiB) is spawned in-process too.

A request in flight when the spawner dies may or may not have started its shim: the agent waits up
to :data:`LOST_WAIT_SECONDS` for the shim's pid file and adopts a shim that wrote it (waited with
a pidfd, like a shim adopted after an agent restart); otherwise the spawn fails (a StartError).

Exit codes: a shim the spawner started is waited for through the spawner's exit report (it reaps
its children); the code the shim wrote to ``<state>.exit`` wins, as for the agent's own children.
If the spawner dies first, the wait falls back to a pidfd (the shim now belongs to init) and the
shim's exit file. Shims spawned in-process are reaped by the agent (``waitpid``) as before.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import logging
import os
import socket
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from atoll.agent.runp import process
from atoll.agent.runp.spawner import receive

JSON = dict[str, Any]
log = logging.getLogger(__name__)
MAX_FAILURES = 3
SPAWNERS = 2
"""Spawner processes per agent (``ATOLL_RUNP_SPAWNERS`` overrides; 0: spawn in the agent's process)."""
LOST_WAIT_SECONDS = 2.0
LOST_POLL_SECONDS = 0.02


class SpawnerProcess:
    """One spawner process and the requests, replies and exit reports in flight."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._next_id = 0
        self._pending: dict[int, tuple[asyncio.Future[process.Spawned], JSON]] = {}
        self._outbox: deque[tuple[int, bytes, list[int]]] = deque()
        self._children: set[int] = set()
        """Pids the running spawner started whose exit it has not reported yet."""
        self._codes: dict[int, int] = {}
        self._exits: dict[int, asyncio.Future[int | None]] = {}
        self._local: set[int] = set()
        """Pids spawned in-process (reaped by this process with ``waitpid``)."""
        self._settling: set[asyncio.Future[None]] = set()
        self._failures = 0
        self.in_process = False
        """Spawn in the agent's process (``ATOLL_RUNP_SPAWNERS=0``, or after repeated spawner failures)."""

    # -- the process -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the spawner now (at agent start: its Python start-up is not paid by the first pod)."""
        if self._sock is None and not self.in_process:
            self._start()

    def _start(self) -> bool:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "atoll.agent.runp.spawner", str(child.fileno())],
                                          pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL)
        except OSError as exc:
            parent.close()
            log.warning("cannot start the spawner process (%s): spawning in-process", exc)
            return False
        finally:
            child.close()
        parent.setblocking(False)
        self._sock = parent
        asyncio.get_running_loop().add_reader(parent, self._readable)
        return True

    def close(self) -> None:
        """Stop the spawner (running shims are not touched)."""
        self._lost(expected=True)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._sock is not None else None

    def _lost(self, *, expected: bool = False) -> None:
        """The spawner is gone (or being closed): settle everything that waited for it."""
        sock, proc = self._sock, self._proc
        self._sock, self._proc = None, None
        if sock is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(sock)
            loop.remove_writer(sock)
            sock.close()
        if proc is not None:
            if not expected and proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            if not expected:
                self._failures += 1
                log.warning("the spawner process exited (code %s)", proc.returncode)
                if self._failures >= MAX_FAILURES and not self.in_process:
                    self.in_process = True
                    log.warning("the spawner died %d times in a row: spawning in-process", self._failures)
        self._outbox.clear()
        pending, self._pending = self._pending, {}
        for future, request in pending.values():
            if not future.done():
                task = asyncio.ensure_future(self._settle_lost(future, request))
                self._settling.add(task)
                task.add_done_callback(self._settling.discard)
        self._children.clear()
        exits, self._exits = self._exits, {}
        for waiter in exits.values():
            if not waiter.done():
                waiter.set_result(None)

    async def _settle_lost(self, future: asyncio.Future[process.Spawned], request: JSON) -> None:
        """A request the spawner may have carried out before it died: adopt its shim if it wrote its pid."""
        state = Path(request["state"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOST_WAIT_SECONDS
        while True:
            pid = process.read_pid(state)
            if pid is not None and process.is_ours(pid, None, state):
                if not future.done():
                    future.set_result(process.Spawned(pid, process.start_time(pid) or 0))
                return
            if loop.time() >= deadline:
                break
            await asyncio.sleep(LOST_POLL_SECONDS)
        if not future.done():
            future.set_exception(OSError(errno.EIO, "the spawner process exited before it answered"))

    # -- requests --------------------------------------------------------------------------

    def request(
        self,
        command: list[str],
        *,
        env: dict[str, str],
        cwd: str,
        state: Path,
        log_file: Path,
        memory_kb: int | None = None,
        nice: int | None = None,
        stdin_fd: int | None = None,
        tty_fd: int | None = None,
    ) -> asyncio.Future[process.Spawned]:
        """Start a shim as :func:`atoll.agent.runp.process.start` does; the future's result is
        what started (``OSError`` if the spawn failed). Descriptors must stay open until it is done."""
        future: asyncio.Future[process.Spawned] = asyncio.get_running_loop().create_future()
        kwargs: JSON = {"env": env, "cwd": cwd, "state": state, "log_file": log_file, "memory_kb": memory_kb,
                        "nice": nice, "stdin_fd": stdin_fd, "tty_fd": tty_fd}
        if self.in_process or (self._sock is None and not self._start()):
            self._spawn_here(future, command, kwargs)
            return future
        self._next_id += 1
        ident = self._next_id
        request = {"id": ident, "command": command, "env": env, "cwd": cwd, "state": str(state),
                   "log": str(log_file), "memory_kb": memory_kb, "nice": nice, "tty": tty_fd is not None}
        fd = tty_fd if tty_fd is not None else stdin_fd
        self._pending[ident] = (future, {**request, "local": (command, kwargs)})
        self._outbox.append((ident, orjson.dumps(request), [] if fd is None else [fd]))
        if len(self._outbox) == 1:
            self._flush()
        return future

    def _spawn_here(self, future: asyncio.Future[process.Spawned], command: list[str], kwargs: JSON) -> None:
        try:
            spawned = process.start(command, **kwargs)
        except OSError as exc:
            future.set_exception(exc)
            return
        self._local.add(spawned.pid)
        future.set_result(spawned)

    def _flush(self) -> None:
        sock = self._sock
        while self._outbox and sock is not None:
            ident, data, fds = self._outbox[0]
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
            try:
                sock.sendmsg([data], ancillary)
            except BlockingIOError:
                asyncio.get_running_loop().add_writer(sock, self._flush)
                return
            except OSError as exc:
                if exc.errno != errno.EMSGSIZE:
                    self._lost()
                    return
                self._outbox.popleft()
                future, request = self._pending.pop(ident)
                command, kwargs = request["local"]
                self._spawn_here(future, command, kwargs)
                continue
            self._outbox.popleft()
        if sock is not None:
            asyncio.get_running_loop().remove_writer(sock)

    def _readable(self) -> None:
        sock = self._sock
        while sock is not None and sock is self._sock:
            try:
                data, fds = receive(sock)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            for fd in fds:
                os.close(fd)
            if not data:
                self._lost()
                return
            self._message(orjson.loads(data))

    def _message(self, message: JSON) -> None:
        if "exit" in message:
            pid, code = int(message["exit"]), int(message["code"])
            self._children.discard(pid)
            waiter = self._exits.pop(pid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(code)
            else:
                self._codes[pid] = code
            return
        entry = self._pending.pop(int(message.get("id") or 0), None)
        if entry is None or entry[0].done():
            return
        future = entry[0]
        if "pid" in message:
            pid = int(message["pid"])
            self._failures = 0
            self._codes.pop(pid, None)  # a report for an earlier process with this pid is stale now
            self._children.add(pid)
            future.set_result(process.Spawned(pid, int(message.get("start") or 0)))
        else:
            future.set_exception(OSError(int(message.get("errno") or errno.EIO), str(message.get("error") or "")))

    # -- exits -----------------------------------------------------------------------------

    def knows(self, pid: int) -> bool:
        """Whether ``pid`` was started through this object (and its exit not yet collected)."""
        return pid in self._codes or pid in self._children or pid in self._local

    async def wait_exit(self, pid: int, state: Path, started: int | None) -> int:
        """Wait until the shim ``pid`` exits; its code, as :func:`wait_exit`."""
        code: int | None
        if pid in self._codes:
            code = self._codes.pop(pid)
        elif pid in self._children:
            waiter = self._exits.get(pid)
            if waiter is None:
                waiter = self._exits[pid] = asyncio.get_running_loop().create_future()
            code = await waiter
        elif pid in self._local:
            try:
                return await wait_exit(pid, state, own_child=True)
            finally:
                self._local.discard(pid)
        else:
            return await wait_exit(pid, state, own_child=False, started=started)
        if code is None:  # the spawner died first: the shim is init's child now
            return await wait_exit(pid, state, own_child=False, started=started)
        recorded = process.read_exit(state)
        return recorded if recorded is not None else code


class Spawner:
    """An agent's :data:`SPAWNERS` spawner processes: each spawn goes to the one with the fewest
    requests in flight. A spawn waits for its child's exec (a vfork) and under load the child waits
    for a CPU: two processes overlap those waits (100 spawns of ``sh -c``, loaded VM, alternated:
    one process 302-846 ms, two 187-316 ms in 4 of 4 rounds)."""

    def __init__(self, size: int | None = None) -> None:
        if size is None:
            size = int(os.environ.get("ATOLL_RUNP_SPAWNERS") or SPAWNERS)
        self.processes = [SpawnerProcess() for _ in range(max(size, 1))]
        if size <= 0:
            self.processes[0].in_process = True
        self._turn = 0

    def start(self) -> None:
        for one in self.processes:
            one.start()

    def close(self) -> None:
        for one in self.processes:
            one.close()

    @property
    def pids(self) -> list[int]:
        return [pid for pid in (one.pid for one in self.processes) if pid is not None]

    def request(self, command: list[str], **kwargs: Any) -> asyncio.Future[process.Spawned]:
        """As :meth:`SpawnerProcess.request`, on the least busy spawner."""
        count = len(self.processes)
        self._turn = (self._turn + 1) % count
        index = min(range(count), key=lambda i: (len(self.processes[i]._pending), (i - self._turn) % count))
        return self.processes[index].request(command, **kwargs)

    async def wait_exit(self, pid: int, state: Path, started: int | None) -> int:
        """As :meth:`SpawnerProcess.wait_exit`; a pid none of them started (adopted) is waited with a pidfd."""
        for one in self.processes:
            if one.knows(pid):
                return await one.wait_exit(pid, state, started)
        return await wait_exit(pid, state, own_child=False, started=started)


async def wait_exit(pid: int, state: Path, *, own_child: bool, started: int | None = None) -> int:
    """Wait until ``pid`` exits; its exit code (128+signal when killed, 137 when unknown).

    With ``started`` (the shim's start time), a pid now held by another process counts as exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        fd = -1
    if fd >= 0 and started is not None and process.start_time(pid) != started:  # checked after the open: no race
        os.close(fd)
        fd = -1
    if fd >= 0:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def ready() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(fd, ready)
        try:
            await done
        finally:
            loop.remove_reader(fd)
            os.close(fd)
    code = process.reap(pid) if own_child else None
    recorded = process.read_exit(state)
    if recorded is not None:
        return recorded
    return code if code is not None else process.EXIT_UNKNOWN
