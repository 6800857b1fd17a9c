"""Fault injection around the real API server: a plain-HTTP proxy in front of the ``api_server``
fixture's master that tests steer to see how clients, informers and leader election cope.

``requests`` records every request (method, path with query); ``drop_watches()`` ends the open
watch streams as a broken connection would, ``expire_watches()`` ends them with a 410 ``Expired``
event; while ``resumed`` is cleared new watches are held silent (an API server that stopped
talking); ``inject_failure()`` answers matching requests with an error ``Status``; ``compact()``
compacts the real store (so old resourceVersions really are gone). Everything else is the real
server's answer, relayed unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from atoll.api import errors
from tests.conftest import RunningServer

FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept", "User-Agent")


@dataclass
class _Failure:
    method: str
    path_contains: str
    code: int
    times: int


@dataclass(eq=False)
class _Watch:
    path: str
    ended: asyncio.Event
    expire: bool = False


class FaultProxy:
    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.requests: list[tuple[str, str]] = []
        self.resumed = asyncio.Event()
        self.resumed.set()
        self.watchers: set[_Watch] = set()
        self._failures: list[_Failure] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    # ---- steering -----------------------------------------------------------------------------

    def watching(self, path_contains: str = "") -> bool:
        """True while a watch stream whose request path contains ``path_contains`` is open."""
        return any(path_contains in watch.path for watch in self.watchers)

    def drop_watches(self) -> None:
        for watch in self.watchers:
            watch.ended.set()

    def expire_watches(self) -> None:
        for watch in self.watchers:
            watch.expire = True
            watch.ended.set()

    def inject_failure(self, method: str, path_contains: str, code: int = 500, times: int = 1) -> None:
        self._failures.append(_Failure(method, path_contains, code, times))

    async def compact(self) -> None:
        """Compact the real store at its current revision: older resourceVersions answer 410."""
        node = self.server.node
        assert node is not None and node.server is not None
        await node.server.compactor.compact(await node.server.store.current_revision())

    @property
    def rv(self) -> int:
        """The server's current revision (what a fresh list answers)."""
        node = self.server.node
        assert node is not None and node.server is not None
        return node.server.cache.revision

    # ---- serving ------------------------------------------------------------------------------

    async def start(self) -> str:
        connector = aiohttp.TCPConnector(ssl=self.server.ssl_context())
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        failure = self._failure_for(request)
        if failure is not None:
            err = errors.InternalError("injected failure")
            body = dict(err.status(), code=failure.code)
            return web.json_response(body, status=failure.code)
        watch = request.query.get("watch", "").lower() in ("true", "1")
        if watch:
            await self.resumed.wait()
        assert self._session is not None
        headers = {k: request.headers[k] for k in FORWARDED_HEADERS if k in request.headers}
        upstream = await self._session.request(
            request.method, self.server.url + request.path_qs, data=await request.read(), headers=headers,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        if not watch or upstream.status != 200:
            async with upstream:
                return web.Response(body=await upstream.read(), status=upstream.status,
                                    content_type=upstream.content_type)
        return await self._relay(request, upstream)

    def _failure_for(self, request: web.Request) -> _Failure | None:
        for failure in self._failures:
            if failure.times > 0 and failure.method == request.method and failure.path_contains in request.path:
                failure.times -= 1
                return failure
        return None

    async def _relay(self, request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        watch = _Watch(request.path_qs, asyncio.Event())
        self.watchers.add(watch)
        pump = asyncio.create_task(_pump(upstream, response))
        ended = asyncio.create_task(watch.ended.wait())
        try:
            await asyncio.wait({pump, ended}, return_when=asyncio.FIRST_COMPLETED)
            if watch.ended.is_set() and not watch.expire and request.transport is not None:
                request.transport.abort()  # dropped: the connection breaks mid-stream
                return response
            if watch.expire:
                gone = errors.Gone("too old resource version: expired by the test").status()
                with contextlib.suppress(ConnectionResetError):
                    await response.write(orjson.dumps({"type": "ERROR", "object": gone}) + b"\n")
        finally:
            self.watchers.discard(watch)
            for task in (pump, ended):
                task.cancel()
            upstream.close()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response


async def _pump(upstream: aiohttp.ClientResponse, response: web.StreamResponse) -> None:
    with contextlib.suppress(ConnectionResetError, aiohttp.ClientError):
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)


@contextlib.asynccontextmanager
async def fault_proxy(server: RunningServer) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(server)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


_counter = itertools.count()


def configmap(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"n": str(next(_counter))},
    }
