"""Spawning the shim off the event loop: libc's ``posix_spawn`` through ctypes gives the child what
``os.posix_spawn`` gave it (new session, signals reset, file actions, empty mask), reports a failed
exec as an ``OSError``, and runs spawns in request order; a caller cancelled mid-spawn still gets
the pid; without libc the spawns take turns on the loop."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from atoll.agent.runp import process, spawnc
from atoll.agent.runp.process import SpawnArgs, read_pid, spawn_args

needs_libc = pytest.mark.skipif(not spawnc.available(), reason="libc posix_spawn not loadable")


def shim_args(tmp_path: Path, name: str, script: str) -> tuple[SpawnArgs, Path]:
    state = tmp_path / name
    args = spawn_args(["sh", "-c", script], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                      cwd=str(tmp_path), state=state, log_file=tmp_path / f"{name}.log")
    return args, state


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


@needs_libc
def test_libc_spawn_matches_os_posix_spawn(tmp_path: Path) -> None:
    """Same session, ignored signals and open files as ``os.posix_spawn`` with the same arguments."""
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reset to default in the child (setsigdef)
    try:
        seen = []
        for via_libc in (False, True):
            args, _ = shim_args(tmp_path, f"s{via_libc}", "sleep 5")
            if via_libc:
                job = spawnc.Spawn("/bin/sh", args.argv, args.env, file_actions=args.actions,
                                   setsigdef=process.SIGDEF)
                pid = job.start()
                job.close()
            else:
                pid = process.spawn_now(args)
            try:
                status = proc_status(pid)
                assert os.getsid(pid) == pid and os.getpgid(pid) == pid
                assert os.readlink(f"/proc/{pid}/fd/1") == str(tmp_path / f"s{via_libc}.log")
                assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
                seen.append((status["SigIgn"], status["SigBlk"]))
            finally:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        assert seen[0] == seen[1]
        assert int(seen[1][0], 16) & (1 << (signal.SIGHUP - 1)) == 0
    finally:
        signal.signal(signal.SIGHUP, old)


@needs_libc
def test_failed_exec_is_an_os_error() -> None:
    job = spawnc.Spawn("/nonexistent/sh", ["sh"], {}, file_actions=[], setsigdef=())
    with pytest.raises(OSError) as err:
        job.start()
    job.close()
    assert err.value.errno == 2


async def test_spawns_run_in_request_order_and_exit_codes_reach_the_shim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    if spawnc.available():
        class Recording(spawnc.Spawn):
            def __init__(self, path: str, argv: list[str], env: dict[str, str], **kwargs: Any) -> None:
                super().__init__(path, argv, env, **kwargs)
                self.name = Path(argv[4]).name

            def start(self) -> int:
                order.append(self.name)
                return super().start()

        monkeypatch.setattr(spawnc, "Spawn", Recording)
    jobs = [shim_args(tmp_path, f"c{i}", f"exit {i}") for i in range(8)]
    results = await asyncio.gather(*(process.spawn_async(args) for args, _ in jobs))
    assert not any(cancelled for _, cancelled in results)
    assert order == ([f"c{i}" for i in range(8)] if spawnc.available() else [])
    for (spawned, _), (_, state) in zip(results, jobs, strict=True):
        code = await process.wait_exit(spawned.pid, state, own_child=True)
        assert code == int(state.name[1:])
        assert read_pid(state) == spawned.pid


async def test_a_cancelled_caller_still_gets_the_pid(tmp_path: Path) -> None:
    args, state = shim_args(tmp_path, "cancelled", "exit 3")
    task = asyncio.ensure_future(process.spawn_async(args))
    await asyncio.sleep(0)
    task.cancel()
    spawned, cancelled = await task
    assert spawned.pid > 0
    assert await process.wait_exit(spawned.pid, state, own_child=True) == 3
    assert cancelled or not spawnc.available()


async def test_without_libc_spawns_take_turns_on_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spawnc, "available", lambda: False)
    order: list[int] = []
    real = process.spawn_now

    def spawn_now(args: SpawnArgs) -> int:
        order.append(len(order))
        return real(args)

    monkeypatch.setattr(process, "spawn_now", spawn_now)
    iterations = 0

    async def ticker() -> None:
        nonlocal iterations
        while True:
            iterations += 1
            await asyncio.sleep(0)

    tick = asyncio.ensure_future(ticker())
    jobs = [shim_args(tmp_path, f"t{i}", "exit 0") for i in range(4)]
    results = await asyncio.gather(*(process.spawn_async(args) for args, _ in jobs))
    tick.cancel()
    assert len(order) == 4 and iterations >= 3  # one spawn per loop iteration, not back to back
    for (spawned, _), (_, state) in zip(results, jobs, strict=True):
        assert await process.wait_exit(spawned.pid, state, own_child=True) == 0
