"""The agent-held end of a container's stdin or terminal (``stdin: true`` / ``tty: true``).

Kubernetes keeps a container's stdin open for ``kubectl attach`` when the spec asks for it; the
container runtime holds the other end. Here the agent holds it for the container attempt it
spawned:

- ``stdin`` without ``tty``: a pipe; the container reads the read end, the agent keeps the write
  end. Output still goes straight to the log file (the agent is not in the output path).
- ``tty``: a pseudo-terminal; the container gets the slave as stdin, stdout and stderr, the agent
  keeps the master and copies everything the terminal prints to the attempt's log file (so
  ``kubectl logs`` and attached clients see it), honours resizes and writes attached input.

``stdinOnce``: the first attach session that had stdin closes it when it detaches (EOF on the
pipe, ``^D`` on a terminal), as the kubelet does. The agent's end dies with the agent: a container
adopted after an agent restart has no stdin any more (reads see end-of-file) — RunP has no
per-container holder process (containerd's shim) to keep it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios
from collections.abc import AsyncIterator
from pathlib import Path

CHUNK = 32 * 1024
WRITE_RETRY_SECONDS = 0.01
LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND


class ContainerStdio:
    """One attempt's stdin pipe or terminal master; ``child_fd`` goes to the spawned process."""

    def __init__(self, *, tty: bool, stdin_once: bool) -> None:
        self.tty = tty
        self.stdin_once = stdin_once
        self.closed = False
        self.winsize: tuple[int, int] | None = None
        if tty:
            self._agent_fd, self.child_fd = os.openpty()
            os.set_blocking(self._agent_fd, False)
        else:
            self.child_fd, self._agent_fd = os.pipe()
            os.set_blocking(self._agent_fd, False)

    def spawned(self) -> None:
        """The child has its copy: close ours of the child's end."""
        if self.child_fd >= 0:
            os.close(self.child_fd)
            self.child_fd = -1

    async def write(self, data: bytes) -> None:
        """Attached input, waiting while the pipe or terminal is full (the container reads slower
        than the client types); dropped once stdin is closed or the container is gone."""
        view = memoryview(data)
        while view and not self.closed:
            try:
                view = view[os.write(self._agent_fd, view):]
            except BlockingIOError:
                await asyncio.sleep(WRITE_RETRY_SECONDS)
            except OSError:  # EPIPE/EIO: nobody reads any more
                return

    def close_stdin(self) -> None:
        """End of input: close the pipe, or type ``^D`` on the terminal (which stays the output)."""
        if self.closed:
            return
        if self.tty:
            with contextlib.suppress(OSError):
                os.write(self._agent_fd, b"\x04")
            return
        self.closed = True
        with contextlib.suppress(OSError):
            os.close(self._agent_fd)

    def detached(self, had_stdin: bool) -> None:
        """An attach session ended; with ``stdinOnce`` the first one that wrote stdin closes it."""
        if had_stdin and self.stdin_once:
            self.close_stdin()
            self.closed = True

    def resize(self, width: int, height: int) -> None:
        if not self.tty or width <= 0 or height <= 0:
            return
        self.winsize = (width, height)
        with contextlib.suppress(OSError):
            fcntl.ioctl(self._agent_fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def copy_terminal(self, log_file: Path) -> None:
        """``tty``: copy the terminal's output to ``log_file`` until its last writer is gone (EIO)."""
        if not self.tty:
            return
        out = os.open(log_file, LOG_FLAGS, 0o640)
        try:
            async for data in terminal_output(self._agent_fd):
                os.write(out, data)
        finally:
            os.close(out)

    def release(self) -> None:
        """The attempt is over: close the agent's end."""
        self.spawned()
        if not (self.closed and not self.tty):
            with contextlib.suppress(OSError):
                os.close(self._agent_fd)
        self.closed = True


async def terminal_output(fd: int) -> AsyncIterator[bytes]:
    """What a pseudo-terminal's agent end ``fd`` reads, chunk by chunk, until every process holding
    the terminal has exited (EIO). The caller owns ``fd``."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    loop.add_reader(fd, ready.set)
    try:
        while True:
            await ready.wait()
            ready.clear()
            try:
                data = os.read(fd, CHUNK)
            except BlockingIOError:
                continue
            except OSError:  # EIO: the terminal's last process is gone
                return
            if not data:
                return
            yield data
    finally:
        loop.remove_reader(fd)
