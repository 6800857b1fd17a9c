"""Runs Envoy as a supervised child process: start, health-check, restart.

Envoy gets a static bootstrap (admin on 127.0.0.1 only, the ADS cluster, the internal-listener
extension) and everything else over ADS, so a restarted Envoy reconnects and is re-sent the
current snapshot. A process that exits, or whose admin ``/ready`` stops answering ``LIVE``, is
killed and started again with a capped backoff. Envoy's own log goes to ``envoy.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

from atoll.gateway.binary import envoy_version, find_envoy

log = logging.getLogger(__name__)
JSON = dict[str, object]


@dataclass(slots=True)
class SupervisorOptions:
    run_dir: Path
    binary: str | None = None
    concurrency: int = 1
    drain_seconds: int = 60
    health_period: float = 2.0
    health_failures: int = 3
    log_level: str = "warning"


class EnvoySupervisor:
    def __init__(self, options: SupervisorOptions, bootstrap: Callable[[], JSON]) -> None:
        self.options = options
        self.binary = find_envoy(options.binary)
        self.version = envoy_version(self.binary)
        self._bootstrap = bootstrap
        self.process: asyncio.subprocess.Process | None = None
        self.admin_url = ""
        self.starts = 0
        self.ready = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        """The process runs and its admin ``/ready`` answered ``LIVE`` on the last health poll."""
        return self.process is not None and self.process.returncode is None and self.ready.is_set()

    async def run(self) -> None:
        backoff = 0.2
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                code = await self._run_once(session)
                self.ready.clear()
                log.warning("envoy exited (code %s); restarting in %.1f s", code, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _run_once(self, session: aiohttp.ClientSession) -> int | None:
        run_dir = self.options.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        bootstrap = run_dir / "envoy-bootstrap.json"
        await _kill_leftover(run_dir / "envoy.pid", bootstrap)
        bootstrap.write_bytes(orjson.dumps(self._bootstrap()))
        address_file = run_dir / "envoy-admin.address"
        address_file.unlink(missing_ok=True)
        pid_file = run_dir / "envoy.pid"
        await asyncio.to_thread(kill_stale_envoy, pid_file, bootstrap)
        args = [
            str(self.binary),
            "-c", str(bootstrap),
            "--concurrency", str(self.options.concurrency),
            "--disable-hot-restart",
            "--drain-time-s", str(self.options.drain_seconds),
            "--admin-address-path", str(address_file),
            "--log-level", self.options.log_level,
            "--log-path", str(run_dir / "envoy.log"),
        ]  # fmt: skip
        self.process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        pid_file.write_text(str(self.process.pid))
        self.starts += 1
        (run_dir / "envoy.pid").write_text(str(self.process.pid))
        log.info("envoy %s started (pid %s)", self.version, self.process.pid)
        try:
            return await self._watch(session, address_file)
        finally:
            await self._kill()

    async def _watch(self, session: aiohttp.ClientSession, address_file: Path) -> int | None:
        assert self.process is not None
        exited = asyncio.ensure_future(self.process.wait())
        failures = 0
        try:
            while not exited.done():
                if not self.admin_url:
                    self.admin_url = _admin_url(address_file)
                live = bool(self.admin_url) and await self._live(session)
                if live:
                    failures = 0
                    self.ready.set()
                elif self.ready.is_set():
                    failures += 1
                    if failures >= self.options.health_failures:
                        log.error("envoy admin did not answer LIVE %d times; killing it", failures)
                        return None
                period = self.options.health_period if self.ready.is_set() else 0.05
                await asyncio.wait({exited}, timeout=period)
            return exited.result()
        finally:
            exited.cancel()
            self.admin_url = ""

    async def _live(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(self.admin_url + "/ready") as response:
                return response.status == 200 and (await response.text()).strip() == "LIVE"
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def _kill(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    async def admin_get(self, path: str) -> str:
        """A GET on Envoy's admin API ("" when Envoy is not up)."""
        if not self.admin_url:
            return ""
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
                async with session.get(self.admin_url + path) as response:
                    return await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return ""


async def _kill_leftover(pid_file: Path, bootstrap: Path) -> None:
    """An Envoy left running by a node process that was killed holds the gateway's ports: stop it
    (only if its command line names this gateway's bootstrap file)."""
    pid = _leftover_pid(pid_file, bootstrap)
    if pid is None:
        return
    log.warning("stopping envoy pid %d left over from an earlier run", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.05)


def _leftover_pid(pid_file: Path, bootstrap: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ValueError):
        return None
    return pid if str(bootstrap).encode() in cmdline else None


def _admin_url(address_file: Path) -> str:
    """``http://127.0.0.1:<port>`` once Envoy has written its admin address ("" before)."""
    try:
        address = address_file.read_text().strip()
    except FileNotFoundError:
        return ""
    return f"http://{address}" if address else ""


def kill_stale_envoy(pid_file: Path, bootstrap: Path, wait_seconds: float = 5.0) -> bool:
    """SIGKILL the Envoy a previous run of this node left behind (the node was ``kill -9``-ed:
    Envoy runs in its own session and would keep the node's ports). Identified by its pid file
    and its command line naming this node's bootstrap file; True if one was killed."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    if str(bootstrap).encode() not in cmdline:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait_seconds
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    log.warning("killed envoy pid %d left behind by a previous run of this node", pid)
    return True
