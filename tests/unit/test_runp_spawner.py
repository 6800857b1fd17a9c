"""RunP's spawner process: shims started outside the agent's process, exit codes, errors, stdin,
the spawner's death; ``is_ours`` right after a spawn; the pods/logs directories' placement flag."""

from __future__ import annotations

import array
import asyncio
import errno
import fcntl
import os
import signal
from pathlib import Path

import pytest

from atoll.agent.runp import process, spawnclient
from atoll.agent.runp.spawnclient import Spawner, SpawnerProcess
from atoll.agent.runp.spread import FS_IOC_GETFLAGS, TOPDIR_FL, spread_subdirectories
from tests.conftest import eventually

ENV = {"PATH": "/usr/bin:/bin"}


def shim(tmp_path: Path, name: str) -> dict[str, object]:
    return {"env": ENV, "cwd": str(tmp_path), "state": tmp_path / "c" / name / "0",
            "log_file": tmp_path / "logs" / name / "0.log"}


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_shim_is_ours_right_after_its_spawn(tmp_path: Path) -> None:
    spawned = [process.spawn(["true"], env=ENV, cwd=str(tmp_path), state=tmp_path / f"s{i}",
                             log_file=tmp_path / f"l{i}") for i in range(40)]
    try:
        ours = [process.is_ours(s.pid, s.start_time, tmp_path / f"s{i}") for i, s in enumerate(spawned)]
    finally:
        for s in spawned:
            os.waitpid(s.pid, 0)
    assert all(ours), f"{ours.count(False)} of 40 shims not recognised right after posix_spawn"


async def test_spawner_starts_shims_and_reports_their_exit_codes(tmp_path: Path) -> None:
    spawner = SpawnerProcess()
    try:
        written = await spawner.request(["sh", "-c", "echo hi; exit 3"], **shim(tmp_path, "a"))  # type: ignore[arg-type]
        killed = await spawner.request(["sleep", "100"], **shim(tmp_path, "b"))  # type: ignore[arg-type]
        assert spawner.pid is not None and spawner.pid != os.getpid()
        state_b = tmp_path / "c" / "b" / "0"
        assert process.is_ours(killed.pid, killed.start_time, state_b)
        assert await spawner.wait_exit(written.pid, tmp_path / "c" / "a" / "0", written.start_time) == 3
        assert (tmp_path / "logs" / "a" / "0.log").read_text() == "hi\n"
        await eventually(lambda: process.read_pid(state_b) == killed.pid)
        process.kill_group(killed.pid, signal.SIGKILL)  # the shim dies too: no exit file, the spawner's code
        assert await spawner.wait_exit(killed.pid, state_b, killed.start_time) == 128 + signal.SIGKILL
        assert process.read_exit(state_b) is None
    finally:
        spawner.close()


async def test_a_failed_spawn_is_an_oserror_with_its_errno(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    spawner = SpawnerProcess()
    try:
        with pytest.raises(OSError) as failed:
            await spawner.request(["true"], env=ENV, cwd=str(tmp_path), state=tmp_path / "s",
                                  log_file=tmp_path / "file" / "x" / "0.log")
        assert failed.value.errno == errno.ENOTDIR
        ok = await spawner.request(["true"], **shim(tmp_path, "after"))  # type: ignore[arg-type]
        assert await spawner.wait_exit(ok.pid, tmp_path / "c" / "after" / "0", ok.start_time) == 0
    finally:
        spawner.close()


async def test_stdin_goes_to_the_spawner_as_a_descriptor(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    spawner = SpawnerProcess()
    try:
        spawned = await spawner.request(["cat"], stdin_fd=read_end, **shim(tmp_path, "cat"))  # type: ignore[arg-type]
        os.close(read_end)
        os.write(write_end, b"through the pipe\n")
        os.close(write_end)
        assert await spawner.wait_exit(spawned.pid, tmp_path / "c" / "cat" / "0", spawned.start_time) == 0
        assert (tmp_path / "logs" / "cat" / "0.log").read_text() == "through the pipe\n"
    finally:
        spawner.close()


async def test_a_dead_spawner_is_noticed_and_replaced(tmp_path: Path) -> None:
    spawner = SpawnerProcess()
    try:
        running = await spawner.request(["sleep", "100"], **shim(tmp_path, "long"))  # type: ignore[arg-type]
        state = tmp_path / "c" / "long" / "0"
        waiting = asyncio.ensure_future(spawner.wait_exit(running.pid, state, running.start_time))
        first = spawner.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: spawner.pid is None)
        assert not waiting.done()  # its shim still runs, now init's child: waited with a pidfd
        process.kill_group(running.pid, signal.SIGKILL)
        assert await asyncio.wait_for(waiting, 10) == process.EXIT_UNKNOWN
        again = await spawner.request(["true"], **shim(tmp_path, "again"))  # type: ignore[arg-type]
        assert spawner.pid not in (None, first)
        assert await spawner.wait_exit(again.pid, tmp_path / "c" / "again" / "0", again.start_time) == 0
    finally:
        spawner.close()


async def test_a_request_lost_with_the_spawner_fails_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spawnclient, "LOST_WAIT_SECONDS", 0.2)
    spawner = SpawnerProcess()
    try:
        spawner.start()
        pid = spawner.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # it never reads the request
        lost = spawner.request(["true"], **shim(tmp_path, "lost"))  # type: ignore[arg-type]
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(OSError) as failed:
            await asyncio.wait_for(lost, 10)
        assert failed.value.errno == errno.EIO
    finally:
        spawner.close()


