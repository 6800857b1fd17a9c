"""Helpers for agent tests: in-process agents joined to a test master, an image, process counting."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atoll.agent.agent import Agent
from atoll.agent.config import AgentConfig, Timers
from atoll.agent.runp.images import ImageStore
from atoll.api import kinds
from atoll.api.errors import NotFound
from atoll.client import Client
from atoll.pki import PKI, issue_serving_cert
from tests.conftest import RunningServer, eventually, start_until_ready

JSON = dict[str, Any]
FAST = Timers(lease_duration=4, lease_renew=1, status_check=2, backoff_initial=1, backoff_max=4, probe_min_period=0.2)


def issue_agent_cert(master_pki: Path, target: Path) -> tuple[Path, Path, Path]:
    """What ``atoll init --mode lite --master-data-dir`` does: a serving cert from the master's CA."""
    target.mkdir(parents=True, exist_ok=True)
    cert, key = issue_serving_cert(PKI(master_pki), "atoll-agent")
    (target / "kubelet.crt").write_bytes(cert)
    (target / "kubelet.key").write_bytes(key)
    (target / "ca.crt").write_bytes(PKI(master_pki).ca_cert.read_bytes())
    return target / "kubelet.crt", target / "kubelet.key", target / "ca.crt"


def agent_config(server: RunningServer, data_dir: Path, domain: str, *, timers: Timers = FAST) -> AgentConfig:
    cert, key, ca = issue_agent_cert(server.data_dir / "pki", data_dir / "pki")
    return AgentConfig(
        domain=domain,
        data_dir=data_dir,
        node_name=f"{domain}-node",
        tls_cert=cert,
        tls_key=key,
        client_ca=ca,
        timers=timers,
    )


def load_image(data_dir: Path, name: str = "app:v1") -> None:
    src = data_dir.parent / f"image-src-{name.replace(':', '-')}"
    (src / "bin").mkdir(parents=True, exist_ok=True)
    tool = src / "bin" / "hello"
    tool.write_text("#!/bin/sh\necho hello from the image \"$@\"\n")
    tool.chmod(0o755)
    ImageStore(data_dir / "agent" / "images").load(src, name)


@dataclass
class RunningAgent:
    agent: Agent
    task: asyncio.Task[None]
    config: AgentConfig
    client: Client

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.client.close()


async def start_agent(server: RunningServer, config: AgentConfig) -> RunningAgent:
    client = Client.from_kubeconfig(server.kubeconfig)
    agent = Agent(client, config)
    task = await start_until_ready(agent.run(), agent.ready, 20, "agent not ready in 20 s")
    return RunningAgent(agent, task, config, client)


@contextlib.asynccontextmanager
async def running_agent(server: RunningServer, data_dir: Path, domain: str) -> AsyncIterator[RunningAgent]:
    config = agent_config(server, data_dir, domain)
    load_image(data_dir)
    running = await start_agent(server, config)
    try:
        yield running
    finally:
        await running.stop()
        kill_leftovers(data_dir)


def pod(name: str, node: str, command: list[str], *, namespace: str = "default", **spec: Any) -> JSON:
    container = {"name": spec.pop("container_name", "main"), "image": "app:v1", "command": command}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"nodeName": node, "containers": [container], **spec},
    }


async def wait_pod_gone(client: Client, name: str, *, namespace: str = "default", timeout: float = 15) -> None:  # noqa: ASYNC109
    """Until the pod object no longer exists (the agent confirmed its deletion)."""

    async def gone() -> bool:
        try:
            await client.get(kinds.PODS, name, namespace)
        except NotFound:
            return True
        return False

    await eventually(gone, timeout)


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains ``marker``."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if marker.encode() in cmd:
            out.append(int(name))
    return [p for p in out if p != os.getpid()]


async def stable_processes(marker: str) -> list[int]:
    """Like :func:`processes_with`, without the short-lived forks of a shell (seen in 3 snapshots)."""
    seen = set(processes_with(marker))
    for _ in range(2):
        await asyncio.sleep(0.25)
        seen &= set(processes_with(marker))
    return sorted(seen)


def kill_leftovers(data_dir: Path, *, within: float = 10.0) -> None:
    """Test cleanup: SIGKILL every process the agent under ``data_dir`` started (their groups too),
    and return once none is left: a killed process lingers until the kernel schedules its exit."""
    import signal
    import time

    deadline = time.monotonic() + within
    while pids := processes_with(str(data_dir / "agent" / "pods")):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise AssertionError(f"processes under {data_dir} survive SIGKILL: {pids}")
        time.sleep(0.05)
