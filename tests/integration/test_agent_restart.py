"""Lite nodes as real ``atoll start`` processes: kill -9 of an agent while pods run, then restart."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from atoll.api import kinds
from atoll.client import Client
from tests.conftest import RunningServer, eventually
from tests.integration.agents import kill_leftovers, pod, processes_with, stable_processes, wait_pod_gone
from tests.integration.lite_procs import init_lite, node_ready, start, stop

pytestmark = pytest.mark.slow


async def test_kill_9_and_restart_readopts_without_duplicates(api_server: RunningServer, tmp_path: Path) -> None:
    alice_cfg, bob_cfg = init_lite(api_server, tmp_path, "alice"), init_lite(api_server, tmp_path, "bob")
    alice, bob = start(alice_cfg), start(bob_cfg)
    client = Client.from_kubeconfig(api_server.kubeconfig)
    try:
        async with client:
            await eventually(lambda: node_ready(client, "alice-node"), 30)
            await eventually(lambda: node_ready(client, "bob-node"), 30)
            loop_a, loop_b, short = "marker-long-alice", "marker-long-bob", "marker-short-alice"
            forever = "while :; do sleep 0.2; done # "
            await client.create(kinds.PODS, pod("long", "alice-node", ["sh", "-c", forever + loop_a]))
            await client.create(kinds.PODS, pod("long-b", "bob-node", ["sh", "-c", forever + loop_b]))
            await client.create(kinds.PODS, pod("short", "alice-node", ["sh", "-c", f"sleep 3; exit 4 # {short}"],
                                                restartPolicy="Never"))

            async def running(name: str) -> bool:
                p = await client.get(kinds.PODS, name, "default")
                return (p.get("status") or {}).get("phase") == "Running"

            for name in ("long", "long-b", "short"):
                await eventually(lambda name=name: running(name), 20)
            before = await stable_processes(loop_a)
            assert before, "the pod's processes run"
            alice.send_signal(signal.SIGKILL)
            alice.wait()
            await asyncio.sleep(4)  # "short" exits while its agent is down
            assert await stable_processes(loop_a) == before, "pods survive their agent"
            alice = start(alice_cfg)
            await eventually(lambda: node_ready(client, "alice-node"), 30)

            async def finished() -> dict[str, Any]:
                p = await client.get(kinds.PODS, "short", "default")
                assert p["status"].get("phase") in ("Succeeded", "Failed"), p["status"]
                return p

            done = await eventually(finished, 20)
            term = done["status"]["containerStatuses"][0]["state"]["terminated"]
            assert (done["status"]["phase"], term["exitCode"], term["reason"]) == ("Failed", 4, "Error")
            await asyncio.sleep(2)
            long_pod = await client.get(kinds.PODS, "long", "default")
            cs = long_pod["status"]["containerStatuses"][0]
            assert long_pod["status"]["phase"] == "Running" and "running" in cs["state"]
            assert cs["restartCount"] == 0
            assert await stable_processes(loop_a) == before, "re-adopted, not started twice"
            await client.delete(kinds.PODS, "long", "default")

            await wait_pod_gone(client, "long", timeout=15)
            await eventually(lambda: processes_with(loop_a) == [], 10)  # SIGKILLed; the kernel reaps them
            assert processes_with(loop_b), "bob's pod is untouched"
    finally:
        for proc in (alice, bob):
            stop(proc)
        for domain in ("alice", "bob"):
            kill_leftovers(tmp_path / domain)
    await eventually(lambda: processes_with(str(tmp_path)) == [], 10)
