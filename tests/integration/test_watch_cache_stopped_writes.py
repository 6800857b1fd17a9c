"""Writes when the master's watch cache stops (shutdown) while they wait for read-your-writes.

A write is committed to the store, then waits for the cache to apply its revision so its answer
(and the writer's next read) reflect it. A stopped cache never will: the wait ends at once and
the write answers from what it wrote (as kube-apiserver, whose write replies come from etcd, not
its cache), instead of waiting ``read_your_writes`` seconds and failing with a 500. Reads that
need the cache to catch up get 503 at once. ``read_your_writes`` is set to an hour, so a wait
that did not end at once would outlast the test's bound. Checked over HTTP and in-process.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from atoll.api import errors
from atoll.api.kinds import CONFIGMAPS
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.client import Client
from atoll.store.base import Event
from tests.conftest import eventually
from tests.integration.test_local_watch_stop import stop_cache

pytestmark = pytest.mark.controllers()  # no controllers: nothing else writes ConfigMaps
NS = "default"
HOUR = 3600.0


@pytest.fixture
def client(http_or_local: Client) -> Client:
    return http_or_local


@pytest.fixture
def cache(watch_cache: WatchCache) -> WatchCache:
    watch_cache.settings = dataclasses.replace(watch_cache.settings, read_your_writes=HOUR)
    return watch_cache


async def test_a_write_waiting_when_the_cache_stops_answers_at_once(client: Client, cache: WatchCache) -> None:
    held: list[list[Event]] = []
    cache._apply = held.append  # type: ignore[method-assign,assignment]  # committed, never applied
    write = asyncio.create_task(
        client.create(CONFIGMAPS, {"metadata": {"name": "w", "namespace": NS}, "data": {"k": "v"}})
    )
    key = CONFIGMAPS.key(NS, "w")
    await eventually(lambda: any(ev.key == key for batch in held for ev in batch))
    (row,) = [ev for batch in held for ev in batch if ev.key == key]
    assert not write.done()  # waiting for the cache
    await stop_cache()
    async with asyncio.timeout(5):  # not the hour
        created = await write
    assert created["metadata"]["name"] == "w" and created["data"] == {"k": "v"}
    assert created["metadata"]["resourceVersion"] == str(row.revision) and created["metadata"]["uid"]


async def test_writes_after_the_cache_stopped_answer_at_once(client: Client, cache: WatchCache) -> None:
    await client.create(CONFIGMAPS, {"metadata": {"name": "d", "namespace": NS}})
    await stop_cache()
    async with asyncio.timeout(5):  # no write waits the hour
        created = await client.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": NS}})
        assert int(created["metadata"]["resourceVersion"]) > cache.revision
        await client.delete(CONFIGMAPS, "d", NS)
        with pytest.raises(errors.ServiceUnavailable):  # a consistent read cannot catch up any more
            await client.list(CONFIGMAPS, NS)
