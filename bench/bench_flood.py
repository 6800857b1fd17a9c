"""Connection flood benchmark: a real ``atoll start`` master under idle and slowloris connections.

    .venv/bin/python bench/bench_flood.py [--idle 2000] [--slow 1000]

Measures, for the server process: RSS and authenticated GET latency (p50/p99 over 200 GETs)
with no flood; then opens ``idle`` raw TCP connections that never send anything and ``slow``
slowloris connections that trickle a header byte every second; measures RSS, GET latency and how
many flood connections the server still holds after 15 s; closes the flood and measures RSS again.
The server's limits (header timeout 10 s, 512 unauthenticated connections) should keep RSS
flat and GETs fast.

Then the lock-out case: ``--hold`` (default 560) TLS slowloris connections that hold the cap of
unauthenticated connections, each re-opened as soon as the server closes it (evicts it), while a
client makes GETs each on a *new* TLS connection: p50/p99 and failures, next to the same GETs
with no flood. Prints one table (ours under flood / ours without flood).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._common import rss_mb  # noqa: E402
from tests.conftest import start_master_process  # noqa: E402


async def latencies(http: aiohttp.ClientSession, n: int = 200) -> tuple[float, float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        async with http.get("/api/v1/namespaces/default") as resp:
            assert resp.status == 200
            await resp.read()
        out.append((time.perf_counter() - started) * 1000)
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.99) - 1]


async def open_flood(port: int, idle: int, slow: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    conns = []
    for i in range(idle + slow):
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if i >= idle:
                writer.write(b"GET /api HTTP/1.1\r\n")
            conns.append((reader, writer))
    return conns


async def trickle(writers: list[asyncio.StreamWriter], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for w in writers:
            if not w.is_closing():
                with contextlib.suppress(Exception):
                    w.write(b"X")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def still_open(conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> int:
    """Flood connections the server has not closed (no EOF seen on them)."""
    return sum(1 for reader, writer in conns if not reader.at_eof() and not writer.is_closing())


async def _drain(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(Exception):
        while await reader.read(4096):
            pass


async def new_connection_latencies(url: str, headers: dict[str, str], ctx: ssl.SSLContext,
                                   n: int = 50) -> tuple[float, float, int]:
    """p50/p99 (ms) of GETs each on a new TLS connection, and how many failed."""
    out, failed = [], 0
    for _ in range(n):
        started = time.perf_counter()
        try:
            async with aiohttp.ClientSession(url, headers=headers, connector=aiohttp.TCPConnector(
                    ssl=ctx, force_close=True)) as http, http.get("/api/v1/namespaces/default") as resp:
                await resp.read()
                if resp.status != 200:
                    failed += 1
        except (aiohttp.ClientError, OSError):
            failed += 1
        out.append((time.perf_counter() - started) * 1000)
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.99) - 1], failed


async def hold_cap(port: int, ctx: ssl.SSLContext, count: int) -> None:
    """``count`` TLS slowloris connections, each re-opened when the server closes it, until killed
    (runs in its own process: the attacker's TLS work must not slow the measuring client)."""

    async def one() -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
            except (OSError, ssl.SSLError):
                await asyncio.sleep(0.05)
                continue
            writer.write(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n")
            with contextlib.suppress(OSError, ssl.SSLError):
                await reader.read(1024)  # returns when the server closes (evicts) the connection
            writer.transport.abort()

    await asyncio.gather(*(one() for _ in range(count)))


async def lockout(server_url: str, headers: dict[str, str], ctx: ssl.SSLContext, ca: Path, hold: int) -> list[str]:
    """Rows of the lock-out case."""
    n50, n99, nfail = await new_connection_latencies(server_url, headers, ctx)
    port = server_url.rsplit(":", 1)[1]
    attacker = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--attack", port, "--ca", str(ca), "--hold", str(hold))
    try:
        await asyncio.sleep(5)  # the attacker opens its connections (a bench: no condition to wait on)
        f50, f99, ffail = await new_connection_latencies(server_url, headers, ctx)
    finally:
        attacker.terminate()
        await attacker.wait()
    return [
        f"new-connection GET p50 (ms), {hold} slowloris holding the cap: flood / none|{f50:.1f} / {n50:.1f}|"
        f"{f50 / n50:.2f}x",
        f"new-connection GET p99 (ms): flood / none|{f99:.1f} / {n99:.1f}|{f99 / n99:.2f}x",
        f"new-connection GETs failed: flood / none|{ffail} / {nfail}|of 50",
    ]


async def main(args: argparse.Namespace) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 65536)), hard))
    base = Path(tempfile.mkdtemp(prefix="atoll-bench-flood-"))
    proc, server = start_master_process(base / "master")
    port = int(server.url.rsplit(":", 1)[1])
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    try:
        await asyncio.sleep(5)
        rss_before = rss_mb(proc.pid)
        # an authenticated client already connected (keep-alive) before the flood starts
        http = aiohttp.ClientSession(server.url, connector=aiohttp.TCPConnector(ssl=ctx, limit=1),
                                     headers=server.headers())
        p50, p99 = await latencies(http)
        conns = await open_flood(port, args.idle, args.slow)
        writers = [w for _, w in conns]
        # consume what the server sends (its closes become EOFs)
        drains = [asyncio.create_task(_drain(reader)) for reader, _ in conns]
        stop = asyncio.Event()
        trickler = asyncio.create_task(trickle(writers[args.idle:], stop))
        await asyncio.sleep(2)
        rss_flood = rss_mb(proc.pid)
        f50, f99 = await latencies(http)
        await http.close()
        await asyncio.sleep(13)
        held = still_open(conns)
        stop.set()
        await trickler
        for w in writers:
            w.close()
        await asyncio.sleep(12)
        rss_after = rss_mb(proc.pid)
        for task in drains:
            task.cancel()
        extra = await lockout(server.url, server.headers(), ctx, server.ca_file, args.hold)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    rows = [
        ("RSS idle (MB)", f"{rss_before:.0f}", ""),
        (f"RSS during flood of {args.idle} idle + {args.slow} slowloris (MB)", f"{rss_flood:.0f}",
         f"{rss_flood / rss_before:.2f}x"),
        ("RSS after the flood closed (MB)", f"{rss_after:.0f}", f"{rss_after / rss_before:.2f}x"),
        ("GET p50 (ms): flood / none", f"{f50:.1f} / {p50:.1f}", f"{f50 / p50:.2f}x"),
        ("GET p99 (ms): flood / none", f"{f99:.1f} / {p99:.1f}", f"{f99 / p99:.2f}x"),
        ("flood connections still open after 15 s", str(held), f"of {len(writers)}"),
    ]
    for line in extra:
        name, value, ratio = line.split("|")
        rows.append((name, value, ratio))
    width = max(len(r[0]) for r in rows)
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>16}  {ratio}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--hold", type=int, default=560)
    parser.add_argument("--attack", type=int, default=0, help=argparse.SUPPRESS)  # the attacker process
    parser.add_argument("--ca", default="", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.attack:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(hold_cap(parsed.attack, ssl.create_default_context(cafile=parsed.ca), parsed.hold))
        sys.exit(0)
    sys.exit(asyncio.run(main(parsed)))
