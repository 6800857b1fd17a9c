"""Two API server replicas sharing one PostgreSQL (or MariaDB/MySQL) database.

Each replica is its own ``atoll start`` process with its own data dir and port; both name the
same fresh ``datastoreEndpoint`` and were initialised with one ``--shared-pki-key-file``, so they
share the CA, admin credentials and ServiceAccount signing key (``tests/integration/replicas.py``
starts them once per backend for this module and ``test_replicas_writes.py``). Objects written
through one replica are readable through the other, a write through A reaches a watch opened
through B in well under a second (measured), and resourceVersions are the same numbers on both
replicas (they are the shared log's revisions).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import eventually
from tests.integration import replicas
from tests.integration.replicas import Pair
from tests.integration.servers import configmap, json_ok

pair = replicas.pair  # the module's two masters, one pair per backend

pytestmark = [pytest.mark.slow, pytest.mark.backend, pytest.mark.asyncio(loop_scope="module")]

CM = "/api/v1/namespaces/default/configmaps"
WATCH_BUDGET = 1.0  # seconds from A's acknowledgement to B's watch event
ROUNDS = 20


async def _get_json(http: aiohttp.ClientSession, path: str) -> Any:
    """The object at ``path``; not there yet (AssertionError) while this replica answers 404."""
    async with http.get(path) as resp:
        assert resp.status != 404, f"{path} not readable yet"
        if resp.status != 200:
            raise RuntimeError(f"{path}: {resp.status} {await resp.text()}")
        return await resp.json(content_type=None)


class Watch:
    """A raw watch stream on one replica: ``await next_event()`` -> (type, object, arrival time)."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next_event(self) -> tuple[str, dict[str, Any], float]:
        async with asyncio.timeout(5):
            line = await self.resp.content.readline()
        arrived = time.monotonic()
        assert line, "watch stream ended"
        event = orjson.loads(line)
        return event["type"], event["object"], arrived


async def _open_watch(http: aiohttp.ClientSession, rv: str) -> Watch:
    resp = await http.get(CM, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "60"})
    assert resp.status == 200, await resp.text()
    return Watch(resp)


async def _list_rv(http: aiohttp.ClientSession) -> str:
    async with http.get(CM) as resp:
        return str((await json_ok(resp))["metadata"]["resourceVersion"])


async def _write_then_watch(writer: aiohttp.ClientSession, reader: aiohttp.ClientSession, tag: str) -> list[float]:
    """Create and update objects through ``writer``; return each event's delay on ``reader``'s watch."""
    watch = await _open_watch(reader, await _list_rv(reader))
    delays = []
    try:
        for i in range(ROUNDS):
            name = f"{tag}-{i}"
            if i % 2 == 0:
                async with writer.post(CM, json=configmap(name, i=str(i))) as resp:
                    written = await json_ok(resp)
                expected_type = "ADDED"
            else:
                name = f"{tag}-{i - 1}"
                async with writer.put(f"{CM}/{name}", json=configmap(name, i=str(i))) as resp:
                    written = await json_ok(resp)
                expected_type = "MODIFIED"
            acked = time.monotonic()
            etype, obj, arrived = await watch.next_event()
            assert (etype, obj["metadata"]["name"]) == (expected_type, name)
            # the same object at the same revision on both replicas
            assert obj["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
            assert obj["metadata"]["uid"] == written["metadata"]["uid"]
            assert obj["data"] == written["data"]
            delays.append(max(0.0, arrived - acked))
            await asyncio.sleep(0.02)
    finally:
        watch.resp.close()
    return delays


async def test_two_replicas_share_one_database(pair: Pair) -> None:
    backend, a, b = pair.backend, pair.a_http, pair.b_http
    # created through A, readable through B with the same uid and resourceVersion
    async with a.post(CM, json=configmap("from-a", k="v")) as resp:
        created = await json_ok(resp)
    # LIST without resourceVersion is a consistent read: it must see A's write at once
    async with b.get(CM) as resp:
        listed = await json_ok(resp)
    assert int(listed["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])
    names = {o["metadata"]["name"]: o for o in listed["items"]}
    assert names["from-a"]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    got = await eventually(lambda: _get_json(b, f"{CM}/from-a"), WATCH_BUDGET, every=0.01)
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert got["data"] == {"k": "v"}

    # updated through B (pinned to A's resourceVersion), seen through A
    body = dict(got, data={"k": "w"})
    async with b.put(f"{CM}/from-a", json=body) as resp:
        updated = await json_ok(resp)
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    async with a.get(CM) as resp:
        listed_a = await json_ok(resp)
    again = {o["metadata"]["name"]: o for o in listed_a["items"]}["from-a"]
    assert again["data"] == {"k": "w"}
    assert again["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]
    # a stale pin through A is a conflict (optimistic concurrency spans replicas)
    async with a.put(f"{CM}/from-a", json=dict(got, data={"k": "stale"})) as resp:
        assert resp.status == 409, await resp.text()

    # watch latency, both directions
    a_to_b = await _write_then_watch(a, b, "ab")
    b_to_a = await _write_then_watch(b, a, "ba")
    for label, delays in (("A->B", a_to_b), ("B->A", b_to_a)):
        print(
            f"{backend} {label}: watch delay p50 {statistics.median(delays) * 1000:.1f} ms, "
            f"max {max(delays) * 1000:.1f} ms over {len(delays)} writes"
        )
        assert max(delays) < WATCH_BUDGET, f"{label}: {max(delays):.3f} s > {WATCH_BUDGET} s"

    # both replicas converge on the same revision (background writes — leases — may land between
    # the two consistent LISTs, so they agree once no write falls between them)
    async def converged() -> None:
        rv_a, rv_b = await _list_rv(a), await _list_rv(b)
        assert rv_a == rv_b, (rv_a, rv_b)

    await eventually(converged, WATCH_BUDGET * 5)
