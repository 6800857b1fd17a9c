"""Fixtures shared by the API-server integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.kube_http import Api


@pytest.fixture
async def api(api_server: Any) -> AsyncIterator[Api]:
    """A raw HTTPS client for the in-process API server, authenticated as the test admin."""
    async with Api(api_server) as client:
        yield client
