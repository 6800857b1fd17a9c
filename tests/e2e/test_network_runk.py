"""Kuscia's PSI job between two organisations through their Envoy gateways, with alice on RunK.

The network is the quickstart's (master + lites alice and bob as ``atoll start`` processes,
registered with deploy tokens, routes alice↔bob), except that alice's lite runs ``runtime: runk``:
her task pod is forwarded into namespace ``inst`` of an institution's cluster (a second control
plane with its own scheduler and a RunP agent). Her party dials bob through her own gateway's
egress ports exactly as a RunP task does, and bob reaches her pod through her gateway's ingress.
The job succeeds with the known overlap on both sides, alice's party ran as exactly one pod in the
institution's cluster, and the finished task's pods are removed from both clusters (``kubectl
logs`` through RunK is covered by ``tests/integration/test_runk_task.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import yaml

from atoll.agent.runk.podspec import NODE_LABEL
from atoll.agent.runp.images import ImageStore
from atoll.api import errors, kinds
from atoll.node.network import LocalNetwork
from atoll.node.quickstart_job import (
    APPIMAGES,
    IMAGE_REF,
    KUSCIATASKS,
    ExampleData,
    check_outputs,
    example_data,
    psi_image_dir,
    psi_job,
    run_job,
)
from atoll.node.quickstart_job import _atoll as atoll_cli
from tests.conftest import RunningServer, assert_cache_intact, eventually
from tests.integration.runk_clusters import INSTITUTION_NS, institution_cluster

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
TIMERS = {"leaseDuration": 6, "leaseRenew": 1, "backoffInitial": 1, "backoffMax": 4}
JSON = dict[str, Any]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[LocalNetwork, RunningServer]]:
    base = tmp_path_factory.mktemp("runk-net")
    async with institution_cluster(base / "institution") as inst:
        ImageStore(base / "institution" / "worker" / "agent" / "images").load(psi_image_dir(), IMAGE_REF)
        runk = {"namespace": INSTITUTION_NS, "kubeconfigFile": str(inst.kubeconfig), "dnsServers": []}
        network = LocalNetwork(base / "net", agent_timers=dict(TIMERS), lite_fields={
            "alice": {"runtime": "runk", "runk": runk, "capacity": {"cpu": "8", "memory": "16Gi"}}})
        try:
            await network.up()
            await network.wait_routes_ready()
            yield network, inst
        finally:
            await asyncio.to_thread(network.stop)
        assert network.master is not None
        assert_cache_intact(network.master.log)  # ATOLL_VERIFY_CACHE: no reader mutated the master's watch cache


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def psi_data(net: tuple[LocalNetwork, RunningServer]) -> ExampleData:
    """The PSI image on bob's lite (RunP) and in the institution (above); data registered on both lites."""
    network, _ = net
    data = example_data(network.base / "example", rows=3000, overlap=1000)
    await atoll_cli("image", "load", "-c", str(network.lites["bob"].config), "--name", IMAGE_REF,
                    str(psi_image_dir()))
    for domain, lite in network.lites.items():
        await atoll_cli("data", "add", "-c", str(lite.config), "--name", f"{domain}-table", domain,
                        str(data.files[domain]))
    appimage = yaml.safe_load((psi_image_dir() / "appimage.yaml").read_text())
    async with network.client() as client:
        with contextlib.suppress(errors.AlreadyExists):
            await client.create(APPIMAGES, appimage)
    return data


async def institution_pods(inst: RunningServer) -> list[JSON]:
    async with inst.client() as c:
        items, _ = await c.list_all(kinds.PODS, INSTITUTION_NS, label_selector=f"{NODE_LABEL}=alice-node")
    return items


async def test_alice_runs_on_runk(net: tuple[LocalNetwork, RunningServer]) -> None:
    network, _ = net
    async with network.client() as client:
        node = await client.get(kinds.NODES, "alice-node")
    assert node["metadata"]["labels"]["kuscia.secretflow/runtime"] == "runk"
    assert node["status"]["capacity"]["cpu"] == "8"


async def watch_institution(inst: RunningServer, seen: dict[str, set[str]], listening: asyncio.Event) -> None:
    """Record every phase each of alice's pods in the institution passes through."""
    async with inst.client() as c:
        _, rv = await c.list_all(kinds.PODS, INSTITUTION_NS, label_selector=f"{NODE_LABEL}=alice-node")
        listening.set()
        async for _, pod in c.watch(kinds.PODS, INSTITUTION_NS, resource_version=rv,
                                    label_selector=f"{NODE_LABEL}=alice-node"):
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            seen.setdefault(pod["metadata"]["name"], set()).add(phase)


async def test_the_psi_job_with_alice_on_runk_succeeds_through_the_gateways(
        net: tuple[LocalNetwork, RunningServer], psi_data: ExampleData) -> None:
    network, inst = net
    seen: dict[str, set[str]] = {}
    listening = asyncio.Event()
    watcher = asyncio.create_task(watch_institution(inst, seen, listening))
    try:
        await asyncio.wait_for(listening.wait(), 30)
        async with network.client() as client:
            await run_job(client, psi_job("psi-runk"), lambda line: None, within=150)
            lines = await check_outputs(network, psi_data)
            assert len(lines) == 2 and all("1,000 rows = the known overlap" in line for line in lines), lines
            task = await client.get(KUSCIATASKS, "psi-runk-psi", "cross-domain")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    pods = {name: status for name, status in task["status"]["podStatuses"].items() if name.startswith("alice/")}
    assert [s["nodeName"] for s in pods.values()] == ["alice-node"], task["status"]["podStatuses"]
    # alice's party ran in the institution's cluster, as exactly one pod that succeeded there
    assert len(seen) == 1 and "Succeeded" in next(iter(seen.values())), seen
    # the finished task's pods are cleaned up in both clusters
    async with network.client() as client:

        async def gone() -> None:
            left, _ = await client.list_all(kinds.PODS, "alice")
            assert not [p for p in left if p["metadata"]["name"].startswith("psi-runk-")]
            assert not await institution_pods(inst)

        await eventually(gone, 60)
