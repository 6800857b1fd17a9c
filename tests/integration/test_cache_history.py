"""The watch cache's event history is indexed per resource: a watch (or a paginated LIST's
snapshot) from a resourceVersion replays only its resource's retained events, in order, with the
same 410 boundary as the whole history; dropping old events keeps both views in step. Real
in-process server on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from atoll.api.builtins import BUILTINS
from atoll.api.errors import Gone
from atoll.apiserver.app import APIServer, ServerConfig, ServerSettings
from atoll.apiserver.cache.entries import resource_prefix
from atoll.apiserver.cache.watchcache import CacheSettings, WatchEvent
from atoll.apiserver.registry.storage import WriteOptions
from tests.integration.inprocess import in_process_server

CM = next(r for r in BUILTINS if r.plural == "configmaps" and r.group == "")
NS = next(r for r in BUILTINS if r.plural == "namespaces" and r.group == "")
SECRETS = next(r for r in BUILTINS if r.plural == "secrets" and r.group == "")
HISTORY = 30


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[APIServer]:
    config = ServerConfig(settings=ServerSettings(cache=CacheSettings(history_events=HISTORY)))
    async with in_process_server(tmp_path, config) as srv:
        yield srv


async def _write(srv: APIServer, n: int, start: int = 0) -> int:
    """``n`` ConfigMaps interleaved with ``n`` Secrets; the last revision."""
    for i in range(start, start + n):
        await srv.objects.create(CM, "ns", {"metadata": {"name": f"c{i}"}}, WriteOptions())
        await srv.objects.create(SECRETS, "ns", {"metadata": {"name": f"s{i}"}}, WriteOptions())
    return srv.cache.revision


def _names(events: list[WatchEvent]) -> list[str]:
    return [ev.current.obj["metadata"]["name"] for ev in events]


async def test_a_watch_from_a_revision_replays_only_its_resource(server: APIServer) -> None:
    since = await _write(server, 3)
    await _write(server, 4, start=3)
    prefix = CM.key("ns", "")
    watcher, initial = server.cache.watch(prefix, lambda _obj: True, since)
    assert _names(initial) == ["c3", "c4", "c5", "c6"]
    assert [ev.revision for ev in initial] == sorted(ev.revision for ev in initial)
    server.cache.stop(watcher)
    history = server.cache._history.per_resource[resource_prefix(prefix)]
    assert [ev.key for ev in history] == [CM.key("ns", f"c{i}") for i in range(7)]
    changed = server.cache.changed_since(prefix, since)
    assert changed is not None and sorted(changed) == [CM.key("ns", f"c{i}") for i in range(3, 7)]


async def test_dropping_old_events_keeps_the_per_resource_index_in_step(server: APIServer) -> None:
    first = await _write(server, 2)
    await _write(server, HISTORY, start=2)  # twice the retained window: the oldest events are dropped
    cache = server.cache
    assert len(cache._history.events) == HISTORY
    assert sum(len(d) for d in cache._history.per_resource.values()) == HISTORY
    for rprefix, events in cache._history.per_resource.items():
        assert list(events) == [ev for ev in cache._history if ev.key.startswith(rprefix)]
    with pytest.raises(Gone):
        cache.watch(CM.key("ns", ""), lambda _obj: True, first)
    oldest = cache._history.events[0].revision
    watcher, initial = cache.watch(CM.key("ns", ""), lambda _obj: True, oldest)
    cache.stop(watcher)
    assert initial and all(ev.revision > oldest for ev in initial)
    cms = [ev for ev in cache._history if ev.key.startswith(CM.key("ns", "")) and ev.revision > oldest]
    assert len(initial) == len(cms)
    cache.compacted(cache.revision)
    assert not cache._history.events and not cache._history.per_resource
