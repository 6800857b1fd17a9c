"""The per-pod sandbox directory and the container records persisted in it.

``<agent>/pods/<uid>/`` holds ``state.json`` (the records below, rewritten atomically on every
change), ``volumes/``, ``root/`` (the mount view), and ``containers/<name>/`` (rendered templates,
the termination-message file and the shim's ``<attempt>.pid`` / ``<attempt>.exit``); the pod's log
directory is made there as ``logs.new/`` and renamed into ``<agent>/logs/`` (:mod:`.spread`). The record
is written *before* a process is spawned (``attempt`` with ``pid = 0``) and again with its pid
and start time after it, so a restarted agent can always tell "never started" from "started
and maybe still running": a pod is never started twice.

``state.json`` is first written as a new file (``O_EXCL``: one ``write`` of the whole content; a
kill before it leaves an empty file, which loads as no records, as before any save), or, when a file
is already there (records recovered after a restart), as a temporary file renamed into place. Later
saves rewrite it in place with one ``pwrite`` at offset 0, padded with spaces (JSON whitespace) to
the longest content written so far, while that fits one page: a write into one page of the page
cache is all or nothing against a kill of the agent, so a reader sees the old or the new records,
never a mix (a power cut mid-write is another matter; the rename was never fsynced either).
Creating the temporary file's inode was the cost of a save (0.3-0.9 ms on the project's VM, on
the agent's event loop, three times per pod); the rewrite is a few microseconds. Larger records
keep the rename. :meth:`Sandbox.make_container_dir` creates the sandbox top down and tells the
runner whether the container's directory is new (then it has no stale files to remove).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from atoll.agent.runp.spread import make_dirs
from atoll.api.timestamps import now_time

JSON = dict[str, Any]
PAGE = 4096
"""Records up to this size are rewritten in place (one page: all or nothing against a kill)."""


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
    deadline_exceeded: bool = False
    """``spec.activeDeadlineSeconds`` passed: the pod is Failed (``DeadlineExceeded``), nothing restarts."""


class Sandbox:
    def __init__(self, root: Path, uid: str) -> None:
        self.dir = root / "pods" / uid
        self.uid = uid
        self._made = False
        self._size = 0
        """Length of ``state.json`` as this object last wrote it (0: not written by it yet)."""

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def container_dir(self, name: str) -> Path:
        return self.dir / "containers" / name

    def make_container_dir(self, name: str) -> bool:
        """Create the sandbox and ``containers/<name>`` top down (no failed ``mkdir`` for a new pod);
        True if ``containers/<name>`` was created now, so holds no file yet."""
        made = make_dirs(self.dir, self.dir / "containers", self.container_dir(name))
        self._made = True
        return made

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
        """Rewrite ``state.json`` atomically: in place within one page, else a renamed temporary file."""
        data = orjson.dumps(state)
        if 0 < self._size <= PAGE and len(data) <= PAGE and self._rewrite(data):
            return
        if not self._made:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._made = True
        if self._size == 0 and self._create(data):
            return
        tmp = f"{self.dir}/state.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, f"{self.dir}/state.json")
        self._size = len(data)

    def _create(self, data: bytes) -> bool:
        """Write ``state.json`` as a new file; False if one exists."""
        try:
            fd = os.open(f"{self.dir}/state.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self._size = len(data)
        return True

    def _rewrite(self, data: bytes) -> bool:
        """One ``pwrite`` of ``data`` padded to the file's length; False if the file is gone."""
        try:
            fd = os.open(f"{self.dir}/state.json", os.O_WRONLY)
        except FileNotFoundError:
            return False
        try:
            os.pwrite(fd, data.ljust(self._size), 0)
        finally:
            os.close(fd)
        self._size = max(self._size, len(data))
        return True

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self._made = False
        self._size = 0


def list_sandboxes(root: Path) -> list[str]:
    base = root / "pods"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
