"""Helpers for tests that run real ``atoll start`` processes: fresh PostgreSQL/MySQL databases
(through the store's own ``ensure_database``/``drop_database`` and the server settings of
``tests/backends/conftest.py``), process clean-up and small aiohttp helpers."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp

from atoll.store.endpoint import drop_database, ensure_database
from tests.backends.conftest import _unavailable, database_url
from tests.conftest import RunningServer, eventually


@contextlib.asynccontextmanager
async def fresh_datastore(backend: str) -> AsyncIterator[str]:
    """The endpoint of a new, empty database (dropped afterwards); "" for SQLite (per data dir).

    An unreachable server skips the test with the reason, or fails it under ``CI=true``."""
    if backend == "sqlite":
        yield ""
        return
    endpoint = database_url(backend, f"atoll_it_{uuid.uuid4().hex[:12]}")
    try:
        await asyncio.wait_for(ensure_database(endpoint), 10)
    except Exception as exc:  # refused, timed out, auth: report it, never skip silently
        _unavailable(backend, repr(exc))
    try:
        yield endpoint
    finally:
        await asyncio.wait_for(drop_database(endpoint), 30)


@contextlib.contextmanager
def reaped(procs: list[subprocess.Popen[bytes]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every process appended to ``procs`` is stopped (SIGTERM, then SIGKILL) and reaped on exit."""
    try:
        yield procs
    finally:
        for proc in procs:
            stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


def session(server: RunningServer, **kwargs: Any) -> aiohttp.ClientSession:
    """A session that trusts ``server``'s own CA and sends its admin token."""
    connector = aiohttp.TCPConnector(ssl=server.ssl_context(), limit=kwargs.pop("limit", 100))
    return aiohttp.ClientSession(base_url=server.url, connector=connector, headers=server.headers(), **kwargs)


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def json_ok(resp: aiohttp.ClientResponse) -> Any:
    body = await resp.json(content_type=None)
    assert 200 <= resp.status < 300, f"{resp.method} {resp.url}: {resp.status} {body}"
    return body


async def wait_bootstrapped(http: aiohttp.ClientSession, within: float = 30) -> None:
    """Wait until the master has created its namespaces.

    ``/readyz`` turns 200 as soon as the HTTP listener is up, before the master's bootstrap
    (namespaces, CRDs) has run; on a fresh PostgreSQL/MySQL database the first writes can
    otherwise get ``namespaces "default" not found``."""

    async def default_namespace() -> None:
        async with http.get("/api/v1/namespaces/default") as resp:
            assert resp.status == 200, "namespace default never appeared"

    await eventually(default_namespace, within)
