"""Fixtures that run every store test against SQLite, PostgreSQL and MySQL/MariaDB.

Each test gets its own freshly created database (dropped afterwards). Servers come from
``ATOLL_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``) and
``ATOLL_TEST_MYSQL`` (default ``mysql://root@127.0.0.1:3306/``). An unreachable server skips
the test with the reason, or fails it when ``CI=true`` (CI must start the servers).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from atoll.store.endpoint import drop_database, ensure_database, open_store
from atoll.store.log import LogStore

BACKENDS = ["sqlite", "postgresql", "mysql"]
ENV = {"postgresql": "ATOLL_TEST_POSTGRES", "mysql": "ATOLL_TEST_MYSQL"}
DEFAULTS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "mysql": "mysql://root@127.0.0.1:3306/",
}
_unreachable: dict[str, str] = {}

StoreFactory = Callable[..., Awaitable[LogStore]]


def admin_url(backend: str) -> str:
    return os.environ.get(ENV[backend]) or DEFAULTS[backend]


def database_url(backend: str, name: str) -> str:
    parts = urlsplit(admin_url(backend))
    return urlunsplit(parts._replace(path="/" + name))


def _unavailable(backend: str, reason: str) -> None:
    message = f"{backend} server not reachable at {admin_url(backend)} (set {ENV[backend]}): {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(params=BACKENDS)
async def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """``await make(**options)`` opens (and starts) another store on the test's one database."""
    backend: str = request.param
    endpoint = f"sqlite://{tmp_path / 'state.db'}"
    if backend != "sqlite":
        if backend in _unreachable:
            _unavailable(backend, _unreachable[backend])
        endpoint = database_url(backend, f"atoll_test_{uuid.uuid4().hex[:12]}")
        try:
            await asyncio.wait_for(ensure_database(endpoint), 10)
        except Exception as exc:  # refused, timed out, auth: report it, never skip silently
            _unreachable[backend] = repr(exc)
            _unavailable(backend, repr(exc))
    opened: list[LogStore] = []

    async def make(**options: Any) -> LogStore:
        options.setdefault("gap_timeout", 0.1)
        store = open_store(endpoint, tmp_path, **options)
        await store.start()
        opened.append(store)
        return store

    make.backend = backend  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for store in opened:
            await store.close()
        if backend != "sqlite":
            await drop_database(endpoint)


@pytest.fixture
async def store(store_factory: StoreFactory) -> LogStore:
    return await store_factory()
