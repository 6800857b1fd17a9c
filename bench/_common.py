"""What every benchmark needs: a free port, a master started, awaited and stopped, CPU/RSS of a process,
percentiles.

Benchmarks run as scripts (``python bench/bench_x.py``) and put the repository on ``sys.path``
before importing this module as ``bench._common``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ATOLL = [sys.executable, "-m", "atoll.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, ca: Path, proc: subprocess.Popen[bytes], seconds: float = 60, path: str = "/readyz") -> None:
    """Poll ``url + path`` until 200; exit with the server's log tail if the process dies or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {proc.returncode}")
        try:
            ctx = ssl.create_default_context(cafile=str(ca))  # written by the server at first start
            with urllib.request.urlopen(url + path, context=ctx, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{url} did not become ready in {seconds:g} s")


def start_master(
    data_dir: Path, *, controllers: str | None = None, extra: str = "", gateway: bool = False, seconds: float = 30
) -> tuple[subprocess.Popen[bytes], str]:
    """``atoll init`` + ``atoll start`` of a master in ``data_dir`` (log: ``server.log``), optionally
    limited to ``controllers`` (comma-separated) with ``extra`` YAML appended; returns (process, URL)."""
    port = free_port()
    config = data_dir / "atoll.yaml"
    init = [*ATOLL, "init", "--mode", "master", "--domain", "kuscia-system", "--data-dir", str(data_dir)]
    if not gateway:
        init.append("--no-gateway")
    subprocess.run([*init, "--api-port", str(port), "-o", str(config)], check=True, capture_output=True, cwd=REPO)
    if controllers is not None:
        config.write_text(config.read_text() + f"controllers: [{controllers}]\n" + extra)
    log = open(data_dir / "server.log", "ab")
    proc = subprocess.Popen([*ATOLL, "start", "-c", str(config)], stdout=log, stderr=log, cwd=REPO)
    url = f"https://127.0.0.1:{port}"
    try:
        wait_ready(url, data_dir / "pki" / "ca.crt", proc, seconds)
    except SystemExit as exc:
        raise SystemExit(f"{exc}: {(data_dir / 'server.log').read_text()[-2000:]}") from None
    return proc, url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine so far, all cores (``/proc/stat``): busy is
    user, nice, system, irq, softirq and steal; idle is idle and iowait."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / tick, (idle + iowait) / tick


def rss_mb(pid: int, missing: float = 0.0) -> float:
    """Resident memory of a process in MiB (``missing`` when it has none, e.g. a zombie)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return missing


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) as the value at rank ``int(q * n)`` of the sorted values; NaN when empty."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_in_data_dir(keep: Path | None, prefix: str, body: Callable[[Path], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run(body(data_dir))`` in ``keep`` (created, kept afterwards) or in a temporary directory."""
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        asyncio.run(body(keep))
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        asyncio.run(body(Path(tmp)))


def stop_processes(procs: list[subprocess.Popen[bytes] | None], timeout: float = 15) -> None:
    """SIGTERM every process at once, then wait for each; one that outlives ``timeout`` is killed."""
    running = [p for p in procs if p is not None]
    for proc in running:
        proc.terminate()
    for proc in running:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
