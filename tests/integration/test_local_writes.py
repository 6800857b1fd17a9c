"""In-process writes (``atoll.client.local.LocalWrites``, ``atoll.apiserver.http.localwrites``): the
master's own admin client creates, updates, patches, deletes and binds without HTTP, with the HTTP
answers and errors. Each behaviour is checked against an HTTP client with the same User-Agent."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from atoll.api import errors
from atoll.api.kinds import CONFIGMAPS, PODS
from atoll.apiserver.http.metrics import local_request_total
from atoll.client import Client, ClientConnectionError
from tests.conftest import RunningServer

JSON = dict[str, Any]
NS = "default"
AGENT = "atoll-controller-manager"
VOLATILE = ("uid", "resourceVersion", "creationTimestamp", "name", "deletionTimestamp")


@pytest.fixture(params=["http", "local"])
async def client(api_server: RunningServer, request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    assert api_server.node is not None
    if request.param == "http":
        c = Client(api_server.url, ssl_context=api_server.ssl_context(), token=api_server.token, user_agent=AGENT)
    else:
        c = api_server.node.client()
    assert (c.local_writes is not None) == (request.param == "local")
    async with c:
        yield c


def cm(name: str, **data: str) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, "data": data}


def pod(name: str) -> JSON:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def normal(obj: JSON) -> JSON:
    """``obj`` without what differs between two writes of the same content."""
    md = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in VOLATILE}
    md["managedFields"] = [{k: v for k, v in f.items() if k != "time"} for f in md.get("managedFields") or []]
    out = {**obj, "metadata": md}
    for c in (out.get("status") or {}).get("conditions") or []:
        c.pop("lastTransitionTime", None)
    if "details" in out:
        out["details"] = {k: v for k, v in out["details"].items() if k not in ("name", "uid")}
    return out


async def test_object_writes_answer_as_over_http(client: Client) -> None:
    body = cm("w", a="1")
    created = await client.create(CONFIGMAPS, body)
    assert body == cm("w", a="1")  # the caller's dict is left alone
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    assert [f["manager"] for f in created["metadata"]["managedFields"]] == [AGENT]
    created["data"]["a"] = "changed in the answer"
    assert (await client.get(CONFIGMAPS, "w", NS))["data"] == {"a": "1"}  # the answer was a private copy

    current = await client.get(CONFIGMAPS, "w", NS)
    current["data"]["b"] = "2"
    updated = await client.update(CONFIGMAPS, current)
    assert updated["data"] == {"a": "1", "b": "2"}
    with pytest.raises(errors.Conflict):
        await client.update(CONFIGMAPS, current)  # stale resourceVersion

    patched = await client.patch(CONFIGMAPS, "w", {"data": {"c": "3"}}, NS, field_manager="other")
    assert patched["data"] == {"a": "1", "b": "2", "c": "3"}
    assert {f["manager"] for f in patched["metadata"]["managedFields"]} == {AGENT, "other"}
    ops = [{"op": "remove", "path": "/data/a"}]
    assert (await client.patch(CONFIGMAPS, "w", ops, NS, patch_type="json"))["data"] == {"b": "2", "c": "3"}
    strategic = await client.patch(CONFIGMAPS, "w", {"metadata": {"labels": {"x": "y"}}}, NS, patch_type="strategic")
    assert strategic["metadata"]["labels"] == {"x": "y"}

    deleted = await client.delete(CONFIGMAPS, "w", NS)
    assert deleted["kind"] == "Status" and deleted["status"] == "Success"
    with pytest.raises(errors.NotFound):
        await client.get(CONFIGMAPS, "w", NS)
    with pytest.raises(errors.NotFound):
        await client.delete(CONFIGMAPS, "w", NS)


async def test_bind_and_status(client: Client) -> None:
    await client.create(PODS, pod("p"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "namespace": NS},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    answer = await client.create(PODS, binding, NS, subresource="binding")
    assert answer["kind"] == "Status" and answer["status"] == "Success"
    bound = await client.get(PODS, "p", NS)
    assert bound["spec"]["nodeName"] == "n1"
    assert [(c["type"], c["status"]) for c in bound["status"]["conditions"]] == [("PodScheduled", "True")]
    with pytest.raises(errors.Conflict, match="already assigned"):
        await client.create(PODS, binding, NS, subresource="binding")
    status = await client.patch(PODS, "p", {"status": {"phase": "Running"}, "spec": {"nodeName": "other"}}, NS,
                                patch_type="strategic", subresource="status")
    assert status["status"]["phase"] == "Running" and status["spec"]["nodeName"] == "n1"  # status only


Write = Callable[[Client, str], Awaitable[JSON]]
CASES: list[tuple[str, Write]] = [
    ("create", lambda c, n: c.create(CONFIGMAPS, cm(n, a="1"))),
    ("create again", lambda c, n: c.create(CONFIGMAPS, cm(n, a="1"))),
    ("dry run", lambda c, n: c.create(CONFIGMAPS, cm(n + "-dry"), dry_run=True)),
    ("bad name", lambda c, n: c.create(CONFIGMAPS, cm(n.upper()))),
    ("wrong kind", lambda c, n: c.create(CONFIGMAPS, {**cm(n + "-k"), "kind": "Secret"})),
    ("no namespace", lambda c, n: c.create(CONFIGMAPS, cm(n + "-ns"), "no-such-namespace")),
    ("patch", lambda c, n: c.patch(CONFIGMAPS, n, {"data": {"b": "2"}}, NS)),
    ("pinned patch", lambda c, n: c.patch(CONFIGMAPS, n, {"metadata": {"resourceVersion": "1"}}, NS)),
    ("patch missing", lambda c, n: c.patch(CONFIGMAPS, n + "-missing", {"data": {}}, NS)),
    ("bad json patch", lambda c, n: c.patch(CONFIGMAPS, n, [{"op": "nope"}], NS, patch_type="json")),
    ("pod", lambda c, n: c.create(PODS, pod(n))),
    ("bad binding", lambda c, n: c.create(PODS, {"kind": "Binding", "apiVersion": "v1", "metadata": {"name": n},
                                                 "target": {}}, NS, subresource="binding")),
    ("delete pod", lambda c, n: c.delete(PODS, n, NS, grace_period_seconds=30)),
    ("delete", lambda c, n: c.delete(CONFIGMAPS, n, NS, preconditions={"uid": "other"})),
]


async def outcome(client: Client, name: str, write: Write) -> tuple[str, Any]:
    try:
        return "ok", normal(await write(client, name))
    except errors.APIError as err:
        message = re.sub(name, "NAME", str(err), flags=re.IGNORECASE)
        return type(err).__name__, (err.code, re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "UID", message))


async def test_same_answers_and_errors_as_http(api_server: RunningServer) -> None:
    assert api_server.node is not None
    http = Client(api_server.url, ssl_context=api_server.ssl_context(), token=api_server.token, user_agent=AGENT)
    async with http, api_server.node.client() as local:
        for label, write in CASES:
            over_http, in_process = await outcome(http, "httpobj", write), await outcome(local, "localobj", write)
            assert in_process == over_http, label


async def test_local_writes_are_counted_apart(api_server: RunningServer) -> None:
    assert api_server.node is not None

    def count(verb: str, code: str) -> float:
        return local_request_total.labels(verb, "configmaps", code)._value.get()

    before = count("POST", "201"), count("POST", "409"), count("DELETE", "200")
    async with api_server.node.client() as local:
        await local.create(CONFIGMAPS, cm("counted"))
        with pytest.raises(errors.AlreadyExists):
            await local.create(CONFIGMAPS, cm("counted"))
        await local.delete(CONFIGMAPS, "counted", NS)
    assert (count("POST", "201"), count("POST", "409"), count("DELETE", "200")) == tuple(b + 1 for b in before)


async def test_writes_fail_at_once_once_the_server_stops(api_server: RunningServer) -> None:
    """As on a closed listener: no wait for a watch cache that no longer applies revisions."""
    assert api_server.node is not None and api_server.node.server is not None
    async with api_server.node.client() as local:
        await local.create(CONFIGMAPS, cm("before"))
        await api_server.node.server.local_writes.close()
        with pytest.raises(ClientConnectionError, match="stopped"):
            await asyncio.wait_for(local.create(CONFIGMAPS, cm("after")), 1.0)
