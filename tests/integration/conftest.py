"""Fixtures shared by the integration tests: raw HTTPS to the API server, and an Atoll client of a FakeKube."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from atoll.client import Client
from tests.integration.fake_kube import FakeKube, running_fake
from tests.integration.kube_http import Api


@pytest.fixture
async def api(api_server: Any) -> AsyncIterator[Api]:
    """A raw HTTPS client for the in-process API server, authenticated as the test admin."""
    async with Api(api_server) as client:
        yield client


@pytest.fixture
async def fake() -> AsyncIterator[FakeKube]:
    """A FakeKube with default settings (modules needing others, e.g. a bookmark interval, override it)."""
    async with running_fake() as server:
        yield server


@pytest.fixture
async def client(fake: FakeKube) -> AsyncIterator[Client]:
    """An Atoll client of ``fake`` (modules against the real API server override it with ``api_server.client()``)."""
    async with Client(fake.url) as c:
        yield c
