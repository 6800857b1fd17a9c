"""Finding 6: connections cost nothing before authentication; overload answers 429 + Retry-After."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from atoll.apiserver.app import APIServer, ServerConfig, ServerSettings
from atoll.apiserver.http.limits import ConnectionLimits, InflightLimiter
from atoll.store.endpoint import open_store
from tests.conftest import eventually

LIMITS = ConnectionLimits(header_timeout=0.5, idle_timeout=1.0, max_unauthenticated=5, max_requests_inflight=0,
                          max_mutating_requests_inflight=0)


@contextlib.asynccontextmanager
async def server(tmp_path: Path, limits: ConnectionLimits, unix_socket: Path | None = None) -> AsyncIterator[str]:
    store = open_store(None, tmp_path)
    await store.start()
    api = APIServer(store, ServerConfig(port=0, unix_socket=unix_socket, settings=ServerSettings(limits=limits)))
    task = asyncio.create_task(api.run())
    await api.wait_ready()
    try:
        yield f"127.0.0.1:{api.bound_port}"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(1024), seconds)
    except TimeoutError:
        return False
    return data == b""


async def test_slowloris_connection_is_closed_after_the_header_timeout(tmp_path: Path) -> None:
    async with server(tmp_path, LIMITS) as address:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /api HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        await writer.drain()
        started = time.monotonic()
        assert await _closed_within(reader, 5)
        assert 0.3 < time.monotonic() - started < 3
        writer.close()


async def test_over_the_cap_the_oldest_unauthenticated_connection_is_evicted(tmp_path: Path) -> None:
    limits = ConnectionLimits(header_timeout=30, idle_timeout=30, max_unauthenticated=5)
    async with server(tmp_path, limits) as address, aiohttp.ClientSession() as http:
        host, port = address.split(":")
        # an authenticated keep-alive connection (no authenticator here: every request is) is never evicted
        async with http.get(f"http://{address}/version") as resp:
            assert resp.status == 200
        slow = []
        for _ in range(5):  # slowloris: partial headers, held
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /version HTTP/1.1\r\nHost: x\r\n")
            await writer.drain()
            slow.append((reader, writer))
        await eventually(lambda: not any(r.at_eof() for r, _ in slow))
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(host, int(port))  # the 6th: admitted, the 1st goes
        writer.write(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert time.monotonic() - started < 3
        assert await _closed_within(slow[0][0], 3), "the oldest slowloris connection was not evicted"
        assert not any(r.at_eof() for r, _ in slow[1:]), "only the oldest is evicted"
        async with http.get(f"http://{address}/version") as resp:  # the authenticated connection still serves
            assert resp.status == 200
        for _, w in [*slow, (reader, writer)]:
            w.close()


async def test_the_loopback_socket_is_not_counted_against_the_cap(tmp_path: Path) -> None:
    limits = ConnectionLimits(header_timeout=30, idle_timeout=30, max_unauthenticated=1)
    sock = tmp_path / "run" / "api.sock"
    async with server(tmp_path, limits, unix_socket=sock) as address:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))  # holds the cap of 1
        writer.write(b"GET /version HTTP/1.1\r\n")
        await writer.drain()
        for _ in range(3):  # the master's own clients connect freely and evict nobody
            async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as http, \
                    http.get("http://localhost/version") as resp:
                assert resp.status == 200
        assert not await _closed_within(reader, 0.3), "a loopback connection evicted the TCP one"
        writer.close()


async def test_overload_answers_429_with_retry_after_and_watches_are_not_counted(tmp_path: Path) -> None:
    async with server(tmp_path, LIMITS) as address, aiohttp.ClientSession() as http:
        async with http.get(f"http://{address}/api/v1/namespaces") as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "1"
            body = await resp.json()
            assert body["reason"] == "TooManyRequests" and body["kind"] == "Status"
        async with http.get(f"http://{address}/api/v1/namespaces?watch=true&timeoutSeconds=1") as resp:
            assert resp.status == 200


def test_inflight_limiter_counts_and_releases() -> None:
    from aiohttp.test_utils import make_mocked_request

    limiter = InflightLimiter(ConnectionLimits(max_requests_inflight=1, max_mutating_requests_inflight=1))
    get, post = make_mocked_request("GET", "/api/v1/pods"), make_mocked_request("POST", "/api/v1/pods")
    taken = limiter.enter(get, ())
    with pytest.raises(Exception, match="Too many requests"):
        limiter.enter(get, ())
    assert limiter.enter(get, ("system:masters",)) is None
    mutating = limiter.enter(post, ())
    limiter.leave(taken)
    limiter.leave(mutating)
    assert limiter.enter(get, ()) == "readonly"


def test_only_a_get_with_watch_is_long_running() -> None:
    """A watch is a GET: ``PUT ...?watch=x`` is still counted against the in-flight limits."""
    from aiohttp.test_utils import make_mocked_request

    from atoll.apiserver.http.limits import long_running

    assert long_running(make_mocked_request("GET", "/api/v1/pods?watch=x"))
    assert long_running(make_mocked_request("GET", "/api/v1/namespaces/a/pods/p/log?follow=true"))
    assert not long_running(make_mocked_request("PUT", "/api/v1/namespaces/a/pods/p?watch=true"))
    assert not long_running(make_mocked_request("POST", "/api/v1/namespaces/a/pods?watch=1"))
    assert not long_running(make_mocked_request("GET", "/api/v1/pods?watch=false"))
