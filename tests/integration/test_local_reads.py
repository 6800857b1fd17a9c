"""In-process reads (``atoll.client.local``, ``atoll.apiserver.http.local``): the master's own admin
client lists, watches and gets without HTTP, with the HTTP semantics. Each behaviour is checked
against both the HTTP client and the local one."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from atoll.api import errors
from atoll.api.kinds import CONFIGMAPS
from atoll.apiserver.http.metrics import local_request_total
from atoll.apiserver.http.watch import WatchStreamSettings
from atoll.client import Client
from atoll.client.local import local_mode
from atoll.client.paths import METADATA_ONLY
from tests.conftest import RunningServer

JSON = dict[str, Any]
NS = "default"


@pytest.fixture
def client(http_or_local: Client) -> Client:
    """Each test runs over HTTP and in-process."""
    return http_or_local


def cm(name: str, **labels: str) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS, "labels": labels},
            "data": {"k": name}}


async def take(events: AsyncGenerator[tuple[str, JSON], None], n: int, within: float = 5.0) -> list[tuple[str, JSON]]:
    out = []
    async with asyncio.timeout(within):
        while len(out) < n:
            out.append(await anext(events))
    return out


def names(items: list[JSON]) -> list[str]:
    return [i["metadata"]["name"] for i in items]


async def test_list_selectors_pagination_and_resource_versions(client: Client) -> None:
    for i in range(5):
        await client.create(CONFIGMAPS, cm(f"c{i}", app="a" if i < 3 else "b"))
    page = await client.list(CONFIGMAPS, NS, label_selector="app=a")
    assert page["kind"] == "ConfigMapList" and page["apiVersion"] == "v1"
    assert names(page["items"]) == ["c0", "c1", "c2"]
    assert all(i["metadata"]["resourceVersion"] for i in page["items"])
    assert int(page["metadata"]["resourceVersion"]) >= max(int(i["metadata"]["resourceVersion"]) for i in page["items"])
    one = await client.list(CONFIGMAPS, NS, field_selector="metadata.name=c4")
    assert names(one["items"]) == ["c4"] and one["items"][0]["kind"] == "ConfigMap"
    first = await client.list(CONFIGMAPS, NS, limit=2)
    token = first["metadata"]["continue"]
    assert names(first["items"]) == ["c0", "c1"] and first["metadata"]["remainingItemCount"] == 3
    await client.delete(CONFIGMAPS, "c2", NS)  # later pages stay at the first page's snapshot
    second = await client.list(CONFIGMAPS, NS, limit=2, continue_=token)
    assert names(second["items"]) == ["c2", "c3"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    items, rv = await client.list_all(CONFIGMAPS, NS, page_size=2)
    assert names(items) == ["c0", "c1", "c3", "c4"] and rv
    at_zero = await client.list(CONFIGMAPS, NS, resource_version="0")
    assert names(at_zero["items"]) == ["c0", "c1", "c3", "c4"]
    with pytest.raises(errors.BadRequest):
        await client.list(CONFIGMAPS, NS, continue_="not-a-token")
    with pytest.raises(errors.BadRequest):
        await client.list(CONFIGMAPS, NS, label_selector="a in (")


async def test_metadata_only_list_and_watch(client: Client) -> None:
    created = await client.create(CONFIGMAPS, cm("m", app="x"))
    page = await client.list(CONFIGMAPS, NS, headers=METADATA_ONLY)
    assert page["kind"] == "PartialObjectMetadataList" and page["apiVersion"] == "meta.k8s.io/v1"
    (item,) = page["items"]
    assert item["kind"] == "PartialObjectMetadata" and "data" not in item
    assert item["metadata"]["labels"] == {"app": "x"}
    assert item["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    events = client.watch(CONFIGMAPS, NS, resource_version=page["metadata"]["resourceVersion"], headers=METADATA_ONLY)
    async with contextlib.aclosing(events):
        await client.patch(CONFIGMAPS, "m", {"data": {"k": "2"}}, NS)
        ((kind, obj),) = await take(events, 1)
        assert kind == "MODIFIED" and obj["kind"] == "PartialObjectMetadata" and "data" not in obj


async def test_metadata_only_bookmarks(client: Client) -> None:
    """A metadata-only watch's bookmarks are ``PartialObjectMetadata`` too (as kube-apiserver's)."""
    await client.create(CONFIGMAPS, cm("b"))
    events = client.watch(CONFIGMAPS, NS, resource_version="", send_initial_events=True, headers=METADATA_ONLY)
    async with contextlib.aclosing(events):
        (_, added), (kind, end) = await take(events, 2)
        assert added["kind"] == "PartialObjectMetadata" and kind == "BOOKMARK"
        assert end["kind"] == "PartialObjectMetadata" and end["apiVersion"] == "meta.k8s.io/v1", end
        assert end["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}, end
        assert int(end["metadata"]["resourceVersion"]) >= int(added["metadata"]["resourceVersion"])


async def test_watch_initial_events_resume_and_selectors(client: Client) -> None:
    await client.create(CONFIGMAPS, cm("w0", app="a"))
    await client.create(CONFIGMAPS, cm("w1", app="b"))
    events = client.watch(CONFIGMAPS, NS, resource_version="0", label_selector="app=a", allow_bookmarks=False)
    async with contextlib.aclosing(events):
        ((kind, obj),) = await take(events, 1)
        assert kind == "ADDED" and obj["metadata"]["name"] == "w0" and obj["data"] == {"k": "w0"}
        left = await client.patch(CONFIGMAPS, "w0", {"metadata": {"labels": {"app": "z"}}}, NS)  # leaves the selector
        await client.patch(CONFIGMAPS, "w1", {"metadata": {"labels": {"app": "a"}}}, NS)  # enters it
        seen = await take(events, 2)
        assert [(k, o["metadata"]["name"]) for k, o in seen] == [("DELETED", "w0"), ("ADDED", "w1")]
        assert seen[0][1]["metadata"]["labels"] == {"app": "a"}  # what left: its last matching state...
        assert seen[0][1]["metadata"]["resourceVersion"] == left["metadata"]["resourceVersion"]  # ...at the event's RV
    listing = await client.list(CONFIGMAPS, NS)
    rv = listing["metadata"]["resourceVersion"]
    await client.patch(CONFIGMAPS, "w1", {"data": {"k": "x"}}, NS)
    await client.delete(CONFIGMAPS, "w0", NS)
    events = client.watch(CONFIGMAPS, NS, resource_version=rv, field_selector="metadata.name=w1")
    async with contextlib.aclosing(events):  # replayed from the history after rv, only w1's
        ((kind, obj),) = await take(events, 1)
        assert kind == "MODIFIED" and obj["data"] == {"k": "x"} and int(obj["metadata"]["resourceVersion"]) > int(rv)


async def test_too_old_resource_version_raises_gone(client: Client, api_server: RunningServer) -> None:
    first = await client.create(CONFIGMAPS, cm("old"))
    for i in range(3):
        await client.patch(CONFIGMAPS, "old", {"data": {"n": str(i)}}, NS)
    assert api_server.node is not None and api_server.node.server is not None
    server = api_server.node.server
    await server.compactor.compact(server.cache.revision - 1)
    events = client.watch(CONFIGMAPS, NS, resource_version=first["metadata"]["resourceVersion"])
    async with contextlib.aclosing(events):
        with pytest.raises(errors.Gone, match="too old resource version"):
            await take(events, 1)


async def test_bookmarks(client: Client, api_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert api_server.node is not None and api_server.node.server is not None
    monkeypatch.setattr(api_server.node.server.resources, "watch_settings", WatchStreamSettings(bookmark_interval=0.1))
    listing = await client.list(CONFIGMAPS, NS)
    rv = listing["metadata"]["resourceVersion"]
    events = client.watch(CONFIGMAPS, NS, resource_version=rv)
    async with contextlib.aclosing(events):
        ((kind, obj),) = await take(events, 1)
        assert kind == "BOOKMARK" and obj["kind"] == "ConfigMap" and obj["apiVersion"] == "v1"
        assert int(obj["metadata"]["resourceVersion"]) >= int(rv)
    quiet = client.watch(CONFIGMAPS, NS, resource_version=rv, allow_bookmarks=False, timeout_seconds=1)
    async with contextlib.aclosing(quiet):
        assert [e async for e in quiet] == []  # none unless asked, and the stream ends


async def test_timeout_seconds_ends_the_stream(client: Client) -> None:
    listing = await client.list(CONFIGMAPS, NS)
    started = time.monotonic()
    events = client.watch(CONFIGMAPS, NS, resource_version=listing["metadata"]["resourceVersion"], timeout_seconds=1)
    async with contextlib.aclosing(events), asyncio.timeout(10):
        assert [e async for e in events] == []
    assert 0.8 <= time.monotonic() - started < 5


async def test_get_is_a_private_copy_and_not_found(client: Client) -> None:
    await client.create(CONFIGMAPS, cm("g"))
    got = await client.get(CONFIGMAPS, "g", NS)
    assert got["data"] == {"k": "g"} and got["metadata"]["resourceVersion"]
    got["data"]["k"] = "changed locally"
    assert (await client.get(CONFIGMAPS, "g", NS))["data"] == {"k": "g"}
    with pytest.raises(errors.NotFound):
        await client.get(CONFIGMAPS, "missing", NS)


async def test_slow_local_consumer_is_ended_with_gone(api_server: RunningServer) -> None:
    """A local watch keeps the watcher queue's bound: a consumer that falls behind is ended (410)."""
    assert api_server.node is not None and api_server.node.server is not None
    cache = api_server.node.server.cache
    cache.settings = dataclasses.replace(cache.settings, watcher_queue=5)
    async with api_server.client() as http, api_server.node.client() as local:
        created = await http.create(CONFIGMAPS, cm("s0"))
        start = str(int(created["metadata"]["resourceVersion"]) - 1)
        events = local.watch(CONFIGMAPS, NS, resource_version=start)
        async with contextlib.aclosing(events):
            ((kind, _),) = await take(events, 1)  # registered; now stop reading
            assert kind == "ADDED"
            for i in range(10):
                await http.patch(CONFIGMAPS, "s0", {"data": {"n": str(i)}}, NS)
            with pytest.raises(errors.Gone, match="fell behind"):
                await take(events, 10)


