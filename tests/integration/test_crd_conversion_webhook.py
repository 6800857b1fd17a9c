"""A CRD whose versions differ in more than ``apiVersion``, converted by a real HTTPS conversion
webhook (``spec.conversion.strategy: Webhook``), as kube-apiserver calls it.

The webhook (an aiohttp HTTPS server on 127.0.0.1 with its own CA, given to the CRD as
``caBundle``) renames ``spec.count`` (v1beta1) to ``spec.size`` (v1, the storage version) and back.
A write at v1beta1 is stored converted; GET (also a repeated one, which the plain GET's fast path
would answer), LIST, Tables with objects, WATCH and the in-process reads at v1beta1 show the
webhook's conversion; a patch at v1beta1 is applied to the converted object. While the webhook
fails, reads needing it are 500s naming it, and reads at the storage version still work.
"""

from __future__ import annotations

import base64
import copy
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from atoll.api.registry import ResourceDef
from atoll.pki import ensure_pki
from tests.conftest import RunningServer
from tests.integration.kube_http import Api, assert_status
from tests.integration.test_crd_versions import gizmo_crd, gizmo_path, stored_gizmo

JSON = dict[str, Any]
GROUP = "hook.example.com"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"

pytestmark = pytest.mark.controllers()  # the API server's own semantics: no controllers


@dataclass
class Webhook:
    url: str
    ca_bundle: str
    reviews: list[JSON] = field(default_factory=list)
    failing: bool = False


def _convert(obj: JSON, desired: str) -> JSON:
    out = copy.deepcopy(obj)
    out["apiVersion"] = desired
    spec = out.get("spec") or {}
    if desired.endswith("/v1") and "count" in spec:
        spec["size"] = spec.pop("count")
    elif desired.endswith("/v1beta1") and "size" in spec:
        spec["count"] = spec.pop("size")
    return out


