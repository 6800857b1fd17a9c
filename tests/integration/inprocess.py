"""An in-process API server on SQLite (no HTTP) for write-path and watch-cache tests: its cache
running, and a namespace ``ns`` created."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from atoll.api.builtins import BUILTINS
from atoll.apiserver.app import APIServer, ServerConfig
from atoll.apiserver.registry.storage import WriteOptions
from atoll.store.sqlite import SQLiteStore

NS = next(r for r in BUILTINS if r.plural == "namespaces" and r.group == "")


@contextlib.asynccontextmanager
async def in_process_server(tmp_path: Path, config: ServerConfig | None = None) -> AsyncIterator[APIServer]:
    store = SQLiteStore(tmp_path / "state.db")
    await store.start()
    srv = APIServer(store, config or ServerConfig())
    task = asyncio.create_task(srv.cache.run())
    await srv.cache.wait_ready()
    await srv.objects.create(NS, None, {"metadata": {"name": "ns"}}, WriteOptions(field_manager="test"))
    try:
        yield srv
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
