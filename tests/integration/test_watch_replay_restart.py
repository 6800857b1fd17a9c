"""A selected watch resumed on a master that restarted after the change it must see.

A restarted master replays the revisions before its initial list (``initial_history``); the
store's rows do not carry their previous state. An object that left a watch's label selector in
that window must be sent as DELETED with its previous content (kube's cacher), one that entered
it as ADDED: the cache takes the previous state from the key's earlier row in the window, or reads
it from the store (alone, or with one LIST of the watch's prefix at the window's start). Only
where the store no longer has it (compacted) does the watch answer 410 Expired, so its client
relists instead of keeping a departed object forever; a watch without selector, or whose selector
the replayed objects still match, replays as before, and so does one whose selector is only
``metadata.name`` (or a pod's ``spec.nodeName``) ``=`` a value: those fields never change once set.
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
from atoll.apiserver.cache import prelist
from atoll.client import Client
from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from atoll.store.base import Compacted
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


async def taken(client: Client, rv: str, selector: str, n: int) -> list[tuple[str, str, JSON]]:
    """The first ``n`` events of a watch from ``rv`` with ``selector``: type, name, labels and rv."""
    events = client.watch(CONFIGMAPS, NS, resource_version=rv, label_selector=selector)
    async with contextlib.aclosing(events), asyncio.timeout(5):
        got = [await anext(events) for _ in range(n)]
    return [(kind, obj["metadata"]["name"], {**obj["metadata"]["labels"], "rv": obj["metadata"]["resourceVersion"]})
            for kind, obj in got]


@pytest.mark.parametrize("point_read", [0, 10**6], ids=["read-one", "list-all"])
async def test_a_selected_watch_replaying_from_before_a_restart_sees_departures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point_read: int
) -> None:
    """x's previous state is read from the store (its create is before the replayed window: the
    store was compacted there), alone or with a LIST at the window's start; z's comes from its own
    earlier row in the window."""
    monkeypatch.setattr(prelist, "POINT_READ", point_read)  # what a row read alone costs: nothing, or a lot
    data = tmp_path / "master"
    async with master(data) as a, a.client() as client:
        assert a.node is not None and a.node.server is not None
        created = await client.create(CONFIGMAPS, configmap("x", "a"))
        rv = created["metadata"]["resourceVersion"]
        await a.node.server.compactor.compact(int(rv))  # the window replayed at restart starts after x's create
        x_left = await client.patch(CONFIGMAPS, "x", {"metadata": {"labels": {"app": "b"}}}, NS)
        z_added = await client.create(CONFIGMAPS, configmap("z", "a"))
        z_left = await client.patch(CONFIGMAPS, "z", {"metadata": {"labels": {"app": "c"}}}, NS)
    async with master(data) as b:
        assert b.node is not None and b.node.server is not None
        cache = b.node.server.cache
        assert cache._history.start == int(rv) and cache._live_from >= int(z_left["metadata"]["resourceVersion"])
        async with b.client() as http, b.node.client() as local:
            y = await http.create(CONFIGMAPS, configmap("y", "a"))  # after the restart: a live event
            for client in (http, local):
                assert await taken(client, rv, "app=a", 4) == [
                    ("DELETED", "x", {"app": "a", "rv": x_left["metadata"]["resourceVersion"]}),  # as it last matched
                    ("ADDED", "z", {"app": "a", "rv": z_added["metadata"]["resourceVersion"]}),
                    ("DELETED", "z", {"app": "a", "rv": z_left["metadata"]["resourceVersion"]}),
                    ("ADDED", "y", {"app": "a", "rv": y["metadata"]["resourceVersion"]}),
                ]
                # x enters app=b: ADDED (its previous state did not match), not a MODIFIED
                assert await taken(client, rv, "app=b", 1) == [
                    ("ADDED", "x", {"app": "b", "rv": x_left["metadata"]["resourceVersion"]})]
                assert await first(client, rv, "") == ("MODIFIED", "x")  # no selector: replayed as it was
                assert await first(client, rv, "", "metadata.name=y") == ("ADDED", "y")


@pytest.mark.parametrize("point_read", [0, 10**6], ids=["read-one", "list-all"])
async def test_a_selected_watch_is_expired_when_the_previous_state_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point_read: int
) -> None:
    """A replayed change whose previous state the store no longer gives (compacted meanwhile):
    whether it left the selector is unknown, so the watch answers 410 and its client relists."""
    monkeypatch.setattr(prelist, "POINT_READ", point_read)
    data = tmp_path / "master"
    async with master(data) as a, a.client() as client:
        assert a.node is not None and a.node.server is not None
        created = await client.create(CONFIGMAPS, configmap("x", "a"))
        rv = created["metadata"]["resourceVersion"]
        await a.node.server.compactor.compact(int(rv))
        await client.patch(CONFIGMAPS, "x", {"metadata": {"labels": {"app": "b"}}}, NS)  # x leaves app=a
    async with master(data) as b:
        assert b.node is not None and b.node.server is not None
        store = b.node.server.cache._store
        listing = store.list

        async def compacted(prefix: str, **kw: Any) -> Any:
            """The store as compacted past x's patch: no ConfigMap state before it."""
            revision = kw.get("revision", 0)
            if revision and prefix.startswith(CONFIGMAPS.key_prefix(NS)):
                raise Compacted(revision, revision + 1)
            return await listing(prefix, **kw)

        monkeypatch.setattr(store, "list", compacted)  # for a read alone and for a LIST alike
        async with b.client() as http, b.node.client() as local:
            await http.create(CONFIGMAPS, configmap("y", "a"))
            for client in (http, local):
                with pytest.raises(errors.Gone, match=f"too old resource version: {rv} "):
                    await first(client, rv, "app=a")  # not y's ADDED with x's departure lost
                assert await first(client, rv, "app=b") == ("MODIFIED", "x")  # still matching: replayed
                assert await first(client, rv, "") == ("MODIFIED", "x")
                # a name never changes: x, not named y, never matched, and y's ADDED comes without a 410
                assert await first(client, rv, "", "metadata.name=y") == ("ADDED", "y")