@pytest.fixture
async def webhook(tmp_path: Path) -> AsyncIterator[Webhook]:
    pki = ensure_pki(tmp_path / "webhook-pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    state = Webhook("", base64.b64encode(pki.ca_cert.read_bytes()).decode())

    async def convert(request: web.Request) -> web.Response:
        review = await request.json()
        state.reviews.append(review)
        req = review["request"]
        if state.failing:
            result = {"status": "Failure", "message": "the converter is down"}
            return web.json_response({**review, "response": {"uid": req["uid"], "result": result}})
        converted = [_convert(o, req["desiredAPIVersion"]) for o in req["objects"]]
        response = {"uid": req["uid"], "result": {"status": "Success"}, "convertedObjects": converted}
        return web.json_response({"apiVersion": review["apiVersion"], "kind": "ConversionReview", "response": response})

    app = web.Application()
    app.router.add_post("/convert", convert)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"https://127.0.0.1:{port}/convert"
    yield state
    await runner.cleanup()


def _version(name: str, storage: bool, field_name: str) -> JSON:
    spec = {"type": "object", "properties": {field_name: {"type": "integer"}}}
    return {
        "name": name,
        "served": True,
        "storage": storage,
        "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}},
        "additionalPrinterColumns": [{"name": field_name, "type": "integer", "jsonPath": f".spec.{field_name}"}],
    }


def crd(hook: Webhook) -> JSON:
    webhook = {"conversionReviewVersions": ["v1"], "clientConfig": {"url": hook.url, "caBundle": hook.ca_bundle}}
    versions = [_version("v1beta1", False, "count"), _version("v1", True, "size")]
    return gizmo_crd(GROUP, versions, conversion={"strategy": "Webhook", "webhook": webhook})


def path(version: str, name: str = "") -> str:
    return gizmo_path(GROUP, version, name)


async def stored(server: RunningServer, name: str) -> JSON:
    return await stored_gizmo(server, GROUP, name)


async def test_a_conversion_webhook_converts_every_write_and_read(
    api: Api, api_server: RunningServer, webhook: Webhook
) -> None:
    assert (await api.post(CRDS, crd(webhook))).status == 201
    beta = await api.watch(path("v1beta1"), {"resourceVersion": "0"})
    body = {"apiVersion": f"{GROUP}/v1beta1", "kind": "Gizmo", "metadata": {"name": "g1"}, "spec": {"count": 3}}
    created = await api.post(path("v1beta1"), body)
    assert created.status == 201, created
    assert (created.json["apiVersion"], created.json["spec"]) == (f"{GROUP}/v1beta1", {"count": 3})
    kept = await stored(api_server, "g1")
    assert (kept["apiVersion"], kept["spec"]) == (f"{GROUP}/v1", {"size": 3})
    assert webhook.reviews[0]["apiVersion"] == "apiextensions.k8s.io/v1"
    assert webhook.reviews[0]["request"]["desiredAPIVersion"] == f"{GROUP}/v1"

    for version, spec in (("v1beta1", {"count": 3}), ("v1", {"size": 3})):
        listed = (await api.get(path(version))).json
        assert [i["spec"] for i in listed["items"]] == [spec]
        for _ in range(2):  # the second would be the plain GET's fast path
            got = (await api.get(path(version, "g1"))).json
            assert (got["apiVersion"], got["spec"]) == (f"{GROUP}/{version}", spec)
        params = {"includeObject": "Object"}
        table = (await api.get(path(version), params=params, headers={"Accept": TABLE})).json
        assert [r["object"]["spec"] for r in table["rows"]] == [spec]
        cells = (await api.get(path(version), headers={"Accept": TABLE})).json["rows"][0]["cells"]
        assert cells == ["g1", 3]  # the column of the version's own field

    patched = await api.patch(path("v1beta1", "g1"), {"spec": {"count": 4}})
    assert patched.status == 200, patched
    assert patched.json["spec"] == {"count": 4}
    assert (await stored(api_server, "g1"))["spec"] == {"size": 4}
    current = (await api.get(path("v1", "g1"))).json
    assert (await api.put(path("v1", "g1"), {**current, "spec": {"size": 5}})).status == 200
    assert (await api.get(path("v1beta1", "g1"))).json["spec"] == {"count": 5}  # a path the fast GET knows

    events = await beta.collect(3)
    await beta.close()
    assert [(e["type"], e["object"]["apiVersion"], e["object"]["spec"]) for e in events] == [
        ("ADDED", f"{GROUP}/v1beta1", {"count": 3}),
        ("MODIFIED", f"{GROUP}/v1beta1", {"count": 4}),
        ("MODIFIED", f"{GROUP}/v1beta1", {"count": 5}),
    ]

    # in-process reads (each of a revision nothing converted yet: written at the storage version)
    assert api_server.node is not None
    async with api_server.node.client() as local:
        rd = ResourceDef(GROUP, "v1beta1", "Gizmo", "gizmos", "gizmo", True, builtin=False)
        assert (await api.patch(path("v1", "g1"), {"spec": {"size": 6}})).status == 200
        assert [i["spec"] for i in (await local.list(rd, "default"))["items"]] == [{"count": 6}]
        assert (await api.patch(path("v1", "g1"), {"spec": {"size": 7}})).status == 200
        assert (await local.get(rd, "g1", "default"))["spec"] == {"count": 7}
        stream = local.watch(rd, "default", resource_version="0")
        assert [(await anext(stream))[1]["spec"]] == [{"count": 7}]
        assert (await api.patch(path("v1", "g1"), {"spec": {"size": 8}})).status == 200
        kind, obj = await anext(stream)
        await stream.aclose()
        assert (kind, obj["spec"]) == ("MODIFIED", {"count": 8})

    assert (await api.patch(path("v1", "g1"), {"spec": {"size": 10}})).status == 200
    assert [i["spec"] for i in (await api.get(path("v1beta1"))).json["items"]] == [{"count": 10}]

    # a failing webhook: what needs it is a 500 naming it (a revision converted before is kept
    # converted); the storage version is still written and served
    webhook.failing = True
    assert (await api.patch(path("v1", "g1"), {"spec": {"size": 11}})).status == 200
    failed = assert_status(await api.get(path("v1beta1", "g1")), 500, "InternalError")
    assert failed["message"] == f"conversion webhook for gizmos.{GROUP} failed: the converter is down"
    assert_status(await api.post(path("v1beta1"), {**body, "metadata": {"name": "g2"}}), 500, "InternalError")
    assert (await api.get(path("v1", "g1"))).json["spec"] == {"size": 11}
    metadata = {"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}
    listed = (await api.get(path("v1beta1"), headers=metadata)).json  # (the garbage collector's reads)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["g1"]
    stream = await api.watch(path("v1beta1"), {"resourceVersion": "0"})
    (error,) = await stream.collect(1)
    await stream.close()
    assert error["type"] == "ERROR" and error["object"]["code"] == 500


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"service": {"namespace": "default", "name": "conv"}}, "spec.conversion.webhook.clientConfig.service"),
        ({"url": "http://127.0.0.1:1/convert"}, "spec.conversion.webhook.clientConfig.url"),
        ({}, "spec.conversion.webhook.clientConfig"),
    ],
)
async def test_a_conversion_webhook_atoll_cannot_call_is_refused(api: Api, config: JSON, field: str) -> None:
    bad = crd(Webhook("", ""))
    bad["spec"]["conversion"]["webhook"]["clientConfig"] = config
    refused = assert_status(await api.post(CRDS, bad), 422, "Invalid")
    assert [c["field"] for c in refused["details"]["causes"]] == [field]
