"""Informer against the real API server behind a fault proxy: list+watch, handlers, indexes,
relist on 410, restarts.

Aspects: paginated initial list fills the cache and marks it synced; watch events update cache
and call handlers; objects deleted during a gap are reported after the 410 relist; a silent watch
is restarted after the inactivity timeout; resync re-delivers; the factory shares informers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from atoll.api.kinds import CONFIGMAPS, NAMESPACES
from atoll.apiserver.http.watch import WatchStreamSettings
from atoll.client import Client
from atoll.runtime import Cache, InformerFactory, ObjectKey, WatchSettings, metrics
from atoll.runtime.informer import Informer
from tests.conftest import RunningServer, eventually
from tests.integration.faults import FaultProxy, configmap

pytestmark = pytest.mark.controllers()  # the API server alone
FAST = WatchSettings(page_size=2, inactivity_timeout=5.0, backoff_initial=0.2, backoff_max=0.5)


@pytest.fixture(autouse=True)
async def setting(api_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Frequent bookmarks, and the namespaces the tests write to."""
    assert api_server.node is not None and api_server.node.server is not None
    monkeypatch.setattr(api_server.node.server.resources, "watch_settings", WatchStreamSettings(bookmark_interval=0.1))
    async with api_server.client() as admin:
        for namespace in ("elsewhere", "ns1", "ns2", "other"):
            await admin.create(NAMESPACES, {"metadata": {"name": namespace}})
    yield


class Recorder:
    def __init__(self, informer: Informer) -> None:
        self.events: list[tuple[str, str]] = []
        informer.add_handler(
            on_add=lambda o: self.events.append(("add", o["metadata"]["name"])),
            on_update=lambda old, new: self.events.append(("update", new["metadata"]["name"])),
            on_delete=lambda o: self.events.append(("delete", o["metadata"]["name"])),
        )


async def test_list_then_watch_keeps_cache_and_indexes(client: Client, faults: FaultProxy) -> None:
    for i in range(5):
        await client.create(CONFIGMAPS, configmap(f"c{i}", app="a" if i < 3 else "b"))
    informer = Informer(client, CONFIGMAPS, "default", settings=FAST)
    rec = Recorder(informer)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(informer.run())
        await asyncio.wait_for(informer.wait_synced(), 15)
        assert informer.has_synced and len(informer.cache) == 5
        assert sum("limit=2" in p for _, p in faults.requests) == 3  # paginated list
        assert sorted(o["metadata"]["name"] for o in informer.cache.by_label("app", "a")) == [
            "c0",
            "c1",
            "c2",
        ]
        await client.patch(CONFIGMAPS, "c0", {"metadata": {"labels": {"app": "b"}}}, "default")
        await client.delete(CONFIGMAPS, "c4", "default")
        await client.create(CONFIGMAPS, configmap("other", "elsewhere"))  # outside the namespace
        await eventually(lambda: ("delete", "c4") in rec.events, 15)
        assert ("update", "c0") in rec.events
        assert len(informer.cache.by_label("app", "b")) == 2 and informer.cache.get("c4", "default") is None
        assert informer.cache.get("other", "elsewhere") is None
        assert informer.cache.get("c0", "default")["kind"] == "ConfigMap"  # type: ignore[index]
        task.cancel()
    assert [e for e in rec.events if e[0] == "add"] == [("add", f"c{i}") for i in range(5)]


async def test_relist_after_gone_reports_deletions_made_during_the_gap(
    client: Client, faults: FaultProxy, api_server: RunningServer
) -> None:
    for name in ("keep", "lost"):
        await client.create(CONFIGMAPS, configmap(name))
    informer = Informer(client, CONFIGMAPS, settings=FAST)
    rec = Recorder(informer)
    restarts = metrics.informer_watch_restarts_total.labels("configmaps")
    before = restarts._value.get()
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(informer.run())
        await informer.wait_synced()
        await eventually(lambda: len(faults.watchers) == 1)
        faults.resumed.clear()  # the watch that comes back is held: the informer sees nothing
        faults.drop_watches()
        await eventually(lambda: not faults.watchers)
        async with api_server.client() as admin:  # changes the informer cannot see
            await admin.delete(CONFIGMAPS, "lost", "default")
            await admin.create(CONFIGMAPS, configmap("new"))
        await faults.compact()  # and the history it would resume from is gone
        faults.resumed.set()
        await eventually(lambda: ("delete", "lost") in rec.events, 15)
        await eventually(lambda: informer.cache.get("new", "default") is not None, 15)
        assert sorted(k.name for k in informer.cache.keys()) == ["keep", "new"]
        assert restarts._value.get() >= before + 2  # the dropped watch, then 410
        await eventually(lambda: len(faults.watchers) == 1)
        watches = sum("watch=true" in p for _, p in faults.requests)
        faults.expire_watches()  # 410 on a live watch also relists

        def watching_again() -> None:
            assert len(faults.watchers) == 1 and sum("watch=true" in p for _, p in faults.requests) > watches

        await eventually(watching_again)
        await client.create(CONFIGMAPS, configmap("after"))
        await eventually(lambda: informer.cache.get("after", "default") is not None, 15)
        task.cancel()


