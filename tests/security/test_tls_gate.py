"""The listener's TLS gate on both event loops a node can run on (asyncio's, the default, and
uvloop with ``ATOLL_EVENT_LOOP=uvloop``): the ClientHello reaches TLS however early the loop starts reading, a
connection that never speaks is closed after the header timeout, a failed handshake releases its
place under the cap, and over the cap the oldest silent connection is evicted. In-process API
server on SQLite with a real serving certificate."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import uvloop

from atoll.apiserver.app import APIServer, ServerConfig, ServerSettings
from atoll.apiserver.http.limits import ConnectionLimits, unauthenticated_connections
from atoll.pki import ensure_pki, server_ssl_context
from atoll.store.endpoint import open_store
from tests.conftest import eventually

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {"asyncio": None, "uvloop": uvloop.new_event_loop}


@contextlib.asynccontextmanager
async def tls_server(tmp_path: Path, limits: ConnectionLimits) -> AsyncIterator[tuple[int, ssl.SSLContext]]:
    """An API server on TLS; its port and a client context trusting its CA."""
    pki = ensure_pki(tmp_path / "pki")
    store = open_store(None, tmp_path / "data")
    await store.start()
    config = ServerConfig(port=0, ssl_context=server_ssl_context(pki), settings=ServerSettings(limits=limits))
    api = APIServer(store, config)
    task = asyncio.create_task(api.run())
    await api.wait_ready()
    try:
        yield api.bound_port, ssl.create_default_context(cafile=str(pki.ca_cert))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


async def _get_version(port: int, client: ssl.SSLContext) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
    writer.write(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def _is_closed(reader: asyncio.StreamReader) -> Callable[[], Awaitable[None]]:
    """A check for ``eventually``: the server closed the connection."""

    async def check() -> None:
        assert await _closed(reader), "the server has not closed the connection"

    return check


async def _closed(reader: asyncio.StreamReader) -> bool:
    with contextlib.suppress(TimeoutError, ConnectionError):
        return await asyncio.wait_for(reader.read(1024), 0.05) == b""
    return False


async def _handshakes_eviction(tmp_path: Path) -> None:
    limits = ConnectionLimits(header_timeout=30, idle_timeout=30, max_unauthenticated=3)
    async with tls_server(tmp_path, limits) as (port, client):
        for _ in range(5):  # each ClientHello arrives right after the connection: never dropped
            assert (await _get_version(port, client)).startswith(b"HTTP/1.1 200"), "TLS request failed"
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]  # fill the cap
        assert (await _get_version(port, client)).startswith(b"HTTP/1.1 200")  # admitted: the oldest goes
        await eventually(_is_closed(silent[0][0]))
        assert not await _closed(silent[1][0]), "only the oldest silent connection is evicted"
        for _, writer in silent:
            writer.close()


async def _timeouts_and_failures(tmp_path: Path) -> None:
    limits = ConnectionLimits(header_timeout=0.5, idle_timeout=30, max_unauthenticated=50)
    async with tls_server(tmp_path, limits) as (port, client):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # never speaks
        await eventually(_is_closed(reader), within=10)
        writer.close()
        for _ in range(3):  # not TLS at all: the handshake fails, the connection is closed
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            await eventually(_is_closed(reader), within=10)
            writer.close()
        await eventually(lambda: unauthenticated_connections._value.get() == 0)  # every place released
        assert (await _get_version(port, client)).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_tls_handshakes_and_eviction(tmp_path: Path, loop: str) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(_handshakes_eviction(tmp_path))


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_silent_and_non_tls_connections_are_closed_and_released(tmp_path: Path, loop: str) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(_timeouts_and_failures(tmp_path))
