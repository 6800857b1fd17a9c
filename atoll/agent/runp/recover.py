"""Re-adopting a pod's processes after an agent restart (or reporting why they cannot be).

For each persisted container record:

* ``spawning`` (the agent died around a spawn): the shim's pid file says whether it started; a
  live shim is adopted, an exited one is recorded with its exit code, otherwise the attempt
  never happened and is not counted;
* ``running``: the same (pid, start time, state path) still alive → adopted; exited → its exit
  code from the shim's exit file; gone without one (killed with the agent, machine rebooted) →
  terminated with exit code 137, reason ``ContainerStatusUnknown``, like the kubelet.

A process group is signalled only when its leader is our shim, or when no process has the
leader's pid any more (then the group, if any, holds only the descendants of our dead shim: Linux
does not reuse a pid while a group of that id exists); never when a stranger has the pid now.
:func:`kill_all` (a pod deleted while the agent was down, or ``stopPodsOnExit``) finds the shim of
a record the agent was still spawning through its pid file, as recovery does.

A pod whose API status shows it already ran here but has no sandbox any more is never started
again: every container is reported ``ContainerStatusUnknown`` and the pod ``Failed``.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from atoll.agent.runp import process
from atoll.agent.runp.sandbox import ContainerRecord, Sandbox, SandboxState
from atoll.api.timestamps import format_time, now_time

JSON = dict[str, Any]
LOST_MESSAGE = "The container could not be located when the agent restarted"


def _terminated(rec: ContainerRecord, sandbox: Sandbox, code: int | None) -> None:
    state = sandbox.shim_state(rec.name, rec.attempt)
    exit_file = state.parent / (state.name + ".exit")
    finished = format_time(exit_file.stat().st_mtime) if code is not None and exit_file.exists() else now_time()
    terminated: JSON = {
        "exitCode": process.EXIT_UNKNOWN if code is None else code,
        "reason": "ContainerStatusUnknown" if code is None else ("Completed" if code == 0 else "Error"),
        "startedAt": rec.started_at or finished,
        "finishedAt": finished,
        "containerID": rec.container_id(sandbox.uid),
    }
    if code is None:
        terminated["message"] = LOST_MESSAGE
    message_file = sandbox.container_dir(rec.name) / "termination-log"
    if code is not None and message_file.exists():
        text = message_file.read_bytes()[:4096].decode("utf-8", "replace")
        if text:
            terminated["message"] = text
    rec.state, rec.terminated, rec.pid, rec.ready, rec.started = "terminated", terminated, 0, False, False
    rec.reason, rec.message, rec.spawning = "", "", False


def sweep_group(pid: int, started: int | None, shim: Path, sig: signal.Signals = signal.SIGKILL) -> None:
    """Signal the group ``pid`` led if that leader is our shim or gone; not if another process has the pid."""
    if pid > 0 and (process.is_ours(pid, started, shim) or process.start_time(pid) is None):
        process.kill_group(pid, sig)


def recover_record(rec: ContainerRecord, sandbox: Sandbox) -> None:
    if rec.done or rec.attempt < 0:
        return
    state = sandbox.shim_state(rec.name, rec.attempt)
    if rec.spawning:
        pid = process.read_pid(state)
        if pid is None:
            rec.spawning, rec.attempt = False, rec.restart_count - 1
            return
        # the pid file proves the exec happened: the command line must name the shim (a start time read
        # now would prove nothing, and ``is_ours`` accepts an empty command line with a start time)
        started = process.start_time(pid) if process.is_ours(pid, None, state) else None
        rec.pid, rec.start_time, rec.started_at = pid, started, rec.started_at or now_time()
        rec.state = "running"
        rec.started = True
    if rec.state != "running":
        return
    if process.is_ours(rec.pid, rec.start_time, state):
        rec.spawning = False
        return
    sweep_group(rec.pid, rec.start_time, state)  # descendants of a dead shim must not linger
    _terminated(rec, sandbox, process.read_exit(state))


def recover(sandbox: Sandbox) -> SandboxState | None:
    state = sandbox.load()
    if state is None:
        return None
    for rec in state.containers.values():
        recover_record(rec, sandbox)
    sandbox.save(state)
    return state


def ran_before(pod: JSON) -> bool:
    """Whether the API says this pod's containers already started somewhere."""
    status = pod.get("status") or {}
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        state = cs.get("state") or {}
        if state.get("running") or state.get("terminated") or cs.get("restartCount") or cs.get("containerID"):
            return True
    return False


def lost_state(pod: JSON, uid: str) -> SandboxState:
    md = pod["metadata"]
    state = SandboxState(uid=uid, namespace=str(md.get("namespace")), name=str(md["name"]), terminal=True)
    spec = pod.get("spec") or {}
    for init, key in ((True, "initContainers"), (False, "containers")):
        for c in spec.get(key) or []:
            rec = ContainerRecord(name=c["name"], init=init, image=str(c.get("image") or ""), attempt=0, done=True)
            rec.state = "terminated"
            rec.terminated = {
                "exitCode": process.EXIT_UNKNOWN,
                "reason": "ContainerStatusUnknown",
                "message": "The container's sandbox was lost; the agent does not start a pod twice",
                "startedAt": None,
                "finishedAt": now_time(),
            }
            state.containers[c["name"]] = rec
    return state


def kill_all(state: SandboxState, sandbox: Sandbox, sig: signal.Signals = signal.SIGKILL) -> None:
    """Signal the process group of every container that runs or was being spawned (its shim's pid file)."""
    for rec in state.containers.values():
        if rec.attempt < 0:
            continue
        shim = sandbox.shim_state(rec.name, rec.attempt)
        if rec.spawning:
            sweep_group(process.read_pid(shim) or 0, None, shim, sig)  # None: the command line must name it
        elif rec.state == "running":
            sweep_group(rec.pid, rec.start_time, shim, sig)


__all__ = ["kill_all", "lost_state", "ran_before", "recover", "recover_record", "sweep_group"]
