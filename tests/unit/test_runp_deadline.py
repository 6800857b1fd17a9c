"""``spec.activeDeadlineSeconds`` on RunP, timed by a fake clock: once it has passed, the pod's containers
are stopped and not restarted (restartPolicy Always), the pod is Failed with reason ``DeadlineExceeded``
and a ``DeadlineExceeded`` event; a deadline lowered on a running pod applies at once; a restarted agent
stops at once the adopted containers of a pod whose deadline passed while it was down."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

from atoll.agent.config import AgentConfig
from atoll.agent.events import EventRecorder
from atoll.agent.runp import deadline, process
from atoll.agent.runp.images import ImageStore
from atoll.agent.runp.pod import PodWorker
from atoll.agent.runp.status import pod_status
from atoll.api.clock import FakeClock
from tests.conftest import eventually

JSON = dict[str, Any]


class StatusClient:
    """Accepts status writes and events; keeps the last status written."""

    def __init__(self) -> None:
        self.status: JSON = {}

    async def create(self, *_args: Any, **_kwargs: Any) -> JSON:
        return {}

    async def update(self, _rd: Any, body: JSON, **_kwargs: Any) -> JSON:
        self.status = body["status"]
        return body


class Events(EventRecorder):
    def __init__(self) -> None:
        super().__init__(StatusClient(), "alice-node")  # type: ignore[arg-type]
        self.seen: list[tuple[str, str, bool]] = []

    def pod_event(self, pod: JSON, reason: str, message: str, *, warning: bool = False, field_path: str = "") -> None:
        self.seen.append((reason, message, warning))


def make_worker(tmp_path: Path, deadline_seconds: int | None) -> tuple[PodWorker, FakeClock, Events]:
    config = AgentConfig(domain="alice", data_dir=tmp_path / "agent")
    (tmp_path / "image" / "bin").mkdir(parents=True)
    images = ImageStore(config.root / "images")
    images.load(tmp_path / "image", "app:v1")
    spec: JSON = {
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 5,
        "containers": [{"name": "main", "image": "app:v1", "command": ["sh", "-c", "sleep 30"]}],
    }
    if deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = deadline_seconds
    pod = {"metadata": {"name": "p", "namespace": "alice", "uid": "5f0c7d2e-8a41-4b6b-9c3e-1d2a3b4c5d6e"}, "spec": spec}
    clock, events = FakeClock(), Events()
    client: Any = StatusClient()
    worker = PodWorker(pod, client=client, config=config, images=images, events=events, clock=clock)
    return worker, clock, events


def running_pid(worker: PodWorker) -> int:
    rec = worker.record("main")
    return rec.pid if rec is not None and rec.state == "running" else 0


async def stopped_by_the_deadline(worker: PodWorker, events: Events, pid: int) -> None:
    await eventually(lambda: worker.record("main") is not None)  # a restarted worker reads its records on a thread
    rec = worker.record("main")
    assert rec is not None and worker.state is not None
    await eventually(lambda: rec.done and rec.state == "terminated")
    assert process.start_time(pid) is None  # the shim was stopped (SIGTERM: the grace period was enough)
    assert rec.terminated is not None and rec.terminated["exitCode"] == 143
    assert rec.restart_count == 0  # restartPolicy Always: not restarted
    status = pod_status(worker.pod, worker.state, "127.0.0.1")
    assert (status["phase"], status["reason"], status["message"]) == ("Failed", deadline.REASON, deadline.MESSAGE)
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143
    assert (deadline.REASON, deadline.MESSAGE, False) in events.seen
    assert worker.sandbox.load().deadline_exceeded  # type: ignore[union-attr]  # a restarted agent keeps it


async def finish(worker: PodWorker, task: asyncio.Task[None]) -> None:
    pid = running_pid(worker)
    worker.forget()
    await task
    if pid and process.start_time(pid) is not None:
        process.kill_group(pid, signal.SIGKILL)


async def test_the_containers_stop_once_the_deadline_has_passed(tmp_path: Path) -> None:
    worker, clock, events = make_worker(tmp_path, 60)
    task = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: running_pid(worker) > 0)
        pid = running_pid(worker)
        await eventually(lambda: clock.sleepers == 1)  # the deadline's timer is armed
        clock.advance(30)
        assert clock.sleepers == 1  # not due yet: it did not fire
        assert running_pid(worker) == pid and not worker.halt.is_set()
        clock.advance(31)
        await stopped_by_the_deadline(worker, events, pid)
        assert not worker.stopping.is_set()  # the pod stays (Failed) until deleted
    finally:
        await finish(worker, task)


async def test_a_lowered_deadline_applies_at_once(tmp_path: Path) -> None:
    worker, clock, events = make_worker(tmp_path, None)
    task = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: running_pid(worker) > 0)
        pid = running_pid(worker)
        clock.advance(100)
        assert clock.sleepers == 0  # no deadline: no timer
        worker.update({**worker.pod, "spec": {**worker.pod["spec"], "activeDeadlineSeconds": 3600}})  # set
        await eventually(lambda: clock.sleepers == 1)  # recomputed: armed for the 3,500 s left
        assert not worker.halt.is_set()
        worker.update({**worker.pod, "spec": {**worker.pod["spec"], "activeDeadlineSeconds": 50}})  # lowered: passed
        await stopped_by_the_deadline(worker, events, pid)
    finally:
        await finish(worker, task)


async def test_a_restarted_agent_stops_a_pod_whose_deadline_passed_while_it_was_down(tmp_path: Path) -> None:
    worker, clock, _ = make_worker(tmp_path, 60)
    task = asyncio.create_task(worker.run())
    await eventually(lambda: running_pid(worker) > 0)
    pid = running_pid(worker)
    worker._unsaved = True
    worker.save()  # the pid and start time are on disk
    task.cancel()  # the agent dies; its container keeps running
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert process.start_time(pid) is not None
    client: Any = StatusClient()
    events = Events()
    restarted = PodWorker(
        worker.pod, client=client, config=worker.config, images=worker.images, events=events, clock=clock
    )
    clock.advance(61)  # while the agent was down
    task = asyncio.create_task(restarted.run())
    try:
        await stopped_by_the_deadline(restarted, events, pid)
    finally:
        await finish(restarted, task)
