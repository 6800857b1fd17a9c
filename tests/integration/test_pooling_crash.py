"""kill -9 of the computing master in the middle of syncing pods: after a restart every virtual pod
has exactly one physical pod (no duplicate) and the worker holds nothing else (no orphan). The
computing master is a real ``atoll start`` process; the worker runs in this loop with a RunP agent."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from atoll.api import kinds
from tests.conftest import ATOLL, REPO, RunningServer, eventually, free_port, start_master_process
from tests.integration.agents import running_agent
from tests.integration.pooling import WORKER_CONTROLLERS, Plane, bind, lease_policy, plane, pooled_pod

JSON = dict[str, Any]
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]
PODS = 12


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Plane]:
    base: Path = tmp_path_factory.mktemp("crash")
    w1 = plane(base, "w1", WORKER_CONTROLLERS)
    server = await w1.start()
    try:
        async with running_agent(server, base / "w1-agent", "w1"):
            yield w1
    finally:
        await w1.stop()
        if w1.client is not None:
            await w1.client.close()


def computing_config(data_dir: Path) -> None:
    config = data_dir / "atoll.yaml"
    subprocess.run([*ATOLL, "init", "--mode", "master", "--domain", "kuscia-system", "--data-dir", str(data_dir),
                    "--api-port", str(free_port()), "-o", str(config)], check=True, capture_output=True, cwd=REPO)
    doc = yaml.safe_load(config.read_text())
    doc["controllers"] = ["namespace", "garbagecollector", "scheduler", "pooling"]
    doc["pooling"] = {"leaseDurationSeconds": 8}
    config.write_text(yaml.safe_dump(doc))


async def start(data_dir: Path) -> tuple[subprocess.Popen[bytes], RunningServer]:
    return await asyncio.to_thread(start_master_process, data_dir)


async def test_kill_9_mid_sync(worker: Plane, tmp_path: Path) -> None:
    data = tmp_path / "computing"
    computing_config(data)
    proc, server = await start(data)
    assert worker.server is not None and worker.client is not None
    try:
        async with server.client() as client:
            await client.create(kinds.NAMESPACES, {"metadata": {"name": "team"}})
            await lease_policy(worker.client, "rlp1", "cb-w1")
            await eventually(lambda: client.get(kinds.NAMESPACES, "kubeocean-system"), 30)
            await bind(client, "cb-w1", "cls-w1", worker.server)
            await eventually(lambda: client.get(kinds.NODES, "vnode-cls-w1-w1-node"), 30)
            for i in range(PODS):
                await client.create(kinds.PODS, pooled_pod(f"p{i}", "cls-w1", "sleep 2"), "team")

            async def mid_sync() -> None:
                pods = (await client.list(kinds.PODS, "team"))["items"]
                checkpoints = [(p["metadata"].get("annotations") or {}) for p in pods]
                assert any("kubeocean.io/physical-pod-name" in a for a in checkpoints), "no checkpoint yet"

            await eventually(mid_sync, 30, every=0.01)
        proc.kill()  # kill -9: no cleanup, no lease release
        proc.wait()
        proc, server = await start(data)
        async with server.client() as client:
            async def all_done() -> list[JSON]:
                pods: list[JSON] = (await client.list(kinds.PODS, "team"))["items"]
                phases = sorted((p["metadata"]["name"], (p.get("status") or {}).get("phase")) for p in pods)
                assert all(phase == "Succeeded" for _, phase in phases) and len(phases) == PODS, phases
                return pods

            pods = await eventually(all_done, 90, every=0.5)
        physical = (await worker.client.list(kinds.PODS, "w1"))["items"]
        by_virtual = sorted(p["metadata"]["annotations"]["kubeocean.io/virtual-pod-uid"] for p in physical)
        assert by_virtual == sorted(p["metadata"]["uid"] for p in pods)  # one each: no duplicate, no orphan
        for pod in pods:
            annotations = pod["metadata"]["annotations"]
            match = [p for p in physical if p["metadata"]["name"] == annotations["kubeocean.io/physical-pod-name"]]
            assert match and match[0]["metadata"]["uid"] == annotations["kubeocean.io/physical-pod-uid"]
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()

