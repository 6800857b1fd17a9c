"""The per-pod sandbox directory and the container records persisted in it.

``<agent>/pods/<uid>/`` holds ``state.json`` (the records below, rewritten atomically on every
change), ``volumes/``, ``root/`` (the mount view), and ``containers/<name>/`` (rendered templates,
the termination-message file and the shim's ``<attempt>.pid`` / ``<attempt>.exit``). The record
is written *before* a process is spawned (``attempt`` with ``pid = 0``) and again with its pid
and start time right after, so a restarted agent can always tell "never started" from "started
and maybe still running": a pod is never started twice.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from atoll.api.timestamps import now_time

JSON = dict[str, Any]


@dataclass(slots=True)
class ContainerRecord:
    name: str
    init: bool = False
    ephemeral: bool = False
    """An ephemeral (debug) container: never restarted, no probes, not part of the pod's phase."""
    image: str = ""
    image_id: str = ""
    restart_count: int = 0
    attempt: int = -1
    """Attempt (= restart count at its start) of the last spawned process; -1: never spawned."""
    pid: int = 0
    start_time: int | None = None
    state: str = "waiting"
    """``waiting`` | ``running`` | ``terminated``."""
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: str = ""
    terminated: JSON | None = None
    last_terminated: JSON | None = None
    ready: bool = False
    started: bool = False
    spawning: bool = False
    """Set (and persisted) just before a spawn, cleared once the pid is recorded."""
    done: bool = False
    """No further attempts will be made (terminal per restart policy, or pod stopping)."""

    def container_id(self, uid: str) -> str:
        return f"runp://{uid.replace('-', '')[:12]}{self.name}-{max(self.attempt, 0)}"


@dataclass(slots=True)
class SandboxState:
    uid: str
    namespace: str
    name: str
    start_time: str = field(default_factory=now_time)
    containers: dict[str, ContainerRecord] = field(default_factory=dict)
    terminal: bool = False


class Sandbox:
    def __init__(self, root: Path, uid: str) -> None:
        self.dir = root / "pods" / uid
        self.uid = uid
        self._made = False

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def container_dir(self, name: str) -> Path:
        return self.dir / "containers" / name

    def shim_state(self, name: str, attempt: int) -> Path:
        return self.container_dir(name) / str(attempt)

    def exists(self) -> bool:
        return self.state_file.exists()

    def load(self) -> SandboxState | None:
        try:
            doc = orjson.loads(self.state_file.read_bytes())
        except (OSError, ValueError):
            return None
        containers = {k: ContainerRecord(**v) for k, v in (doc.pop("containers") or {}).items()}
        return SandboxState(**doc, containers=containers)

    def save(self, state: SandboxState) -> None:
        """Rewrite ``state.json`` atomically (write a temporary file, rename it over the old one)."""
        if not self._made:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._made = True
        tmp = f"{self.dir}/state.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, orjson.dumps(state))
        finally:
            os.close(fd)
        os.replace(tmp, f"{self.dir}/state.json")

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self._made = False


def list_sandboxes(root: Path) -> list[str]:
    base = root / "pods"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
