"""Plain GETs of a path the general chain has routed once (``apiserver/http/fastget.py``): the
same answer, metrics, authentication and RBAC as the general chain, and every exception handed
back to it (a revoked grant at once, impersonation, Tables, a deleted object, a full server)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest

from atoll.apiserver.http.fastget import FastGets
from atoll.apiserver.http.limits import InflightLimiter
from atoll.runtime.metrics import REGISTRY
from tests.conftest import RunningServer
from tests.integration.test_authz import call, domain_identity

pytestmark = pytest.mark.controllers()  # API server semantics only

TOTAL = 'apiserver_request_total{code="200",resource="configmaps",verb="GET"}'
COUNT = 'apiserver_request_duration_seconds_count{resource="configmaps",verb="GET"}'


def _fast(server: RunningServer) -> FastGets:
    assert server.node is not None
    fast = server.node.server.handler._fast
    assert fast is not None
    return fast


def _learnt(server: RunningServer, path: str) -> bool:
    return path in _fast(server)._paths


def _metric(name: str) -> float:
    for line in generate_latest(REGISTRY).decode().splitlines():
        if line.startswith(name + " "):
            return float(line.rpartition(" ")[2])
    return 0.0


async def _get(server: RunningServer, path: str, token: str | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    sent = {"Authorization": f"Bearer {token or server.token}", **(headers or {})}
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.url + path, headers=sent, ssl=server.ssl_context()) as resp,
    ):
        return resp.status, await resp.read(), resp.headers


async def _configmap(server: RunningServer, namespace: str, name: str) -> str:
    status, body = await call(server, "POST", f"/api/v1/namespaces/{namespace}/configmaps",
                              body={"metadata": {"name": name}, "data": {"k": "v"}})
    assert status == 201, body
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}"


async def test_learnt_get_answers_like_the_general_chain_and_counts(api_server: RunningServer) -> None:
    path = await _configmap(api_server, "default", "cm")
    status, general, headers = await _get(api_server, path)
    assert status == 200 and _learnt(api_server, path)
    total, count = _metric(TOTAL), _metric(COUNT)
    for _ in range(3):
        status, fast, fast_headers = await _get(api_server, path)
        assert status == 200 and fast == general
        assert fast_headers["Content-Type"] == headers["Content-Type"] == "application/json"
    assert _metric(TOTAL) == total + 3 and _metric(COUNT) == count + 3
    # a query string, a percent-encoded path: the general chain, never learnt
    status, body, _ = await _get(api_server, path + "?resourceVersion=0")
    assert status == 200 and body == general
    encoded = path.replace("/cm", "/c%6d")
    status, body, _ = await _get(api_server, encoded)
    assert status == 200 and body == general and not _learnt(api_server, encoded)


async def test_revoked_grant_refused_at_once(api_server: RunningServer) -> None:
    alice = await domain_identity(api_server, "alice")
    path = await _configmap(api_server, "alice", "mine")
    for _ in range(2):  # learnt, then served from the learnt path
        status, _, _ = await _get(api_server, path, alice)
        assert status == 200
    assert _learnt(api_server, path)
    status, _ = await call(api_server, "DELETE",
                           "/apis/rbac.authorization.k8s.io/v1/namespaces/alice/rolebindings/alice-admin")
    assert status == 200
    status, body, _ = await _get(api_server, path, alice)
    assert status == 403, body
    assert b'"reason":"Forbidden"' in body


async def test_exceptions_go_the_general_way(api_server: RunningServer) -> None:
    path = await _configmap(api_server, "default", "other")
    await _get(api_server, path)
    assert _learnt(api_server, path)
    status, body, _ = await _get(api_server, path, "not-a-token")
    assert status == 401 and b'"reason":"Unauthorized"' in body
    status, body, _ = await _get(api_server, path, headers={"Impersonate-User": "nobody"})
    assert status == 403 and b'"reason":"Forbidden"' in body
    table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    status, body, _ = await _get(api_server, path, headers={"Accept": table})
    assert status == 200 and b'"kind":"Table"' in body
    assert (await call(api_server, "DELETE", path))[0] == 200
    status, body, _ = await _get(api_server, path)
    assert status == 404 and b'"reason":"NotFound"' in body


async def test_full_server_refuses_non_masters(api_server: RunningServer) -> None:
    alice = await domain_identity(api_server, "alice")
    path = await _configmap(api_server, "alice", "busy")
    await _get(api_server, path, alice)
    assert _learnt(api_server, path)
    assert api_server.node is not None
    inflight: InflightLimiter = api_server.node.server.handler.inflight
    inflight.readonly = inflight.limits.max_requests_inflight  # as if that many reads were being served
    try:
        status, body, headers = await _get(api_server, path, alice)
        assert status == 429 and headers["Retry-After"] == "1", body
        status, _, _ = await _get(api_server, path)  # system:masters is exempt
        assert status == 200
    finally:
        inflight.readonly = 0
