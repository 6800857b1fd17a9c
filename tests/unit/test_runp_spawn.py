"""Spawns take turns on the event loop: in request order, at most one per loop iteration (a burst
of pods no longer runs its ``posix_spawn`` calls back to back while status writes wait), the shim
still starts in its own session with the file actions asked for, and exit codes reach it."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from pathlib import Path

import pytest

from atoll.agent.runp import process
from atoll.agent.runp.process import SpawnArgs, read_pid, spawn_args
from tests.conftest import eventually


def shim_args(tmp_path: Path, name: str, script: str) -> tuple[SpawnArgs, Path]:
    state = tmp_path / name
    args = spawn_args(["sh", "-c", script], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                      cwd=str(tmp_path), state=state, log_file=tmp_path / f"{name}.log")
    return args, state


async def test_spawns_take_turns_in_request_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    iterations = 0
    seen: list[tuple[str, int]] = []
    real = process.spawn_now

    def spawn_now(args: SpawnArgs) -> int:
        seen.append((Path(args.argv[4]).name, iterations))
        return real(args)

    monkeypatch.setattr(process, "spawn_now", spawn_now)

    async def ticker() -> None:
        nonlocal iterations
        while True:
            iterations += 1
            await asyncio.sleep(0)

    tick = asyncio.ensure_future(ticker())
    jobs = [shim_args(tmp_path, f"c{i}", f"exit {i}") for i in range(6)]
    results = await asyncio.gather(*(process.spawn_async(args) for args, _ in jobs))
    tick.cancel()
    assert [name for name, _ in seen] == [f"c{i}" for i in range(6)]
    ticks = [at for _, at in seen]
    assert all(b > a for a, b in itertools.pairwise(ticks))  # never two in one iteration
    for spawned, (_, state) in zip(results, jobs, strict=True):
        assert await process.wait_exit(spawned.pid, state, own_child=True) == int(state.name[1:])
        assert read_pid(state) == spawned.pid


async def test_the_shim_leads_its_own_session_with_its_log_file(tmp_path: Path) -> None:
    args, state = shim_args(tmp_path, "s", "sleep 5")
    spawned = await process.spawn_async(args)
    try:
        assert os.getsid(spawned.pid) == spawned.pid and os.getpgid(spawned.pid) == spawned.pid
        assert os.readlink(f"/proc/{spawned.pid}/fd/1") == str(tmp_path / "s.log")
        assert os.readlink(f"/proc/{spawned.pid}/fd/0") == "/dev/null"
        # the exec'd shim's command line shows once the kernel has set it up (just after the spawn returns)
        await eventually(lambda: process.is_ours(spawned.pid, spawned.start_time, state))
    finally:
        os.killpg(spawned.pid, signal.SIGKILL)
        assert await process.wait_exit(spawned.pid, state, own_child=True) == 128 + signal.SIGKILL


async def test_a_spawn_cancelled_while_waiting_for_its_turn_starts_nothing(tmp_path: Path) -> None:
    first, _ = shim_args(tmp_path, "first", "exit 0")
    second, state = shim_args(tmp_path, "second", "exit 0")
    running = asyncio.ensure_future(process.spawn_async(first))
    waiting = asyncio.ensure_future(process.spawn_async(second))
    await asyncio.sleep(0)  # the first holds the turn until the next iteration; the second waits
    waiting.cancel()
    spawned = await running
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await process.wait_exit(spawned.pid, tmp_path / "first", own_child=True)
    assert read_pid(state) is None
