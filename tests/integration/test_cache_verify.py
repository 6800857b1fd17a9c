"""The watch cache's self-check (``atoll.apiserver.cache.verify``, ``ATOLL_VERIFY_CACHE``): an
in-process reader that mutates an object it listed is found and logged once; a clean cache is quiet."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from atoll.api.kinds import CONFIGMAPS
from atoll.apiserver.cache import verify
from atoll.apiserver.cache.entries import LARGE_OBJECT
from atoll.client.local import with_type
from tests.conftest import RunningServer, assert_cache_intact, eventually

JSON = dict[str, Any]
NS = "default"


def cm(name: str, size: int = 10) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS, "labels": {"a": "b"}},
            "data": {"k": "x" * size}}


async def listed(server: RunningServer) -> dict[str, JSON]:
    """The cache's own dicts, as the master's controllers get them."""
    assert server.node is not None
    async with server.node.client() as client:
        page = await client.list(CONFIGMAPS, NS)
    return {item["metadata"]["name"]: item for item in page["items"]}


@pytest.mark.mutates_cache
async def test_a_mutation_by_an_in_process_reader_is_found_and_logged_once(
    api_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert api_server.node is not None and api_server.node.server is not None
    cache = api_server.node.server.cache
    async with api_server.client() as client:
        await client.create(CONFIGMAPS, cm("small"), NS)
        await client.create(CONFIGMAPS, cm("large", LARGE_OBJECT + 100), NS)
    items = await listed(api_server)
    checker = verify.Verifier(cache)
    caplog.set_level(logging.INFO, logger=verify.__name__)
    assert checker.check() == [] and verify.mutated_objects(cache) == []
    assert verify.MARK not in caplog.text

    small, large = items["small"], items["large"]
    small["metadata"]["labels"]["a"] = "changed"  # what a careless controller would do
    large["data"]["extra"] = "added"
    found = checker.check()
    assert found == ["/core/configmaps/default/large", "/core/configmaps/default/small"]
    assert verify.mutated_objects(cache) == found
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [f"{verify.MARK}: {' '.join(found)}"]
    assert checker.check() == []  # each object is reported once

    small["metadata"]["labels"]["a"] = "b"  # put them back: the fixture checks the cache at teardown
    del large["data"]["extra"]
    assert verify.mutated_objects(cache) == []


@pytest.mark.mutates_cache
async def test_the_master_checks_periodically_and_as_it_stops(
    api_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert verify.enabled()  # tests/conftest.py sets ATOLL_VERIFY_CACHE for every master the tests start
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert "master/verify-cache" in names
    assert api_server.node is not None and api_server.node.server is not None
    cache = api_server.node.server.cache
    async with api_server.client() as client:
        await client.create(CONFIGMAPS, cm("late"), NS)
    item = (await listed(api_server))["late"]
    caplog.set_level(logging.INFO, logger=verify.__name__)
    task = asyncio.create_task(verify.run(cache, interval=3600))
    await eventually(lambda: "verifying the watch cache" in caplog.text)
    item["data"]["k"] = "changed"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert f"{verify.MARK}: /core/configmaps/default/late" in caplog.text  # the check as it stopped
    item["data"]["k"] = "x" * 10


def test_enabled_only_when_set() -> None:
    assert not verify.enabled({})
    assert not verify.enabled({verify.ENV: "0"})
    assert verify.enabled({verify.ENV: "1"})


def test_the_fixtures_fail_on_the_logged_line(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    assert_cache_intact(log)  # no log yet
    log.write_text("INFO master ready\n")
    assert_cache_intact(log)
    log.write_text(f"2026-01-01 ERROR atoll.apiserver.cache.verify {verify.MARK}: /core/pods/a/b\n")
    with pytest.raises(AssertionError, match="mutated in place"):
        assert_cache_intact(log)


def test_with_type_never_changes_the_object() -> None:
    rd = CONFIGMAPS
    full = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}
    assert with_type(full, rd) is full
    bare: JSON = {"metadata": {"name": "x"}}
    typed = with_type(bare, rd)
    assert typed == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    assert bare == {"metadata": {"name": "x"}}
