"""A management master with the fleet manager only, shared by a test module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from atoll.client import Client
from atoll.fleet.kinds import INSTANCES
from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from tests.conftest import RunningServer, _write_kubeconfig, eventually, start_until_ready


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def management(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    data = tmp_path_factory.mktemp("management") / "master"
    config = NodeConfig(
        mode="master",
        domain_id="kuscia-system",
        data_dir=data,
        api_port=0,
        controllers=("fleet",),
        extra={"fleet": {"clusterStatusPeriod": 1, "statisticsPeriod": 1}},
    )
    node = MasterNode(config)
    task = await start_until_ready(node.run(), node.ready, 30, "management master not ready in 30 s")
    kubeconfig, token, ca = _write_kubeconfig(data, node.url)
    yield RunningServer(node.url, data, kubeconfig, token, ca, node)
    task.cancel()
    try:
        await task
    except BaseException:
        pass


async def create_instance(client: Client, name: str, within: float = 30.0) -> dict[str, Any]:
    """Create the Instance and wait for ``Running``/``controlPlaneReady``."""
    await client.create(
        INSTANCES, {"apiVersion": "kairship.io/v1alpha1", "kind": "Instance", "metadata": {"name": name}, "spec": {}}
    )

    async def running() -> dict[str, Any]:
        obj = await client.get(INSTANCES, name)
        status = obj.get("status") or {}
        assert status.get("phase") == "Running" and status.get("controlPlaneReady") is True, status
        return obj

    return await eventually(running, within)


def proxy_url(server: RunningServer, instance: str) -> str:
    return f"{server.url}/apis/kairship.io/v1alpha1/instances/{instance}/proxy"


def data_dir(server: RunningServer) -> Path:
    return server.data_dir / "fleet"


def widget_crd(group: str, *, status: bool = False) -> dict[str, Any]:
    """A namespaced ``Widget`` custom resource of ``group`` keeping any fields (with a status
    subresource when ``status``): the custom kind the fleet tests propagate."""
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    if status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [version],
        },
    }
