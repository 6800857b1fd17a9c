"""The write path's fast paths on a real in-process server (SQLite store, watch cache, admission):
no-op writes skip the managedFields bookkeeping, every watcher of an event shares one frame, the
store answers its current and compacted revisions from memory, paginated LISTs under writes are
served from the cache's snapshot without touching the database, sorted keys are kept up to date,
and quota usage follows pod events instead of being summed per create."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import generate_latest

from atoll.api import errors
from atoll.api.builtins import BUILTINS
from atoll.api.registry import ResourceDef
from atoll.apiserver.admission import quota
from atoll.apiserver.app import APIServer, ServerConfig
from atoll.apiserver.http import metrics  # noqa: F401  (registers the /metrics collectors)
from atoll.apiserver.patch import apply as ssa
from atoll.apiserver.registry import lists
from atoll.apiserver.registry.storage import WriteOptions
from atoll.runtime.metrics import REGISTRY
from atoll.store.commits import COMMITS
from atoll.store.sqlite import SQLiteStore
from tests.integration.inprocess import in_process_server

JSON = dict[str, Any]


def _rd(plural: str) -> ResourceDef:
    return next(r for r in BUILTINS if r.plural == plural and r.group == "")


CM, NS, PODS, QUOTAS = _rd("configmaps"), _rd("namespaces"), _rd("pods"), _rd("resourcequotas")


def _opts() -> WriteOptions:
    return WriteOptions(field_manager="test")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[APIServer]:
    async with in_process_server(tmp_path) as srv:
        yield srv


async def _cm(srv: APIServer, name: str, value: str = "v") -> JSON:
    return await srv.objects.create(CM, "ns", {"metadata": {"name": name}, "data": {"k": value}}, _opts())


async def test_noop_update_skips_managed_fields_bookkeeping(server: APIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    created = await _cm(server, "a")
    calls: list[str] = []
    real = ssa.record_update

    def counted(*a: Any, **k: Any) -> None:
        calls.append("x")
        real(*a, **k)

    monkeypatch.setattr(ssa, "record_update", counted)
    same = await server.objects.update(CM, "ns", "a", {"metadata": {"name": "a"}, "data": {"k": "v"}}, _opts())
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert calls == []
    changed = await server.objects.update(CM, "ns", "a", {"metadata": {"name": "a"}, "data": {"k": "w"}}, _opts())
    assert calls == ["x"]
    assert int(changed["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


async def test_every_watcher_of_an_event_gets_one_shared_frame(server: APIServer) -> None:
    cache = server.cache
    first, _ = cache.watch("/core/configmaps/ns/", lambda _o: True, None)
    second, _ = cache.watch("/core/configmaps/", lambda _o: True, None)
    await _cm(server, "a")
    one, two = first.queue.get_nowait(), second.queue.get_nowait()
    assert one is not None and two is not None
    assert one is two and one.line() is two.line()
    assert orjson.loads(one.line()) == {"type": "ADDED", "object": cache.get("/core/configmaps/ns/a").obj}
    cache.stop(first)
    cache.stop(second)


async def test_cached_bytes_are_the_objects_encoding_with_its_resource_version(server: APIServer) -> None:
    await _cm(server, "a")
    obj = await server.objects.update(CM, "ns", "a", {"metadata": {"name": "a", "labels": {"x": "y"}},
                                                       "data": {"k": "w"}}, _opts())
    cached = server.cache.get("/core/configmaps/ns/a")
    assert cached is not None and cached.obj is obj
    assert cached.raw == orjson.dumps(cached.obj)
    assert orjson.loads(cached.raw)["metadata"]["resourceVersion"] == str(cached.revision)


async def test_current_and_compacted_revisions_come_from_memory(server: APIServer,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = server.store
    assert isinstance(store, SQLiteStore)
    await _cm(server, "a")
    touched: list[str] = []

    async def counted(*_a: Any) -> Any:
        touched.append("db")
        raise AssertionError("asked the database")

    monkeypatch.setattr(store.driver, "max_revision", counted)
    monkeypatch.setattr(store.driver, "meta", counted)
    assert await store.current_revision() == server.cache.revision
    assert await store.compacted_revision() == 0
    b = await _cm(server, "b")
    assert await store.current_revision() == int(b["metadata"]["resourceVersion"])
    assert touched == []


async def test_paginated_list_under_writes_is_one_snapshot_without_the_database(
    server: APIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(40):
        await _cm(server, f"c{i:02d}", str(i))
    store_lists: list[int] = []
    real_list = server.store.list

    async def counted(*a: Any, **k: Any) -> Any:
        store_lists.append(1)
        return await real_list(*a, **k)

    monkeypatch.setattr(server.store, "list", counted)
    snapshot = [c.raw for c in server.cache.list("/core/configmaps/ns/")]
    pages: list[bytes] = []
    token, step = "", 0
    while True:
        page = await lists.list_page(server.store, server.cache, CM, "ns", matcher=None, limit=7,
                                     continue_token=token, exact_name=None)
        pages.extend(c.raw for c in page.items)
        token = page.continue_token
        if not token:
            break
        step += 1  # writes between pages: an update, a delete, a create before and after the cursor
        name = f"c{step * 6 + 3:02d}"
        await server.objects.update(CM, "ns", name, {"metadata": {"name": name}, "data": {"k": "new"}}, _opts())
        current = server.objects.get(CM, "ns", f"c{step * 6 + 1:02d}")
        await server.objects.delete(CM, "ns", current.obj["metadata"]["name"], {}, _opts())
        await _cm(server, f"c{step:02d}x")
        await _cm(server, f"d{step:02d}")
    assert pages == snapshot
    assert store_lists == []
    first = await lists.list_page(server.store, server.cache, CM, "ns", matcher=None, limit=7,
                                  continue_token="", exact_name=None)
    await _cm(server, "e")
    compacted = await server.store.compact(server.cache.revision)
    server.cache.compacted(compacted)  # neither the history nor the store reaches the token's revision
    with pytest.raises(errors.Gone):
        await lists.list_page(server.store, server.cache, CM, "ns", matcher=None, limit=7,
                              continue_token=first.continue_token, exact_name=None)


async def test_sorted_keys_are_kept_up_to_date(server: APIServer) -> None:
    for name in ("b", "d", "f"):
        await _cm(server, name)
    cache = server.cache
    assert [c.obj["metadata"]["name"] for c in cache.list("/core/configmaps/ns/")] == ["b", "d", "f"]
    keys = cache._order._sorted["/core/configmaps/"]
    await _cm(server, "c")
    await server.objects.delete(CM, "ns", "d", {}, _opts())
    await _cm(server, "a")
    assert cache._order._sorted["/core/configmaps/"] is keys  # updated in place, not re-sorted
    assert [c.obj["metadata"]["name"] for c in cache.list("/core/configmaps/ns/")] == ["a", "b", "c", "f"]


def _pod(name: str, cpu: str = "100m") -> JSON:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}]}}


async def test_quota_usage_follows_pod_events(server: APIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    sums: list[int] = []
    real = quota.namespace_usage

    def counted(pods: Any) -> Any:
        sums.append(1)
        return real(pods)

    monkeypatch.setattr(quota, "namespace_usage", counted)
    hard = {"pods": "3", "requests.cpu": "1"}
    await server.objects.create(QUOTAS, "ns", {"metadata": {"name": "q"}, "spec": {"hard": hard}}, _opts())
    for i in range(3):
        await server.objects.create(PODS, "ns", _pod(f"p{i}"), _opts())
    with pytest.raises(errors.Forbidden, match="exceeded quota: q"):
        await server.objects.create(PODS, "ns", _pod("p3"), _opts())

    def succeeded(pod: JSON) -> JSON:
        return {**pod, "status": {"phase": "Succeeded"}}

    await server.objects.modify(PODS, "ns", "p0", succeeded, _opts(), subresource="status")
    await server.objects.create(PODS, "ns", _pod("p3"), _opts())  # p0 finished: its slot is free
    await server.objects.delete(PODS, "ns", "p1", {"gracePeriodSeconds": 0}, _opts())
    with pytest.raises(errors.Forbidden, match=r"requests\.cpu"):
        await server.objects.create(PODS, "ns", _pod("big", "900m"), _opts())
    await server.objects.create(PODS, "ns", _pod("p4", "700m"), _opts())
    assert sums == [1]  # summed once, then kept from events


async def test_write_on_a_second_master_catches_up_instead_of_404_or_409(server: APIServer, tmp_path: Path) -> None:
    """Two masters on one database: B's cache follows A's writes with its poller's delay, but an
    update or delete on B of an object A just acknowledged catches up with the store first."""
    store_b = SQLiteStore(tmp_path / "state.db")
    await store_b.start()
    b = APIServer(store_b, ServerConfig())
    task = asyncio.create_task(b.cache.run())
    try:
        await b.cache.wait_ready()
        created = await _cm(server, "fresh")
        assert b.cache.get("/core/configmaps/ns/fresh") is None  # not there yet: the poller is behind
        body = {"metadata": {"name": "fresh", "resourceVersion": created["metadata"]["resourceVersion"]},
                "data": {"k": "from-b"}}
        updated = await b.objects.update(CM, "ns", "fresh", body, _opts())
        assert updated["data"] == {"k": "from-b"}
        again = await server.objects.update(CM, "ns", "fresh", {"metadata": {"name": "fresh"}, "data": {"k": "a"}},
                                            _opts())
        pinned = {"metadata": {"name": "fresh", "resourceVersion": again["metadata"]["resourceVersion"]},
                  "data": {"k": "b2"}}
        assert (await b.objects.update(CM, "ns", "fresh", pinned, _opts()))["data"] == {"k": "b2"}
        await _cm(server, "gone")
        _obj, finished = await b.objects.delete(CM, "ns", "gone", {}, _opts())
        assert finished
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store_b.close()


async def test_update_rechecks_metadata_only_when_it_changed(server: APIServer) -> None:
    await _cm(server, "m")
    body = {"metadata": {"name": "m", "labels": {"ok": "yes"}}, "data": {"k": "v"}}
    await server.objects.update(CM, "ns", "m", body, _opts())
    same_meta = {"metadata": {"name": "m", "labels": {"ok": "yes"}}, "data": {"k": "w"}}
    assert (await server.objects.update(CM, "ns", "m", same_meta, _opts()))["data"] == {"k": "w"}
    bad = {"metadata": {"name": "m", "labels": {"ok": "yes", "bad key!": "x"}}, "data": {"k": "w"}}
    with pytest.raises(errors.Invalid, match=r"metadata\.labels"):
        await server.objects.update(CM, "ns", "m", bad, _opts())


async def test_writes_of_one_loop_iteration_share_one_sqlite_commit_and_the_metrics_say_so(server: APIServer) -> None:
    def exposed() -> tuple[float, float]:
        text = generate_latest(REGISTRY).decode()
        values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("atoll_sqlite_commit"))
        return float(values["atoll_sqlite_commits_total"]), float(values["atoll_sqlite_committed_writes_total"])

    await _cm(server, "warm")
    commits, writes = COMMITS.commits, COMMITS.writes
    assert exposed() == (commits, writes)
    await asyncio.gather(*(_cm(server, f"c{i}") for i in range(8)))  # submitted in one loop iteration
    assert (COMMITS.commits - commits, COMMITS.writes - writes) == (1, 8)
    await _cm(server, "lone")
    assert (COMMITS.commits - commits, COMMITS.writes - writes) == (2, 9)
    assert exposed() == (COMMITS.commits, COMMITS.writes)
