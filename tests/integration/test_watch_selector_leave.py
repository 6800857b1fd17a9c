"""A watched object that stops matching the watch's selector: kube-apiserver's cacher
(``cacheWatcher.convertToWatchEvent``) sends DELETED with the *previous* object's content (the
state the watcher last saw match) and the event's resourceVersion. Checked over HTTP and
in-process, through each fan-out path of the watch cache: a label selector (filtered watcher), a
field selector pinning ``spec.nodeName`` plus a label selector (indexed and filtered), and
``spec.nodeName=`` alone (indexed, unfiltered: the scheduler's watch of unbound pods). Each watch
starts at resourceVersion 0 and takes its synthetic ADDED first, so the change is fanned out live
(not replayed from the history, which a watch from the create's resourceVersion would do)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from atoll.api.kinds import CONFIGMAPS, PODS
from atoll.client import Client
from atoll.client.paths import METADATA_ONLY

pytestmark = pytest.mark.controllers()  # no scheduler: nothing else writes the pods
JSON = dict[str, Any]
NS = "default"


@pytest.fixture
def client(http_or_local: Client) -> Client:
    """Each test runs over HTTP and in-process."""
    return http_or_local


def pod(name: str, node: str | None = None, **labels: str) -> JSON:
    spec: JSON = {"containers": [{"name": "c", "image": "busybox"}]}
    if node is not None:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": spec}


async def one(events: AsyncGenerator[tuple[str, JSON], None], kind: str = "") -> tuple[str, JSON]:
    """The next event (of ``kind`` when given: asserted)."""
    async with asyncio.timeout(5):
        got = await anext(events)
    assert not kind or got[0] == kind, got
    return got


def rv(obj: JSON) -> str:
    return str(obj["metadata"]["resourceVersion"])


async def test_label_selector_leave_sends_the_previous_content(client: Client) -> None:
    created = await client.create(CONFIGMAPS, {"metadata": {"name": "l", "namespace": NS, "labels": {"app": "a"}},
                                               "data": {"k": "old"}})
    events = client.watch(CONFIGMAPS, NS, resource_version="0", label_selector="app=a")
    async with contextlib.aclosing(events):
        await one(events, "ADDED")  # registered: what follows is fanned out live
        left = await client.patch(CONFIGMAPS, "l", {"metadata": {"labels": {"app": "b"}}, "data": {"k": "new"}}, NS)
        kind, obj = await one(events)
    assert kind == "DELETED"
    assert obj["metadata"]["labels"] == {"app": "a"} and obj["data"] == {"k": "old"}  # what last matched
    assert rv(obj) == rv(left) != rv(created)  # at the event's revision
    replayed = client.watch(CONFIGMAPS, NS, resource_version=rv(created), label_selector="app=a")
    async with contextlib.aclosing(replayed):  # the same from the history
        assert await one(replayed) == (kind, obj)


async def test_metadata_only_leave_sends_the_previous_metadata(client: Client) -> None:
    created = await client.create(CONFIGMAPS, {"metadata": {"name": "m", "namespace": NS, "labels": {"app": "a"}}})
    assert created["metadata"]["labels"] == {"app": "a"}
    events = client.watch(CONFIGMAPS, NS, resource_version="0", label_selector="app=a", headers=METADATA_ONLY)
    async with contextlib.aclosing(events):
        await one(events, "ADDED")
        left = await client.patch(CONFIGMAPS, "m", {"metadata": {"labels": {"app": "b"}}}, NS)
        kind, obj = await one(events)
    assert kind == "DELETED" and obj["kind"] == "PartialObjectMetadata"
    assert obj["metadata"]["labels"] == {"app": "a"} and rv(obj) == rv(left)


async def test_indexed_and_filtered_leave_sends_the_previous_content(client: Client) -> None:
    created = await client.create(PODS, pod("f", "n1", app="a"))
    assert created["spec"]["nodeName"] == "n1"
    events = client.watch(PODS, NS, resource_version="0", label_selector="app=a", field_selector="spec.nodeName=n1")
    async with contextlib.aclosing(events):
        await one(events, "ADDED")
        left = await client.patch(PODS, "f", {"metadata": {"labels": {"app": "b"}}}, NS)
        kind, obj = await one(events)
    assert kind == "DELETED" and obj["metadata"]["labels"] == {"app": "a"} and rv(obj) == rv(left)


async def test_pinned_leave_sends_the_previous_content(client: Client) -> None:
    """The scheduler's watch (``spec.nodeName=``): a bound pod leaves it, unbound as last seen."""
    created = await client.create(PODS, pod("p", app="a"))
    assert "nodeName" not in created["spec"]
    events = client.watch(PODS, NS, resource_version="0", field_selector="spec.nodeName=")
    async with contextlib.aclosing(events):
        await one(events, "ADDED")
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "namespace": NS},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
        await client.create(PODS, binding, NS, subresource="binding")
        bound = await client.get(PODS, "p", NS)
        kind, obj = await one(events)
    assert bound["spec"]["nodeName"] == "n1"
    assert kind == "DELETED" and not obj["spec"].get("nodeName") and rv(obj) == rv(bound)
