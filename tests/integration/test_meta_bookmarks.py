"""BOOKMARK events of metadata-only and Table watches, and the kind a metadata-only answer asks
for, as kube-apiserver 1.27 to 1.33 serves them.

kube-apiserver's watch encoder transforms every event's object, a bookmark's too: a metadata-only
watch's bookmark is a ``PartialObjectMetadata`` (in the ``meta.k8s.io`` version asked for) carrying
its ``resourceVersion`` and the ``initial-events-end`` annotation (client-go's metadata informers
decode it as such), and a Table watch's is the one-row Table of the bookmark object (the Table's
``resourceVersion`` the bookmark's; the row's object its ``PartialObjectMetadata``). Atoll used to
send the resource's own kind in both. ``as=PartialObjectMetadataList`` on one object and
``as=PartialObjectMetadata`` on a LIST are 406 ``NotAcceptable`` (kube's ``asPartialObjectMetadata``
/ ``asPartialObjectMetadataList``, after the read: a later ``Accept`` range is not tried, a missing
object is still 404); Atoll used to answer both.
"""

from __future__ import annotations

import pytest

from atoll.apiserver.http.watch import WatchStreamSettings
from tests.conftest import RunningServer
from tests.integration.kube_http import DOMAINS, JSON, Api, WatchStream, assert_status, configmap, create, domain

pytestmark = pytest.mark.controllers()  # API server semantics only: nothing else writes ConfigMaps

CMS = "/api/v1/namespaces/default/configmaps"
END = {"k8s.io/initial-events-end": "true"}
CONVERSIONS = [("PartialObjectMetadata", "v1"), ("PartialObjectMetadata", "v1beta1"), ("Table", "v1"),
               ("Table", "v1beta1")]


def _accept(kind: str, version: str) -> dict[str, str]:
    return {"Accept": f"application/json;as={kind};g=meta.k8s.io;v={version}"}


async def _next(stream: WatchStream) -> JSON:
    event = await stream.next()
    assert event is not None, "the watch ended"
    return event


def _bookmark_metadata(obj: JSON, kind: str, version: str, *, first: bool) -> JSON:
    """The bookmark object's metadata, once its shape is checked as kube-apiserver's for ``kind``."""
    api_version = "meta.k8s.io/" + version
    if kind == "PartialObjectMetadata":
        assert obj["kind"] == "PartialObjectMetadata" and obj["apiVersion"] == api_version, obj
        assert set(obj) == {"kind", "apiVersion", "metadata"}, obj
        md: JSON = obj["metadata"]
        return md
    assert obj["kind"] == "Table" and obj["apiVersion"] == api_version, obj
    assert (obj["columnDefinitions"] is not None) is first, obj  # the column definitions in the first event only
    (row,) = obj["rows"]
    assert row["cells"][0] == "", row  # the row of an object with no name (kube prints the empty bookmark object)
    partial = row["object"]
    assert partial["kind"] == "PartialObjectMetadata" and partial["apiVersion"] == api_version, partial
    assert obj["metadata"] == {"resourceVersion": partial["metadata"]["resourceVersion"]}, obj
    md = partial["metadata"]
    return md


