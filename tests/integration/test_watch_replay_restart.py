"""A selected watch resumed on a master that restarted after the change it must see.

A restarted master replays the revisions before its initial list (``initial_history``) without
their previous state. An object that left a watch's label selector in that window would be
dropped silently (kube sends DELETED with the previous content), and an informer that resumed
there would keep it forever; the watch answers 410 Expired instead, so its client relists. A
watch without selector, or whose selector the replayed objects still match, replays as before,
and so does one whose selector is only ``metadata.name`` (or a pod's ``spec.nodeName``) ``=``
a value: those fields never change once set, so nothing can have left it (an agent's watch of its
node's pods resumes on a restarted master without relisting).
Checked over HTTP and in-process, on two successive masters on one SQLite data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from atoll.api import errors
from atoll.api.kinds import CONFIGMAPS
from atoll.client import Client
from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from tests.conftest import RunningServer, _write_kubeconfig, start_until_ready

JSON = dict[str, Any]
NS = "default"


@contextlib.asynccontextmanager
async def master(data: Path) -> AsyncIterator[RunningServer]:
    """A master on ``data`` (no controllers: nothing else writes ConfigMaps), stopped at the end."""
    node = MasterNode(NodeConfig(mode="master", domain_id="kuscia-system", data_dir=data, api_port=0,
                                 controllers=()))
    task = await start_until_ready(node.run(), node.ready, 30, "master did not become ready in 30 s")
    try:
        kubeconfig, token, ca = _write_kubeconfig(data, node.url)
        yield RunningServer(node.url, data, kubeconfig, token, ca, node)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def configmap(name: str, app: str) -> JSON:
    return {"metadata": {"name": name, "namespace": NS, "labels": {"app": app}}}


async def first(client: Client, rv: str, selector: str, fields: str = "") -> tuple[str, str]:
    """The first event of a watch from ``rv`` with ``selector``: its type and object's name."""
    events = client.watch(CONFIGMAPS, NS, resource_version=rv, label_selector=selector or None,
                          field_selector=fields or None)
    async with contextlib.aclosing(events), asyncio.timeout(5):
        kind, obj = await anext(events)
    return kind, obj["metadata"]["name"]


async def test_a_selected_watch_replaying_from_before_a_restart_is_expired(tmp_path: Path) -> None:
    data = tmp_path / "master"
    async with master(data) as a, a.client() as client:
        created = await client.create(CONFIGMAPS, configmap("x", "a"))
        await client.patch(CONFIGMAPS, "x", {"metadata": {"labels": {"app": "b"}}}, NS)  # x leaves app=a
    rv = created["metadata"]["resourceVersion"]
    async with master(data) as b:
        assert b.node is not None and b.node.server is not None
        assert b.node.server.cache._live_from > int(rv)  # x's change is replayed without its previous state
        async with b.client() as http, b.node.client() as local:
            await http.create(CONFIGMAPS, configmap("y", "a"))  # after the restart: a live event
            for client in (http, local):
                with pytest.raises(errors.Gone, match=f"too old resource version: {rv} "):
                    await first(client, rv, "app=a")  # not y's ADDED with x's departure lost
                assert await first(client, rv, "") == ("MODIFIED", "x")  # no selector: replayed
                assert await first(client, rv, "app=b") == ("MODIFIED", "x")  # still matching: replayed
                # a name never changes: x, not named y, never matched, and y's ADDED comes without a 410
                assert await first(client, rv, "", "metadata.name=y") == ("ADDED", "y")
