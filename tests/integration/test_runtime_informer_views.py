"""Informer views (:mod:`atoll.runtime.views`): a factory serves namespace- and label-selected
informers from its informer of the whole resource.

Aspects: one watch per resource whatever the order the informers were asked for in; a view sees
the same add/update/delete sequence as a standalone watch with the same selector (an object
that starts or stops matching is added or deleted); deletions found by the source's relist after
a 410 reach the view; a field-selected informer keeps its own watch.
"""

from __future__ import annotations

import asyncio

import pytest

from atoll.api.kinds import CONFIGMAPS, NAMESPACES
from atoll.client import Client
from atoll.runtime import InformerFactory, WatchSettings
from atoll.runtime.informer import Informer
from tests.conftest import RunningServer, eventually
from tests.integration.faults import FaultProxy, configmap

pytestmark = pytest.mark.controllers()
FAST = WatchSettings(page_size=2, inactivity_timeout=5.0, backoff_initial=0.2, backoff_max=0.5)


class Recorder:
    def __init__(self, informer: Informer) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.deleted: list[dict[str, object]] = []
        informer.add_handler(
            on_add=lambda o: self.events.append(("add", *self._id(o))),
            on_update=lambda old, new: self.events.append(("update", *self._id(new))),
            on_delete=self._deleted,
        )

    def _deleted(self, obj: dict[str, object]) -> None:
        self.events.append(("delete", *self._id(obj)))
        self.deleted.append(obj)

    @staticmethod
    def _id(obj: dict[str, object]) -> tuple[str, str]:
        md = obj["metadata"]
        assert isinstance(md, dict)
        return md["name"], (md.get("labels") or {}).get("app", "-")


def watches(faults: FaultProxy) -> list[str]:
    return [p for _, p in faults.requests if "watch=" in p and "/configmaps" in p]


async def test_views_see_what_their_own_watch_would(client: Client, faults: FaultProxy) -> None:
    await client.create(NAMESPACES, {"metadata": {"name": "views"}})
    await client.create(CONFIGMAPS, configmap("before", "views", app="a"))
    await client.create(CONFIGMAPS, configmap("unlabelled", "views"))
    factory = InformerFactory(client, settings=FAST)
    early = factory.informer(CONFIGMAPS, "views", label_selector="app=a")  # before its source
    source = factory.informer(CONFIGMAPS)
    late = factory.informer(CONFIGMAPS, label_selector="app in (a)")  # after it
    assert early.source is source and late.source is source
    standalone = Informer(client, CONFIGMAPS, "views", label_selector="app=a", settings=FAST)
    recorders = [Recorder(i) for i in (early, late, standalone)]
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(factory.run())
        own = tg.create_task(standalone.run())
        await asyncio.wait_for(asyncio.gather(factory.wait_synced(), standalone.wait_synced()), 5)
        assert len(watches(faults)) <= 2  # the source's and the standalone informer's
        await client.create(CONFIGMAPS, configmap("new", "views", app="a"))
        await client.patch(CONFIGMAPS, "new", {"data": {"k": "v"}}, "views")  # changed while matching
        await client.patch(CONFIGMAPS, "before", {"metadata": {"labels": {"app": "b"}}}, "views")  # stops
        await client.patch(CONFIGMAPS, "unlabelled", {"metadata": {"labels": {"app": "a"}}}, "views")  # starts
        await client.create(CONFIGMAPS, configmap("elsewhere", "default", app="a"))  # other namespace
        await client.delete(CONFIGMAPS, "new", "views")
        await eventually(lambda: ("delete", "new", "a") in recorders[2].events, 5)
        await eventually(lambda: ("delete", "new", "a") in recorders[0].events, 5)
        await eventually(lambda: ("add", "elsewhere", "a") in recorders[1].events, 5)
        task.cancel()
        own.cancel()
    expected = [
        ("add", "before", "a"),
        ("add", "new", "a"),
        ("update", "new", "a"),
        ("delete", "before", "a"),  # stopped matching: deleted, with its last matching content
        ("add", "unlabelled", "a"),
        ("delete", "new", "a"),
    ]
    assert recorders[2].events == expected  # the server's filtered watch
    assert recorders[0].events == expected
    assert recorders[0].deleted == recorders[1].deleted == recorders[2].deleted  # at the same resourceVersions
    assert [e for e in recorders[1].events if e[1] != "elsewhere"] == expected
    assert sorted(o["metadata"]["name"] for o in early.cache) == ["unlabelled"]
    assert len([p for p in watches(faults) if "labelSelector" in p and "namespaces/views" not in p]) == 0


async def test_deletions_found_by_the_source_relist_reach_views(
    client: Client, faults: FaultProxy, api_server: RunningServer
) -> None:
    for name in ("keep", "lost"):
        await client.create(CONFIGMAPS, configmap(name, app="a"))
    factory = InformerFactory(client, settings=FAST)
    view = factory.informer(CONFIGMAPS, "default", label_selector="app=a")
    source = factory.informer(CONFIGMAPS)
    rec = Recorder(view)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(factory.run())
        await asyncio.wait_for(factory.wait_synced(), 5)
        await eventually(lambda: len(faults.watchers) == 1)  # the source's only
        faults.resumed.clear()  # the watch that comes back is held: nothing is seen
        faults.drop_watches()
        await eventually(lambda: not faults.watchers)
        async with api_server.client() as admin:
            await admin.delete(CONFIGMAPS, "lost", "default")
        await faults.compact()  # 410 on resume: the source relists
        faults.resumed.set()
        await eventually(lambda: ("delete", "lost", "a") in rec.events, 5)
        assert view.cache.get("keep", "default") is not None and view.cache.get("lost", "default") is None
        assert source.cache.get("lost", "default") is None
        task.cancel()


async def test_field_selected_informers_keep_their_own_watch(client: Client) -> None:
    factory = InformerFactory(client, settings=FAST)
    source = factory.informer(CONFIGMAPS)
    fielded = factory.informer(CONFIGMAPS, field_selector="metadata.name=x")
    bad = factory.informer(CONFIGMAPS, label_selector="app in (")  # the server judges it
    assert fielded.source is None and bad.source is None and source.source is None
