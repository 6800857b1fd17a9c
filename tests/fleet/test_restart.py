"""The management plane restarts its instances after its own restart (kill -9 included), with no
data lost: the instance keeps its store, CA, credentials and endpoint."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from atoll.api import errors, kinds
from atoll.client import Client
from atoll.fleet.kinds import INSTANCES
from tests.conftest import RunningServer, eventually, start_master_process
from tests.fleet.conftest import create_instance, proxy_url
from tests.integration.servers import reaped, stop

pytestmark = pytest.mark.slow


def proxied(server: RunningServer, instance: str) -> Client:
    return Client(proxy_url(server, instance), ssl_context=server.ssl_context(), token=server.token)


async def instance_running(server: RunningServer, name: str) -> dict[str, object]:
    async with server.client() as client:
        obj = await client.get(INSTANCES, name)
    status = obj.get("status") or {}
    assert status.get("phase") == "Running" and status.get("controlPlaneReady") is True, status
    return dict(status)


async def read_through_proxy(server: RunningServer, instance: str, name: str) -> dict[str, object]:
    async with proxied(server, instance) as inst:
        try:
            return await inst.get(kinds.CONFIGMAPS, name, "default")
        except errors.ServiceUnavailable as exc:
            raise AssertionError(str(exc)) from None


async def test_instances_survive_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "management"
    proc, server = start_master_process(data)
    with reaped([proc]) as procs:
        async with server.client() as client:
            first = (await create_instance(client, "durable", within=60))["status"]
        async with proxied(server, "durable") as inst:
            await inst.create(kinds.CONFIGMAPS, {"metadata": {"name": "kept"}, "data": {"k": "v"}}, "default")
        procs[0].kill()
        procs[0].wait(15)
        proc2, server = start_master_process(data)
        procs.append(proc2)
        # the new process leads once the killed one's Lease expires, then restarts the instance
        kept: dict[str, object] = await eventually(partial(read_through_proxy, server, "durable", "kept"), 60)
        assert kept["data"] == {"k": "v"}
        status: dict[str, object] = await eventually(partial(instance_running, server, "durable"), 30)
        assert status["endpoint"] == first["endpoint"]
        stop(proc2)
