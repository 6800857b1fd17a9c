"""A tiny raw HTTPS client for the API-server integration tests (aiohttp, no Atoll client code).

Tests talk to the server exactly as kubectl does on the wire, so every status code, header and
body shape is visible. ``Api.call`` returns a ``Reply``; ``Api.watch`` opens a watch stream whose
newline-delimited events are read one at a time with a timeout.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import yaml

JSON = dict[str, Any]
DOMAINS = "/apis/kuscia.secretflow/v1alpha1/domains"
TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


@dataclass
class Reply:
    status: int
    headers: Any
    raw: bytes
    body: Any = field(default=None)

    @property
    def json(self) -> Any:
        return self.body

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.raw[:400]!r})"


class WatchStream:
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp
        self.status = resp.status
        self.headers = resp.headers

    async def next(self, timeout: float = 5.0) -> JSON | None:  # noqa: ASYNC109
        """The next event, or None when the stream ended. TimeoutError when nothing came."""
        async with asyncio.timeout(timeout):
            line = await self.resp.content.readline()
        if not line:
            return None
        return json.loads(line)

    async def collect(self, count: int, timeout: float = 5.0) -> list[JSON]:  # noqa: ASYNC109
        out = []
        for _ in range(count):
            ev = await self.next(timeout)
            if ev is None:
                break
            out.append(ev)
        return out

    async def quiet(self, seconds: float = 0.5) -> bool:
        """True when no event arrives within ``seconds`` (the stream stays open and silent)."""
        try:
            ev = await self.next(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected watch event: {ev}")

    async def close(self) -> None:
        self.resp.close()


class Api:
    def __init__(self, server: Any, *, token: str | None = "default", ssl: Any = None) -> None:
        self.server = server
        self.url = server.url
        self.ssl = ssl if ssl is not None else server.ssl_context()
        self.headers = (
            server.headers() if token == "default" else ({"Authorization": f"Bearer {token}"} if token else {})
        )
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Api:
        self.session = aiohttp.ClientSession(headers=self.headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        data: bytes | str | None = None,
        ctype: str | None = None,
        params: dict[str, str] | list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        assert self.session is not None
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", ctype or "application/json")
        elif ctype is not None:
            hdrs["Content-Type"] = ctype
        skip = () if "Content-Type" in hdrs else ("Content-Type",)  # as the Python client: no Content-Type
        async with self.session.request(
            method, self.url + path, data=data, params=params, headers=hdrs, ssl=self.ssl, skip_auto_headers=skip
        ) as resp:
            raw = await resp.read()
            reply = Reply(resp.status, resp.headers, raw)
            if raw and resp.headers.get("Content-Type", "").startswith("application/json"):
                try:
                    reply.body = json.loads(raw)
                except ValueError:
                    reply.body = None
            return reply

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.call("POST", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.call("PUT", path, body, **kw)

    async def patch(self, path: str, body: Any, ptype: str = "merge", **kw: Any) -> Reply:
        ctype = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
            "apply": "application/apply-patch+yaml",
        }[ptype]
        return await self.call("PATCH", path, body, ctype=ctype, **kw)

    async def delete(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.call("DELETE", path, body, **kw)

    async def watch(
        self, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> WatchStream:
        assert self.session is not None
        query = {"watch": "true", **(params or {})}
        resp = await self.session.get(
            self.url + path,
            params=query,
            headers=headers,
            ssl=self.ssl,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        )
        return WatchStream(resp)


def assert_status(reply: Reply, code: int, reason: str | None = None, message: str | None = None) -> JSON:
    """The reply is a Status error with this HTTP code (and reason / exact message when given), in
    JSON or (asked for with ``Accept``) YAML."""
    assert reply.status == code, reply
    body = reply.body
    if body is None and reply.headers.get("Content-Type", "").startswith("application/yaml"):
        body = yaml.safe_load(reply.raw)
    assert isinstance(body, dict), reply
    assert body["kind"] == "Status" and body["apiVersion"] == "v1", body
    assert body["status"] == "Failure" and body["code"] == code, body
    if reason is not None:
        assert body["reason"] == reason, body
    if message is not None:
        assert body["message"] == message, body
    return body


async def create(api: Api, path: str, obj: JSON) -> JSON:
    """POST ``obj`` to ``path``, assert 201 Created and return the stored object."""
    reply = await api.post(path, obj)
    assert reply.status == 201, reply
    return reply.json


def domain(name: str, role: str = "partner", pods: int = 100, **labels: str) -> JSON:
    obj: JSON = {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "Domain",
        "metadata": {"name": name},
        "spec": {"role": role, "cert": "base64<certificate>", "resourceQuota": {"podMaxCount": pods}},
    }
    if labels:
        obj["metadata"]["labels"] = dict(labels)
    return obj


def configmap(name: str, data: dict[str, str] | None = None, **labels: str) -> JSON:
    obj: JSON = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data or {"k": "v"}}
    if labels:
        obj["metadata"]["labels"] = dict(labels)
    return obj


def pod(name: str, *containers: JSON, node: str = "", labels: dict[str, str] | None = None) -> JSON:
    spec: JSON = {"containers": list(containers) or [{"name": "main", "image": "busybox:1"}]}
    if node:
        spec["nodeName"] = node
    obj: JSON = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    if labels:
        obj["metadata"]["labels"] = labels
    return obj


def names(listing: JSON) -> list[str]:
    return [item["metadata"]["name"] for item in listing["items"]]


