"""RunP's process helpers: a shim is recognised right after its spawn; the pods/logs directories'
placement flag (ext4 top directory); recovery and the removal of a deleted pod's sandbox signal only
process groups led by our shims (found through the pid file when the pid was never saved)."""

from __future__ import annotations

import array
import fcntl
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from atoll.agent.config import AgentConfig
from atoll.agent.events import EventRecorder
from atoll.agent.runp import process, recover
from atoll.agent.runp.runtime import RunP
from atoll.agent.runp.sandbox import ContainerRecord, Sandbox, SandboxState
from atoll.agent.runp.spread import FS_IOC_GETFLAGS, TOPDIR_FL, spread_subdirectories
from tests.conftest import eventually

ENV = {"PATH": "/usr/bin:/bin"}


class NoClient:
    async def create(self, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        return {}


def kill_and_reap(pid: int) -> None:
    process.kill_group(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_a_shim_is_ours_right_after_its_spawn(tmp_path: Path) -> None:
    spawned = [process.spawn(["true"], env=ENV, cwd=str(tmp_path), state=tmp_path / f"s{i}",
                             log_file=tmp_path / f"l{i}") for i in range(40)]
    try:
        ours = [process.is_ours(s.pid, s.start_time, tmp_path / f"s{i}") for i, s in enumerate(spawned)]
    finally:
        for s in spawned:
            os.waitpid(s.pid, 0)
    assert all(ours), f"{ours.count(False)} of 40 shims not recognised right after posix_spawn"


async def test_the_start_time_and_once_exec_has_finished_the_state_path_identify_a_shim(tmp_path: Path) -> None:
    spawned = process.spawn(["sleep", "5"], env=ENV, cwd=str(tmp_path), state=tmp_path / "s",
                            log_file=tmp_path / "l")
    try:
        assert not process.is_ours(spawned.pid, spawned.start_time + 1, tmp_path / "s")  # another process
        await eventually(lambda: process.read_pid(tmp_path / "s") == spawned.pid)  # the shim runs: exec is done
        assert process.is_ours(spawned.pid, spawned.start_time, tmp_path / "s")
        assert process.is_ours(spawned.pid, None, tmp_path / "s")
        assert not process.is_ours(spawned.pid, spawned.start_time, tmp_path / "other")
    finally:
        kill_and_reap(spawned.pid)


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


def unreaped_child() -> int:
    return os.posix_spawn("/bin/true", ["true"], {})


def reap(pid: int) -> None:
    os.waitpid(pid, 0)


def zombie_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


async def test_recovery_does_not_adopt_a_pid_file_naming_another_process_without_a_command_line(
    tmp_path: Path,
) -> None:
    sandbox = Sandbox(tmp_path, "uid-1")
    rec = ContainerRecord(name="main", attempt=0, spawning=True)
    state = sandbox.shim_state("main", 0)
    state.parent.mkdir(parents=True)
    other = unreaped_child()  # once exited and not reaped: a zombie, its command line empty
    try:
        await eventually(lambda: zombie_state(other) == "Z")
        (state.parent / "0.pid").write_text(f"{other}\n")  # the agent died; the pid was reused since
        recover.recover_record(rec, sandbox)
        assert (rec.state, rec.pid, rec.spawning) == ("terminated", 0, False)
    finally:
        reap(other)


def test_recovery_never_signals_a_stranger_leading_its_own_group(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path, "uid-1")
    rec = ContainerRecord(name="main", attempt=0, spawning=True)
    state = sandbox.shim_state("main", 0)
    state.parent.mkdir(parents=True)
    stranger = os.posix_spawn("/bin/sleep", ["sleep", "30"], {}, setsid=True)  # leads a group of its own
    try:
        (state.parent / "0.pid").write_text(f"{stranger}\n")  # the agent died; the pid was reused since
        recover.recover_record(rec, sandbox)
        assert (rec.state, rec.pid, rec.spawning) == ("terminated", 0, False)
    finally:
        os.kill(stranger, signal.SIGTERM)
        _, status = os.waitpid(stranger, 0)
    assert os.WTERMSIG(status) == signal.SIGTERM  # ended by us, not by a SIGKILL of the recovery


async def test_a_deleted_pods_shim_is_killed_even_when_the_agent_died_before_saving_its_pid(tmp_path: Path) -> None:
    config = AgentConfig(domain="alice", data_dir=tmp_path / "agent")
    sandbox = Sandbox(config.root, "uid-2")
    rec = ContainerRecord(name="main", attempt=0, spawning=True)  # saved just before the spawn
    sandbox.save(SandboxState(uid="uid-2", namespace="alice", name="p", containers={"main": rec}))
    state = sandbox.shim_state("main", 0)
    state.parent.mkdir(parents=True)
    shim = process.spawn(["sleep", "30"], env=ENV, cwd=str(tmp_path), state=state, log_file=tmp_path / "l")
    try:
        await eventually(lambda: process.read_pid(state) == shim.pid)
        runtime = RunP(NoClient(), config, EventRecorder(NoClient(), "alice-node"))  # type: ignore[arg-type]
        runtime._collect_orphans()  # the pod was deleted while the agent was down
        await eventually(lambda: process.reap(shim.pid) is not None)
        assert not sandbox.dir.exists()
    finally:
        if process.start_time(shim.pid) is not None:  # not killed: do not leave it behind
            kill_and_reap(shim.pid)
