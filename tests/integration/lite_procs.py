"""Helpers for lite nodes run as real ``atoll start`` processes (``atoll init --mode lite`` + image load)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from atoll.api import kinds
from atoll.api.errors import NotFound
from atoll.client import Client
from tests.conftest import REPO, RunningServer

ATOLL = [sys.executable, "-m", "atoll.cli.main"]
LEASE_SECONDS = 4
TIMERS = {"leaseDuration": LEASE_SECONDS, "leaseRenew": 1, "backoffInitial": 1, "backoffMax": 4}


def init_lite(server: RunningServer, base: Path, domain: str) -> Path:
    """``atoll init --mode lite`` for ``domain`` under ``base`` with short timers and an empty image ``app:v1``."""
    data = base / domain
    config = data / "atoll.yaml"
    subprocess.run([*ATOLL, "init", "--mode", "lite", "--domain", domain, "--data-dir", str(data), "--kubeconfig",
                    str(server.kubeconfig), "--master-data-dir", str(server.data_dir), "-o", str(config)],
                   check=True, capture_output=True, cwd=REPO)
    doc = yaml.safe_load(config.read_text())
    doc["agent"] = {"nodeName": f"{domain}-node", "timers": dict(TIMERS)}
    config.write_text(yaml.safe_dump(doc))
    image = base / "image" / "bin"
    image.mkdir(parents=True, exist_ok=True)
    subprocess.run([*ATOLL, "image", "load", "-c", str(config), str(image.parent), "--name", "app:v1"],
                   check=True, capture_output=True, cwd=REPO)
    return config


def start(config: Path) -> subprocess.Popen[bytes]:
    """``atoll start`` of a lite node; output appends to ``agent.log`` beside its config."""
    log = open(config.parent / "agent.log", "ab")
    return subprocess.Popen([*ATOLL, "start", "-c", str(config)], stdout=log, stderr=log, cwd=REPO)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM an agent process (if still running) and wait for it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def node_ready(client: Client, name: str) -> bool:
    try:
        node = await client.get(kinds.NODES, name)
    except NotFound:
        return False
    return {c["type"]: c["status"] for c in node["status"].get("conditions") or []}.get("Ready") == "True"
