"""An idle master's CPU and its requests on itself (``atoll start`` as a process, nothing to do).

    .venv/bin/python bench/bench_idle.py [--windows 3] [--seconds 30] [--settle 15] [--gateway]

Starts a master (every controller, no gateway unless ``--gateway``) with ``ATOLL_REQUEST_CLIENTS=1``,
waits ``--settle`` seconds for start-up work to finish, then measures ``--windows`` windows of
``--seconds`` each: the process's CPU (% of one core; user + system from ``/proc``), per thread, and
the API requests it served, by client, verb, resource and code
(``atoll_apiserver_client_request_total``, scraped once before the first window and once after the
last: a scrape is itself a request, counted once). Reported: each window's CPU, the median, the
busiest threads, and requests per second. ``ATOLL_PYSPY=FILE`` samples the whole measurement with
``py-spy record --gil`` (collapsed stacks; ``ATOLL_PYSPY_RATE`` Hz, 200 by default).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from atoll.client import Client  # noqa: E402
from bench._common import ATOLL, cpu_seconds, start_master  # noqa: E402

Requests = dict[tuple[str, str, str, str], float]


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds by thread name (threads of one name summed)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


async def requests(client: Client) -> Requests:
    text = await client.request("GET", "/metrics")
    out: Requests = {}
    for family in text_string_to_metric_families(text):
        if family.name == "atoll_apiserver_client_request":
            for s in family.samples:
                if s.name.endswith("_total"):
                    out[(s.labels["client"], s.labels["verb"], s.labels["resource"], s.labels["code"])] = s.value
    return out


def start_pyspy(pid: int) -> subprocess.Popen[bytes] | None:
    out = os.environ.get("ATOLL_PYSPY")
    if not out:
        return None
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [
            str(spy) if spy.exists() else "py-spy",
            "record",
            "--pid",
            str(pid),
            "--rate",
            os.environ.get("ATOLL_PYSPY_RATE", "200"),
            "--format",
            "raw",
            "--threads",
            "--gil",
            "--nonblocking",
            "-o",
            out,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def measure(pid: int, kubeconfig: Path, windows: int, seconds: float) -> None:
    async with Client.from_kubeconfig(kubeconfig) as client:
        before = await requests(client)
        spy = start_pyspy(pid)
        threads0 = thread_cpu(pid)
        t0 = time.monotonic()
        shares = []
        for i in range(windows):
            cpu0, w0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(seconds)
            share = (cpu_seconds(pid) - cpu0) / (time.monotonic() - w0) * 100
            shares.append(share)
            print(f"window {i + 1}: {share:.2f}% of a core (load {os.getloadavg()[0]:.1f})", flush=True)
        elapsed = time.monotonic() - t0
        threads1 = thread_cpu(pid)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
        after = await requests(client)
    print(f"idle CPU: median {statistics.median(shares):.2f}% of a core over {windows} x {seconds:g} s")
    busiest = sorted(((threads1.get(n, 0.0) - threads0.get(n, 0.0), n) for n in threads1), reverse=True)[:5]
    print("threads: " + ", ".join(f"{n} {v / elapsed * 100:.2f}%" for v, n in busiest))
    rows = sorted(((k, v - before.get(k, 0.0)) for k, v in after.items()), key=lambda kv: -kv[1])
    total = 0.0
    print(f"requests per second on the idle master ({elapsed:.0f} s; the closing scrape included):")
    for (who, verb, resource, code), n in rows:
        if n:
            total += n
            print(f"  {who:<26}{verb:<8}{resource:<28}{code:>5}{n / elapsed:>8.3f}")
    print(f"  total {total / elapsed:.3f}/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=15.0)
    parser.add_argument("--gateway", action="store_true", help="the master runs its gateway (as quickstart's)")
    args = parser.parse_args()
    os.environ["ATOLL_REQUEST_CLIENTS"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        proc, _url = start_master(base, gateway=args.gateway, seconds=60)
        try:
            kubeconfig = base / "admin.kubeconfig"
            kubeconfig.write_text(
                subprocess.run(
                    [*ATOLL, "kubeconfig", "-c", str(base / "atoll.yaml")],
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=REPO,
                ).stdout
            )
            time.sleep(args.settle)
            asyncio.run(measure(proc.pid, kubeconfig, args.windows, args.seconds))
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
