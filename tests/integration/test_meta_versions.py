"""Metadata-only and Table answers in the ``meta.k8s.io`` version the client asks for, as
kube-apiserver 1.27 to 1.33 answers them: ``v=v1beta1`` gets ``meta.k8s.io/v1beta1`` objects,
lists, Table rows and watch events, ``v=v1`` stays ``v1``; a conversion the server does not serve
(another version) is passed over for the client's next media range, and 406 when none is left --
before anything is written."""

from __future__ import annotations

import pytest

from atoll.apiserver.cache.entries import LARGE_OBJECT
from tests.integration.kube_http import DOMAINS, JSON, Api, assert_status, configmap, create, domain

pytestmark = pytest.mark.controllers()  # API server semantics only

CMS = "/api/v1/namespaces/default/configmaps"
V1, V1BETA1 = "meta.k8s.io/v1", "meta.k8s.io/v1beta1"


def _accept(kind: str, version: str) -> dict[str, str]:
    return {"Accept": f"application/json;as={kind};g=meta.k8s.io;v={version}"}


def _partial(body: JSON, api_version: str, metadata: JSON) -> None:
    assert body == {"kind": "PartialObjectMetadata", "apiVersion": api_version, "metadata": metadata}, body


async def test_partial_object_metadata_in_the_version_asked(api: Api) -> None:
    small = await create(api, CMS, configmap("small"))
    large = await create(api, CMS, configmap("large", {"k": "x" * (LARGE_OBJECT + 1)}))  # its encoding is kept
    for _ in range(2):  # the second round reads the kept encodings
        for version, api_version in (("v1beta1", V1BETA1), ("v1", V1)):
            for obj in (small, large):
                name = obj["metadata"]["name"]
                reply = await api.get(f"{CMS}/{name}", headers=_accept("PartialObjectMetadata", version))
                assert reply.status == 200, reply
                _partial(reply.body, api_version, obj["metadata"])
            listed = (await api.get(CMS, headers=_accept("PartialObjectMetadataList", version))).body
            assert listed["kind"] == "PartialObjectMetadataList" and listed["apiVersion"] == api_version, listed
            assert {i["apiVersion"] for i in listed["items"]} == {api_version}
            assert {i["metadata"]["name"] for i in listed["items"]} == {"small", "large"}
    written = await api.post(CMS, configmap("written"), headers=_accept("PartialObjectMetadata", "v1beta1"))
    assert written.status == 201 and written.body["apiVersion"] == V1BETA1, written
    assert written.body["metadata"]["name"] == "written" and "data" not in written.body


async def test_tables_in_the_version_asked(api: Api) -> None:
    await create(api, CMS, configmap("t1"))
    for _ in range(2):  # the second LIST reuses the rows kept encoded per version
        for version, api_version in (("v1beta1", V1BETA1), ("v1", V1)):
            for path in (CMS, f"{CMS}/t1"):
                table = (await api.get(path, headers=_accept("Table", version))).body
                assert table["kind"] == "Table" and table["apiVersion"] == api_version, table
                (row,) = table["rows"]
                assert row["cells"][0] == "t1"
                assert row["object"]["kind"] == "PartialObjectMetadata" and row["object"]["apiVersion"] == api_version


async def test_watch_events_in_the_version_asked(api: Api) -> None:
    await create(api, DOMAINS, domain("alice"))
    streams = [
        await api.watch(DOMAINS, {"resourceVersion": "0"}, headers=_accept(kind, "v1beta1"))
        for kind in ("PartialObjectMetadataList", "PartialObjectMetadata", "Table")
    ]
    v1 = await api.watch(DOMAINS, {"resourceVersion": "0"}, headers=_accept("PartialObjectMetadata", "v1"))
    try:
        await create(api, DOMAINS, domain("bob"))
        for stream in streams:
            events = await stream.collect(2)
            assert [e["type"] for e in events] == ["ADDED", "ADDED"], events
            for event in events:
                obj = event["object"]
                assert obj["apiVersion"] == V1BETA1, obj
                if obj["kind"] == "Table":
                    assert obj["rows"][0]["object"]["apiVersion"] == V1BETA1
                else:
                    assert obj["kind"] == "PartialObjectMetadata" and "spec" not in obj
        assert [e["object"]["apiVersion"] for e in await v1.collect(2)] == [V1, V1]
    finally:
        for stream in [*streams, v1]:
            await stream.close()


async def test_a_version_not_served_is_passed_over_then_406(api: Api) -> None:
    await create(api, CMS, configmap("u1"))
    for kind in ("PartialObjectMetadata", "PartialObjectMetadataList", "Table"):
        unserved = _accept(kind, "v2")["Accept"]
        for path in (f"{CMS}/u1", CMS):
            reply = await api.get(path, headers={"Accept": unserved})
            status = assert_status(reply, 406, "NotAcceptable")
            assert "application/json, application/yaml" in status["message"]
        fallback = await api.get(f"{CMS}/u1", headers={"Accept": unserved + ", application/json"})
        assert fallback.status == 200 and fallback.body["kind"] == "ConfigMap", fallback  # the next range
        watch = await api.get(CMS, params={"watch": "true"}, headers={"Accept": unserved})
        assert_status(watch, 406, "NotAcceptable")
    other_group = await api.get(f"{CMS}/u1", headers={"Accept": "application/json;as=Table;g=example.com;v=v1"})
    assert_status(other_group, 406, "NotAcceptable")
    for _ in range(2):  # the second GET of a learnt path (the fast path) negotiates the same
        no_kind = await api.get(f"{CMS}/u1", headers={"Accept": "application/json;g=meta.k8s.io;v=v1"})
        assert_status(no_kind, 406, "NotAcceptable")  # a conversion without ``as``: passed over, as kube
        charset = await api.get(f"{CMS}/u1", headers={"Accept": "application/json; charset=utf-8"})
        assert charset.status == 200 and charset.body["kind"] == "ConfigMap"
    refused = await api.post(CMS, configmap("u2"), headers=_accept("PartialObjectMetadata", "v2"))
    assert_status(refused, 406, "NotAcceptable")
    assert (await api.get(f"{CMS}/u2")).status == 404  # refused before anything was written
