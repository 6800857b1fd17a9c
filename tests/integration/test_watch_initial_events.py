"""``sendInitialEvents=true`` (client-go's watch-list, with ``resourceVersionMatch=NotOlderThan``):
the watch begins with the current state as ADDED events, whatever resourceVersion it names (not a
replay of the history after it), then -- when bookmarks are allowed -- a BOOKMARK annotated
``k8s.io/initial-events-end: "true"`` at the revision of that state, then live events.
``sendInitialEvents=false`` begins with live events only. Checked over HTTP and in-process (the
in-process watch used to ignore the parameter and replay, with no end bookmark).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from atoll.api.kinds import CONFIGMAPS
from atoll.client import Client
from tests.conftest import RunningServer, eventually

pytestmark = pytest.mark.controllers()  # no controllers: nothing else writes ConfigMaps
JSON = dict[str, Any]
NS = "default"


@pytest.fixture
def client(http_or_local: Client) -> Client:
    return http_or_local


def configmap(name: str) -> JSON:
    return {"metadata": {"name": name, "namespace": NS}}


async def take(events: AsyncGenerator[tuple[str, JSON], None], n: int) -> list[tuple[str, JSON]]:
    async with asyncio.timeout(5):
        return [await anext(events) for _ in range(n)]


def summary(got: list[tuple[str, JSON]]) -> list[tuple[str, str | None]]:
    return [(kind, obj["metadata"].get("name")) for kind, obj in got]


@pytest.mark.parametrize("since", ["", "0", "created"])
async def test_initial_events_then_the_end_bookmark_then_live_events(client: Client, since: str) -> None:
    created = await client.create(CONFIGMAPS, configmap("a"))
    changed = await client.patch(CONFIGMAPS, "a", {"data": {"k": "v"}}, NS)
    rv = created["metadata"]["resourceVersion"] if since == "created" else since
    events = client.watch(CONFIGMAPS, NS, resource_version=rv, send_initial_events=True)
    async with contextlib.aclosing(events):
        got = await take(events, 2)
        assert summary(got) == [("ADDED", "a"), ("BOOKMARK", None)]  # the state, not the MODIFIED after rv
        assert got[0][1]["data"] == {"k": "v"}
        end = got[1][1]
        assert end["kind"] == "ConfigMap" and end["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert int(end["metadata"]["resourceVersion"]) >= int(changed["metadata"]["resourceVersion"])
        later = await client.create(CONFIGMAPS, configmap("b"))
        (live,) = await take(events, 1)
    assert summary([live]) == [("ADDED", "b")] and live[1]["metadata"] == later["metadata"]
    assert int(end["metadata"]["resourceVersion"]) < int(later["metadata"]["resourceVersion"])


async def test_no_end_bookmark_without_bookmarks(client: Client) -> None:
    await client.create(CONFIGMAPS, configmap("a"))
    events = client.watch(CONFIGMAPS, NS, resource_version="", send_initial_events=True, allow_bookmarks=False)
    async with contextlib.aclosing(events):
        assert summary(await take(events, 1)) == [("ADDED", "a")]
        await client.create(CONFIGMAPS, configmap("b"))
        assert summary(await take(events, 1)) == [("ADDED", "b")]


async def test_no_initial_events_when_not_asked(client: Client, api_server: RunningServer) -> None:
    assert api_server.node is not None and api_server.node.server is not None
    cache = api_server.node.server.cache
    await client.create(CONFIGMAPS, configmap("a"))
    events = client.watch(CONFIGMAPS, NS, resource_version="", send_initial_events=False, allow_bookmarks=False)
    async with contextlib.aclosing(events):
        watching = cache.watcher_count
        first = asyncio.create_task(take(events, 1))
        await eventually(lambda: cache.watcher_count > watching)  # registered: b is live
        await client.create(CONFIGMAPS, configmap("b"))
        assert summary(await first) == [("ADDED", "b")]  # live only: not a's synthetic ADDED
