"""Processes a local network leaves behind when it could not clean up: a previous run's nodes and
task processes (that run was itself killed), and RunP containers whose shims outlived their agent.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def kill_leftovers(base: Path) -> int:
    """SIGKILL every process whose command line names a path under ``base`` (a previous run's
    nodes and task processes, when that run itself was killed and could not clean up)."""
    marker = str(base.resolve()).encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker + b"/" in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    return killed


def sweep_pods(data_dir: Path) -> int:
    """SIGKILL the process group of every RunP container whose shim still runs under ``data_dir``."""
    killed = 0
    for pid_file in (data_dir / "agent").rglob("*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if str(pid_file.with_suffix("")).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
                killed += 1
    return killed
