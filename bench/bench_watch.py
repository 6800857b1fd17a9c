"""Watch fan-out latency: create -> event delivered to 50 watchers, measured so the client does not count.

    .venv/bin/python bench/bench_watch.py [--rounds 3] [--n 800] [--watchers 50] [--rate 100]
                                          [--server-tree DIR] [--profile FILE]

Each round runs the same load against a real ``atoll start`` (SQLite) and against a reference: a
trivial aiohttp TLS server that fans the POSTed bytes out to every open streaming response (no
store, no cache, no filtering) -- the floor of "one Python process writes one frame to 50 TLS
streams" on this machine, in the same run.

Three processes besides the server, so none waits on another's event loop:

- the watchers (``--role watchers``): one selector loop over 50 plain non-blocking sockets with TLS
  done through ``ssl.MemoryBIO``. Each socket has ``SO_TIMESTAMPNS``: every ``recvmsg`` carries the
  kernel's wall-clock time of the bytes' arrival, so the latency does not include the client's own
  decrypting, parsing or scheduling (the client's view, on receipt after parsing, is reported next
  to it). An event first seen in a read that also held earlier bytes gets that read's stamp.
- the writer (``--role writer``): one keep-alive HTTPS connection creating ConfigMaps at ``--rate``
  per second, each carrying its send time (``time.time()``, wall clock: comparable across
  processes) in ``data.sent``.
- this orchestrator: starts the servers, reads the server's and the clients' CPU.

``--burst N`` then runs N creates from 32 concurrent clients (the store commits several per
batch) with the watchers attached and reports the server's CPU per create, delivery included.
``--server-tree DIR`` runs the atoll server from another source tree (e.g. an exported main) for a
before/after comparison in one session. ``--profile FILE`` records the atoll server with py-spy
during the first round (by the file's suffix: ``.svg`` flame graph, ``.json`` speedscope, ``.txt``
collapsed stacks).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._common import cpu_seconds, free_port, percentile, wait_ready  # noqa: E402

PY = sys.executable
SO_TIMESTAMPNS = 35  # Linux; also the control message type (SCM_TIMESTAMPNS)
TARGET_P99_MS = 10.0
PROFILE_FORMATS = {".json": "speedscope", ".txt": "raw", ".svg": "flamegraph"}

REFERENCE = r"""
import asyncio, ssl, sys
from aiohttp import web
streams = set()
async def watch(request):
    if "watch" not in request.query:
        return web.Response(text="ok")
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    streams.add(resp)
    try:
        await asyncio.Event().wait()
    finally:
        streams.discard(resp)
async def create(request):
    body = await request.read()
    line = b'{"type":"ADDED","object":' + body + b"}\n"
    for resp in list(streams):
        try:
            await resp.write(line)
        except ConnectionError:
            streams.discard(resp)
    return web.Response(status=201, body=body, content_type="application/json")
