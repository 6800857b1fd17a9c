"""A pod deleted gracefully and recreated under the same name at once (a StatefulSet's pod): a
watch by ``metadata.name`` sees the old pod's DELETED before the new pod's ADDED, both live and
replayed from the deletion mark's resourceVersion, and a LIST at resourceVersion 0 shows the new
pod. This is what ``kubectl delete``'s wait needs from the server; kubectl before 1.36 still hangs
when the recreate falls between its GET and its LIST (it lists the new pod and waits for a DELETED
that already happened — kubernetes/kubernetes a14f528ffe), which no server answer can change.
Real in-process server on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from atoll.api.builtins import BUILTINS
from atoll.apiserver.app import APIServer
from atoll.apiserver.cache.watchcache import WatchEvent
from atoll.apiserver.registry import lists
from atoll.apiserver.registry.storage import WriteOptions
from tests.integration.inprocess import in_process_server

PODS = next(r for r in BUILTINS if r.plural == "pods" and r.group == "")
OPTS = WriteOptions(field_manager="test")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[APIServer]:
    async with in_process_server(tmp_path) as srv:
        yield srv


def _pod() -> dict[str, Any]:
    return {"metadata": {"name": "db-1"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}


def _seen(events: list[WatchEvent]) -> list[tuple[str, str]]:
    return [(ev.type, ev.current.obj["metadata"]["uid"]) for ev in events]


async def test_same_name_recreate_is_seen_deleted_then_added(server: APIServer) -> None:
    old = await server.objects.create(PODS, "ns", _pod(), OPTS)
    await server.objects.create(PODS, "ns", {**_pod(), "metadata": {"name": "db-10"}}, OPTS)  # not selected
    by_name = lists.make_matcher(PODS, "", "metadata.name=db-1")
    prefix = PODS.key("ns", "")
    marked, finished = await server.objects.delete(PODS, "ns", "db-1", {}, OPTS)
    assert not finished  # on a node: marked, as kubectl's DELETE answers
    mark_rv = int(marked["metadata"]["resourceVersion"])
    live, initial = server.cache.watch(prefix, by_name, mark_rv)
    assert initial == []

    _, finished = await server.objects.delete(PODS, "ns", "db-1", {"gracePeriodSeconds": 0}, OPTS)  # the agent
    assert finished
    new = await server.objects.create(PODS, "ns", _pod(), OPTS)  # the StatefulSet controller
    await server.objects.delete(PODS, "ns", "db-10", {"gracePeriodSeconds": 0}, OPTS)
    expected = [("DELETED", old["metadata"]["uid"]), ("ADDED", new["metadata"]["uid"])]

    queued = []
    while not live.queue.empty():
        event = live.queue.get_nowait()
        assert event is not None
        queued.append(event)
    assert _seen(queued) == expected
    server.cache.stop(live)
    replay, replayed = server.cache.watch(prefix, by_name, mark_rv)
    server.cache.stop(replay)
    assert _seen(replayed) == expected
    assert replayed[0].revision < replayed[1].revision

    page = await lists.list_page(
        server.store, server.cache, PODS, "ns", matcher=by_name, limit=500, continue_token="", exact_name="db-1"
    )
    assert [c.obj["metadata"]["uid"] for c in page.items] == [new["metadata"]["uid"]]
