"""The REST client against the real API server (behind a fault proxy): verbs, errors, pagination,
watch, discovery.

Aspects: every verb round-trips; Status bodies become the matching APIError; list_all follows
continue tokens; watch streams ADDED/MODIFIED/DELETED/BOOKMARK and raises Gone on 410; transport
failures surface as ClientConnectionError / ClientTimeoutError; discovery is cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from atoll.api import errors
from atoll.api.kinds import CONFIGMAPS, DOMAINS, LEASES, NAMESPACES
from atoll.apiserver.http.watch import WatchStreamSettings
from atoll.client import Client, ClientConnectionError, ClientTimeoutError
from atoll.client.errors import error_from_response
from tests.conftest import RunningServer, eventually
from tests.integration.faults import FaultProxy, configmap

pytestmark = pytest.mark.controllers()  # the API server alone


@pytest.fixture(autouse=True)
async def setting(api_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Frequent bookmarks, and the namespaces the tests write to."""
    assert api_server.node is not None and api_server.node.server is not None
    monkeypatch.setattr(api_server.node.server.resources, "watch_settings", WatchStreamSettings(bookmark_interval=0.2))
    async with api_server.client() as admin:
        for namespace in ("elsewhere", "ns1", "ns2"):
            await admin.create(NAMESPACES, {"metadata": {"name": namespace}})
    yield


async def test_crud_round_trip(client: Client) -> None:
    created = await client.create(CONFIGMAPS, configmap("a", app="x"))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    got = await client.get(CONFIGMAPS, "a", "default")
    assert got == created
    got["data"] = {"k": "v"}
    updated = await client.update(CONFIGMAPS, got)
    assert updated["data"] == {"k": "v"}
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    patched = await client.patch(CONFIGMAPS, "a", {"data": {"m": "1"}}, "default")
    assert patched["data"] == {"k": "v", "m": "1"}
    patched = await client.patch(
        CONFIGMAPS, "a", [{"op": "remove", "path": "/data/k"}], "default", patch_type="json"
    )
    assert patched["data"] == {"m": "1"}
    deleted = await client.delete(CONFIGMAPS, "a", "default")  # a Status for ConfigMaps, as in Kubernetes
    assert deleted["status"] == "Success" and deleted["details"]["name"] == "a"
    with pytest.raises(errors.NotFound, match='configmaps "a" not found'):
        await client.get(CONFIGMAPS, "a", "default")


async def test_errors_are_api_errors(client: Client) -> None:
    obj = await client.create(CONFIGMAPS, configmap("b"))
    with pytest.raises(errors.AlreadyExists):
        await client.create(CONFIGMAPS, configmap("b"))
    stale = dict(obj, metadata=dict(obj["metadata"], resourceVersion="1"))
    with pytest.raises(errors.Conflict) as info:
        await client.update(CONFIGMAPS, stale)
    assert info.value.details and info.value.details["name"] == "b"
    with pytest.raises(errors.Conflict):
        await client.delete(CONFIGMAPS, "b", "default", preconditions={"uid": "nope"})
    with pytest.raises(errors.BadRequest):
        await client.list(CONFIGMAPS, field_selector="spec.bogus=1")
    with pytest.raises(errors.NotFound):
        await client.request("GET", "/apis/nope/v1/things")


def test_non_status_bodies_map_by_http_code() -> None:
    err = error_from_response(503, b"<html>upstream down</html>")
    assert isinstance(err, errors.APIError) and err.code == 500 and "upstream down" in err.message
    assert isinstance(error_from_response(404, b"404 page not found"), errors.NotFound)
    assert isinstance(error_from_response(429, b""), errors.TooManyRequests)
    assert len(error_from_response(400, b"x" * 10_000).message) <= 256


async def test_status_subresource_and_cluster_scope(client: Client) -> None:
    await client.create(DOMAINS, {"metadata": {"name": "alice"}, "spec": {"role": "partner"}})
    ready = {"nodeStatuses": [{"name": "n1", "status": "Ready", "version": "v1"}]}
    obj = await client.patch(DOMAINS, "alice", {"status": ready}, subresource="status")
    assert obj["status"] == ready
    obj["status"] = {"nodeStatuses": []}  # ignored: status changes only through /status
    obj["spec"]["role"] = ""
    obj = await client.update(DOMAINS, obj)
    assert obj["status"] == ready and obj["metadata"]["generation"] == 2
    listed = await client.list(DOMAINS)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["alice"]


async def test_list_all_follows_continue(client: Client, faults: FaultProxy) -> None:
    for i in range(7):
        await client.create(
            CONFIGMAPS, configmap(f"cm{i}", "ns1" if i % 2 else "ns2", tier="a" if i < 5 else "b")
        )
    items, rv = await client.list_all(CONFIGMAPS, page_size=2)
    assert [i["metadata"]["name"] for i in items] == [f"cm{i}" for i in (1, 3, 5, 0, 2, 4, 6)]
    assert rv == str(faults.rv) and all(i["kind"] == "ConfigMap" for i in items)
    assert sum("continue=" in path for _, path in faults.requests) == 3
    items, _ = await client.list_all(CONFIGMAPS, "ns2", label_selector="tier=a", page_size=1)
    assert [i["metadata"]["name"] for i in items] == ["cm0", "cm2", "cm4"]
    await faults.compact()
    page = await client.list(CONFIGMAPS, limit=2)
    await faults.compact()
    await client.create(CONFIGMAPS, configmap("late"))
    await faults.compact()
    with pytest.raises(errors.Gone):
        await client.list(CONFIGMAPS, limit=2, continue_=page["metadata"]["continue"])


