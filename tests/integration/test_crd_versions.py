"""A CRD with several versions (conversion strategy ``None``), as kube-apiserver serves it.

A write at any served version is stored at the storage version and answered at the request's;
every read (GET, the plain GET's fast path, LIST, Tables with the objects, WATCH, the master's
in-process reads) shows the object at the version asked for. Patches see the object at the
request's version; a no-op PUT at another version stores nothing. After the storage version
changes, objects stored at the old one are still served at both versions (storedVersions keeps
both); a version leaves ``spec.versions`` only once ``storedVersions`` no longer names it.
(Conversion webhooks: ``test_crd_conversion_webhook.py``.)
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from atoll.api.registry import ResourceDef
from tests.conftest import RunningServer
from tests.integration.kube_http import Api, assert_status

JSON = dict[str, Any]
GROUP = "conv.example.com"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"

pytestmark = pytest.mark.controllers()  # the API server's own semantics: no controllers

_SCHEMA = {
    "openAPIV3Schema": {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        },
    }
}


def _version(name: str, storage: bool) -> JSON:
    return {
        "name": name,
        "served": True,
        "storage": storage,
        "subresources": {"status": {}},
        "schema": copy.deepcopy(_SCHEMA),
    }


def gizmo_crd(group: str, versions: list[JSON], **spec: Any) -> JSON:
    """The Gizmo CRD of ``group`` with ``versions`` (and more of its ``spec``, e.g. ``conversion``)."""
    names = {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo", "listKind": "GizmoList"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gizmos.{group}"},
        "spec": {"group": group, "scope": "Namespaced", "names": names, "versions": versions, **spec},
    }


def gizmo_path(group: str, version: str, name: str = "") -> str:
    base = f"/apis/{group}/{version}/namespaces/default/gizmos"
    return f"{base}/{name}" if name else base


async def stored_gizmo(server: RunningServer, group: str, name: str) -> JSON:
    """The object as stored (read from the store itself)."""
    assert server.node is not None and server.node.server is not None
    kv = await server.node.server.store.get(f"/{group}/gizmos/default/{name}")
    assert kv is not None
    out: JSON = orjson.loads(kv.value)
    return out


GIZMO_CRD = gizmo_crd(GROUP, [_version("v1beta1", False), _version("v1", True)])


def path(version: str, name: str = "") -> str:
    return gizmo_path(GROUP, version, name)


def gizmo(version: str, name: str, size: int = 1) -> JSON:
    return {"apiVersion": f"{GROUP}/{version}", "kind": "Gizmo", "metadata": {"name": name}, "spec": {"size": size}}


async def stored_version(server: RunningServer, name: str) -> str:
    """The apiVersion of the object as stored (read from the store itself)."""
    return str((await stored_gizmo(server, GROUP, name))["apiVersion"])


async def served_versions(api: Api, name: str) -> dict[str, str]:
    """The apiVersion a GET (twice: the second is answered by the plain GET's fast path) and a
    LIST at each version show for ``name``."""
    out = {}
    for version in ("v1beta1", "v1"):
        for _ in range(2):
            got = await api.get(path(version, name))
            assert got.status == 200, got
            assert got.json["apiVersion"] == f"{GROUP}/{version}"
        listed = (await api.get(path(version))).json
        assert listed["apiVersion"] == f"{GROUP}/{version}"
        (item,) = [i for i in listed["items"] if i["metadata"]["name"] == name]
        out[version] = item["apiVersion"]
    return out


async def install(api: Api) -> None:
    reply = await api.post(CRDS, GIZMO_CRD)
    assert reply.status == 201, reply


async def test_writes_are_stored_at_the_storage_version_and_served_at_the_requested_one(
    api: Api, api_server: RunningServer
) -> None:
    await install(api)
    watches = {v: await api.watch(path(v), {"resourceVersion": "0"}) for v in ("v1beta1", "v1")}
    created = await api.post(path("v1beta1"), gizmo("v1beta1", "g1"))
    assert created.status == 201, created
    assert created.json["apiVersion"] == f"{GROUP}/v1beta1"
    assert await stored_version(api_server, "g1") == f"{GROUP}/v1"
    assert await served_versions(api, "g1") == {"v1beta1": f"{GROUP}/v1beta1", "v1": f"{GROUP}/v1"}

    # Tables holding the objects, a GET's and a LIST's
    for version in ("v1beta1", "v1"):
        params = {"includeObject": "Object"}
        one = (await api.get(path(version, "g1"), params=params, headers={"Accept": TABLE})).json
        assert one["rows"][0]["object"]["apiVersion"] == f"{GROUP}/{version}"
        many = (await api.get(path(version), params=params, headers={"Accept": TABLE})).json
        assert [r["object"]["apiVersion"] for r in many["rows"]] == [f"{GROUP}/{version}"]

    # a JSON patch sees the object at the request's version; PUT and merge patch at either
    test_op = [
        {"op": "test", "path": "/apiVersion", "value": f"{GROUP}/v1beta1"},
        {"op": "replace", "path": "/spec/size", "value": 2},
    ]
    patched = await api.patch(path("v1beta1", "g1"), test_op, "json")
    assert patched.status == 200, patched
    assert patched.json["apiVersion"] == f"{GROUP}/v1beta1" and patched.json["spec"]["size"] == 2
    current = (await api.get(path("v1", "g1"))).json
    put = await api.put(path("v1", "g1"), {**current, "spec": {"size": 3}})
    assert put.status == 200 and put.json["apiVersion"] == f"{GROUP}/v1", put
    merged = await api.patch(path("v1", "g1"), {"spec": {"size": 4}})
    assert merged.status == 200 and merged.json["apiVersion"] == f"{GROUP}/v1", merged
    assert await stored_version(api_server, "g1") == f"{GROUP}/v1"

    # a PUT at v1beta1 of the object as read there changes nothing, so nothing is stored
    as_beta = (await api.get(path("v1beta1", "g1"))).json
    same = await api.put(path("v1beta1", "g1"), as_beta)
    assert same.status == 200, same
    assert same.json == as_beta

    # the status subresource at v1beta1
    status = await api.put(path("v1beta1", "g1") + "/status", {**as_beta, "status": {"ready": True}})
    assert status.status == 200, status
    assert status.json["apiVersion"] == f"{GROUP}/v1beta1" and status.json["status"] == {"ready": True}
    assert (await api.get(path("v1beta1", "g1") + "/status")).json["apiVersion"] == f"{GROUP}/v1beta1"
    assert await stored_version(api_server, "g1") == f"{GROUP}/v1"

    # every watch event at the watch's version
    for version, stream in watches.items():
        events = await stream.collect(5)
        assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "MODIFIED"]
        assert {e["object"]["apiVersion"] for e in events} == {f"{GROUP}/{version}"}
        await stream.close()

    # server-side apply at v1beta1
    applied = await api.patch(
        path("v1beta1", "g1"), gizmo("v1beta1", "g1", 6), "apply", params={"fieldManager": "t", "force": "true"}
    )
    assert applied.status == 200, applied
    assert applied.json["apiVersion"] == f"{GROUP}/v1beta1" and applied.json["spec"] == {"size": 6}
    assert await stored_version(api_server, "g1") == f"{GROUP}/v1"

    deleted = await api.delete(path("v1beta1", "g1"))
    assert deleted.status == 200, deleted
    assert deleted.json["apiVersion"] == f"{GROUP}/v1beta1"


async def test_objects_stored_at_an_earlier_storage_version_are_served_at_every_version(
    api: Api, api_server: RunningServer
) -> None:
    await install(api)
    assert (await api.post(path("v1"), gizmo("v1", "old"))).status == 201
    crd = (await api.get(f"{CRDS}/gizmos.{GROUP}")).json
    crd["spec"]["versions"][0]["storage"], crd["spec"]["versions"][1]["storage"] = True, False
    switched = await api.put(f"{CRDS}/gizmos.{GROUP}", crd)
    assert switched.status == 200, switched
    assert switched.json["status"]["storedVersions"] == ["v1", "v1beta1"]
    assert (await api.get(f"/apis/{GROUP}")).json["preferredVersion"]["version"] == "v1"  # as kube: not storage

    assert (await api.post(path("v1"), gizmo("v1", "new"))).status == 201
    assert await stored_version(api_server, "old") == f"{GROUP}/v1"
    assert await stored_version(api_server, "new") == f"{GROUP}/v1beta1"
    for name in ("old", "new"):
        assert await served_versions(api, name) == {"v1beta1": f"{GROUP}/v1beta1", "v1": f"{GROUP}/v1"}
    for version in ("v1beta1", "v1"):
        stream = await api.watch(path(version), {"resourceVersion": "0"})
        events = await stream.collect(2)
        await stream.close()
        assert {e["object"]["apiVersion"] for e in events} == {f"{GROUP}/{version}"}
        params = {"resourceVersion": "0", "includeObject": "Object"}
        stream = await api.watch(path(version), params, headers={"Accept": TABLE})
        tables = await stream.collect(2)
        await stream.close()
        assert {t["object"]["rows"][0]["object"]["apiVersion"] for t in tables} == {f"{GROUP}/{version}"}

    # rewriting the old object stores it at the new storage version
    assert (await api.patch(path("v1", "old"), {"spec": {"size": 5}})).status == 200
    assert await stored_version(api_server, "old") == f"{GROUP}/v1beta1"

    # v1 may leave spec.versions only once it is no longer in status.storedVersions
    crd = (await api.get(f"{CRDS}/gizmos.{GROUP}")).json
    crd["spec"]["versions"] = crd["spec"]["versions"][:1]
    refused = assert_status(await api.put(f"{CRDS}/gizmos.{GROUP}", crd), 422, "Invalid")
    assert [c["field"] for c in refused["details"]["causes"]] == ["status.storedVersions[0]"]
    migrated = (await api.get(f"{CRDS}/gizmos.{GROUP}")).json
    migrated["status"]["storedVersions"] = ["v1beta1"]
    assert (await api.put(f"{CRDS}/gizmos.{GROUP}/status", migrated)).status == 200
    crd["metadata"].pop("resourceVersion")
    assert (await api.put(f"{CRDS}/gizmos.{GROUP}", crd)).status == 200
    assert (await api.get(path("v1beta1", "old"))).json["apiVersion"] == f"{GROUP}/v1beta1"
    assert_status(await api.get(path("v1", "old")), 404)


async def test_in_process_reads_convert(api: Api, api_server: RunningServer) -> None:
    await install(api)
    assert (await api.post(path("v1"), gizmo("v1", "g1"))).status == 201
    assert api_server.node is not None
    async with api_server.node.client() as local:
        assert local.local is not None
        for version in ("v1beta1", "v1"):
            rd = ResourceDef(GROUP, version, "Gizmo", "gizmos", "gizmo", True, builtin=False)
            assert (await local.get(rd, "g1", "default"))["apiVersion"] == f"{GROUP}/{version}"
            listed = await local.list(rd, "default")
            assert [i["apiVersion"] for i in listed["items"]] == [f"{GROUP}/{version}"]
            events = local.watch(rd, "default", resource_version="0")
            kind, obj = await anext(events)
            await events.aclose()
            assert (kind, obj["apiVersion"]) == ("ADDED", f"{GROUP}/{version}")
