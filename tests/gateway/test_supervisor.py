"""The Envoy supervisor on its own: an Envoy left running by a killed node is stopped before the
new one starts (it would hold the gateway's ports)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
from pathlib import Path

import pytest

from atoll.gateway.binary import find_envoy
from atoll.gateway.supervisor import EnvoySupervisor, SupervisorOptions
from tests.conftest import start_until_ready

pytestmark = pytest.mark.slow
ADMIN_ONLY = {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}}


def start_orphan(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_leftover_envoy_of_this_gateway_is_stopped(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    bootstrap = run / "envoy-bootstrap.json"
    bootstrap.write_text(json.dumps(ADMIN_ONLY))
    command = [str(find_envoy()), "-c", str(bootstrap), "--disable-hot-restart", "--log-path", str(tmp_path / "o.log")]
    orphan = start_orphan(command)
    try:
        (run / "envoy.pid").write_text(str(orphan.pid))
        supervisor = EnvoySupervisor(SupervisorOptions(run), lambda: dict(ADMIN_ONLY))
        task = await start_until_ready(supervisor.run(), supervisor.ready, 30, "envoy not ready")
        assert await asyncio.to_thread(orphan.wait, 10) == -signal.SIGKILL
        assert supervisor.pid != orphan.pid and supervisor.starts == 1
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
