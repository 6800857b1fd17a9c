"""WATCH over HTTPS: wire format, initial events, resuming from a list, bookmarks, 410, timeouts,
selectors and Table events.

Aspects: newline-delimited chunked JSON; synthetic ADDED from resourceVersion 0 or none and no
replay from a list's resourceVersion (and nothing lost in between); BOOKMARK events when asked;
an ERROR 410 Expired event for a resourceVersion older than the history; ``timeoutSeconds`` ends
the stream; status writes emit MODIFIED with a new resourceVersion; leaving or entering a label
selector gives DELETED / ADDED for that watcher; namespace filtering; one-row Table events.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from atoll.apiserver.http.watch import WatchStreamSettings
from tests.conftest import eventually
from tests.integration.kube_http import DOMAINS, TABLE_ACCEPT, Api, configmap, create, domain, names

CMS = "/api/v1/namespaces/default/configmaps"

pytestmark = pytest.mark.controllers()  # the API server's own semantics: no controllers


def _rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def _summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events]


async def test_wire_format_is_newline_delimited_chunked_json(api: Api) -> None:
    await create(api, CMS, configmap("a"))
    await create(api, CMS, configmap("b"))
    stream = await api.watch(CMS, {"resourceVersion": "0", "timeoutSeconds": "1"})
    try:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("application/json")
        assert stream.headers.get("Transfer-Encoding") == "chunked"
        raw = await asyncio.wait_for(stream.resp.content.read(), 10)
    finally:
        await stream.close()
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    events = [json.loads(line) for line in lines]
    assert _summary(events) == [("ADDED", "a"), ("ADDED", "b")]
    for ev in events:
        assert set(ev) == {"type", "object"}
        assert ev["object"]["kind"] == "ConfigMap" and ev["object"]["apiVersion"] == "v1"


@pytest.mark.parametrize("rv", ["0", None])
async def test_synthetic_added_from_zero_or_absent(api: Api, rv: str | None) -> None:
    await create(api, DOMAINS, domain("a"))
    await create(api, DOMAINS, domain("b"))
    stream = await api.watch(DOMAINS, {"resourceVersion": rv} if rv is not None else {})
    try:
        initial = await stream.collect(2)
        assert _summary(initial) == [("ADDED", "a"), ("ADDED", "b")]
        assert await stream.quiet(0.5)
        created = await create(api, DOMAINS, domain("c"))
        ev = await stream.next()
        assert ev is not None and (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "c")
        assert ev["object"]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    finally:
        await stream.close()


async def test_watch_from_list_resource_version_no_replay_no_loss(api: Api) -> None:
    a = await create(api, CMS, configmap("a"))
    await create(api, CMS, configmap("b"))
    listing = (await api.get(CMS)).json
    assert names(listing) == ["a", "b"]
    list_rv = listing["metadata"]["resourceVersion"]
    # writes between the list and the watch must be delivered
    c = await create(api, CMS, configmap("c"))
    a2 = (await api.patch(f"{CMS}/a", {"data": {"k": "2"}})).json
    await api.delete(f"{CMS}/b")
    stream = await api.watch(CMS, {"resourceVersion": list_rv})
    try:
        events = await stream.collect(3)
        assert _summary(events) == [("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "b")]
        assert _rv(events[0]["object"]) == _rv(c)
        assert _rv(events[1]["object"]) == _rv(a2) > _rv(a)
        assert events[1]["object"]["data"] == {"k": "2"}
        assert _rv(events[2]["object"]) > _rv(a2)
        assert await stream.quiet(0.5)  # and nothing twice
        # live events continue with increasing resourceVersions
        await api.patch(f"{CMS}/c", {"data": {"k": "3"}})
        ev = await stream.next()
        assert ev is not None and ev["type"] == "MODIFIED" and _rv(ev["object"]) > _rv(events[2]["object"])
    finally:
        await stream.close()


async def test_concurrent_writes_are_all_seen_once_in_order(api: Api) -> None:
    listing = (await api.get(CMS)).json
    stream = await api.watch(CMS, {"resourceVersion": listing["metadata"]["resourceVersion"]})
    try:
        await asyncio.gather(*(create(api, CMS, configmap(f"w{i}")) for i in range(20)))
        events = await stream.collect(20)
        assert sorted(e["object"]["metadata"]["name"] for e in events) == sorted(f"w{i}" for i in range(20))
        assert all(e["type"] == "ADDED" for e in events)
        rvs = [_rv(e["object"]) for e in events]
        assert rvs == sorted(rvs) and len(set(rvs)) == 20
        assert await stream.quiet(0.3)
    finally:
        await stream.close()


def _bookmark_every(api_server: Any, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    settings = WatchStreamSettings(bookmark_interval=seconds)
    monkeypatch.setattr(api_server.node.server.resources, "watch_settings", settings)


async def test_bookmarks(api: Api, api_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _bookmark_every(api_server, monkeypatch, 0.2)
    await create(api, DOMAINS, domain("a"))
    listing = (await api.get(DOMAINS)).json
    stream = await api.watch(
        DOMAINS, {"resourceVersion": listing["metadata"]["resourceVersion"], "allowWatchBookmarks": "true"}
    )
    try:
        ev = await stream.next(timeout=5)
        assert ev is not None and ev["type"] == "BOOKMARK", ev
        obj = ev["object"]
        assert obj["kind"] == "Domain" and obj["apiVersion"] == "kuscia.secretflow/v1alpha1"
        assert int(obj["metadata"]["resourceVersion"]) >= int(listing["metadata"]["resourceVersion"])
        created = await create(api, DOMAINS, domain("b"))
        while True:
            ev = await stream.next(timeout=5)
            assert ev is not None
            if ev["type"] != "BOOKMARK":
                break
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "b"
        ev = await stream.next(timeout=5)
        assert ev is not None and ev["type"] == "BOOKMARK"
        assert int(ev["object"]["metadata"]["resourceVersion"]) >= _rv(created)
    finally:
        await stream.close()


async def test_no_bookmarks_unless_asked(api: Api, api_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _bookmark_every(api_server, monkeypatch, 0.1)
    listing = (await api.get(DOMAINS)).json
    stream = await api.watch(DOMAINS, {"resourceVersion": listing["metadata"]["resourceVersion"]})
    try:
        assert await stream.quiet(1.5)
    finally:
        await stream.close()


async def test_send_initial_events_ends_with_marked_bookmark(api: Api) -> None:
    await create(api, DOMAINS, domain("a"))
    stream = await api.watch(
        DOMAINS, {"sendInitialEvents": "true", "allowWatchBookmarks": "true", "resourceVersionMatch": "NotOlderThan"}
    )
    try:
        events = await stream.collect(2)
        assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "a"
        assert events[1]["type"] == "BOOKMARK"
        assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    finally:
        await stream.close()


@pytest.mark.parametrize(("yes", "no"), [("1", "0"), ("True", "False"), ("t", "FALSE")])
async def test_boolean_options_read_as_kube_apiserver_reads_them(api: Api, yes: str, no: str) -> None:
    """``watch``, ``sendInitialEvents`` and ``allowWatchBookmarks`` as kube-apiserver decodes a boolean
    query parameter: "0" and "false" (any case) are false, anything else is true (before, only
    "true" counted for the last two: ``sendInitialEvents=1`` replayed nothing and sent no bookmark)."""
    await create(api, DOMAINS, domain("a"))
    options = {"watch": yes, "resourceVersionMatch": "NotOlderThan"}
    stream = await api.watch(DOMAINS, {**options, "sendInitialEvents": yes, "allowWatchBookmarks": yes})
    try:
        events = await stream.collect(2)
        assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
        assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    finally:
        await stream.close()
    stream = await api.watch(DOMAINS, {**options, "sendInitialEvents": no, "allowWatchBookmarks": no})
    try:  # live events only: b's ADDED comes first, not a's
        await create(api, DOMAINS, domain("b"))
        assert _summary(await stream.collect(1)) == [("ADDED", "b")]
    finally:
        await stream.close()
    listing = await api.get(DOMAINS, params={"watch": no})
    assert listing.status == 200 and listing.body["kind"] == "DomainList"


async def test_too_old_resource_version_is_an_expired_error_event(api: Api, api_server: Any) -> None:
    first = await create(api, CMS, configmap("a"))
    for i in range(3):
        await api.patch(f"{CMS}/a", {"data": {"n": str(i)}})
    server = api_server.node.server
    cache = server.cache
    await server.compactor.compact(cache.revision - 1)  # history before the newest event is gone
    stream = await api.watch(CMS, {"resourceVersion": first["metadata"]["resourceVersion"]})
    try:
        assert stream.status == 200
        ev = await stream.next()
        assert ev is not None and ev["type"] == "ERROR", ev
        status = ev["object"]
        assert status["kind"] == "Status" and status["apiVersion"] == "v1"
        assert status["status"] == "Failure" and status["reason"] == "Expired" and status["code"] == 410
        assert status["message"].startswith(f"too old resource version: {_rv(first)} (")
        assert await stream.next() is None  # then the stream ends
    finally:
        await stream.close()
    # a watch from the newest revision still works
    stream = await api.watch(CMS, {"resourceVersion": str(cache.revision)})
    try:
        await api.patch(f"{CMS}/a", {"data": {"n": "x"}})
        ev = await stream.next()
        assert ev is not None and ev["type"] == "MODIFIED"
    finally:
        await stream.close()


async def test_timeout_seconds_ends_the_stream(api: Api) -> None:
    listing = (await api.get(CMS)).json
    started = time.monotonic()
    stream = await api.watch(CMS, {"resourceVersion": listing["metadata"]["resourceVersion"], "timeoutSeconds": "1"})
    try:
        assert await stream.next(timeout=10) is None
    finally:
        await stream.close()
    elapsed = time.monotonic() - started
    assert 0.8 <= elapsed < 5, elapsed


async def test_status_write_emits_modified_with_new_resource_version(api: Api) -> None:
    created = await create(api, DOMAINS, domain("s"))
    stream = await api.watch(DOMAINS, {"resourceVersion": created["metadata"]["resourceVersion"]})
    try:
        status = {"nodeStatuses": [{"name": "n", "status": "Ready", "version": "1"}]}
        reply = await api.patch(f"{DOMAINS}/s/status", {"status": status})
        assert reply.status == 200, reply
        ev = await stream.next()
        assert ev is not None and ev["type"] == "MODIFIED"
        assert ev["object"]["status"] == status
        assert ev["object"]["metadata"]["resourceVersion"] == reply.json["metadata"]["resourceVersion"]
        assert _rv(ev["object"]) > _rv(created)
        assert ev["object"]["metadata"]["generation"] == 1
        put = dict(reply.json, status={"nodeStatuses": []})
        reply = await api.put(f"{DOMAINS}/s/status", put)
        ev = await stream.next()
        assert ev is not None and ev["type"] == "MODIFIED" and ev["object"]["status"]["nodeStatuses"] == []
    finally:
        await stream.close()


async def test_label_selector_leaving_and_entering(api: Api) -> None:
    await create(api, CMS, configmap("x", app="web"))
    stream = await api.watch(CMS, {"labelSelector": "app=web"})
    try:
        ev = await stream.next()
        assert ev is not None and (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "x")
        await create(api, CMS, configmap("other", app="db"))  # never matches: nothing
        left = (await api.patch(f"{CMS}/x", {"metadata": {"labels": {"app": "db"}}})).json
        ev = await stream.next()
        assert ev is not None and ev["type"] == "DELETED", ev
        assert ev["object"]["metadata"]["name"] == "x"
        assert ev["object"]["metadata"]["resourceVersion"] == left["metadata"]["resourceVersion"]
        await api.patch(f"{CMS}/x", {"data": {"k": "changed-while-outside"}})
        await api.patch(f"{CMS}/other", {"metadata": {"labels": {"app": "web"}}})
        ev = await stream.next()
        assert ev is not None and (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "other")
        assert await stream.quiet(0.3)
    finally:
        await stream.close()


async def test_field_selector_watch_like_kubectl_get_name_w(api: Api) -> None:
    await create(api, DOMAINS, domain("alice"))
    await create(api, DOMAINS, domain("bob"))
    stream = await api.watch(DOMAINS, {"fieldSelector": "metadata.name=alice", "resourceVersion": "0"})
    try:
        ev = await stream.next()
        assert ev is not None and (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "alice")
        await api.patch(f"{DOMAINS}/bob", {"spec": {"role": ""}})
        await api.patch(f"{DOMAINS}/alice", {"spec": {"role": ""}})
        ev = await stream.next()
        assert ev is not None and (ev["type"], ev["object"]["metadata"]["name"]) == ("MODIFIED", "alice")
        await api.delete(f"{DOMAINS}/alice")
        ev = await stream.next()
        assert ev is not None and (ev["type"], ev["object"]["metadata"]["name"]) == ("DELETED", "alice")
    finally:
        await stream.close()


async def test_namespace_scoped_watch(api: Api) -> None:
    stream = await api.watch(CMS, {"resourceVersion": (await api.get(CMS)).json["metadata"]["resourceVersion"]})
    all_ns = await api.watch(
        "/api/v1/configmaps", {"resourceVersion": (await api.get(CMS)).json["metadata"]["resourceVersion"]}
    )
    try:
        await create(api, "/api/v1/namespaces/kube-system/configmaps", configmap("elsewhere"))
        await create(api, CMS, configmap("here"))
        ev = await stream.next()
        assert ev is not None and ev["object"]["metadata"]["name"] == "here"
        assert _summary(await all_ns.collect(2)) == [("ADDED", "elsewhere"), ("ADDED", "here")]
    finally:
        await stream.close()
        await all_ns.close()


async def test_deleted_event_carries_last_state(api: Api) -> None:
    created = await create(api, CMS, configmap("gone", {"last": "state"}))
    stream = await api.watch(CMS, {"resourceVersion": created["metadata"]["resourceVersion"]})
    try:
        await api.delete(f"{CMS}/gone")
        ev = await stream.next()
        assert ev is not None and ev["type"] == "DELETED"
        assert ev["object"]["data"] == {"last": "state"}
        assert ev["object"]["metadata"]["uid"] == created["metadata"]["uid"]
        assert _rv(ev["object"]) > _rv(created)
    finally:
        await stream.close()


async def test_table_watch_sends_one_row_tables(api: Api) -> None:
    await create(api, DOMAINS, domain("alice"))
    stream = await api.watch(DOMAINS, {"resourceVersion": "0"}, headers={"Accept": TABLE_ACCEPT})
    try:
        ev = await stream.next()
        assert ev is not None and ev["type"] == "ADDED"
        table = ev["object"]
        assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
        assert [c["name"] for c in table["columnDefinitions"]][:2] == ["Name", "Age"]
        assert len(table["rows"]) == 1
        row = table["rows"][0]
        assert row["cells"][0] == "alice"
        assert row["object"]["metadata"]["name"] == "alice"
        assert row["object"]["kind"] == "PartialObjectMetadata"
        await create(api, DOMAINS, domain("bob"))
        ev = await stream.next()
        assert ev is not None and ev["type"] == "ADDED"
        assert len(ev["object"]["rows"]) == 1 and ev["object"]["rows"][0]["cells"][0] == "bob"
        assert not ev["object"].get("columnDefinitions")  # only the first event carries them
        await api.delete(f"{DOMAINS}/bob")
        ev = await stream.next()
        assert ev is not None and ev["type"] == "DELETED" and ev["object"]["rows"][0]["cells"][0] == "bob"
    finally:
        await stream.close()


async def test_selector_entry_in_table_and_metadata_watches(api: Api) -> None:
    """An object entering a label selector is ADDED (its current state) in a Table watch and a
    ``PartialObjectMetadata`` watch alike, both fed from the one shared fan-out event."""
    await create(api, DOMAINS, domain("carol", app="off"))
    meta = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    streams = [
        await api.watch(DOMAINS, {"labelSelector": "app=on", "resourceVersion": "0"}, headers={"Accept": a})
        for a in (TABLE_ACCEPT, meta)
    ]
    try:
        entered = (await api.patch(f"{DOMAINS}/carol", {"metadata": {"labels": {"app": "on"}}})).json
        table, partial = [await s.next() for s in streams]
        assert table is not None and table["type"] == "ADDED" and table["object"]["kind"] == "Table"
        (row,) = table["object"]["rows"]
        assert row["cells"][0] == "carol" and row["object"]["metadata"]["labels"] == {"app": "on"}
        assert row["object"]["metadata"]["resourceVersion"] == entered["metadata"]["resourceVersion"]
        assert partial is not None and partial["type"] == "ADDED"
        assert partial["object"]["kind"] == "PartialObjectMetadata"
        assert partial["object"]["metadata"] == entered["metadata"]
    finally:
        for s in streams:
            await s.close()


async def test_closed_watch_is_released(api: Api, api_server: Any) -> None:
    cache = api_server.node.server.cache
    before = cache.watcher_count
    streams = [await api.watch(CMS) for _ in range(3)]
    await eventually(lambda: cache.watcher_count == before + 3)
    for s in streams:
        await s.close()
    await eventually(lambda: cache.watcher_count == before, 15)


async def test_a_connection_lost_during_the_initial_events_ends_the_watcher(
    api: Api, api_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client gone while its initial events are written: the watcher is removed (it leaked, the
    stream's cleanup failing on a loss callback not yet registered)."""
    from aiohttp import web

    await create(api, CMS, configmap("lost"))
    cache = api_server.node.server.cache
    before = cache.watcher_count
    original = web.StreamResponse.write
    lost = {"raised": False}

    async def write(self: web.StreamResponse, data: bytes) -> None:
        if b'"lost"' in bytes(data) and not lost["raised"]:
            lost["raised"] = True
            raise ConnectionResetError("client gone")
        await original(self, data)

    monkeypatch.setattr(web.StreamResponse, "write", write)
    stream = await api.watch(CMS, {"resourceVersion": "0"})
    try:
        await eventually(lambda: lost["raised"] and cache.watcher_count == before)
    finally:
        await stream.close()
