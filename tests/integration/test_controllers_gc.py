"""The garbage collector against a real in-process master (API server + controller manager).

Aspects, one test each: Background propagation (dependents go after the owner), Foreground (the
owner stays with a deletionTimestamp until its blocking dependents are gone), Orphan (dependents
stay, without the ownerReference), a dependent with two owners survives until both are gone, a
dangling reference on a new object is collected, and a CRD created while the collector runs is
monitored (its objects can own and be collected).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from atoll.api.errors import NotFound
from atoll.api.kinds import CONFIGMAPS, PODS, kind
from atoll.api.registry import ResourceDef
from atoll.client import Client
from tests.conftest import RunningServer, eventually
from tests.integration.controllers import collector_saw

pytestmark = pytest.mark.controllers("namespace", "garbagecollector")
JSON = dict[str, Any]
NS = "default"
TIMEOUT = 30.0
CRDS = kind("apiextensions.k8s.io", "customresourcedefinitions")



@pytest.fixture
async def client(api_server: RunningServer) -> AsyncIterator[Client]:
    async with api_server.client() as c:
        yield c


def owner_ref(owner: JSON, *, block: bool = True) -> JSON:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    }


async def make_cm(client: Client, name: str, *owners: JSON, finalizers: tuple[str, ...] = ()) -> JSON:
    meta: JSON = {"name": name, "ownerReferences": [owner_ref(o) for o in owners]}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    obj = await client.create(CONFIGMAPS, {"metadata": meta, "data": {"k": "v"}}, NS)
    obj.setdefault("apiVersion", "v1")
    obj.setdefault("kind", "ConfigMap")
    return obj


async def make_pod(client: Client, name: str, *owners: JSON) -> JSON:
    body = {
        "metadata": {"name": name, "ownerReferences": [owner_ref(o) for o in owners]},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]},
    }
    return await client.create(PODS, body, NS)


async def exists(client: Client, rd: ResourceDef, name: str) -> bool:
    try:
        await client.get(rd, name, NS)
    except NotFound:
        return False
    return True


async def gone(client: Client, rd: ResourceDef, *names: str) -> bool:
    return not any([await exists(client, rd, n) for n in names])


async def test_background_deletes_dependents_after_owner(api_server: RunningServer, client: Client) -> None:
    owner = await make_cm(client, "owner")
    dep_cm = await make_cm(client, "dep-cm", owner)
    dep_pod = await make_pod(client, "dep-pod", owner)
    unrelated = await make_cm(client, "unrelated")
    await collector_saw(api_server, owner, dep_cm, dep_pod, unrelated)  # and left live owners' dependents alone
    assert await exists(client, CONFIGMAPS, "dep-cm")

    await client.delete(CONFIGMAPS, "owner", NS, propagation_policy="Background")
    assert not await exists(client, CONFIGMAPS, "owner")  # the owner goes first, at once
    await eventually(lambda: gone(client, CONFIGMAPS, "dep-cm"), TIMEOUT)  # the dependent ConfigMap is deleted
    await eventually(lambda: gone(client, PODS, "dep-pod"), TIMEOUT)  # the dependent Pod is deleted
    assert await exists(client, CONFIGMAPS, unrelated["metadata"]["name"])


async def test_foreground_keeps_owner_until_dependents_are_gone(api_server: RunningServer, client: Client) -> None:
    owner = await make_cm(client, "owner")
    # a held dependent: the owner must wait for it even after the collector deleted it
    await make_cm(client, "held", owner, finalizers=("example.com/hold",))
    await make_pod(client, "dep-pod", owner)

    marked = await client.delete(CONFIGMAPS, "owner", NS, propagation_policy="Foreground")
    assert marked["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in marked["metadata"]["finalizers"]
    await eventually(lambda: gone(client, PODS, "dep-pod"), TIMEOUT)  # the dependent Pod is deleted

    async def held_marked() -> bool:
        return bool((await client.get(CONFIGMAPS, "held", NS))["metadata"].get("deletionTimestamp"))

    await eventually(held_marked, TIMEOUT)  # the held dependent is marked for deletion
    await collector_saw(api_server)
    still = await client.get(CONFIGMAPS, "owner", NS)
    assert still["metadata"]["deletionTimestamp"]
    assert still["metadata"]["finalizers"] == ["foregroundDeletion"]

    await client.patch(CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, NS)
    await eventually(lambda: gone(client, CONFIGMAPS, "held", "owner"), TIMEOUT)  # owner after dependents


async def test_orphan_keeps_dependents_without_the_reference(api_server: RunningServer, client: Client) -> None:
    owner = await make_cm(client, "owner")
    other = await make_cm(client, "other-owner")
    await make_cm(client, "dep-cm", owner)
    await make_pod(client, "dep-pod", owner, other)

    marked = await client.delete(CONFIGMAPS, "owner", NS, propagation_policy="Orphan")
    assert "orphan" in marked["metadata"]["finalizers"]
    await eventually(lambda: gone(client, CONFIGMAPS, "owner"), TIMEOUT)  # the owner is deleted

    dep_cm = await client.get(CONFIGMAPS, "dep-cm", NS)
    assert not dep_cm["metadata"].get("ownerReferences")
    dep_pod = await client.get(PODS, "dep-pod", NS)
    assert [r["uid"] for r in dep_pod["metadata"]["ownerReferences"]] == [other["metadata"]["uid"]]
    await collector_saw(api_server, dep_cm, dep_pod)
    assert await exists(client, CONFIGMAPS, "dep-cm")
    assert await exists(client, PODS, "dep-pod")


async def test_dependent_with_two_owners_survives_until_both_are_gone(
    api_server: RunningServer, client: Client
) -> None:
    first = await make_cm(client, "first")
    second = await make_cm(client, "second")
    await make_cm(client, "shared", first, second)

    await client.delete(CONFIGMAPS, "first", NS)

    async def only_second_left() -> bool:
        refs = (await client.get(CONFIGMAPS, "shared", NS))["metadata"].get("ownerReferences") or []
        return [r["uid"] for r in refs] == [second["metadata"]["uid"]]

    await eventually(only_second_left, TIMEOUT)  # the dangling reference to the first owner is removed
    await collector_saw(api_server)
    assert await exists(client, CONFIGMAPS, "shared")

    await client.delete(CONFIGMAPS, "second", NS)
    await eventually(lambda: gone(client, CONFIGMAPS, "shared"), TIMEOUT)  # the shared dependent is deleted


async def test_dangling_reference_on_a_new_object_is_collected(client: Client) -> None:
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "no-such-uid"}}
    await make_cm(client, "orphaned", ghost)
    await eventually(lambda: gone(client, CONFIGMAPS, "orphaned"), TIMEOUT)  # its owner never existed


def widget_crd() -> JSON:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


async def test_crd_created_while_running_is_collected(client: Client) -> None:
    await client.create(CRDS, widget_crd())

    async def served() -> bool:
        client.invalidate_discovery()
        try:
            await client.discover("example.com/v1", "Widget")
        except NotFound:
            return False
        return True

    await eventually(served, TIMEOUT)  # the Widget CRD is served
    widgets = await client.discover("example.com/v1", "Widget")
    owner = await client.create(widgets, {"metadata": {"name": "w"}, "spec": {}}, NS)
    owner.setdefault("apiVersion", "example.com/v1")
    owner.setdefault("kind", "Widget")
    await client.create(
        widgets, {"metadata": {"name": "w-child", "ownerReferences": [owner_ref(owner)]}, "spec": {}}, NS
    )
    await make_cm(client, "w-cm", owner)

    # foreground needs the collector to *observe* the Widget's finalizer: only a monitor started
    # after the CRD appeared can do that
    await client.delete(widgets, "w", NS, propagation_policy="Foreground")
    await eventually(lambda: gone(client, widgets, "w", "w-child"), TIMEOUT)  # the Widget and its child Widget go
    assert await gone(client, CONFIGMAPS, "w-cm")
