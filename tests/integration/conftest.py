"""Fixtures shared by the integration tests: raw HTTPS to the API server, an Atoll client that
reaches it through a fault-injecting proxy, the admin client over HTTP and in-process, and the
server's watch cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from atoll.apiserver.cache.watchcache import WatchCache
from atoll.client import Client
from tests.conftest import RunningServer
from tests.integration.faults import FaultProxy, fault_proxy
from tests.integration.kube_http import Api


@pytest.fixture
async def api(api_server: Any) -> AsyncIterator[Api]:
    """A raw HTTPS client for the in-process API server, authenticated as the test admin."""
    async with Api(api_server) as client:
        yield client


@pytest.fixture
async def faults(api_server: RunningServer) -> AsyncIterator[FaultProxy]:
    """The real API server behind a proxy the test steers (dropped or expired watches, failures)."""
    async with fault_proxy(api_server) as proxy:
        yield proxy


@pytest.fixture
async def client(faults: FaultProxy, api_server: RunningServer) -> AsyncIterator[Client]:
    """An Atoll admin client through ``faults`` (modules that need no faults override it with
    ``api_server.client()``)."""
    async with Client(faults.url, token=api_server.token) as c:
        yield c


@pytest.fixture(params=["http", "local"])
async def http_or_local(api_server: RunningServer, request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    """The admin client over HTTP, then the master's own in-process one (``local`` reads and
    writes): a test that uses it runs with each."""
    assert api_server.node is not None
    c = api_server.client() if request.param == "http" else api_server.node.client()
    assert (c.local is not None) == (request.param == "local")
    async with c:
        yield c


@pytest.fixture
def watch_cache(api_server: RunningServer) -> WatchCache:
    """The API server's watch cache (for tests that hold its batches or stop it)."""
    assert api_server.node is not None and api_server.node.server is not None
    return api_server.node.server.cache
