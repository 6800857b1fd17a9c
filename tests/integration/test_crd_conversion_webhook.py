"""A CRD whose versions differ in more than ``apiVersion``, converted by a real HTTPS conversion
webhook (``spec.conversion.strategy: Webhook``), as kube-apiserver calls it.

The webhook (an aiohttp HTTPS server on 127.0.0.1 with its own CA, given to the CRD as
``caBundle``) renames ``spec.count`` (v1beta1) to ``spec.size`` (v1, the storage version) and back.
A write at v1beta1 is stored converted; GET (also a repeated one, which the plain GET's fast path
would answer), LIST, Tables with objects, WATCH and the in-process reads at v1beta1 show the
webhook's conversion; a patch at v1beta1 is applied to the converted object. While the webhook
fails, reads needing it are 500s naming it, and reads at the storage version still work.

The API server keeps one client per webhook configuration (url, caBundle): reviews reuse one
connection; a changed ``clientConfig`` or a deleted CRD closes the old client, and a watch still
holding the old one converts with one-shot clients, not kept; a review the webhook hung up on or
reset the connection under is sent again, both attempts within the one timeout; beyond its limit
the least recently used client is closed, a client dropped during a call once the call is done;
stopping the server closes them all. A malformed answer is a 500 naming the webhook, with
kube-apiserver's message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver.apiextensions.webhook import WebhookClients
from atoll.apiserver.app import APIServer, ServerConfig
from atoll.apiserver.registry.storage import WriteOptions
from atoll.pki import ensure_pki
from atoll.store.endpoint import open_store
from tests.conftest import RunningServer, eventually
from tests.integration.inprocess import NS
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
    peers: list[Any] = field(default_factory=list)  # the client's address of each review's connection
    hang_up: int = 0  # reviews still to be answered by closing the connection
    reset: int = 0  # reviews still to be answered by resetting the connection (a TCP RST)
    delay: float = 0.0  # seconds each review takes (a slow webhook)
    answer: Callable[[JSON], Any] | None = None  # the answer to a review, instead of a conversion
    gate: asyncio.Event | None = None  # while set and not released, reviews wait for it
    server: web.Server | None = None

    def open_connections(self) -> int:
        """The TCP connections to the webhook open now."""
        assert self.server is not None
        return len(self.server.connections)


def _convert(obj: JSON, desired: str) -> JSON:
    out = copy.deepcopy(obj)
    out["apiVersion"] = desired
    spec = out.get("spec") or {}
    if desired.endswith("/v1") and "count" in spec:
        spec["size"] = spec.pop("count")
    elif desired.endswith("/v1beta1") and "size" in spec:
        spec["count"] = spec.pop("size")
    return out


@contextlib.asynccontextmanager
async def serve_webhook(pki_dir: Path) -> AsyncIterator[Webhook]:
    """A conversion webhook on 127.0.0.1 with its own CA (made in ``pki_dir``)."""
    pki = ensure_pki(pki_dir)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    state = Webhook("", base64.b64encode(pki.ca_cert.read_bytes()).decode())

    async def convert(request: web.Request) -> web.StreamResponse:
        review = await request.json()
        state.reviews.append(review)
        assert request.transport is not None
        state.peers.append(request.transport.get_extra_info("peername"))
        if state.gate is not None:
            await state.gate.wait()
        if state.delay:
            await asyncio.sleep(state.delay)  # (slow, as the webhook under test: not a wait)
        req = review["request"]
        if state.hang_up:
            state.hang_up -= 1
            request.transport.close()
            return web.Response()
        if state.reset:
            state.reset -= 1
            sock = request.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.transport.abort()
            return web.Response()
        if state.answer is not None:
            return web.json_response(state.answer(review))
        if state.failing:
            result = {"status": "Failure", "message": "the converter is down"}
            return web.json_response({**review, "response": {"uid": req["uid"], "result": result}})
        return web.json_response(_answer()(review))  # a plain conversion

    app = web.Application()
    app.router.add_post("/convert", convert)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"https://127.0.0.1:{port}/convert"
    state.server = runner.server
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def webhook(tmp_path: Path) -> AsyncIterator[Webhook]:
    async with serve_webhook(tmp_path / "webhook-pki") as state:
        yield state


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


# ---- the API server's clients of conversion webhooks: kept connections, replaced, bounded, closed


def _config(hook: Webhook, copies: int = 1) -> JSON:
    """The hook's ``clientConfig``; with ``copies`` > 1 its CA that many times: another caBundle
    that verifies the same server."""
    pem = base64.b64decode(hook.ca_bundle)
    return {"url": hook.url, "caBundle": base64.b64encode(pem * copies).decode()}


def _clients(server: RunningServer) -> WebhookClients:
    assert server.node is not None and server.node.server is not None
    return server.node.server.webhooks


GIZMO = {"apiVersion": f"{GROUP}/v1beta1", "kind": "Gizmo", "metadata": {"name": "g1"}, "spec": {"count": 3}}


async def _with_gizmo(api: Api, hook: Webhook) -> None:
    """The CRD calling ``hook``, and g1 created at v1beta1 (two reviews: to store it, to answer)."""
    assert (await api.post(CRDS, crd(hook))).status == 201
    assert (await api.post(path("v1beta1"), GIZMO)).status == 201


async def _convert_through(api: Api, n: int) -> None:
    """``n`` reads that each need one review: a write at the storage version, then a GET at v1beta1."""
    for i in range(n):
        assert (await api.patch(path("v1", "g1"), {"spec": {"size": i}})).status == 200
        assert (await api.get(path("v1beta1", "g1"))).json["spec"] == {"count": i}


async def _set_client_config(api: Api, config: JSON) -> None:
    current = (await api.get(f"{CRDS}/gizmos.{GROUP}")).json
    current["spec"]["conversion"]["webhook"]["clientConfig"] = config
    assert (await api.put(f"{CRDS}/gizmos.{GROUP}", current)).status == 200


async def test_conversions_reuse_one_connection_to_the_webhook(
    api: Api, api_server: RunningServer, webhook: Webhook
) -> None:
    await _with_gizmo(api, webhook)
    await _convert_through(api, 10)
    assert len(webhook.reviews) == 12
    assert len(set(webhook.peers)) == 1  # one TCP connection (one TLS handshake) for them all
    assert webhook.open_connections() == 1  # kept open for the next review
    assert len(_clients(api_server).sessions()) == 1


async def test_a_changed_client_config_makes_a_new_client_and_closes_the_old(
    api: Api, api_server: RunningServer, webhook: Webhook, tmp_path: Path
) -> None:
    await _with_gizmo(api, webhook)
    clients = _clients(api_server)
    (first,) = clients.sessions()

    await _set_client_config(api, _config(webhook, copies=2))  # the same url, another caBundle
    await eventually(lambda: first.closed and webhook.open_connections() == 0)
    await _convert_through(api, 3)
    (second,) = clients.sessions()
    assert second is not first and not second.closed
    assert len(set(webhook.peers[2:])) == 1 and webhook.peers[2] != webhook.peers[0]
    assert webhook.open_connections() == 1

    async with serve_webhook(tmp_path / "other-pki") as other:  # another url (and CA)
        await _set_client_config(api, _config(other))
        await eventually(lambda: second.closed and webhook.open_connections() == 0)
        await _convert_through(api, 3)
        assert (len(webhook.reviews), len(other.reviews), len(set(other.peers))) == (5, 3, 1)
        (third,) = clients.sessions()
        assert third is not second and other.open_connections() == 1

        # deleting the CRD drops its client too
        assert (await api.delete(f"{CRDS}/gizmos.{GROUP}")).status == 200
        await eventually(lambda: third.closed and other.open_connections() == 0)
        assert len(clients.sessions()) == 0


async def test_a_review_the_webhook_hung_up_on_is_sent_again_on_a_new_connection(api: Api, webhook: Webhook) -> None:
    await _with_gizmo(api, webhook)
    webhook.hang_up = 1  # as a server closing an idle kept connection just as the review arrives
    await _convert_through(api, 1)
    assert len(webhook.reviews) == 4
    assert webhook.peers[0] == webhook.peers[2] != webhook.peers[3]


async def test_stopping_the_api_server_closes_its_webhook_clients(tmp_path: Path, webhook: Webhook) -> None:
    store = open_store(None, tmp_path)
    await store.start()
    server = APIServer(store, ServerConfig(port=0))
    task = asyncio.create_task(server.run())
    try:
        await server.wait_ready()
        opts = WriteOptions(field_manager="test")
        await server.objects.create(NS, None, {"metadata": {"name": "default"}}, opts)
        crds = server.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crds is not None
        await server.objects.create(crds, None, crd(webhook), opts)
        gizmos = server.registry.get(GROUP, "v1beta1", "gizmos")
        assert gizmos is not None
        created = await server.objects.create(gizmos, "default", copy.deepcopy(GIZMO), opts)
        assert created["spec"] == {"count": 3} and len(webhook.reviews) == 2
        (session,) = server.webhooks.sessions()
        assert webhook.open_connections() == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()
    assert session.closed
    await eventually(lambda: webhook.open_connections() == 0)
    with pytest.raises(errors.InternalError, match="the API server is stopping"):
        await server.webhooks.convert(_config(webhook), f"gizmos.{GROUP}", [GIZMO], f"{GROUP}/v1")
    assert len(server.webhooks.sessions()) == 0


async def test_beyond_the_limit_the_least_recently_used_client_is_closed(webhook: Webhook) -> None:
    clients = WebhookClients(limit=2)
    configs = [_config(webhook, copies) for copies in (1, 2, 3)]
    for config in configs:
        clients.use(config)

    async def convert(config: JSON) -> None:
        (converted,) = await clients.convert(config, f"gizmos.{GROUP}", [GIZMO], f"{GROUP}/v1")
        assert converted["spec"] == {"size": 3}

    try:
        for config in (configs[0], configs[1], configs[0]):  # the first used last
            await convert(config)
        first, second = clients.sessions()[::-1]
        await convert(configs[2])
        await eventually(lambda: second.closed and webhook.open_connections() == 2)
        assert not first.closed and len(clients.sessions()) == 2
    finally:
        await clients.close()
    await eventually(lambda: webhook.open_connections() == 0)


async def test_a_client_dropped_during_a_call_is_closed_once_the_call_is_done(webhook: Webhook) -> None:
    clients = WebhookClients()
    config = _config(webhook)
    clients.use(config)
    webhook.gate = asyncio.Event()
    call = asyncio.create_task(clients.convert(config, f"gizmos.{GROUP}", [GIZMO], f"{GROUP}/v1"))
    try:
        await eventually(lambda: len(webhook.reviews) == 1)
        (session,) = clients.sessions()
        clients.drop(config)
        assert len(clients.sessions()) == 0 and not session.closed
        webhook.gate.set()
        (converted,) = await call  # the call in flight was not cut
        assert converted["spec"] == {"size": 3}
        await eventually(lambda: session.closed and webhook.open_connections() == 0)

        # dropped during a call, then the server stops: closed at once, the call fails
        clients.use(config)
        webhook.gate.clear()
        call = asyncio.create_task(clients.convert(config, f"gizmos.{GROUP}", [GIZMO], f"{GROUP}/v1"))
        await eventually(lambda: len(webhook.reviews) == 2)
        (session,) = clients.sessions()
        clients.drop(config)
        await clients.close()
        assert session.closed
        with pytest.raises(errors.InternalError, match=f"conversion webhook for gizmos.{GROUP} failed"):
            await call
    finally:
        webhook.gate.set()
        await clients.close()


async def test_a_watch_holding_a_dropped_client_config_converts_with_a_one_shot_client(
    api: Api, api_server: RunningServer, webhook: Webhook
) -> None:
    await _with_gizmo(api, webhook)
    clients = _clients(api_server)
    (first,) = clients.sessions()
    beta = await api.watch(path("v1beta1"), {"resourceVersion": "0"})  # (it keeps the CRD's clientConfig)
    assert [e["object"]["spec"] for e in await beta.collect(1)] == [{"count": 3}]
    assert api_server.node is not None
    async with api_server.node.client() as local:
        rd = ResourceDef(GROUP, "v1beta1", "Gizmo", "gizmos", "gizmo", True, builtin=False)
        stream = local.watch(rd, "default", resource_version="0")
        assert [(await anext(stream))[1]["spec"]] == [{"count": 3}]

        await _set_client_config(api, _config(webhook, copies=2))
        await eventually(lambda: first.closed and webhook.open_connections() == 0)
        assert (await api.patch(path("v1", "g1"), {"spec": {"size": 4}})).status == 200
        kind, obj = await anext(stream)  # converted by a client of the old configuration ...
        await stream.aclose()
    (event,) = await beta.collect(1)
    await beta.close()
    assert [(kind, obj["spec"]), (event["type"], event["object"]["spec"])] == [("MODIFIED", {"count": 4})] * 2
    assert {p != webhook.peers[0] for p in webhook.peers[3:]} == {True}  # (each watch may convert)
    assert clients.sessions() == []  # ... not kept: nothing would ever drop it
    await eventually(lambda: webhook.open_connections() == 0)

    # the new configuration's client is kept
    reviews = len(webhook.reviews)
    await _convert_through(api, 2)
    (second,) = clients.sessions()
    assert second is not first and len(set(webhook.peers[reviews:])) == 1 and webhook.open_connections() == 1


async def test_a_review_the_webhook_reset_the_connection_of_is_sent_again(api: Api, webhook: Webhook) -> None:
    await _with_gizmo(api, webhook)
    webhook.reset = 1  # a TCP RST under the review: aiohttp's ClientOSError ECONNRESET
    await _convert_through(api, 1)
    assert len(webhook.reviews) == 4
    assert webhook.peers[0] == webhook.peers[2] != webhook.peers[3]


async def test_a_review_sent_again_has_what_is_left_of_the_one_timeout(
    api: Api, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("atoll.apiserver.apiextensions.webhook.TIMEOUT", 2.0)
    await _with_gizmo(api, webhook)
    assert (await api.patch(path("v1", "g1"), {"spec": {"size": 4}})).status == 200
    webhook.delay, webhook.hang_up = 1.5, 1  # each attempt within 2 s, both not
    start = time.monotonic()
    failed = assert_status(await api.get(path("v1beta1", "g1")), 500, "InternalError")
    assert time.monotonic() - start < 2.9
    assert failed["message"] == f"conversion webhook for gizmos.{GROUP} failed: no answer within 2s"
    assert len(webhook.reviews) == 4


def _answer(response: JSON | None = None, review: JSON | None = None) -> Callable[[JSON], Any]:
    """A webhook answering a ConversionReview whose ``response`` (the request's uid, Success, the
    objects converted) is updated with ``response``, and the review itself with ``review``."""

    def answer(request: JSON) -> Any:
        req = request["request"]
        converted = [_convert(o, req["desiredAPIVersion"]) for o in req["objects"]]
        ok = {"uid": req["uid"], "result": {"status": "Success"}, "convertedObjects": converted}
        return {
            "apiVersion": request["apiVersion"],
            "kind": "ConversionReview",
            "response": ok | (response or {}),
        } | (review or {})

    return answer


def _renamed(objects: list[JSON], **metadata: Any) -> list[JSON]:
    out = [_convert(o, f"{GROUP}/v1") for o in objects]
    for o in out:
        o["metadata"] = {**o["metadata"], **metadata}
    return out


HOOK = f"conversion webhook for gizmos.{GROUP}"
OBJECT = f"{HOOK} returned invalid converted object at index 0"
METADATA = f"{HOOK} returned invalid metadata in object at index 0"
MALFORMED: list[tuple[Callable[[JSON], Any], str]] = [
    (lambda _: [], f"{HOOK} failed: cannot decode the answer: an array, not an object"),
    (
        _answer(review={"kind": "AdmissionReview"}),
        f"{HOOK} failed: expected webhook response of apiextensions.k8s.io/v1, "
        "Kind=ConversionReview, got apiextensions.k8s.io/v1, Kind=AdmissionReview",
    ),
    (_answer(review={"response": None}), f"{HOOK} failed: no response provided"),
    (_answer(review={"response": "yes"}), f"{HOOK} failed: cannot decode response: a string, not an object"),
    (_answer({"uid": "other"}), f'{HOOK} failed: expected response.uid="{{uid}}", got "other"'),
    (_answer({"result": "Success"}), f"{HOOK} failed: cannot decode response.result: a string, not an object"),
    (_answer({"result": {}}), f"{HOOK} failed: response.result.status was '', not 'Success'"),
    (
        _answer({"convertedObjects": 5}),
        f"{HOOK} failed: cannot decode response.convertedObjects: a number, not an array",
    ),
    (_answer({"convertedObjects": []}), f"{HOOK} returned 0 objects, expected 1"),
    (_answer({"convertedObjects": ["g1"]}), f"{OBJECT}: a string, not an object"),
    (
        _answer({"convertedObjects": [{**GIZMO, "kind": "Other"}]}),
        f"{OBJECT}: invalid groupVersion (expected {GROUP}/v1, received {GROUP}/v1beta1)",
    ),
    (
        _answer({"convertedObjects": [{**_renamed([GIZMO])[0], "kind": "Other"}]}),
        f"{OBJECT}: invalid kind (expected Gizmo, received Other)",
    ),
    (_answer({"convertedObjects": _renamed([GIZMO], name="g2")}), f"{OBJECT}: must have the same name: g1 != g2"),
    (
        _answer({"convertedObjects": _renamed([GIZMO], uid="other")}),
        f"{OBJECT}: must have the same UID: {GIZMO['metadata'].get('uid') or ''} != other",
    ),
    (
        _answer({"convertedObjects": [{**_renamed([GIZMO])[0], "metadata": None}]}),
        f"{OBJECT}: must have the same name: g1 != ",  # (as kube-apiserver: the name is checked first)
    ),
    (
        _answer({"convertedObjects": [{**_renamed([GIZMO])[0], "metadata": []}]}),
        f"{OBJECT}: must have the same name: g1 != ",
    ),
    (
        _answer({"convertedObjects": _renamed([GIZMO], labels="a=b")}),
        f"{METADATA}: invalid metadata.labels of type string in converted object",
    ),
    (
        _answer({"convertedObjects": _renamed([GIZMO], annotations={"a": 1})}),
        f"{METADATA}: metadata.annotations[a] must be a string, but is number in converted object",
    ),
]


@pytest.mark.parametrize(("answer", "message"), MALFORMED)
async def test_a_malformed_answer_is_an_internal_error_naming_the_webhook(
    webhook: Webhook, answer: Callable[[JSON], Any], message: str
) -> None:
    clients = WebhookClients()
    webhook.answer = answer
    try:
        with pytest.raises(errors.InternalError) as raised:
            await clients.convert(_config(webhook), f"gizmos.{GROUP}", [GIZMO], f"{GROUP}/v1")
    finally:
        await clients.close()
    assert raised.value.message == message.format(uid=webhook.reviews[0]["request"]["uid"])


async def test_a_malformed_answer_is_a_500_status(api: Api, webhook: Webhook) -> None:
    await _with_gizmo(api, webhook)
    assert (await api.patch(path("v1", "g1"), {"spec": {"size": 4}})).status == 200
    for answer, detail in (
        (_answer({"convertedObjects": 5}), "response.convertedObjects: a number, not an array"),
        (_answer({"result": "Success"}), "response.result: a string, not an object"),
    ):
        webhook.answer = answer
        failed = assert_status(await api.get(path("v1beta1", "g1")), 500, "InternalError")
        assert failed["message"] == f"{HOOK} failed: cannot decode {detail}"


def _labelled(labels: JSON) -> Callable[[JSON], Any]:
    """A webhook that converts and sets ``labels`` on every converted object."""

    def answer(request: JSON) -> Any:
        review = _answer()(request)
        for obj in review["response"]["convertedObjects"]:
            obj["metadata"] = {**obj["metadata"], "labels": labels}
        return review

    return answer


async def test_labels_a_webhook_changes_must_be_valid(api: Api, webhook: Webhook) -> None:
    """As kube's webhook converter: labels or annotations the webhook changed are validated (a 500
    naming the webhook and the first problem); valid changes are kept."""
    await _with_gizmo(api, webhook)
    webhook.answer = _labelled({"bad key!": "v"})
    failed = assert_status(await api.get(path("v1beta1", "g1")), 500, "InternalError")
    assert failed["message"].startswith(f'{METADATA}: metadata.labels: Invalid value: "bad key!": '), failed
    webhook.answer = _labelled({"tier": "gold"})
    reply = await api.get(path("v1beta1", "g1"))
    assert reply.status == 200 and reply.body["metadata"]["labels"] == {"tier": "gold"}, reply.body
