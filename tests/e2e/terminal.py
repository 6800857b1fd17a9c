"""kubectl on a pseudo-terminal (what ``-t``/``-it`` needs), for the exec, attach, run and debug suites."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time

from tests.e2e.conftest import Kubectl

ROWS, COLUMNS = 33, 111
"""The terminal's size: what ``stty size`` in the container must report after a resize."""


def on_a_terminal(k: Kubectl, *args: str, typed: bytes = b"", timeout: float = 60) -> tuple[int, str]:
    """Run kubectl on a pseudo-terminal, type ``typed`` once it prints anything (or after 2 s), and
    return its exit code and everything it printed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    proc = subprocess.Popen(k.args(*args), stdin=slave, stdout=slave, stderr=slave, env=k.env, cwd=k.workdir)
    os.close(slave)
    out, deadline, start_at = b"", time.monotonic() + timeout, time.monotonic()
    try:
        while time.monotonic() < deadline:
            if typed and (out or time.monotonic() - start_at > 2):
                os.write(master, typed)
                typed = b""
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: kubectl exited and closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        code = proc.wait(timeout=30)
        os.close(master)
    return code, out.decode(errors="replace")
