"""The REST client against the in-process fake API server: verbs, errors, pagination, watch, discovery.

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
from atoll.client import Client, ClientConnectionError, ClientTimeoutError
from atoll.client.rest import error_from_response
from tests.integration.fake_kube import CONFIGMAPS, DOMAINS, LEASES, FakeKube, configmap, running_fake


@pytest.fixture
async def fake() -> AsyncIterator[FakeKube]:
    async with running_fake(bookmark_interval=0.2) as server:
        yield server


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
    deleted = await client.delete(CONFIGMAPS, "a", "default")
    assert deleted["metadata"]["name"] == "a"
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
    obj = await client.patch(DOMAINS, "alice", {"status": {"phase": "Ready"}}, subresource="status")
    assert obj["status"] == {"phase": "Ready"}
    obj["status"] = {"phase": "ignored"}
    obj["spec"]["role"] = ""
    obj = await client.update(DOMAINS, obj)
    assert obj["status"] == {"phase": "Ready"} and obj["metadata"]["generation"] == 2
    listed = await client.list(DOMAINS)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["alice"]


async def test_list_all_follows_continue(client: Client, fake: FakeKube) -> None:
    for i in range(7):
        await client.create(
            CONFIGMAPS, configmap(f"cm{i}", "ns1" if i % 2 else "ns2", tier="a" if i < 5 else "b")
        )
    items, rv = await client.list_all(CONFIGMAPS, page_size=2)
    assert [i["metadata"]["name"] for i in items] == [f"cm{i}" for i in (1, 3, 5, 0, 2, 4, 6)]
    assert rv == str(fake.rv) and all(i["kind"] == "ConfigMap" for i in items)
    assert sum("continue=" in path for _, path in fake.requests) == 3
    items, _ = await client.list_all(CONFIGMAPS, "ns2", label_selector="tier=a", page_size=1)
    assert [i["metadata"]["name"] for i in items] == ["cm0", "cm2", "cm4"]
    fake.compact()
    page = await client.list(CONFIGMAPS, limit=2)
    fake.compact()
    await client.create(CONFIGMAPS, configmap("late"))
    fake.compact()
    with pytest.raises(errors.Gone):
        await client.list(CONFIGMAPS, limit=2, continue_=page["metadata"]["continue"])


async def test_delete_collection(client: Client) -> None:
    for i in range(3):
        await client.create(CONFIGMAPS, configmap(f"d{i}", app="gone" if i else "keep"))
    await client.delete_collection(CONFIGMAPS, "default", label_selector="app=gone")
    items, _ = await client.list_all(CONFIGMAPS)
    assert [i["metadata"]["name"] for i in items] == ["d0"]


async def test_watch_streams_events_and_bookmarks(client: Client) -> None:
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
    await asyncio.sleep(0.05)
    await client.create(CONFIGMAPS, configmap("w"))
    await client.create(CONFIGMAPS, configmap("other", "elsewhere"))
    await asyncio.sleep(0.3)
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


async def test_watch_gone_raises(client: Client, fake: FakeKube) -> None:
    await client.create(CONFIGMAPS, configmap("g"))
    fake.compact()
    with pytest.raises(errors.Gone, match="too old"):
        async for _ in client.watch(CONFIGMAPS, resource_version="100"):
            pass
    got: list[str] = []

    async def consume() -> None:
        async for kind, _ in client.watch(CONFIGMAPS, resource_version=str(fake.rv)):
            got.append(kind)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    fake.expire_watches()
    with pytest.raises(errors.Gone):
        await asyncio.wait_for(task, 5)


async def test_watch_transport_failures(client: Client, fake: FakeKube) -> None:
    async def consume(**kwargs: float) -> None:
        async for _ in client.watch(CONFIGMAPS, resource_version=str(fake.rv), **kwargs):  # type: ignore[arg-type]
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    fake.drop_watches()
    with pytest.raises(ClientConnectionError):
        await asyncio.wait_for(task, 5)
    fake.resumed.clear()
    with pytest.raises(ClientTimeoutError):
        await asyncio.wait_for(consume(inactivity_timeout=0.3), 5)
    fake.resumed.set()


async def test_connection_refused_is_client_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with Client(f"http://127.0.0.1:{port}") as c:
        with pytest.raises(ClientConnectionError, match=r"127\.0\.0\.1"):
            await c.get(CONFIGMAPS, "x", "default")


async def test_discovery_is_cached(client: Client, fake: FakeKube) -> None:
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
        ("kd",),
    )
    lease = await client.discover("coordination.k8s.io/v1", "Lease")
    assert lease.plural == LEASES.plural
    before = len(fake.requests)
    await client.discover("v1", "ConfigMap")
    assert len(fake.requests) == before
    with pytest.raises(errors.NotFound, match="Widget"):
        await client.discover("v1", "Widget")
    with pytest.raises(errors.NotFound):
        await client.discover("nope.example/v1", "Widget")


async def test_bearer_token_and_kubeconfig_dict() -> None:
    async with running_fake(token="s3cret") as fake:
        async with Client(fake.url) as anonymous:
            with pytest.raises(errors.Unauthorized):
                await anonymous.list(CONFIGMAPS)
        kubeconfig = {
            "current-context": "c",
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "ns9"}}],
            "clusters": [{"name": "k", "cluster": {"server": fake.url}}],
            "users": [{"name": "u", "user": {"token": "s3cret"}}],
        }
        async with Client.from_kubeconfig(kubeconfig) as c:
            assert c.namespace == "ns9"
            assert (await c.list(CONFIGMAPS))["items"] == []
            assert (await c.get_path("/api"))["versions"] == ["v1"]