app = web.Application()
app.router.add_get("/{tail:.*}", watch)
app.router.add_post("/{tail:.*}", create)
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), ssl_context=ctx, access_log=None, print=None)
"""


# ---- the watchers ------------------------------------------------------------------------------


class Stream:
    """One watch over a raw socket: TLS through memory BIOs, HTTP/1.1 chunked body, JSON lines."""

    def __init__(self, host: str, port: int, ctx: ssl.SSLContext, request: bytes) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname=host)
        self._handshake()
        self.tls.write(request)
        self._flush()
        self.sock.setblocking(False)
        self.buf = b""
        self.headers_done = False
        self.body = b""  # de-chunked bytes not yet split into lines

    def _flush(self) -> None:
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed during the TLS handshake") from None
                self.inc.write(data)

    def read(self) -> tuple[float, list[bytes]]:
        """(kernel arrival time of this read, complete JSON lines it finished)."""
        data, anc, _flags, _addr = self.sock.recvmsg(262144, socket.CMSG_SPACE(16))
        stamp = time.time()
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", payload[:16])
                stamp = sec + nsec / 1e9
        if not data:
            raise ConnectionError("stream closed")
        self.inc.write(data)
        plain = b""
        while True:
            try:
                piece = self.tls.read(262144)
            except ssl.SSLWantReadError:
                break
            if not piece:
                break
            plain += piece
        return stamp, self._lines(plain)

    def _lines(self, plain: bytes) -> list[bytes]:
        self.buf += plain
        if not self.headers_done:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return []
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
            self.headers_done, self.buf = True, rest
        while True:  # chunked transfer coding
            size_line, sep, rest = self.buf.partition(b"\r\n")
            if not sep:
                break
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                break
            self.body += rest[:size]
            self.buf = rest[size + 2 :]
        *lines, self.body = self.body.split(b"\n")
        return lines


def run_watchers(job: dict[str, Any]) -> None:
    import orjson

    ctx = ssl.create_default_context(cafile=job["ca"])
    auth = f"Authorization: Bearer {job['token']}\r\n" if job.get("token") else ""
    request = (
        f"GET {job['path']}?watch=true&timeoutSeconds=600 HTTP/1.1\r\nHost: {job['host']}\r\n{auth}"
        "Accept: application/json\r\n\r\n"
    ).encode()
    streams = [Stream(job["host"], job["port"], ctx, request) for _ in range(job["watchers"])]
    sel = selectors.DefaultSelector()
    for s in streams:
        sel.register(s.sock, selectors.EVENT_READ, s)
    waiting = set(streams)
    while waiting:  # every stream's headers: the server has registered all watchers
        for key, _ in sel.select(30):
            s = key.data
            s.read()
            if s.headers_done:
                waiting.discard(s)
    print("ready", flush=True)
    expected = job["n"] * job["watchers"]
    kernel: list[float] = []
    parsed: list[float] = []
    first: dict[float, float] = {}  # per event: the earliest and the latest arrival over the watchers
    last: dict[float, float] = {}
    deadline = time.monotonic() + job["n"] / job["rate"] + 60
    cpu0 = time.process_time()
    counted, count_only = 0, bool(job.get("count_only"))
    while len(kernel) + counted < expected and time.monotonic() < deadline:
        for key, _ in sel.select(1):
            stamp, lines = key.data.read()
            for line in lines:
                if not line:
                    continue
                if count_only:
                    counted += 1
                    continue
                sent = float(orjson.loads(line)["object"]["data"]["sent"])
                kernel.append(stamp - sent)
                parsed.append(time.time() - sent)
                first[sent] = min(first.get(sent, stamp), stamp)
                last[sent] = max(last.get(sent, stamp), stamp)
    cpu = time.process_time() - cpu0
    for s in streams:
        s.sock.close()
    firsts = [first[sent] - sent for sent in first]
    spreads = [last[sent] - first[sent] for sent in first]
    result = {"kernel": kernel, "parsed": parsed, "first": firsts, "spread": spreads, "counted": counted}
    print(json.dumps({**result, "cpu_s": cpu, "expected": expected}), flush=True)


# ---- the writer --------------------------------------------------------------------------------


def run_writer(job: dict[str, Any]) -> None:
    import http.client

    ctx = ssl.create_default_context(cafile=job["ca"])
    conn = http.client.HTTPSConnection(job["host"], job["port"], context=ctx)
    headers = {"Content-Type": "application/json"}
    if job.get("token"):
        headers["Authorization"] = f"Bearer {job['token']}"
    acks: list[float] = []
    errors = 0
    cpu0, start = time.process_time(), time.perf_counter()
    for i in range(job["n"]):
        sent = time.time()
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"w-{job['round']}-{i}"},
            "data": {"sent": repr(sent), "payload": "x" * 256},
        }
        conn.request("POST", job["path"], body=json.dumps(body).encode(), headers=headers)
        resp = conn.getresponse()
        resp.read()
        acks.append(time.time() - sent)
        errors += resp.status >= 300
        delay = start + (i + 1) / job["rate"] - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    rate = job["n"] / (time.perf_counter() - start)
    print(json.dumps({"acks": acks, "errors": errors, "rate": rate, "cpu_s": time.process_time() - cpu0}))


# ---- orchestration -----------------------------------------------------------------------------


def start_atoll(data_dir: Path, tree: Path, rounds: int) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    port = free_port()
    config = data_dir / "atoll.yaml"
    init = [PY, "-m", "atoll.cli.main", "init", "--mode", "master", "--domain", "kuscia-system"]
    init += ["--data-dir", str(data_dir), "--api-port", str(port), "--no-gateway", "-o", str(config)]
    subprocess.run([*init, "--log-level", "WARNING"], check=True, capture_output=True, cwd=tree)
    log = open(data_dir / "server.log", "ab")
    proc = subprocess.Popen([PY, "-m", "atoll.cli.main", "start", "-c", str(config)], stdout=log, stderr=log, cwd=tree)
    pki = data_dir / "pki"
    wait_ready(f"https://127.0.0.1:{port}", pki / "ca.crt", proc)
    token = (pki / "admin.token").read_text().strip()
    conn = {"host": "127.0.0.1", "port": port, "ca": str(pki / "ca.crt"), "token": token}
    for rnd in range(rounds):  # a fresh namespace per round: its watches start with no objects
        ns = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bwatch-{rnd}"}})
        _post(conn, "/api/v1/namespaces", ns.encode())
    return proc, conn


def _post(conn: dict[str, Any], path: str, body: bytes) -> None:
    import http.client

    c = http.client.HTTPSConnection(conn["host"], conn["port"], context=ssl.create_default_context(cafile=conn["ca"]))
    c.request("POST", path, body=body, headers={"Authorization": f"Bearer {conn['token']}"})
    assert c.getresponse().status < 300
    c.close()


def start_reference(pki: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    port = free_port()
    args = [PY, "-c", REFERENCE, str(port), str(pki / "apiserver.crt"), str(pki / "apiserver.key")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port)
    return proc, {"host": "127.0.0.1", "port": port, "ca": str(pki / "ca.crt"), "token": ""}


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"reference server on {port} did not start")


def measure_watch(
    server_pid: int, conn: dict[str, Any], path: str, *, n: int, rate: float, watchers: int, tag: str
) -> dict[str, Any]:
    """One run: ``watchers`` watches of ``path`` (an empty collection) in one process, ``n``
    creates (named ``w-<tag>-<i>``) at ``rate`` per second from another; latencies in ms."""
    job = {**conn, "path": path, "n": n, "rate": rate, "watchers": watchers, "round": tag}
    proc = subprocess.Popen([PY, __file__, "--role", "watchers", json.dumps(job)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise SystemExit("watchers failed to start")
    time.sleep(0.2)
    load = os.getloadavg()[0]
    cpu0 = cpu_seconds(server_pid)
    writer = subprocess.run([PY, __file__, "--role", "writer", json.dumps(job)], capture_output=True, check=True)
    w = json.loads(writer.stdout)
    out, _ = proc.communicate(timeout=120)
    server_cpu = cpu_seconds(server_pid) - cpu0
    r = json.loads(out.splitlines()[-1])
    ms = [x * 1000 for x in r["kernel"]]
    parsed = [x * 1000 for x in r["parsed"]]
    acks = [x * 1000 for x in w["acks"]]
    first, spread = [x * 1000 for x in r["first"]], [x * 1000 for x in r["spread"]]
    return {
        "p50": percentile(ms, 0.5), "p99": percentile(ms, 0.99), "max": max(ms, default=float("nan")),
        "parsed_p50": percentile(parsed, 0.5), "parsed_p99": percentile(parsed, 0.99),
        "ack_p50": percentile(acks, 0.5), "ack_p99": percentile(acks, 0.99),
        "first_p50": percentile(first, 0.5), "first_p99": percentile(first, 0.99),
        "spread_p50": percentile(spread, 0.5), "spread_p99": percentile(spread, 0.99),
        "events": len(ms), "expected": r["expected"], "rate": w["rate"], "errors": w["errors"],
        "server_us_per_write": server_cpu / n * 1e6, "watchers_cpu_s": r["cpu_s"], "writer_cpu_s": w["cpu_s"],
        "load": load,
    }  # fmt: skip


def measure_burst(server_pid: int, conn: dict[str, Any], path: str, *, n: int, watchers: int) -> dict[str, Any]:
    """``n`` creates from 32 concurrent clients (store batches of several events) while ``watchers``
    watches of ``path`` count what they receive: the server's CPU per create and the rate."""
    from bench.bench_apiserver import run_client  # (that module imports this one)

    job = {**conn, "path": path, "n": n, "rate": 1e9, "watchers": watchers, "count_only": True}
    proc = subprocess.Popen([PY, __file__, "--role", "watchers", json.dumps(job)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise SystemExit("watchers failed to start")
    cpu0 = cpu_seconds(server_pid)
    url = f"https://{conn['host']}:{conn['port']}"
    create = {"url": url, "ca": conn["ca"], "token": conn["token"], "kind": "create", "path": path, "n": n}
    r = run_client({**create, "concurrency": 32, "prefix": "burst"})
    out = json.loads(proc.communicate(timeout=120)[0].splitlines()[-1])
    used = cpu_seconds(server_pid) - cpu0
    return {"rate": r["rate"], "cpu_us": used / n * 1e6, "events": out["counted"], "expected": n * watchers,
            "watchers_cpu_s": out["cpu_s"], "load": os.getloadavg()[0]}  # fmt: skip


def show_burst(label: str, r: dict[str, Any]) -> None:
    print(
        f"{label:<10} burst at 32 clients: {r['rate']:,.0f} creates/s, server CPU {r['cpu_us']:.0f} us/create "
        f"(incl. delivery), {r['events']}/{r['expected']} events, watchers CPU {r['watchers_cpu_s']:.2f} s, "
        f"load {r['load']:.1f}",
        flush=True,
    )


def connection(url: str, ca: str, token: str) -> dict[str, Any]:
    """The watchers' and writer's connection settings for a server at ``https://host:port``."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    return {"host": host, "port": int(port), "ca": ca, "token": token}


def one_round(server_pid: int, conn: dict[str, Any], args: argparse.Namespace, rnd: int) -> dict[str, Any]:
    path = f"/api/v1/namespaces/bwatch-{rnd}/configmaps"
    return measure_watch(server_pid, conn, path, n=args.n, rate=args.rate, watchers=args.watchers, tag=str(rnd))


def show(label: str, r: dict[str, Any]) -> None:
    print(
        f"{label:<10} p50/p99/max {r['p50']:6.2f} / {r['p99']:6.2f} / {r['max']:6.1f} ms (client after parse "
        f"{r['parsed_p50']:.2f} / {r['parsed_p99']:.2f}); first watcher {r['first_p50']:.2f} / {r['first_p99']:.2f}, "
        f"first->last {r['spread_p50']:.2f} / {r['spread_p99']:.2f}; ack {r['ack_p50']:.2f} / {r['ack_p99']:.2f} ms; "
        f"{r['events']}/{r['expected']} events at {r['rate']:.0f} w/s; server CPU {r['server_us_per_write']:.0f} "
        f"us/write; client CPU watchers {r['watchers_cpu_s']:.2f} s, writer {r['writer_cpu_s']:.2f} s; "
        f"load {r['load']:.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="latency rounds (0: none)")
    parser.add_argument("--n", type=int, default=800, help="creates per round")
    parser.add_argument("--rate", type=float, default=100.0, help="creates per second")
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--server-tree", type=Path, default=REPO, help="source tree the atoll server runs from")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--burst", type=int, default=0, help="then N creates at 32 clients (CPU per create)")
    parser.add_argument("--profile", type=Path, help="py-spy record the atoll server during round 1 into FILE")
    parser.add_argument("--role", choices=["watchers", "writer"], help=argparse.SUPPRESS)
    parser.add_argument("job", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "watchers":
        return run_watchers(json.loads(args.job))
    if args.role == "writer":
        return run_writer(json.loads(args.job))
    with tempfile.TemporaryDirectory(prefix="atoll-bench-watch-") as tmp:
        server, conn = start_atoll(Path(tmp), args.server_tree.resolve(), args.rounds + 1)
        ref, rconn = (None, None) if args.no_reference else start_reference(Path(tmp) / "pki")
        try:
            ours, refs = [], []
            for rnd in range(args.rounds):
                spy = None
                if args.profile and rnd == 0:
                    spy = subprocess.Popen(
                        [str(Path(PY).parent / "py-spy"), "record", "-r", "200", "-p", str(server.pid), "-o",
                         str(args.profile), "-f", PROFILE_FORMATS.get(args.profile.suffix, "flamegraph")],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                    time.sleep(1.0)
                ours.append(one_round(server.pid, conn, args, rnd))
                if spy is not None:
                    spy.send_signal(2)
                    spy.wait(60)
                show(f"atoll {rnd + 1}", ours[-1])
                if ref is not None and rconn is not None:
                    refs.append(one_round(ref.pid, rconn, args, rnd))
                    show(f"ref {rnd + 1}", refs[-1])
            if args.burst:
                path = f"/api/v1/namespaces/bwatch-{args.rounds}/configmaps"
                show_burst("atoll", measure_burst(server.pid, conn, path, n=args.burst, watchers=args.watchers))
                if ref is not None and rconn is not None:
                    show_burst("ref", measure_burst(ref.pid, rconn, path, n=args.burst, watchers=args.watchers))
        finally:
            for p in (server, ref):
                if p is not None and p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(15)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
    if not ours:
        return None
    med = sorted(r["p99"] for r in ours)[len(ours) // 2]
    line = f"median p99 atoll {med:.2f} ms (target <= {TARGET_P99_MS:g})"
    if refs:
        rmed = sorted(r["p99"] for r in refs)[len(refs) // 2]
        line += f"; reference {rmed:.2f} ms; ratio {med / rmed:.2f}"
    print(line)


if __name__ == "__main__":
    main()
