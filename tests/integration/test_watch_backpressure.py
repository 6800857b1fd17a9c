"""A watch stream's writes: events go straight from the cache's fan-out to an idle stream's
connection, and a client that stops reading is still bounded and ended.

Aspects: a watcher whose client reads nothing is ended (removed from the cache) once its queue
overflows -- the direct write declines while the connection's write buffer is above its high-water
mark, so the backlog queues instead of growing in the transport without bound; events written
directly, then queued behind a client that paused reading (written by the stream's task once it
drains), then direct again reach the client once each, in order; an idle stream gets a store
batch's events in one write. Real in-process master over HTTPS (the batch: the cache alone).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from atoll.api.builtins import BUILTINS
from atoll.apiserver.app import APIServer, ServerConfig
from atoll.apiserver.cache.watchcache import WatchEvent
from atoll.apiserver.registry.storage import WriteOptions
from atoll.store.base import Event
from atoll.store.sqlite import SQLiteStore
from tests.conftest import eventually

CM = next(r for r in BUILTINS if r.plural == "configmaps" and r.group == "")
CMS = "/api/v1/namespaces/default/configmaps"

pytestmark = pytest.mark.controllers()


async def _stalled_watch(api_server: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A watch whose client reads the response headers and then nothing (a tiny receive buffer)."""
    url = urlsplit(api_server.url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (url.hostname, url.port))
    reader, writer = await asyncio.open_connection(
        sock=sock, ssl=api_server.ssl_context(), server_hostname=url.hostname
    )
    writer.write(
        f"GET {CMS}?watch=true HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {api_server.token}\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


async def test_a_client_that_stops_reading_is_ended_not_buffered(api_server: Any) -> None:
    server = api_server.node.server
    cache = server.cache
    cache.settings = dataclasses.replace(cache.settings, watcher_queue=8)
    before = cache.watcher_count
    _reader, writer = await _stalled_watch(api_server)
    await eventually(lambda: cache.watcher_count == before + 1)
    payload = "x" * 200_000
    written = 0
    # 8 queued events plus what the kernel's socket buffers and the transport's high-water mark
    # hold: ~30 events of 200 KB here. A direct write that ignored a full buffer kept taking
    # events into the transport (~230, 47 MB, before anything ended the watcher).
    while cache.watcher_count > before:
        assert written < 100, f"the stalled watcher was not ended after {written} events of 200 KB"
        obj = {"metadata": {"name": f"big-{written}"}, "data": {"payload": payload}}
        await server.objects.create(CM, "default", obj, WriteOptions())
        written += 1
        await asyncio.sleep(0)
    writer.close()


async def _events(reader: asyncio.StreamReader, count: int) -> list[dict[str, Any]]:
    """The next ``count`` events of a chunked watch response."""
    events: list[dict[str, Any]] = []
    body = b""
    async with asyncio.timeout(20):
        while len(events) < count:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += (await reader.readexactly(size + 2))[:-2]
            *lines, body = body.split(b"\n")
            events += [json.loads(line) for line in lines if line]
    return events


async def test_events_direct_and_queued_behind_a_slow_client_arrive_once_in_order(api_server: Any) -> None:
    server = api_server.node.server
    cache = server.cache
    before = cache.watcher_count
    reader, writer = await _stalled_watch(api_server)
    await eventually(lambda: cache.watcher_count == before + 1)
    payload = "x" * 200_000
    names = [f"big-{i}" for i in range(60)]  # more than the socket buffers hold: the rest queue
    for name in names:
        await server.objects.create(
            CM, "default", {"metadata": {"name": name}, "data": {"payload": payload}}, WriteOptions()
        )
    first = await _events(reader, len(names))  # the client reads again: the queue drains
    later = [f"small-{i}" for i in range(5)]  # written straight from the fan-out once idle again
    for name in later:
        await server.objects.create(CM, "default", {"metadata": {"name": name}}, WriteOptions())
    seen = first + await _events(reader, len(later))
    writer.close()
    assert [e["object"]["metadata"]["name"] for e in seen] == names + later
    assert {e["type"] for e in seen} == {"ADDED"}
    assert cache.watcher_count == before + 1  # never ended: its queue (5,000) did not overflow


async def test_an_idle_stream_gets_a_store_batch_in_one_write(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    await store.start()
    srv = APIServer(store, ServerConfig())
    task = asyncio.create_task(srv.cache.run())
    try:
        await srv.cache.wait_ready()
        cache = srv.cache
        idle, _ = cache.watch(CM.key("ns", ""), lambda _obj: True, None)
        busy, _ = cache.watch(CM.key("ns", ""), lambda _obj: True, None)
        writes: list[list[str]] = []

        def sink(events: list[WatchEvent]) -> bool:
            writes.append([e.current.obj["metadata"]["name"] for e in events])
            return True

        idle.sink = busy.sink = sink
        idle.parked = True  # busy's task is not parked: its events queue
        rev = cache.revision
        batch = [
            Event(
                rev + i,
                CM.key("ns", f"c{i}"),
                b'{"metadata":{"name":"c%d","namespace":"ns"}}' % i,
                True,
                False,
                rev + i,
                0,
            )
            for i in (1, 2, 3)
        ]
        cache._apply(batch)
        assert writes == [["c1", "c2", "c3"]]
        assert busy.queue.qsize() == 3 and not idle.held
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
