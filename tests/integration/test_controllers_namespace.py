"""The namespace controller against a real in-process master (API server + controller manager).

Aspects: deleting a namespace removes its built-in and custom content and then the namespace
itself (a watch sees ``DELETED``); an object whose finalizer is never removed keeps the
namespace Terminating with explanatory conditions until the finalizer goes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from atoll.api.errors import NotFound
from atoll.api.kinds import CONFIGMAPS, NAMESPACES, PODS, SECRETS, kind
from atoll.client import Client
from tests.conftest import RunningServer, eventually
from tests.integration.controllers import reconciles, settled

pytestmark = pytest.mark.controllers("namespace", "garbagecollector")
JSON = dict[str, Any]
DOMAINROUTES = kind("kuscia.secretflow", "domainroutes")
TIMEOUT = 30.0



@pytest.fixture
async def client(api_server: RunningServer) -> AsyncIterator[Client]:
    async with api_server.client() as c:
        yield c


def domainroute(name: str) -> JSON:
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "DomainRoute",
        "metadata": {"name": name},
        "spec": {"source": "alice", "destination": "bob", "authenticationType": "None"},
    }


async def populate(client: Client, ns: str) -> None:
    await client.create(NAMESPACES, {"metadata": {"name": ns}})
    await client.create(CONFIGMAPS, {"metadata": {"name": "cm"}, "data": {"k": "v"}}, ns)
    await client.create(SECRETS, {"metadata": {"name": "s"}, "stringData": {"k": "v"}}, ns)
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}
    await client.create(PODS, pod, ns)
    await client.create(DOMAINROUTES, domainroute("alice-bob"), ns)


async def wait_deleted(client: Client, ns: str, resource_version: str) -> None:
    """Watch the namespace until its DELETED event (what ``kubectl delete ns`` waits for)."""
    stream = client.watch(NAMESPACES, resource_version=resource_version, field_selector=f"metadata.name={ns}")
    async with asyncio.timeout(TIMEOUT), contextlib.aclosing(stream) as events:
        async for event, obj in events:
            if event == "DELETED" and obj["metadata"]["name"] == ns:
                return
    raise AssertionError("watch ended without DELETED")


async def test_namespace_deletion_removes_content_then_namespace(client: Client) -> None:
    await populate(client, "team-a")
    await client.create(CONFIGMAPS, {"metadata": {"name": "cm"}, "data": {}}, "default")
    marked = await client.delete(NAMESPACES, "team-a")
    assert marked["status"]["phase"] == "Terminating"
    await wait_deleted(client, "team-a", marked["metadata"]["resourceVersion"])

    with pytest.raises(NotFound):
        await client.get(NAMESPACES, "team-a")
    for rd in (CONFIGMAPS, SECRETS, PODS, DOMAINROUTES):
        items, _ = await client.list_all(rd, "team-a")
        assert items == [], rd.plural
    await client.get(CONFIGMAPS, "cm", "default")  # other namespaces are untouched


async def test_finalizer_blocks_namespace_removal(api_server: RunningServer, client: Client) -> None:
    await populate(client, "team-b")
    held = {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {}}
    await client.create(CONFIGMAPS, held, "team-b")
    await client.delete(NAMESPACES, "team-b")

    async def conditions() -> dict[str, JSON]:
        ns = await client.get(NAMESPACES, "team-b")
        return {c["type"]: c for c in (ns.get("status") or {}).get("conditions") or ()}

    async def finalizers_remaining() -> dict[str, JSON]:
        found = await conditions()
        assert found.get("NamespaceFinalizersRemaining", {}).get("status") == "True", found
        return found

    found = await eventually(finalizers_remaining, TIMEOUT)
    assert "example.com/hold in 1 resource instances" in found["NamespaceFinalizersRemaining"]["message"]
    assert found["NamespaceContentRemaining"]["status"] == "True"
    assert "configmaps has 1 resource instances" in found["NamespaceContentRemaining"]["message"]
    assert found["NamespaceDeletionContentFailure"]["status"] == "False"

    # everything else is gone; the held ConfigMap only has a deletionTimestamp
    for rd in (SECRETS, PODS, DOMAINROUTES):
        items, _ = await client.list_all(rd, "team-b")
        assert items == [], rd.plural
    cm = await client.get(CONFIGMAPS, "held", "team-b")
    assert cm["metadata"]["deletionTimestamp"]
    await settled(api_server, "namespace", reconciles("namespace"), within=TIMEOUT)  # it looked again: still held
    ns = await client.get(NAMESPACES, "team-b")
    assert ns["status"]["phase"] == "Terminating"

    await client.patch(CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, "team-b")
    await wait_deleted(client, "team-b", ns["metadata"]["resourceVersion"])
