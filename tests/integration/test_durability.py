"""kill -9 durability: no acknowledged write is lost, resourceVersions never go backwards.

A real ``atoll start`` process takes concurrent create/update load over HTTPS from several
asyncio tasks; every 2xx answer is recorded with its resourceVersion and content. The server is
SIGKILLed in the middle of the load (requests in flight), restarted on the same data dir (and
datastore), and must then serve every acknowledged object with at least the acknowledged
content, and hand out resourceVersions above every one acknowledged before the crash.
Run against the embedded SQLite store, PostgreSQL and MariaDB/MySQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import start_master_process
from tests.integration.servers import configmap, fresh_datastore, json_ok, reaped, session, wait_bootstrapped

pytestmark = pytest.mark.slow

WORKERS = 8
MIN_ACKS = 300
MIN_LOAD_SECONDS = 1.0
NS = "default"
CM = f"/api/v1/namespaces/{NS}/configmaps"


@dataclass
class Acks:
    """What the server acknowledged: name -> (seq, resourceVersion) of the last 2xx write."""

    objects: dict[str, tuple[int, int]] = field(default_factory=dict)
    count: int = 0
    cut: int = 0  # requests that never got an answer (the kill hit them)
    max_rv: int = 0

    def record(self, name: str, seq: int, rv: str) -> None:
        prev = self.objects.get(name)
        assert prev is None or int(rv) > prev[1], f"{name}: rv went backwards {prev} -> {rv}"
        self.objects[name] = (seq, int(rv))
        self.count += 1
        self.max_rv = max(self.max_rv, int(rv))


async def _worker(http: aiohttp.ClientSession, wid: int, acks: Acks, stop: asyncio.Event) -> None:
    """Alternate creating a new object and updating one of this worker's own (no conflicts)."""
    mine: list[str] = []
    i = 0
    try:
        while not stop.is_set():
            if mine and i % 2:
                name = mine[i % len(mine)]
                seq = acks.objects[name][0] + 1
                async with http.put(f"{CM}/{name}", json=configmap(name, seq=str(seq), w=str(wid))) as resp:
                    body = await json_ok(resp)
            else:
                name, seq = f"w{wid}-{i}", 0
                async with http.post(CM, json=configmap(name, seq="0", w=str(wid), pad="x" * 200)) as resp:
                    body = await json_ok(resp)
                mine.append(name)
            assert body["data"]["seq"] == str(seq)
            acks.record(name, seq, body["metadata"]["resourceVersion"])
            i += 1
    except (TimeoutError, aiohttp.ClientError, ConnectionError):
        acks.cut += 1  # the server died under this request: it may or may not have committed


async def _load_then_kill(server_pid: int, http: aiohttp.ClientSession) -> Acks:
    acks, stop = Acks(), asyncio.Event()
    workers = [asyncio.create_task(_worker(http, w, acks, stop)) for w in range(WORKERS)]
    started = time.monotonic()
    while acks.count < MIN_ACKS or time.monotonic() - started < MIN_LOAD_SECONDS:
        await asyncio.sleep(0.02)
        for w in workers:
            if w.done():
                w.result()  # a worker failed before the kill: surface it
        assert time.monotonic() - started < 60, f"only {acks.count} writes acknowledged in 60 s"
    os.kill(server_pid, signal.SIGKILL)  # mid-load: every worker has a request in flight
    await asyncio.wait_for(asyncio.gather(*workers), 30)
    stop.set()
    return acks


async def _verify_after_restart(http: aiohttp.ClientSession, acks: Acks) -> None:
    async with http.get(CM) as resp:
        listed = await json_ok(resp)
    found = {o["metadata"]["name"]: o for o in listed["items"]}
    assert int(listed["metadata"]["resourceVersion"]) >= acks.max_rv
    lost = sorted(set(acks.objects) - set(found))
    assert not lost, f"{len(lost)} acknowledged objects lost after kill -9, e.g. {lost[:5]}"
    for name, (seq, rv) in acks.objects.items():
        obj = found[name]
        assert int(obj["data"]["seq"]) >= seq, f"{name}: acknowledged seq {seq}, found {obj['data']}"
        assert int(obj["metadata"]["resourceVersion"]) >= rv, f"{name}: acknowledged rv {rv}, found {obj['metadata']}"
        # GET by name is served too (same cache, but the point read path)
    name = next(iter(acks.objects))
    async with http.get(f"{CM}/{name}") as resp:
        assert int((await json_ok(resp))["data"]["seq"]) >= acks.objects[name][0]

    # new writes after the restart get revisions above everything acknowledged before the crash
    async with http.post(CM, json=configmap("after-restart", seq="0")) as resp:
        created = await json_ok(resp)
    assert int(created["metadata"]["resourceVersion"]) > acks.max_rv
    async with http.put(f"{CM}/{name}", json=configmap(name, seq="999999")) as resp:
        updated = await json_ok(resp)
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
async def test_kill9_loses_no_acknowledged_write(backend: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "master"
    async with fresh_datastore(backend) as endpoint:
        with reaped([]) as procs:
            proc, server = await asyncio.to_thread(start_master_process, data_dir, datastore=endpoint)
            procs.append(proc)
            async with session(server, timeout=aiohttp.ClientTimeout(total=30)) as http:
                await wait_bootstrapped(http)
                acks = await _load_then_kill(proc.pid, http)
            assert await asyncio.to_thread(proc.wait, 10) == -signal.SIGKILL
            assert acks.cut > 0, "the kill did not land mid-load"
            assert acks.count >= MIN_ACKS

            # same data dir and config file, so the same port (start_master_process only uses
            # ``port`` for the URL it polls once the config exists)
            port = int(server.url.rsplit(":", 1)[1])
            proc2, server2 = await asyncio.to_thread(start_master_process, data_dir, port=port, datastore=endpoint)
            procs.append(proc2)
            async with session(server2, timeout=aiohttp.ClientTimeout(total=30)) as http:
                await _verify_after_restart(http, acks)