def test_pods_and_logs_spread_their_subdirectories(tmp_path: Path) -> None:
    if not spread_subdirectories(tmp_path / "pods"):
        pytest.skip("the file system has no top-directory flag")
    fd = os.open(tmp_path / "pods", os.O_RDONLY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
    finally:
        os.close(fd)
    assert flags[0] & TOPDIR_FL
    assert spread_subdirectories(tmp_path / "pods")  # again: unchanged, no error


async def test_requests_queue_while_the_spawner_is_busy_and_large_ones_spawn_in_process(tmp_path: Path) -> None:
    spawner = SpawnerProcess()
    try:
        spawner.start()
        pid = spawner.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # more requests than the socket holds wait in the agent's queue
        try:
            big = {**ENV, **{f"BIG{i}": "x" * 80_000 for i in range(5)}}  # > one datagram: spawned in-process
            large = spawner.request(["true"], **{**shim(tmp_path, "large"), "env": big})  # type: ignore[arg-type]
            env = {**ENV, "PAD": "x" * 2000}
            many = [spawner.request(["true"], **{**shim(tmp_path, f"m{i}"), "env": env})  # type: ignore[arg-type]
                    for i in range(150)]
            assert large.done() and not any(f.done() for f in many)
            assert spawner._outbox, "the socket was expected to fill up"
        finally:
            os.kill(pid, signal.SIGCONT)
        spawned = await asyncio.wait_for(asyncio.gather(*many), 30)
        codes = [await spawner.wait_exit(s.pid, tmp_path / "c" / f"m{i}" / "0", s.start_time)
                 for i, s in enumerate(spawned)]
        assert codes == [0] * 150
        in_process = large.result()
        assert await spawner.wait_exit(in_process.pid, tmp_path / "c" / "large" / "0", in_process.start_time) == 0
        assert spawner.pid == pid
    finally:
        spawner.close()


async def test_the_agent_spreads_spawns_over_its_spawners_and_waits_each_shim_where_it_started(
    tmp_path: Path,
) -> None:
    spawner = Spawner(2)
    try:
        requests = [spawner.request(["sh", "-c", f"exit {i}"], **shim(tmp_path, f"p{i}"))  # type: ignore[arg-type]
                    for i in range(6)]
        assert [len(one._pending) for one in spawner.processes] == [3, 3]
        assert len(set(spawner.pids)) == 2
        spawned = await asyncio.gather(*requests)
        codes = [await spawner.wait_exit(s.pid, tmp_path / "c" / f"p{i}" / "0", s.start_time)
                 for i, s in enumerate(spawned)]
        assert codes == list(range(6))
        assert all(len(one._pending) == 0 for one in spawner.processes)
        assert sum(1 for one in spawner.processes for s in spawned if one.knows(s.pid)) == 0  # all collected
    finally:
        spawner.close()


async def test_no_spawner_processes_spawns_in_the_agent(tmp_path: Path) -> None:
    spawner = Spawner(0)
    try:
        spawned = await spawner.request(["sh", "-c", "exit 5"], **shim(tmp_path, "here"))  # type: ignore[arg-type]
        assert spawner.pids == []
        assert parent_of(spawned.pid) == os.getpid()
        assert await spawner.wait_exit(spawned.pid, tmp_path / "c" / "here" / "0", spawned.start_time) == 5
    finally:
        spawner.close()
