"""How a finished container attempt is described in ``status``: the ``terminated`` state.

Kubernetes' rules, as the kubelet applies them: ``reason`` is ``Completed`` (exit 0), ``Error``
or ``OOMKilled`` — RunP has no cgroup OOM killer, so a memory-limited container whose last log
lines carry an allocator's out-of-memory marker counts as OOM-killed. ``message`` is the first
4 KiB of the container's termination-message file or, with ``terminationMessagePolicy:
FallbackToLogsOnError`` and a failure, the last 2 KiB of its last 80 log lines.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from atoll.agent.runp.logs import last_lines
from atoll.api.timestamps import now_time

JSON = dict[str, Any]

MESSAGE_MAX_BYTES = 4096
FALLBACK_LINES = 80
FALLBACK_BYTES = 2048
OOM_MARKERS = (b"MemoryError", b"Cannot allocate memory", b"out of memory", b"bad_alloc")


def log_tail(logfile: Path) -> bytes:
    """The last ``FALLBACK_LINES`` lines of the attempt's log (of its last 64 KiB)."""
    with contextlib.suppress(OSError), open(logfile, "rb") as f:
        f.seek(max(os.fstat(f.fileno()).st_size - 65536, 0))
        return last_lines(f.read(), FALLBACK_LINES)
    return b""


def termination_message(spec: JSON, code: int, message_file: Path, tail: bytes) -> str:
    message = b""
    with contextlib.suppress(OSError), open(message_file, "rb") as f:
        message = f.read(MESSAGE_MAX_BYTES)
    if not message and code != 0 and spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
        message = tail[-FALLBACK_BYTES:]
    return message.decode("utf-8", "replace")


def terminated_state(spec: JSON, code: int, *, logfile: Path, message_file: Path, started_at: str | None,
                     container_id: str) -> JSON:
    """The ``state.terminated`` of an attempt that exited with ``code``."""
    reason = "Completed" if code == 0 else "Error"
    tail = log_tail(logfile) if code != 0 else b""
    limits = (spec.get("resources") or {}).get("limits") or {}
    if code != 0 and "memory" in limits and any(m in tail for m in OOM_MARKERS):
        reason = "OOMKilled"
    terminated: JSON = {
        "exitCode": code,
        "reason": reason,
        "startedAt": started_at or now_time(),
        "finishedAt": now_time(),
        "containerID": container_id,
    }
    message = termination_message(spec, code, message_file, tail)
    if message:
        terminated["message"] = message
    return terminated


START_ERROR_CODE = 128
"""Exit code of an attempt whose process could not be started (kubelet/containerd: ``StartError``)."""


def start_error_state(message: str, container_id: str) -> JSON:
    """The ``state.terminated`` of an attempt whose process could not be started."""
    now = now_time()
    return {"exitCode": START_ERROR_CODE, "reason": "StartError", "message": message,
            "startedAt": now, "finishedAt": now, "containerID": container_id}
