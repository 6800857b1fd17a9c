"""The watch cache builds a delete's object from the last state it holds (at the delete's
resourceVersion, as kube-apiserver sends a DELETED object) and keeps the server's own object for
deletion marks, instead of decoding the stored rows — and what it holds is byte for byte what
decoding each row would give: immediate deletes, finalizers, graceful pod deletion, foreground
propagation, a namespace's Terminating mark, status updates, large objects, in-process callers.
Real in-process server on SQLite."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from atoll.api.builtins import BUILTINS
from atoll.apiserver.app import APIServer
from atoll.apiserver.cache import watchcache
from atoll.apiserver.cache.entries import LARGE_OBJECT, Cached, decode
from atoll.apiserver.cache.watchcache import WatchEvent
from atoll.apiserver.registry.storage import WriteOptions
from atoll.store.base import Event
from tests.integration.inprocess import in_process_server

JSON = dict[str, Any]
CM = next(r for r in BUILTINS if r.plural == "configmaps" and r.group == "")
NS = next(r for r in BUILTINS if r.plural == "namespaces" and r.group == "")
PODS = next(r for r in BUILTINS if r.plural == "pods" and r.group == "")


def _opts(owned: bool = True) -> WriteOptions:
    return WriteOptions(field_manager="test", owned=owned)


class Recorder:
    """Every event the cache applies, and the rows it decoded to build them."""

    def __init__(self, srv: APIServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[WatchEvent] = []
        self.decoded: list[tuple[str, int]] = []
        srv.cache.add_listener("/", self.events.append)
        real = watchcache.decode_or_skip

        def counted(key: str, value: bytes, revision: int, **kw: Any) -> Cached | None:
            self.decoded.append((key, revision))
            return real(key, value, revision, **kw)

        monkeypatch.setattr(watchcache, "decode_or_skip", counted)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[APIServer]:
    async with in_process_server(tmp_path) as srv:
        yield srv


async def _rows(srv: APIServer, since: int) -> dict[int, Event]:
    """The store's rows after ``since`` up to the cache's revision, by revision."""
    out: dict[int, Event] = {}
    async with contextlib.aclosing(srv.store.watch(since)) as batches:
        async for batch in batches:
            out.update((ev.revision, ev) for ev in batch)
            if batch and batch[-1].revision >= srv.cache.revision:
                break
    return out


async def _assert_as_decoded(srv: APIServer, rec: Recorder, since: int) -> list[WatchEvent]:
    """Each recorded event holds exactly what decoding its row gives; returns the events."""
    rows = await _rows(srv, since)
    assert rec.events, "no events recorded"
    for ev in rec.events:
        row = rows[ev.revision]
        assert (ev.type == "DELETED") == row.deleted
        assert ev.current.raw == decode(row.value, row.revision).raw, (ev.type, ev.key)
        assert ev.current.obj == orjson.loads(ev.current.raw)
    return rec.events


def _types(events: list[WatchEvent]) -> list[str]:
    return [ev.type for ev in events]


async def test_delete_without_finalizers_is_the_cached_last_state(
    server: APIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await server.objects.create(
        CM, "ns", {"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}}, _opts()
    )
    since = server.cache.revision
    last = server.cache.get(CM.key("ns", "a"))
    rec = Recorder(server, monkeypatch)
    gone, finished = await server.objects.delete(CM, "ns", "a", {}, _opts())
    assert finished
    events = await _assert_as_decoded(server, rec, since)
    assert _types(events) == ["DELETED"] and rec.decoded == []
    deleted = events[0].current
    assert last is not None and deleted.obj["data"] is last.obj["data"], "the tombstone row was decoded"
    assert deleted.obj["metadata"]["resourceVersion"] == str(deleted.revision) == gone["metadata"]["resourceVersion"]
    assert last.obj["metadata"]["resourceVersion"] == str(last.revision), "the cached last state was changed"


async def test_finalizers_and_foreground_deletion(server: APIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    await server.objects.create(CM, "ns", {"metadata": {"name": "f", "finalizers": ["example.com/hold"]}}, _opts())
    await server.objects.create(CM, "ns", {"metadata": {"name": "g"}, "data": {"k": "v"}}, _opts())
    since = server.cache.revision
    rec = Recorder(server, monkeypatch)
    _, finished = await server.objects.delete(CM, "ns", "f", {}, _opts())
    assert not finished
    _, finished = await server.objects.delete(CM, "ns", "g", {"propagationPolicy": "Foreground"}, _opts())
    assert not finished
    for name in ("f", "g"):
        held = server.cache.get(CM.key("ns", name))
        assert held is not None and held.obj["metadata"]["deletionTimestamp"]
        await server.objects.update(
            CM, "ns", name, {**held.obj, "metadata": {**held.obj["metadata"], "finalizers": []}}, _opts()
        )
    assert server.cache.get(CM.key("ns", "f")) is None and server.cache.get(CM.key("ns", "g")) is None
    events = await _assert_as_decoded(server, rec, since)
    assert _types(events) == ["MODIFIED", "MODIFIED", "DELETED", "DELETED"]
    assert rec.decoded == []
    assert events[2].current.obj["metadata"]["finalizers"] == ["example.com/hold"]  # the last stored state


async def test_graceful_pod_deletion_and_status_updates(server: APIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    pod: JSON = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}
    await server.objects.create(PODS, "ns", pod, _opts())
    since = server.cache.revision
    rec = Recorder(server, monkeypatch)
    current = server.cache.get(PODS.key("ns", "p"))
    assert current is not None
    status = orjson.loads(current.raw)
    status["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "podIP": "10.0.0.1"}
    await server.objects.update(PODS, "ns", "p", status, _opts(), "status")
    _, finished = await server.objects.delete(PODS, "ns", "p", {}, _opts())
    assert not finished  # on a node and running: marked with the grace period
    marked = server.cache.get(PODS.key("ns", "p"))
    assert marked is not None and marked.obj["metadata"]["deletionGracePeriodSeconds"] == 30
    _, finished = await server.objects.delete(PODS, "ns", "p", {"gracePeriodSeconds": 0}, _opts())
    assert finished  # the agent's confirmation
    events = await _assert_as_decoded(server, rec, since)
    assert _types(events) == ["MODIFIED", "MODIFIED", "DELETED"]
    assert rec.decoded == []
    assert events[2].current.obj["status"]["podIP"] == "10.0.0.1"


async def test_namespace_mark_large_objects_and_in_process_callers(
    server: APIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = {"metadata": {"name": "big"}, "data": {"k": "x" * (2 * LARGE_OBJECT)}}
    await server.objects.create(CM, "ns", big, _opts())
    await server.objects.create(CM, "ns", {"metadata": {"name": "mine"}, "data": {"k": "v"}}, _opts(owned=False))
    since = server.cache.revision
    rec = Recorder(server, monkeypatch)
    await server.objects.delete(CM, "ns", "big", {}, _opts())
    await server.objects.delete(CM, "ns", "mine", {}, _opts(owned=False))
    _, finished = await server.objects.delete(NS, None, "ns", {}, _opts())
    assert not finished
    events = await _assert_as_decoded(server, rec, since)
    assert _types(events) == ["DELETED", "DELETED", "MODIFIED"]
    assert rec.decoded == []
    assert events[2].current.obj["status"]["phase"] == "Terminating"


async def test_a_row_stored_with_a_resource_version_keeps_its_key_order(
    server: APIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row written with ``metadata.resourceVersion`` inside it (an older writer, an import):
    decoding puts the revision where the row has it, and so does the delete built from the cache."""
    key = CM.key("ns", "old")
    row = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "data": {"k": "v"},
        "metadata": {"name": "old", "resourceVersion": "1", "namespace": "ns", "uid": "u-1"},
    }
    await server.store.create(key, orjson.dumps(row))
    await server.cache.wait_for(await server.store.current_revision())
    since = server.cache.revision
    rec = Recorder(server, monkeypatch)
    await server.objects.delete(CM, "ns", "old", {}, _opts())
    events = await _assert_as_decoded(server, rec, since)
    assert _types(events) == ["DELETED"] and rec.decoded == []
    assert list(events[0].current.obj["metadata"]) == ["name", "resourceVersion", "namespace", "uid"]
