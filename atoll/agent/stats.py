"""The agent's resource statistics for ``metrics.k8s.io`` (``kubectl top``): ``GET /stats/summary``
(kubelet's path; Atoll's own compact JSON), served next to the log endpoint under the same
mutual-TLS rule.

Each running container is a session (the RunP shim calls ``setsid``): its CPU is the summed
``utime + stime`` of the processes in that session and its memory their resident set, read from
``/proc``. CPU is reported as a rate (nanocores) over the time since the previous sample (at least
``MIN_WINDOW`` seconds; the first request samples twice). The node's figures are the machine's
(``/proc/stat``, ``/proc/meminfo``), which a RunP node shares with everything else on it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiohttp import web

from atoll.agent.runp.runtime import RunP

JSON = dict[str, Any]
MIN_WINDOW = 0.5
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _sessions() -> dict[int, tuple[int, int]]:
    """Session id -> (CPU ticks, resident bytes) over every process."""
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        acc = out[int(fields[3])]  # field 6: session
        acc[0] += int(fields[11]) + int(fields[12])
        acc[1] += int(fields[21]) * PAGE
    return {sid: (v[0], v[1]) for sid, v in out.items()}


def _node_cpu_ticks() -> int:
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts]
    return sum(values) - values[3] - (values[4] if len(values) > 4 else 0)  # minus idle and iowait


def _node_memory() -> int:
    info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
            if line.split()[1:2] and line.split()[1].isdigit()}
    return info.get("MemTotal", 0) - info.get("MemAvailable", 0)


class Stats:
    def __init__(self, runtime: RunP) -> None:
        self.runtime = runtime
        self._last: tuple[float, dict[int, tuple[int, int]], int] | None = None

    async def sample(self) -> tuple[float, dict[int, tuple[int, int]], int, float]:
        """(window seconds, sessions now, node ticks now, timestamp) with a rate-worthy previous sample."""
        now = (time.monotonic(), await asyncio.to_thread(_sessions), _node_cpu_ticks())
        if self._last is None or now[0] - self._last[0] < MIN_WINDOW:
            if self._last is None:
                self._last = now
            await asyncio.sleep(max(MIN_WINDOW - (now[0] - self._last[0]), 0.0))
            now = (time.monotonic(), await asyncio.to_thread(_sessions), _node_cpu_ticks())
        return now[0] - self._last[0], now[1], now[2], time.time()

    async def summary(self) -> JSON:
        previous = self._last
        window, sessions, node_ticks, stamp = await self.sample()
        before = previous or self._last
        assert before is not None
        old_sessions, old_node = before[1], before[2]

        def nanocores(ticks_now: int, ticks_then: int) -> int:
            return max(int((ticks_now - ticks_then) / TICK / window * 1e9), 0)

        pods = []
        for worker in list(self.runtime.workers.values()):
            containers = []
            state = worker.state
            for name, rec in (state.containers.items() if state else ()):
                if rec.state != "running" or rec.pid <= 0 or rec.pid not in sessions:
                    continue
                ticks, rss = sessions[rec.pid]
                containers.append({"name": name, "cpu": nanocores(ticks, old_sessions.get(rec.pid, (ticks, 0))[0]),
                                   "memory": rss})
            if containers:
                md = worker.pod["metadata"]
                pods.append({"namespace": md["namespace"], "name": md["name"], "containers": containers})
        self._last = (time.monotonic(), sessions, node_ticks)
        return {"timestamp": stamp, "window": window, "node": {"cpu": nanocores(node_ticks, old_node),
                                                               "memory": _node_memory()}, "pods": pods}


async def serve_summary(stats: Stats, request: web.Request) -> web.Response:
    return web.json_response(await stats.summary())
