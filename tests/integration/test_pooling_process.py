"""``atoll pool-syncer`` as its own process (Kubeocean's per-cluster Deployment): the master's manager
only validates and reports (``externalSyncers: true``); the process syncs one binding, serves its
vnodes' logs, and a second replica waits on the binding's Lease."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from atoll.api import kinds
from atoll.pooling.kinds import CLUSTERBINDINGS
from tests.conftest import REPO, eventually
from tests.integration.pooling import Pool, bind, lease_policy, plane, pool_of, pooled_pod

JSON = dict[str, Any]
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]
COMPUTING = ("namespace", "garbagecollector", "scheduler", "pooling")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pool]:
    base: Path = tmp_path_factory.mktemp("process")
    computing = plane(base, "computing", COMPUTING, {"pooling": {"externalSyncers": True}})
    async with pool_of(base, computing, ("w1",)) as running:
        await running.client.create(kinds.NAMESPACES, {"metadata": {"name": "team"}})
        yield running


async def syncer_process(pool: Pool, log: Path) -> asyncio.subprocess.Process:
    assert pool.computing.server is not None
    server = pool.computing.server
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atoll.cli.main", "pool-syncer", "--binding", "cb-w1", "--kubeconfig",
        str(server.kubeconfig), "--pki-dir", str(server.data_dir / "pki"), "--lease-duration", "8",
        cwd=REPO, stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT)


async def test_a_syncer_process_syncs_one_binding(pool: Pool, tmp_path: Path) -> None:
    await lease_policy(pool.worker("w1"), "rlp1", "cb-w1")
    await bind(pool.client, "cb-w1", "cls-w1", pool.workers["w1"].server)

    async def ready() -> None:
        binding = await pool.client.get(CLUSTERBINDINGS, "cb-w1")
        assert (binding.get("status") or {}).get("phase") == "Ready", binding.get("status")

    await eventually(ready, 30)
    first = await syncer_process(pool, tmp_path / "first.log")
    second = await syncer_process(pool, tmp_path / "second.log")
    try:
        async def vnode() -> None:
            node = await pool.client.get(kinds.NODES, "vnode-cls-w1-w1-node")
            assert (node.get("status") or {}).get("allocatable")

        await eventually(vnode, 40)
        await pool.client.create(kinds.PODS, pooled_pod("proc", "cls-w1", "echo from a syncer process"), "team")

        async def done() -> None:
            pod = await pool.client.get(kinds.PODS, "proc", "team")
            assert pod.get("status", {}).get("phase") == "Succeeded", pod.get("status")

        await eventually(done, 40)
        log = await pool.client.request("GET", "/api/v1/namespaces/team/pods/proc/log")
        assert log == "from a syncer process\n"
        lease = await pool.client.get(kinds.LEASES, "kubeocean-syncer-cb-w1", "kubeocean-system")
        assert lease["spec"]["holderIdentity"]
    finally:
        for proc in (first, second):
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            await proc.wait()
