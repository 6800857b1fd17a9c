"""A watch when the master's watch cache stops (shutdown): an in-process watch ends as an HTTP
watch does when its server closes, and a new watch fails at once (503) instead of waiting on a
cache that will never send anything, so an informer backs off and relists rather than hang."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import pytest

from atoll.api import errors
from atoll.api.kinds import CONFIGMAPS
from atoll.runtime import Informer, WatchSettings
from tests.conftest import RunningServer, eventually

pytestmark = pytest.mark.controllers()
JSON = dict[str, Any]
NS = "default"


async def stop_cache() -> None:
    """Stop the running master's watch cache as its shutdown does (cancel its task)."""
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "apiserver/watch-cache"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_watches_end_and_new_ones_fail_when_the_cache_stops(api_server: RunningServer) -> None:
    assert api_server.node is not None
    async with api_server.node.client() as local, api_server.client() as http:
        created = await local.create(CONFIGMAPS, {"metadata": {"name": "s", "namespace": NS}})
        rv = created["metadata"]["resourceVersion"]
        streams = [c.watch(CONFIGMAPS, NS, resource_version="0", allow_bookmarks=False) for c in (local, http)]
        async with contextlib.AsyncExitStack() as stack:
            for events in streams:
                await stack.enter_async_context(contextlib.aclosing(events))
                async with asyncio.timeout(5):
                    assert (await anext(events))[0] == "ADDED"
            await stop_cache()
            for events in streams:
                async with asyncio.timeout(5):
                    assert [e async for e in events] == []  # the stream ends, as when a server closes
        for c in (local, http):
            again = c.watch(CONFIGMAPS, NS, resource_version=rv)
            async with contextlib.aclosing(again), asyncio.timeout(5):
                with pytest.raises(errors.ServiceUnavailable):
                    await anext(again)


async def test_an_in_process_informer_backs_off_when_the_cache_stops(api_server: RunningServer) -> None:
    assert api_server.node is not None
    settings = WatchSettings(backoff_initial=0.05, backoff_max=0.1)
    async with api_server.node.client() as local:
        informer = Informer(local, CONFIGMAPS, NS, settings=settings)
        task = asyncio.create_task(informer.run())
        try:
            await asyncio.wait_for(informer.wait_synced(), 5)
            await stop_cache()
            restarts = informer._restarts._value.get()
            await eventually(lambda: informer._restarts._value.get() >= restarts + 2, 5)  # failing, retrying
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_a_watcher_with_a_full_queue_is_ended_too(api_server: RunningServer) -> None:
    """Its unread events are dropped (its client resumes from the last one it read); the others end."""
    assert api_server.node is not None and api_server.node.server is not None
    cache = api_server.node.server.cache
    cache.settings = dataclasses.replace(cache.settings, watcher_queue=2)
    full, _ = cache.watch(CONFIGMAPS.key_prefix(NS), None, None)
    other, _ = cache.watch(CONFIGMAPS.key_prefix(), lambda obj: bool(obj["metadata"]["name"] == "a"), None)
    async with api_server.node.client() as local:
        for name in ("a", "b"):
            await local.create(CONFIGMAPS, {"metadata": {"name": name, "namespace": NS}})
    assert full.queue.full()
    await stop_cache()
    assert full.queue.get_nowait() is None and full.queue.empty()
    assert full.error is None and other.error is None  # ended as by a closing server, not by an overflow 410
    assert [other.queue.get_nowait() for _ in range(2)][-1] is None and other.queue.empty()
    assert cache.watcher_count == 0
