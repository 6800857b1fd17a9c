"""What one container attempt is launched with (:mod:`atoll.agent.runp.container` prepares it,
:mod:`atoll.agent.runp.process` spawns it): the command, environment and working directory, and
the process limits derived from the container's ``resources.limits``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atoll.api.quantity import parse_quantity

JSON = dict[str, Any]


@dataclass(slots=True)
class Prepared:
    command: list[str]
    env: dict[str, str]
    cwd: str
    memory_kb: int | None
    nice: int | None
    message_file: Path
    fresh: bool = False
    """The container's directory was created for this attempt: no stale shim or message files in it."""


def process_limits(spec: JSON) -> tuple[int | None, int | None]:
    """``(ulimit -v in KiB, nice)`` of a container: its memory limit as address-space limit, and a
    lower priority for a CPU limit below one core (RunP has no cgroups of its own)."""
    limits = (spec.get("resources") or {}).get("limits") or {}
    memory_kb = int(parse_quantity(limits["memory"]) // 1024) if "memory" in limits else None
    nice = 10 if "cpu" in limits and parse_quantity(limits["cpu"]) < 1 else None
    return memory_kb, nice


def working_dir(path: str, view: Path) -> str:
    """A ``workingDir`` that is neither mounted nor present on the host is created in the pod's view
    (container runtimes create a missing working directory inside the container)."""
    if not path or not os.path.isabs(path) or os.path.isdir(path):
        return path
    inside = view / path.lstrip("/")
    inside.mkdir(parents=True, exist_ok=True)
    return str(inside)