async def test_silent_watch_is_restarted(client: Client, faults: FaultProxy) -> None:
    settings = WatchSettings(inactivity_timeout=0.3, backoff_initial=0.1)
    informer = Informer(client, CONFIGMAPS, settings=settings)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(informer.run())
        await informer.wait_synced()
        faults.resumed.clear()
        faults.drop_watches()
        await eventually(lambda: sum("watch=true" in p for _, p in faults.requests) >= 3, 5)  # restarted
        faults.resumed.set()
        await client.create(CONFIGMAPS, configmap("x"))
        await eventually(lambda: len(informer.cache) == 1, 15)
        assert all("timeoutSeconds=" in p for _, p in faults.requests if "watch=true" in p)
        assert any("allowWatchBookmarks=true" in p for _, p in faults.requests)
        task.cancel()


async def test_bookmarks_advance_the_resource_version(client: Client, faults: FaultProxy) -> None:
    informer = Informer(client, CONFIGMAPS, "ns1", settings=FAST)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(informer.run())
        await informer.wait_synced()
        await client.create(CONFIGMAPS, configmap("elsewhere", "ns2"))
        await eventually(lambda: informer.resource_version == str(faults.rv), 15)
        task.cancel()


async def test_resync_redelivers_and_late_handlers_see_existing_objects(client: Client) -> None:
    await client.create(CONFIGMAPS, configmap("r"))
    informer = Informer(client, CONFIGMAPS, resync_period=0.1, settings=FAST)
    rec = Recorder(informer)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(informer.run())
        await informer.wait_synced()
        await eventually(lambda: rec.events.count(("update", "r")) >= 2, 15)
        late = Recorder(informer)
        assert late.events == [("add", "r")]
        task.cancel()


async def test_factory_shares_one_informer_per_resource(client: Client) -> None:
    factory = InformerFactory(client, settings=FAST)
    a = factory.informer(CONFIGMAPS, "default")
    assert factory.informer(CONFIGMAPS, "default") is a
    assert factory.informer(CONFIGMAPS, "other") is not a
    assert factory.informer(CONFIGMAPS, "default", label_selector="x=y") is not a
    await client.create(CONFIGMAPS, configmap("f", x="y"))
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(factory.run())
        await asyncio.wait_for(factory.wait_synced(), 15)
        assert len(factory.informers) == 3
        assert len(factory.informer(CONFIGMAPS, "default", label_selector="x=y").cache) == 1
        task.cancel()


def test_cache_indexes() -> None:
    cache = Cache({"phase": lambda o: [o.get("status", {}).get("phase", "")]})
    pod = {
        "metadata": {
            "name": "p",
            "namespace": "n",
            "labels": {"a": "1"},
            "ownerReferences": [{"uid": "u1", "kind": "X", "name": "x"}],
        },
        "spec": {"nodeName": "node1"},
        "status": {"phase": "Running"},
    }
    cache.upsert(pod)
    assert cache.by_owner("u1") == [pod] and cache.by_node("node1") == [pod]
    assert cache.by_index("phase", "Running") == [pod] and cache.list("n") == [pod]
    moved = {**pod, "spec": {"nodeName": "node2"}, "metadata": {**pod["metadata"], "labels": {}}}
    assert cache.upsert(moved) is pod
    assert (
        cache.by_node("node1") == [] and cache.by_node("node2") == [moved] and cache.by_label("a", "1") == []
    )
    cache.add_index("name", lambda o: [o["metadata"]["name"]])
    assert cache.by_index("name", "p") == [moved]
    assert cache.remove(ObjectKey("n", "p")) is moved
    assert len(cache) == 0 and cache.index_values("node") == ()
