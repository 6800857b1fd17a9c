"""Finding 6, floods of connections: memory comes back after a flood closes, and an attacker
holding the cap of unauthenticated connections (512) with slowloris TLS connections — partial
request heads, re-opened as soon as the server closes them — does not lock legitimate clients
out: over the cap the oldest unauthenticated connection is evicted, so real kubectl and the
official Python client are served within a bound while the flood is held. One real
``atoll start`` master for the module."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import RunningServer, eventually, kubectl_binary, kubectl_environ, start_master_process
from tests.security.conftest import rss_mb, settled_rss

pytestmark = pytest.mark.slow
CAP = 512  # the default ConnectionLimits.max_unauthenticated
FLOOD = CAP + 48
BOUND_SECONDS = 15.0
"""kubectl (discovery and a list, several connections) and the Python client must finish within
this while the flood is held; a locked-out client would wait for the flood's header timeout."""


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, int]]:
    """The master and its process id."""
    proc, server = start_master_process(tmp_path_factory.mktemp("slowloris") / "master")
    try:
        yield server, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


RSS_BACK_MB = 35.0
"""RSS after a flood closed may exceed the RSS before it by this much (measured: ~10 MB; before
the fix 55-60 MB stayed, and with eviction but without the fix ~180 MB)."""


async def _flood(server: RunningServer, idle: int, slow: int) -> None:
    """``idle`` raw TCP connections that never speak and ``slow`` TLS ones with a partial head,
    held until the server closes them or 3 s pass, then closed."""
    host, port = server.url.removeprefix("https://").split(":")
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    writers: list[asyncio.StreamWriter] = []
    for i in range(idle + slow):
        with contextlib.suppress(OSError, ssl.SSLError):
            _, writer = await asyncio.open_connection(host, int(port), ssl=ctx if i >= idle else None)
            if i >= idle:
                writer.write(b"GET /api HTTP/1.1\r\nHost: x\r\n")
            writers.append(writer)
    await asyncio.sleep(3)  # the flood held (no event to wait for: it is the attacker's choice)
    for writer in writers:
        writer.transport.abort()


async def test_memory_comes_back_after_a_connection_flood(master: tuple[RunningServer, int]) -> None:
    server, pid = master
    before = await settled_rss(pid)
    await _flood(server, idle=1500, slow=500)

    def back() -> float:
        rss = rss_mb(pid)
        assert rss <= before + RSS_BACK_MB, f"RSS {rss:.0f} MB after the flood, {before:.0f} MB before"
        return rss

    await eventually(back, within=40, every=1.0)


class Attacker:
    """Keeps ``FLOOD`` TLS connections open that never finish their request head."""

    def __init__(self, server: RunningServer) -> None:
        host, port = server.url.removeprefix("https://").split(":")
        self.host, self.port = host, int(port)
        self.ctx = ssl.create_default_context(cafile=str(server.ca_file))
        self.opened = 0

    async def _one(self) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.ctx)
            except (OSError, ssl.SSLError):
                await asyncio.sleep(0.05)
                continue
            self.opened += 1
            try:
                writer.write(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n")  # and never the rest
                with contextlib.suppress(OSError, ssl.SSLError):
                    await reader.read(1024)  # returns when the server closes the connection
            finally:
                writer.transport.abort()

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[Attacker]:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self._one()) for _ in range(FLOOD)]
            try:
                yield self
            finally:
                for task in tasks:
                    task.cancel()


async def _metric(server: RunningServer, name: str) -> float:
    async with aiohttp.ClientSession(headers=server.headers()) as http, \
            http.get(server.url + "/metrics", ssl=server.ssl_context()) as resp:
        text = await resp.text()
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, f"{name} not exported"
    return float(found.group(1))


async def test_clients_are_served_while_slowloris_holds_the_cap(
    master: tuple[RunningServer, int], tmp_path: Path
) -> None:
    server = master[0]
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    env = kubectl_environ(tmp_path)  # a fresh discovery cache: kubectl opens several connections
    async with Attacker(server).holding() as attacker:
        await eventually(lambda: attacker.opened >= FLOOD, within=60)
        await eventually(lambda: _metric_at_least(server, "apiserver_evicted_connections_total", FLOOD - CAP), 30)
        await eventually(lambda: _metric_at_least(server, "apiserver_unauthenticated_connections", CAP - 8), 30)

        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            kubectl_binary(), "--kubeconfig", str(server.kubeconfig), "get", "namespaces", "-o", "name",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), BOUND_SECONDS + 15)
        took = time.monotonic() - started
        assert proc.returncode == 0, err.decode()
        assert b"namespace/default" in out
        assert took < BOUND_SECONDS, f"kubectl took {took:.1f}s under the flood"

        def python_client() -> list[str]:
            api = k8s.CoreV1Api(k8s_config.new_client_from_config(config_file=str(server.kubeconfig)))
            return [ns.metadata.name for ns in api.list_namespace(_request_timeout=BOUND_SECONDS).items]

        started = time.monotonic()
        names = await asyncio.to_thread(python_client)
        assert "default" in names and time.monotonic() - started < BOUND_SECONDS
        await eventually(lambda: _metric_at_least(server, "apiserver_unauthenticated_connections", CAP - 8), 30)


async def _metric_at_least(server: RunningServer, name: str, n: float) -> float:
    value = await _metric(server, name)
    assert value >= n, f"{name} is {value:.0f}"
    return value
