"""The watch cache keeps the object a request's write path already holds (no decode of the row it
just stored) when the object is the server's own: the cached bytes are exactly what decoding the
stored row gives, the writer's dicts are left as they were, an in-process caller's objects are
never kept, and a failed write leaves nothing behind. Real in-process server on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from atoll.api import errors
from atoll.api.builtins import BUILTINS
from atoll.apiserver.app import APIServer
from atoll.apiserver.cache.entries import decode
from atoll.apiserver.registry.storage import WriteOptions
from tests.integration.inprocess import in_process_server

JSON = dict[str, Any]
CM = next(r for r in BUILTINS if r.plural == "configmaps" and r.group == "")
NS = next(r for r in BUILTINS if r.plural == "namespaces" and r.group == "")
PODS = next(r for r in BUILTINS if r.plural == "pods" and r.group == "")


def _opts(owned: bool) -> WriteOptions:
    return WriteOptions(field_manager="test", owned=owned)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[APIServer]:
    async with in_process_server(tmp_path) as srv:
        yield srv


async def _as_stored(srv: APIServer, key: str) -> bytes:
    """What the cache would hold had it decoded the stored row."""
    kv = await srv.store.get(key)
    assert kv is not None
    return decode(kv.value, kv.revision).raw


async def test_an_owned_create_is_kept_not_decoded(server: APIServer) -> None:
    body: JSON = {"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}}
    out = await server.objects.create(CM, "ns", body, _opts(True))
    cached = server.cache.get(CM.key("ns", "a"))
    assert cached is not None and out is cached.obj
    assert cached.obj["data"] is body["data"], "the cache decoded the row instead of keeping the body"
    assert cached.obj["metadata"] is not body["metadata"] and "resourceVersion" not in body["metadata"]
    assert cached.obj["metadata"]["resourceVersion"] == str(cached.revision)
    assert cached.raw == await _as_stored(server, CM.key("ns", "a"))
    assert server.cache._adopted == {}


async def test_an_owned_update_and_status_update_are_kept(server: APIServer) -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    created = await server.objects.create(PODS, "ns", pod, _opts(False))
    wanted = orjson.loads(orjson.dumps(created))  # a client's PUT body carries the resourceVersion
    wanted["metadata"]["labels"] = {"l": "v"}
    await server.objects.update(PODS, "ns", "p", wanted, _opts(True))
    key = PODS.key("ns", "p")
    cached = server.cache.get(key)
    assert cached is not None and cached.obj["metadata"]["labels"] == {"l": "v"}
    assert cached.raw == await _as_stored(server, key)
    status = orjson.loads(orjson.dumps(cached.obj))
    status["status"] = {"phase": "Running", "podIP": "10.0.0.1"}
    await server.objects.update(PODS, "ns", "p", status, _opts(True), "status")
    cached = server.cache.get(key)
    assert cached is not None and cached.obj["status"]["phase"] == "Running"
    assert cached.raw == await _as_stored(server, key)
    assert server.cache._adopted == {}


async def test_an_in_process_callers_object_is_never_kept(server: APIServer) -> None:
    body = {"metadata": {"name": "b"}, "data": {"k": "v"}}
    await server.objects.create(CM, "ns", body, _opts(False))
    cached = server.cache.get(CM.key("ns", "b"))
    assert cached is not None and cached.obj["data"] == body["data"] and cached.obj["data"] is not body["data"]


async def test_a_failed_owned_write_leaves_nothing_behind(server: APIServer) -> None:
    await server.objects.create(CM, "ns", {"metadata": {"name": "c"}, "data": {"k": "v"}}, _opts(True))
    with pytest.raises(errors.APIError):
        await server.objects.create(CM, "ns", {"metadata": {"name": "c"}, "data": {"k": "w"}}, _opts(True))
    stale = {"metadata": {"name": "c", "resourceVersion": "1"}, "data": {"k": "x"}}
    with pytest.raises(errors.APIError):
        await server.objects.update(CM, "ns", "c", stale, _opts(True))
    assert server.cache._adopted == {}
    cached = server.cache.get(CM.key("ns", "c"))
    assert cached is not None and cached.obj["data"] == {"k": "v"}
