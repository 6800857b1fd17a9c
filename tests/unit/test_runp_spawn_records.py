"""A container's first attempt: its directories and files are made without failing system calls (the
pod's log directory in its sandbox, then renamed into ``logs/``), and the shim's start time is read
at the next save of the records (not right after ``posix_spawn``, while the exec is still being set
up), identifying the shim as before."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest

from atoll.agent.config import AgentConfig
from atoll.agent.events import EventRecorder
from atoll.agent.runp import process, spread
from atoll.agent.runp.images import ImageStore
from atoll.agent.runp.pod import PodWorker
from atoll.agent.runp.sandbox import SandboxState


def kill_and_reap(pid: int) -> None:
    process.kill_group(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


class NoClient:
    async def create(self, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        return {}


def worker(tmp_path: Path) -> PodWorker:
    config = AgentConfig(domain="alice", data_dir=tmp_path / "agent")
    (tmp_path / "image" / "bin").mkdir(parents=True)
    images = ImageStore(config.root / "images")
    images.load(tmp_path / "image", "app:v1")
    pod = {
        "metadata": {"name": "p", "namespace": "alice", "uid": "0b7e2b1c-5a39-4d2e-9a51-2f0f4d7a9c11"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "app:v1", "command": ["sh", "-c", "sleep 30"]}],
        },
    }
    w = PodWorker(
        pod,
        client=NoClient(),
        config=config,
        images=images,  # type: ignore[arg-type]
        events=EventRecorder(NoClient(), "alice-node"),
    )  # type: ignore[arg-type]
    w.state = SandboxState(uid=w.uid, namespace="alice", name="p")
    w._ensure_records()
    return w


async def test_the_start_time_is_recorded_at_the_next_save(tmp_path: Path) -> None:
    w = worker(tmp_path)
    runner = w._runner(w.pod["spec"]["containers"][0])
    prepared = await runner._prepare()
    assert prepared is not None and prepared.fresh
    runner._spawn(prepared)
    rec = runner.rec
    try:
        assert rec.pid > 0 and rec.start_time is None  # left to the save
        w.save()
        assert rec.start_time is not None and rec.start_time == process.start_time(rec.pid)
        saved = orjson.loads(w.sandbox.state_file.read_bytes())["containers"]["main"]
        assert (saved["pid"], saved["start_time"]) == (rec.pid, rec.start_time)
        assert process.is_ours(rec.pid, rec.start_time, w.sandbox.shim_state("main", 0))
    finally:
        kill_and_reap(rec.pid)


async def test_a_second_attempt_clears_the_files_of_the_first(tmp_path: Path) -> None:
    w = worker(tmp_path)
    runner = w._runner(w.pod["spec"]["containers"][0])
    cdir = w.sandbox.container_dir("main")
    cdir.mkdir(parents=True)
    (cdir / "termination-log").write_text("old message")
    (cdir / "0.exit").write_text("3\n")  # left by an attempt before an agent restart
    prepared = await runner._prepare()
    assert prepared is not None and not prepared.fresh
    assert not (cdir / "termination-log").exists()
    runner._spawn(prepared)
    try:
        assert process.read_exit(w.sandbox.shim_state("main", 0)) is None
    finally:
        kill_and_reap(runner.rec.pid)


def test_a_pods_log_directory_is_made_in_its_sandbox_and_renamed_into_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    real_mkdir = os.mkdir

    def mkdir(path: Any, *args: Any) -> None:
        real_mkdir(path, *args)
        made.append(str(path))

    monkeypatch.setattr(spread.os, "mkdir", mkdir)
    sandbox, logs = tmp_path / "pods" / "u1", tmp_path / "logs"
    sandbox.mkdir(parents=True)
    logs.mkdir()
    target = logs / "ns_p_u1"
    spread.make_staged(target, "main", sandbox / "logs.new")
    assert (target / "main").is_dir() and not (sandbox / "logs.new").exists()
    assert str(target) not in made  # its inode is the one made in the sandbox (top-directory placement once)
    spread.make_staged(target, "sidecar", sandbox / "logs.new")  # the pod's second container
    assert sorted(p.name for p in target.iterdir()) == ["main", "sidecar"]
    (sandbox / "logs.new" / "main").mkdir(parents=True)  # left by an interrupted attempt
    spread.make_staged(logs / "ns_q_u2", "main", sandbox / "logs.new")
    assert (logs / "ns_q_u2" / "main").is_dir() and not (sandbox / "logs.new").exists()
    spread.make_staged(tmp_path / "none" / "ns_r_u3", "main", sandbox / "logs.new")  # no logs/ yet: made in place
    assert (tmp_path / "none" / "ns_r_u3" / "main").is_dir() and not (sandbox / "logs.new").exists()


async def test_no_start_time_is_read_once_the_exit_was_collected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save between the reap of the shim and the end of the runner's wait reads no start time: the
    pid may already belong to another process (simulated: ``start_time`` answers for any pid)."""
    w = worker(tmp_path)
    w.pod["spec"]["containers"][0]["command"] = ["sh", "-c", "exit 3"]
    runner = w._runner(w.pod["spec"]["containers"][0])
    prepared = await runner._prepare()
    assert prepared is not None
    runner._spawn(prepared)
    rec = runner.rec
    assert rec.start_time is None  # left to the next save
    real_wait_exit = process.wait_exit
    seen: list[int | None] = []

    def save_now() -> None:  # the next loop turn after the reap: the runner's wait has not returned yet
        w._unsaved = True
        w.save()
        seen.append(rec.start_time)

    async def wait_exit(pid: int, state: Path, *, own_child: bool) -> int:
        code = await real_wait_exit(pid, state, own_child=own_child)
        monkeypatch.setattr(process, "start_time", lambda _pid: 4242)  # the pid was reused
        asyncio.get_running_loop().call_soon(save_now)
        return code

    monkeypatch.setattr(process, "wait_exit", wait_exit)
    code, _ = await runner._wait(True)
    assert code == 3
    assert seen == [None]
    assert rec.start_time is None
