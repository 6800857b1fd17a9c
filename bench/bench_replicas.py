"""Two masters on one PostgreSQL / MariaDB database: cross-replica watch latency and what lost
write races cost everyone else.

Run: ``.venv/bin/python bench/bench_replicas.py [--quick] [--backend postgresql|mysql]``. For each
backend it creates a fresh database, starts masters A and B (``atoll start`` processes sharing
credentials through ``--shared-pki-key-file``) and writes ConfigMaps through A at a steady rate
while one watch on A and one on B record when each event arrives. Latency is measured from the
moment A's create was *sent*:

* reference: A's own watch (same replica, no database round trip to notice the write);
* ours: B's watch (the write reaches B through the database: LISTEN/NOTIFY on PostgreSQL, the
  poll interval on MySQL/MariaDB);

with only the creates, then while PUTs go through A and B in rounds of 3 + 3 every 20 ms: first on
six different objects (the reference load: all win), then on one object with one
resourceVersion (races: exactly one wins). Also printed: A's create acknowledgement latency in each
phase (what the races add to unrelated writes over the same PUT load without conflicts) and the
fill rows in the log (every lost race leaves one, written by the loser at once, so none waits for
the poller; the servers' logs say how many a poller had to fill after ``gap_timeout``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ATOLL, REPO, free_port, percentile, run_in_data_dir, stop_processes, wait_ready

CM = "/api/v1/namespaces/default/configmaps"
SERVERS = {"postgresql": "postgresql://postgres@127.0.0.1:5432/", "mysql": "mysql://root@127.0.0.1:3306/"}


def start(data_dir: Path, endpoint: str, key: Path) -> tuple[subprocess.Popen[bytes], str, ssl.SSLContext, str]:
    port = free_port()
    config = data_dir / "atoll.yaml"
    subprocess.run(
        [*ATOLL, "init", "--mode", "master", "--domain", "kuscia-system", "--data-dir", str(data_dir), "--no-gateway",
         "--api-port", str(port), "-e", endpoint, "--shared-pki-key-file", str(key), "-o", str(config)],
        check=True, capture_output=True, cwd=REPO,
    )
    log = open(data_dir / "server.log", "ab")
    proc = subprocess.Popen([*ATOLL, "start", "-c", str(config)], stdout=log, stderr=log, cwd=REPO)
    url = f"https://127.0.0.1:{port}"
    wait_ready(url, data_dir / "pki" / "ca.crt", proc)
    ctx = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.crt"))
    return proc, url, ctx, (data_dir / "pki" / "admin.token").read_text().strip()


class Watch:
    """Arrival time of every ADDED ConfigMap named ``bench-…`` on one master's watch."""

    def __init__(self, expected: int) -> None:
        self.arrived: dict[str, float] = {}
        self.expected = expected
        self.done = asyncio.Event()

    async def run(self, http: aiohttp.ClientSession, ready: asyncio.Event) -> None:
        async with http.get(CM) as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "600"}
        async with http.get(CM, params=params, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            ready.set()
            async for line in resp.content:
                now = time.perf_counter()
                event = orjson.loads(line)
                name = event["object"]["metadata"]["name"]
                if event["type"] == "ADDED" and name.startswith("bench-"):
                    self.arrived[name] = now
                    if len(self.arrived) >= self.expected:
                        self.done.set()


async def phase(a: aiohttp.ClientSession, b: aiohttp.ClientSession, tag: str, writes: int, rate: float,
                racing: bool | None) -> dict[str, Any]:
    """``racing``: None (only the creates), False (plus non-conflicting PUTs), True (plus races)."""
    watches = (Watch(writes), Watch(writes))
    tasks = []
    for watch, http in zip(watches, (a, b), strict=True):
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(watch.run(http, ready)))
        await ready.wait()
    stop = asyncio.Event()
    races = {"rounds": 0, "lost": 0}
    racer = None if racing is None else asyncio.create_task(race(a, b, tag, stop, races, racing))
    sent: dict[str, float] = {}
    acks: list[float] = []
    began = time.perf_counter()
    for i in range(writes):
        name = f"bench-{tag}-{i}"
        await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
        sent[name] = time.perf_counter()
        async with a.post(CM, json={"metadata": {"name": name}, "data": {"i": str(i)}}) as resp:
            assert resp.status == 201, await resp.text()
        acks.append(time.perf_counter() - sent[name])
    with contextlib.suppress(TimeoutError):  # stragglers are reported as missing
        async with asyncio.timeout(10):
            await asyncio.gather(*(w.done.wait() for w in watches))
    stop.set()
    if racer is not None:
        await racer
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    same, cross = ([w.arrived[n] - sent[n] for n in sent if n in w.arrived] for w in watches)
    return {"same": same, "cross": cross, "acks": acks, "missing": 2 * writes - len(same) - len(cross), **races}


