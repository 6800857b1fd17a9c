"""A BOOKMARK never carries a resourceVersion ahead of an event its watch has not sent yet.

A client resumes from the last resourceVersion it saw: a bookmark at the cache's revision sent
while one of its events still waits in the watcher's queue (a store batch applied between the
bookmark's tick and the stream's wake-up), followed by the end of the stream (its deadline),
would make the client skip that event. The store's batches are held (a barrier between the store
and the watch cache) and released at a chosen moment of the watch's ``FakeClock``: nothing waits
on time. Checked over HTTP and in-process; the ``initial-events-end`` bookmark (HTTP) carries the
initial events' revision, not one of an event queued after them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from atoll.api.clock import FakeClock
from atoll.api.kinds import CONFIGMAPS
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.apiserver.http.watch import WatchStreamSettings
from atoll.client import Client
from atoll.store.base import Event
from tests.conftest import RunningServer, eventually
from tests.integration.kube_http import Api

pytestmark = pytest.mark.controllers()  # no controllers: nothing else writes ConfigMaps
NS = "default"
CMS = "/api/v1/namespaces/default/configmaps"
BOOKMARK_EVERY, TIMEOUT = 10, 15


@pytest.fixture
def client(http_or_local: Client) -> Client:
    return http_or_local


@pytest.fixture
def cache(watch_cache: WatchCache) -> WatchCache:
    return watch_cache


@pytest.fixture
def clock(api_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The watches' clock, moved by the test; a bookmark every ``BOOKMARK_EVERY`` seconds."""
    assert api_server.node is not None and api_server.node.server is not None
    resources, clock = api_server.node.server.resources, FakeClock()
    monkeypatch.setattr(resources, "clock", clock)
    monkeypatch.setattr(resources, "watch_settings", WatchStreamSettings(bookmark_interval=BOOKMARK_EVERY))
    return clock


@contextlib.asynccontextmanager
async def held_write(cache: WatchCache, client: Client, name: str) -> AsyncIterator[Callable[[], None]]:
    """Create ConfigMap ``name`` with the cache's store batches held until the yielded ``release``
    (which applies them, synchronously); the write is awaited at the end."""
    held: list[list[Event]] = []
    apply = cache._apply
    cache._apply = held.append  # type: ignore[method-assign,assignment]
    write = asyncio.create_task(client.create(CONFIGMAPS, {"metadata": {"name": name, "namespace": NS}}))

    def release() -> None:
        if "_apply" in vars(cache):
            del cache._apply  # the class's own again
            for batch in held:
                apply(batch)

    try:
        await eventually(lambda: any(ev.key == CONFIGMAPS.key(NS, name) for batch in held for ev in batch))
        yield release
    finally:
        release()
        await write


def seen(events: list[tuple[str, int]], name_rv: int) -> None:
    """The client never sees a bookmark at or past the event at ``name_rv`` before that event."""
    for i, (kind, rv) in enumerate(events):
        if kind == "BOOKMARK" and rv >= name_rv:
            assert ("ADDED", name_rv) in events[:i], events


@pytest.mark.parametrize("ends", [True, False], ids=["deadline", "running"])
async def test_a_bookmark_is_not_ahead_of_a_queued_event(
    client: Client, cache: WatchCache, clock: FakeClock, ends: bool
) -> None:
    rv = (await client.list(CONFIGMAPS, NS))["metadata"]["resourceVersion"]
    got: list[tuple[str, int]] = []

    async def read() -> None:
        async for kind, obj in client.watch(CONFIGMAPS, NS, resource_version=rv, timeout_seconds=TIMEOUT):
            got.append((kind, int(obj["metadata"]["resourceVersion"])))

    reader = asyncio.create_task(read())
    await eventually(lambda: clock.sleepers >= 1)  # the stream's timer is armed: it waits on its queue
    async with held_write(cache, client, "q") as release:
        clock.advance(BOOKMARK_EVERY)  # a bookmark is due: its tick is queued...
        release()  # ...and the write's event behind it, before the stream wakes
        if ends:
            clock.advance(TIMEOUT - BOOKMARK_EVERY)  # and the deadline: the stream ends when it wakes
    created = cache.get(CONFIGMAPS.key(NS, "q"))
    assert created is not None
    if not ends:
        await eventually(lambda: len(got) >= 2)
        assert got[0] == ("ADDED", created.revision) and got[1][0] == "BOOKMARK", got
        clock.advance(TIMEOUT - BOOKMARK_EVERY)
    async with asyncio.timeout(5):
        await reader
    seen(got, created.revision)


async def test_the_initial_events_end_bookmark_is_at_the_initial_revision(
    api: Api, api_server: RunningServer, cache: WatchCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert api_server.node is not None
    watch, prefix = cache.watch, CONFIGMAPS.key_prefix(NS)
    async with api_server.node.client() as local:
        await local.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": NS}})
        async with held_write(cache, local, "q") as release:

            def registered_then_applied(*args: Any) -> Any:
                out = watch(*args)
                if args[0] == prefix:
                    release()  # a batch applied right after the initial events were taken
                return out

            monkeypatch.setattr(cache, "watch", registered_then_applied)
            # resourceVersion 0 (any state): with none, the watch would first catch up with the
            # store (a consistent read), so it would wait for the held write
            query = {"sendInitialEvents": "true", "allowWatchBookmarks": "true", "resourceVersionMatch": "NotOlderThan",
                     "resourceVersion": "0"}
            stream = await api.watch(CMS, query)
    try:
        events = await stream.collect(3)
    finally:
        await stream.close()
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events] == [
        ("ADDED", "a"), ("BOOKMARK", None), ("ADDED", "q")]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    end, q = (int(e["object"]["metadata"]["resourceVersion"]) for e in events[1:])
    assert end < q
