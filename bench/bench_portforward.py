"""Port-forward benchmark: kubectl 1.32 ``port-forward`` (SPDY tunnelled in a WebSocket, relayed by
the API server to the RunP agent) against a direct TCP connection to the same pod port.

    .venv/bin/python bench/bench_portforward.py [--megabytes 32] [--connections 50] [--quick]

A master and one lite agent (domain alice) run as processes; the pod is a Python echo server.
Measured: throughput of an echo of M MiB (sent and received concurrently) and the time to open a
connection and do one 1-byte round trip, p50 over C sequential connections. The reference is the
direct connection (the floor any forwarding path adds to), printed as ``ours / reference``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.api import kinds  # noqa: E402
from atoll.client import Client  # noqa: E402
from bench._common import free_port, percentile, stop_processes  # noqa: E402
from bench.bench_deployments import kill_pods  # noqa: E402
from bench.bench_pods import create_domains, start_agent, start_master  # noqa: E402

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
ECHO = """
import socket, sys, threading
srv = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
def serve(conn):
    with conn:
        while data := conn.recv(262144):
            conn.sendall(data)
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
"""


async def echo_throughput(port: int, megabytes: int) -> float:
    """MiB/s of sending ``megabytes`` and reading them back at once."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    chunk, total = b"x" * 262144, megabytes << 20
    start = time.perf_counter()

    async def send() -> None:
        for _ in range(total // len(chunk)):
            writer.write(chunk)
            await writer.drain()

    async def receive() -> None:
        got = 0
        while got < total:
            data = await reader.read(1 << 20)
            if not data:
                raise RuntimeError(f"connection closed after {got} bytes")
            got += len(data)

    await asyncio.gather(send(), receive())
    elapsed = time.perf_counter() - start
    writer.close()
    return megabytes / elapsed


async def connect_latency(port: int, count: int) -> float:
    """p50 seconds to connect and do one 1-byte round trip."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"!")
        await reader.readexactly(1)
        samples.append(time.perf_counter() - start)
        writer.close()
    return percentile(samples, 0.5)


async def run(base: Path, megabytes: int, connections: int) -> None:
    master, kubeconfig = start_master(base)
    agent = None
    forward = None
    try:
        agent = start_agent(base, kubeconfig, "alice")
        target = free_port()
        (base / "echo.py").write_text(ECHO)
        async with Client.from_kubeconfig(kubeconfig) as client:
            await create_domains(client, ["alice"])
            command = [sys.executable, str(base / "echo.py"), str(target)]
            pod = {"metadata": {"name": "echo"}, "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                {"name": "main", "image": "bench:v1", "command": command}]}}
            for _ in range(600):
                try:
                    await client.create(kinds.PODS, pod, "alice")
                    break
                except Exception:  # the namespace's service account or node is not there yet
                    await asyncio.sleep(0.1)
            for _ in range(600):
                got = await client.get(kinds.PODS, "echo", "alice")
                if (got.get("status") or {}).get("phase") == "Running":
                    break
                await asyncio.sleep(0.1)
        local = free_port()
        forward = await asyncio.create_subprocess_exec(
            KUBECTL, "--kubeconfig", str(kubeconfig), "port-forward", "-n", "alice", "pod/echo", f"{local}:{target}",
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert forward.stdout is not None
        await forward.stdout.readline()
        for _ in range(100):  # the echo server may still be starting
            try:
                await connect_latency(target, 1)
                break
            except OSError:
                await asyncio.sleep(0.1)
        direct_bw, ours_bw = await echo_throughput(target, megabytes), await echo_throughput(local, megabytes)
        direct_lat, ours_lat = await connect_latency(target, connections), await connect_latency(local, connections)
        print(f"echo of {megabytes} MiB: direct {direct_bw:.1f} MiB/s, port-forward {ours_bw:.1f} MiB/s "
              f"(ours / reference = {ours_bw / direct_bw:.3f})")
        print(f"connect + 1-byte round trip p50 over {connections}: direct {direct_lat * 1e3:.2f} ms, port-forward "
              f"{ours_lat * 1e3:.2f} ms (ours / reference = {ours_lat / direct_lat:.1f})")
    finally:
        if forward is not None:
            forward.terminate()
            await forward.wait()
        stop_processes([agent, master], timeout=20)
        kill_pods(base)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=32)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="8 MiB, 20 connections")
    args = parser.parse_args()
    if args.quick:
        args.megabytes, args.connections = 8, 20
    with tempfile.TemporaryDirectory(prefix="atoll-bench-pf-") as tmp:
        asyncio.run(run(Path(tmp), args.megabytes, args.connections))


if __name__ == "__main__":
    main()