async def test_local_reads_are_counted_apart(api_server: RunningServer) -> None:
    assert api_server.node is not None

    def count() -> float:
        return local_request_total.labels("LIST", "configmaps", "200")._value.get()

    before = count()
    async with api_server.node.client() as local:
        await local.list(CONFIGMAPS, NS)
    assert count() == before + 1


def test_which_reads_go_local() -> None:
    assert local_mode(None) is False and local_mode({}) is False
    assert local_mode({"Accept": "application/json"}) is False
    assert local_mode(METADATA_ONLY) is True
    table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    assert local_mode({"Accept": table}) is None  # over HTTP, which renders Tables
    assert local_mode({"Accept": "application/json", "X-Other": "1"}) is None


async def test_an_unexpected_failure_is_a_500_as_over_http(
    client: Client, api_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """E.g. the cache not catching up with the store within its wait: over HTTP a 500 Status, so
    in-process too (an informer backs off and retries on an APIError; a raw exception would end it)."""
    assert api_server.node is not None and api_server.node.server is not None

    async def stuck(*_args: object, **_kwargs: object) -> object:
        raise TimeoutError

    monkeypatch.setattr(api_server.node.server.resources, "list_page", stuck)
    with pytest.raises(errors.InternalError, match="an internal error occurred"):
        await client.list(CONFIGMAPS, NS)