async def test_delete_collection(client: Client) -> None:
    for i in range(3):
        await client.create(CONFIGMAPS, configmap(f"d{i}", app="gone" if i else "keep"))
    await client.delete_collection(CONFIGMAPS, "default", label_selector="app=gone")
    items, _ = await client.list_all(CONFIGMAPS)
    assert [i["metadata"]["name"] for i in items] == ["d0"]


async def test_watch_streams_events_and_bookmarks(client: Client, faults: FaultProxy) -> None:
    _, rv = await client.list_all(CONFIGMAPS)
    seen: list[tuple[str, str]] = []

    async def consume() -> None:
        stream = client.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=5)
        async with contextlib.aclosing(stream) as events:
            async for kind, obj in events:
                seen.append((kind, obj["metadata"].get("name", "")))
                if kind == "DELETED":
                    return

    task = asyncio.create_task(consume())
    await eventually(lambda: faults.watching(f"resourceVersion={rv}"))
    await client.create(CONFIGMAPS, configmap("w"))
    await client.create(CONFIGMAPS, configmap("other", "elsewhere"))
    await eventually(lambda: any(kind == "BOOKMARK" for kind, _ in seen), 5)
    await client.patch(CONFIGMAPS, "w", {"data": {"x": "y"}}, "default")
    await client.delete(CONFIGMAPS, "w", "default")
    await asyncio.wait_for(task, 5)
    changes = [e for e in seen if e[0] != "BOOKMARK"]
    assert changes == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    assert ("BOOKMARK", "") in seen


async def test_watch_replays_from_resource_version(client: Client) -> None:
    first = await client.create(CONFIGMAPS, configmap("r1"))
    await client.create(CONFIGMAPS, configmap("r2"))
    events = []
    async for kind, obj in client.watch(
        CONFIGMAPS,
        resource_version=first["metadata"]["resourceVersion"],
        timeout_seconds=1,
        allow_bookmarks=False,
    ):
        events.append((kind, obj["metadata"]["name"]))
    assert events == [("ADDED", "r2")]


async def test_watch_gone_raises(client: Client, faults: FaultProxy) -> None:
    await client.create(CONFIGMAPS, configmap("g"))
    await faults.compact()
    with pytest.raises(errors.Gone, match="too old"):
        async for _ in client.watch(CONFIGMAPS, resource_version="1"):
            pass
    got: list[str] = []

    rv = str(faults.rv)

    async def consume() -> None:
        async for kind, _ in client.watch(CONFIGMAPS, resource_version=rv):
            got.append(kind)

    task = asyncio.create_task(consume())
    await eventually(lambda: faults.watching(f"resourceVersion={rv}"))
    faults.expire_watches()
    with pytest.raises(errors.Gone):
        await asyncio.wait_for(task, 5)


async def test_watch_transport_failures(client: Client, faults: FaultProxy) -> None:
    async def consume(**kwargs: float) -> None:
        async for _ in client.watch(CONFIGMAPS, resource_version=str(faults.rv), **kwargs):  # type: ignore[arg-type]
            pass

    task = asyncio.create_task(consume())
    await eventually(lambda: len(faults.watchers) == 1)
    faults.drop_watches()
    with pytest.raises(ClientConnectionError):
        await asyncio.wait_for(task, 5)
    faults.resumed.clear()
    with pytest.raises(ClientTimeoutError):
        await asyncio.wait_for(consume(inactivity_timeout=0.3), 5)
    faults.resumed.set()


async def test_connection_refused_is_client_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with Client(f"http://127.0.0.1:{port}") as c:
        with pytest.raises(ClientConnectionError, match=r"127\.0\.0\.1"):
            await c.get(CONFIGMAPS, "x", "default")


async def test_discovery_is_cached(client: Client, faults: FaultProxy) -> None:
    assert await client.discover("v1", "ConfigMap") == CONFIGMAPS.__class__(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        True,
        ("cm",),
        builtin=False,
        verbs=CONFIGMAPS.verbs,
    )
    domain = await client.resource_for({"apiVersion": "kuscia.secretflow/v1alpha1", "kind": "Domain"})
    assert (domain.plural, domain.namespaced, domain.subresources, domain.short_names) == (
        "domains",
        False,
        ("status",),
        DOMAINS.short_names,
    )
    lease = await client.discover("coordination.k8s.io/v1", "Lease")
    assert lease.plural == LEASES.plural
    before = len(faults.requests)
    await client.discover("v1", "ConfigMap")
    assert len(faults.requests) == before
    with pytest.raises(errors.NotFound, match="Widget"):
        await client.discover("v1", "Widget")
    with pytest.raises(errors.NotFound):
        await client.discover("nope.example/v1", "Widget")


async def test_bearer_token_and_kubeconfig_dict(faults: FaultProxy, api_server: RunningServer) -> None:
    async with Client(faults.url) as anonymous:
        with pytest.raises(errors.Unauthorized):
            await anonymous.list(CONFIGMAPS)
    kubeconfig = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "ns9"}}],
        "clusters": [{"name": "k", "cluster": {"server": faults.url}}],
        "users": [{"name": "u", "user": {"token": api_server.token}}],
    }
    async with Client.from_kubeconfig(kubeconfig) as c:
        assert c.namespace == "ns9"
        assert (await c.list(CONFIGMAPS))["items"] == []
        assert (await c.get_path("/api"))["versions"] == ["v1"]
