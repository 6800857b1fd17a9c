"""Memory model benchmark: RSS of a real ``atoll start`` master per byte of stored objects.

    .venv/bin/python bench/bench_memory.py [--count 2000] [--size 100000] [--updates 400]

1. idle RSS of a fresh master (all controllers, so informers watch as in production);
2. creates ``count`` ConfigMaps of ``size`` bytes each and reports (RSS - idle) / stored bytes
   (target: <= 2.0);
3. updates one 1 MB ConfigMap ``updates`` times and reports the RSS growth (the watch history is
   bounded in bytes, so it must stay flat well below updates x 1 MB);
4. restarts the master on the same store and reports its peak RSS while it settles (the watch
   cache loads the store, informers list) and its RSS after, both per stored byte over the
   first master's idle RSS (target: <= 2.0 as well).

Prints one table and exits non-zero when a ratio target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import ssl
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._common import rss_mb  # noqa: E402
from tests.conftest import start_master_process  # noqa: E402
from tests.security.conftest import settled_rss  # noqa: E402

TARGET_RATIO = 2.0


async def settle(pid: int, seconds: float = 12.0) -> float:
    await asyncio.sleep(seconds)
    return rss_mb(pid)


async def fill(url: str, headers: dict[str, str], ctx: ssl.SSLContext, count: int, size: int) -> int:
    connector = aiohttp.TCPConnector(ssl=ctx, limit=16)
    stored = 0
    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as http:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> int:
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"},
                    "data": {"blob": f"{i:08d}" + "x" * (size - 8)}}
            raw = orjson.dumps(body)
            async with sem, http.post("/api/v1/namespaces/default/configmaps", data=raw,
                                      headers={"Content-Type": "application/json"}) as resp:
                assert resp.status == 201, await resp.text()
                return len(await resp.read())

        for n in await asyncio.gather(*(one(i) for i in range(count))):
            stored += n
    return stored


async def churn(url: str, headers: dict[str, str], ctx: ssl.SSLContext, updates: int) -> None:
    connector = aiohttp.TCPConnector(ssl=ctx, limit=4)
    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as http:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "churn"}, "data": {"blob": ""}}
        async with http.post("/api/v1/namespaces/default/configmaps", json=body) as resp:
            assert resp.status == 201, await resp.text()
        for i in range(updates):
            patch = {"data": {"blob": f"{i:08d}" + "y" * 1_000_000}}
            async with http.patch("/api/v1/namespaces/default/configmaps/churn", data=orjson.dumps(patch),
                                  headers={"Content-Type": "application/merge-patch+json"}) as resp:
                assert resp.status == 200, await resp.text()


async def main(args: argparse.Namespace) -> int:
    base = Path(tempfile.mkdtemp(prefix="atoll-bench-mem-"))
    proc, server = start_master_process(base / "master")
    try:
        ctx = ssl.create_default_context(cafile=str(server.ca_file))
        idle = await settle(proc.pid)
        started = time.monotonic()
        stored = await fill(server.url, server.headers(), ctx, args.count, args.size)
        filled = await settle(proc.pid)
        ratio = (filled - idle) * 2**20 / stored
        print(f"stored {args.count} x {args.size} B in {time.monotonic() - started:.1f}s")
        before_churn = filled
        await churn(server.url, server.headers(), ctx, args.updates)
        churned = await settle(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    proc, server = start_master_process(base / "master")
    try:
        restart_peak = await settled_rss(proc.pid)
        restarted = await settle(proc.pid, 5.0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    restart_ratio = (restart_peak - idle) * 2**20 / stored
    rows = [
        ("idle RSS (MB)", f"{idle:.0f}"),
        (f"RSS after {args.count} x {args.size // 1000} KB (MB)", f"{filled:.0f}"),
        ("stored bytes (MB)", f"{stored / 2**20:.0f}"),
        ("RSS growth / stored bytes", f"{ratio:.2f}  (target <= {TARGET_RATIO})"),
        (f"RSS growth over {args.updates} updates of 1 MB (MB)", f"{churned - before_churn:.0f}"),
        ("RSS after restart on the same store: peak / settled (MB)", f"{restart_peak:.0f} / {restarted:.0f}"),
        ("restart RSS growth / stored bytes: peak / settled",
         f"{restart_ratio:.2f} / {(restarted - idle) * 2**20 / stored:.2f}  (target <= {TARGET_RATIO})"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    shutil.rmtree(base, ignore_errors=True)
    return 0 if max(ratio, restart_ratio) <= TARGET_RATIO else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=400)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(asyncio.run(main(parser.parse_args())))