async def race(a: aiohttp.ClientSession, b: aiohttp.ClientSession, tag: str, stop: asyncio.Event,
               races: dict[str, int], conflicting: bool) -> None:
    """Rounds of 3 + 3 PUTs through A and B: all on one object with one resourceVersion (exactly
    one wins), or, as the reference load, each on its own object (all win)."""
    names = [f"race-{tag}-{k}" for k in range(1 if conflicting else 6)]
    current = {}
    for name in names:
        async with a.post(CM, json={"metadata": {"name": name}, "data": {"n": "0"}}) as resp:
            current[name] = await resp.json()
    while not stop.is_set():
        async def put(http: aiohttp.ClientSession, j: int) -> tuple[int, Any]:
            name = names[j % len(names)]
            body = dict(current[name], data={"n": f"{races['rounds']}-{j}"})
            async with http.put(f"{CM}/{name}", json=body) as resp:
                return resp.status, await resp.json()

        results = await asyncio.gather(*(put((a, b)[j % 2], j) for j in range(6)))
        won = [body for status, body in results if status == 200]
        assert len(won) == (1 if conflicting else 6), [s for s, _ in results]
        races["rounds"] += 1
        races["lost"] += len(results) - len(won)
        for body in won:
            current[body["metadata"]["name"]] = body
        await asyncio.sleep(0.02)


async def fill_rows(endpoint: str) -> int:
    from atoll.store.endpoint import open_store

    store = open_store(endpoint, Path("."))
    await store.start()
    try:
        rows = await store.driver.after(0, 1 << 30)  # type: ignore[attr-defined]
        return sum(1 for r in rows if (r[1] if isinstance(r[1], str) else bytes(r[1]).decode()).startswith("gap-"))
    finally:
        await store.close()


def ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000


async def bench(backend: str, base: Path, writes: int, rate: float, poll: str) -> None:
    from atoll.store.endpoint import drop_database, ensure_database

    endpoint = f"{SERVERS[backend]}atoll_bench_{uuid.uuid4().hex[:10]}"
    await ensure_database(endpoint)
    if backend == "mysql" and poll:
        endpoint += f"?pollInterval={poll}"
        print(f"mysql      pollInterval={poll}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        key = base / "pki.key"
        servers = []
        for name in ("a", "b"):
            proc, url, ctx, token = await asyncio.to_thread(start, base / backend / name, endpoint, key)
            procs.append(proc)
            servers.append((url, ctx, token))
        sessions = [
            aiohttp.ClientSession(base_url=url, connector=aiohttp.TCPConnector(ssl=ctx),
                                  headers={"Authorization": f"Bearer {token}"})
            for url, ctx, token in servers
        ]
        a, b = sessions
        try:
            await phase(a, b, "warm", 20, rate, None)
            quiet = await phase(a, b, "quiet", writes, rate, None)
            busy = await phase(a, b, "busy", writes, rate, False)
            racing = await phase(a, b, "race", writes, rate, True)
        finally:
            for s in sessions:
                await s.close()
        fills = await fill_rows(endpoint)
        load = os.getloadavg()[0]
        for label, r in (("creates only", quiet), ("+ updates", busy), ("+ races", racing)):
            ratio = ms(r["cross"], 0.99) / max(ms(r["same"], 0.99), 0.001)
            print(f"{backend:10s} {label:16s} watch p50/p99 cross-replica {ms(r['cross'], 0.5):6.1f} / "
                  f"{ms(r['cross'], 0.99):6.1f} ms   same-replica (reference) {ms(r['same'], 0.5):6.1f} / "
                  f"{ms(r['same'], 0.99):6.1f} ms   p99 ours/reference = {ratio:4.2f}   missing {r['missing']}")
        added = ms(racing["acks"], 0.5) - ms(busy["acks"], 0.5)
        print(f"{backend:10s} create ack p50/p99 {ms(quiet['acks'], 0.5):6.1f} / {ms(quiet['acks'], 0.99):6.1f} ms "
              f"alone, {ms(busy['acks'], 0.5):6.1f} / {ms(busy['acks'], 0.99):6.1f} ms + updates, "
              f"{ms(racing['acks'], 0.5):6.1f} / {ms(racing['acks'], 0.99):6.1f} ms + races: the races add "
              f"{added:+.1f} ms p50 over the same PUT load without conflicts")
        polled = sum(
            (base / backend / n / "server.log").read_text().count("stayed missing") for n in ("a", "b")
        )
        print(f"{backend:10s} {racing['rounds']} race rounds, {racing['lost']} lost PUTs, {fills} fill rows in the "
              f"log, {polled} of them filled by a poller after gap_timeout   (load {load:.1f})")
    finally:
        stop_processes(procs)
        await drop_database(endpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="150 writes per phase instead of 600")
    parser.add_argument("--backend", choices=sorted(SERVERS), action="append")
    parser.add_argument("--rate", type=float, default=50.0, help="creates per second through A")
    parser.add_argument("--mysql-poll", default="", help="MySQL endpoint pollInterval (default 150ms), e.g. 50ms")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data dirs here")
    args = parser.parse_args()
    writes = 150 if args.quick else 600

    async def body(base: Path) -> None:
        for backend in args.backend or ["postgresql", "mysql"]:
            await bench(backend, base, writes, args.rate, args.mysql_poll)

    run_in_data_dir(args.keep, "bench-replicas-", body)


if __name__ == "__main__":
    main()
