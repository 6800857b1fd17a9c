"""A selected watch resumed on a master that restarted after the change it must see.

A restarted master replays the revisions before its initial list (``initial_history``); the
watch replaying that window must send an object that left its label selector there as DELETED
with its previous content (kube's cacher), one that entered it as ADDED: the cache takes the
previous state from the key's earlier row in the window, or from the value the row itself says it
replaced (the store keeps it with every update row), never reading the store. Only where that
value cannot be decoded does the watch answer 410 Expired, so its client relists instead of
keeping a departed object forever; a watch without selector, or whose selector the replayed
objects still match, replays as before, and so does one whose selector is only ``metadata.name``
(or a pod's ``spec.nodeName``) ``=`` a value: those fields never change once set.
Checked over HTTP and in-process, on two successive masters on one SQLite data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from atoll.api import errors
from atoll.api.kinds import CONFIGMAPS
from atoll.client import Client
from atoll.node.config import NodeConfig
from atoll.node.master import MasterNode
from atoll.store.base import Store
from tests.conftest import RunningServer, _write_kubeconfig, start_until_ready

JSON = dict[str, Any]
NS = "default"


@contextlib.asynccontextmanager
async def master(data: Path) -> AsyncIterator[RunningServer]:
    """A master on ``data`` (no controllers: nothing else writes ConfigMaps), stopped at the end."""
    node = MasterNode(NodeConfig(mode="master", domain_id="kuscia-system", data_dir=data, api_port=0, controllers=()))
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
    events = client.watch(
        CONFIGMAPS, NS, resource_version=rv, label_selector=selector or None, field_selector=fields or None
    )
    async with contextlib.aclosing(events), asyncio.timeout(5):
        kind, obj = await anext(events)
    return kind, obj["metadata"]["name"]


async def taken(client: Client, rv: str, selector: str, n: int) -> list[tuple[str, str, JSON]]:
    """The first ``n`` events of a watch from ``rv`` with ``selector``: type, name, labels and rv."""
    events = client.watch(CONFIGMAPS, NS, resource_version=rv, label_selector=selector)
    async with contextlib.aclosing(events), asyncio.timeout(5):
        got = [await anext(events) for _ in range(n)]
    return [
        (kind, obj["metadata"]["name"], {**obj["metadata"]["labels"], "rv": obj["metadata"]["resourceVersion"]})
        for kind, obj in got
    ]


def count_reads(monkeypatch: pytest.MonkeyPatch, store: Store) -> list[str]:
    """Every read of ``store`` (``get``/``list``) from now on, by method name."""
    reads: list[str] = []
    for name in ("get", "list"):
        original = getattr(store, name)

        async def counted(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            reads.append(_name)
            return await _original(*args, **kw)

        monkeypatch.setattr(store, name, counted)
    return reads


async def test_a_selected_watch_replaying_from_before_a_restart_sees_departures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """x's first row in the replayed window is its patch (the store was compacted at its create):
    its previous state is the value that row replaced; z's comes from its own earlier row there.
    Neither replay reads the store, with a label selector or a pinned one."""
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
            reads = count_reads(monkeypatch, cache._store)
            for client in (http, local):
                assert await first(client, rv, "", "metadata.name=y") == ("ADDED", "y")  # pinned: no previous states
                assert await taken(client, rv, "app=a", 4) == [
                    ("DELETED", "x", {"app": "a", "rv": x_left["metadata"]["resourceVersion"]}),  # as it last matched
                    ("ADDED", "z", {"app": "a", "rv": z_added["metadata"]["resourceVersion"]}),
                    ("DELETED", "z", {"app": "a", "rv": z_left["metadata"]["resourceVersion"]}),
                    ("ADDED", "y", {"app": "a", "rv": y["metadata"]["resourceVersion"]}),
                ]
                # x enters app=b: ADDED (its previous state did not match), not a MODIFIED
                assert await taken(client, rv, "app=b", 1) == [
                    ("ADDED", "x", {"app": "b", "rv": x_left["metadata"]["resourceVersion"]})
                ]
                assert await first(client, rv, "") == ("MODIFIED", "x")  # no selector: replayed as it was
            assert reads == []  # every previous state came from the replayed rows


async def test_a_selected_watch_is_expired_when_the_previous_state_is_unreadable(tmp_path: Path) -> None:
    """A replayed change whose row replaced a value that is not an object (written past the API,
    or corrupted): whether it left the selector is unknown, so the watch answers 410 and its client
    relists. (A value the row replaced is never missing: the store keeps it with the row, and
    compaction never removes a row the replayed window holds.)"""
    data = tmp_path / "master"
    key = CONFIGMAPS.key(NS, "x")
    async with master(data) as a, a.client() as client:
        assert a.node is not None and a.node.server is not None
        store = a.node.server.cache._store
        created = await client.create(CONFIGMAPS, configmap("x", "a"))
        rv = created["metadata"]["resourceVersion"]
        await a.node.server.compactor.compact(int(rv))
        good = await store.get(key)
        assert good is not None
        broken = await store.update(key, b"not an object", good.revision)
        moved = {**json.loads(good.value), "metadata": {**json.loads(good.value)["metadata"], "labels": {"app": "b"}}}
        await store.update(key, json.dumps(moved).encode(), broken)  # x leaves app=a, replacing the broken value
    async with master(data) as b:
        assert b.node is not None and b.node.server is not None
        async with b.client() as http, b.node.client() as local:
            await http.create(CONFIGMAPS, configmap("y", "a"))
            for client in (http, local):
                with pytest.raises(errors.Gone, match=f"too old resource version: {rv} "):
                    await first(client, rv, "app=a")  # not y's ADDED with x's departure lost
                assert await first(client, rv, "app=b") == ("MODIFIED", "x")  # still matching: replayed
                assert await first(client, rv, "") == ("MODIFIED", "x")
                # a name never changes: x, not named y, never matched, and y's ADDED comes without a 410
                assert await first(client, rv, "", "metadata.name=y") == ("ADDED", "y")