@pytest.fixture
def quick_bookmarks(api_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bookmark every 0.2 s on the watches that ask for them."""
    assert api_server.node is not None and api_server.node.server is not None
    monkeypatch.setattr(api_server.node.server.resources, "watch_settings", WatchStreamSettings(bookmark_interval=0.2))


@pytest.mark.parametrize(("kind", "version"), CONVERSIONS)
async def test_periodic_bookmark_is_transformed(api: Api, quick_bookmarks: None, kind: str, version: str) -> None:
    created = await create(api, CMS, configmap("seen"))
    since = created["metadata"]["resourceVersion"]
    stream = await api.watch(CMS, {"resourceVersion": since, "allowWatchBookmarks": "true"},
                             headers=_accept(kind, version))
    try:
        assert stream.status == 200
        first = await _next(stream)  # nothing after ``since``: a bookmark comes first
        assert first["type"] == "BOOKMARK", first
        md = _bookmark_metadata(first["object"], kind, version, first=True)
        assert set(md) == {"resourceVersion"} and int(md["resourceVersion"]) >= int(since), md
        later = await create(api, CMS, configmap("later"))
        event = await _next(stream)
        while event["type"] == "BOOKMARK":
            _bookmark_metadata(event["object"], kind, version, first=False)
            event = await _next(stream)
        assert event["type"] == "ADDED", event
        obj = event["object"]
        if kind == "Table":
            assert obj["columnDefinitions"] is None and obj["rows"][0]["cells"][0] == "later", obj
            assert obj["metadata"] == {"resourceVersion": later["metadata"]["resourceVersion"]}, obj
        else:
            assert obj["metadata"]["name"] == "later", obj
    finally:
        await stream.close()


@pytest.mark.parametrize(("kind", "version"), CONVERSIONS)
async def test_initial_events_end_bookmark_is_transformed(api: Api, kind: str, version: str) -> None:
    created = await create(api, DOMAINS, domain("alice"))
    query = {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan", "resourceVersion": "",
             "allowWatchBookmarks": "true"}
    stream = await api.watch(DOMAINS, query, headers=_accept(kind, version))
    try:
        assert stream.status == 200
        added, end = await _next(stream), await _next(stream)
        assert added["type"] == "ADDED" and end["type"] == "BOOKMARK", (added, end)
        md = _bookmark_metadata(end["object"], kind, version, first=False)
        assert md["annotations"] == END, md
        assert int(md["resourceVersion"]) >= int(created["metadata"]["resourceVersion"]), md
    finally:
        await stream.close()
    plain = await api.watch(DOMAINS, query)  # a plain watch's bookmark keeps the resource's kind
    try:
        _, end = await _next(plain), await _next(plain)
        obj = end["object"]
        assert obj["kind"] == "Domain" and obj["apiVersion"] == "kuscia.secretflow/v1alpha1", obj
        assert obj["metadata"]["annotations"] == END, obj
    finally:
        await plain.close()


@pytest.mark.parametrize(("path", "item_type"), [(CMS, "*core.ConfigMap"), (DOMAINS, "*unstructured.Unstructured")])
async def test_metadata_kind_that_does_not_fit_is_406(api: Api, path: str, item_type: str) -> None:
    obj = configmap("one") if path == CMS else domain("one")
    await create(api, path, obj)
    for version in ("v1", "v1beta1"):
        wants_list = _accept("PartialObjectMetadataList", version)["Accept"]
        wants_one = _accept("PartialObjectMetadata", version)["Accept"]
        for accept in (wants_list, wants_list + ", application/json"):  # no later range is tried
            reply = await api.get(f"{path}/one", headers={"Accept": accept})
            assert_status(reply, 406, "NotAcceptable", "you requested PartialObjectMetadataList, but the requested "
                                                       f"object is not a list ({item_type})")
        for accept in (wants_one, wants_one + ", application/json"):
            reply = await api.get(path, headers={"Accept": accept})
            assert_status(reply, 406, "NotAcceptable", "you requested PartialObjectMetadata, but the requested "
                                                       f"object is a list ({item_type}List)")
    missing = await api.get(f"{path}/missing", headers={"Accept": wants_list})
    assert_status(missing, 404, "NotFound")  # the read comes first, as in kube-apiserver
    written = await api.post(path, configmap("two") if path == CMS else domain("two"),
                             headers={"Accept": wants_list})
    assert_status(written, 406, "NotAcceptable")  # the answer is refused once written, as in kube-apiserver
    assert (await api.get(f"{path}/two")).status == 200


async def test_a_table_with_a_bad_include_object_is_400_before_anything_is_read_or_streamed(api: Api) -> None:
    await create(api, CMS, configmap("inc1"))
    message = ('Unable to convert to Table as requested: includeObject: Unsupported value: "Bogus": '
               'supported values: "Metadata", "Object", "None"')
    for path, query in ((f"{CMS}/inc1", {}), (CMS, {}), (CMS, {"watch": "true", "allowWatchBookmarks": "true"})):
        reply = await api.get(path, params={**query, "includeObject": "Bogus"}, headers=_accept("Table", "v1"))
        status = assert_status(reply, 400, "BadRequest")
        assert status["message"] == message, (path, query, status)
