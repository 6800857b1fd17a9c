"""One container's life: prepare → spawn → probe → wait → record exit → restart with back-off.

The runner owns one :class:`ContainerRecord` and mutates it; every mutation ends with
``ctx.changed()``, which schedules a status write and a save of the sandbox state (at once only
for the intent to spawn). A runner returns when its container will not run again (restart
policy, or the pod is stopping). How an exit is described (reason, OOM, termination message) is
:mod:`atoll.agent.runp.termination`; what a missing image reports is :mod:`atoll.agent.runp.images`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path
from typing import Any, Protocol

from atoll.agent.config import AgentConfig
from atoll.agent.events import EventRecorder
from atoll.agent.runp import process
from atoll.agent.runp.envvars import container_env, expand
from atoll.agent.runp.images import ImageStore, image_missing
from atoll.agent.runp.launch import Prepared, process_limits, working_dir
from atoll.agent.runp.logs import log_path
from atoll.agent.runp.probes import ProbeContext, run_probe
from atoll.agent.runp.sandbox import ContainerRecord, Sandbox
from atoll.agent.runp.sources import ConfigMissing, Sources
from atoll.agent.runp.spread import make_staged
from atoll.agent.runp.stdio import ContainerStdio
from atoll.agent.runp.termination import START_ERROR_CODE, start_error_state, terminated_state
from atoll.agent.runp.volumes import (
    ANNOTATION_COMPRESSED,
    ANNOTATION_TEMPLATE_VALUES,
    PathMap,
    link_view,
    mount_map,
    render_volumes,
    template_values,
)
from atoll.api.timestamps import now_time

JSON = dict[str, Any]
log = logging.getLogger(__name__)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RETRY_SECONDS = 5.0


class PodContext(Protocol):
    """What a container runner needs from its pod worker."""

    pod: JSON
    sandbox: Sandbox
    config: AgentConfig
    sources_client: Any
    images: ImageStore
    events: EventRecorder
    volume_dirs: dict[str, Path]
    halt: asyncio.Event
    """Stop the running attempt, start no other (the pod is deleted, or its active deadline passed)."""

    def changed(self, *, durable: bool = False) -> None: ...

    def grace_seconds(self) -> float: ...


class ContainerRunner:
    def __init__(self, ctx: PodContext, spec: JSON, rec: ContainerRecord) -> None:
        self.ctx = ctx
        self.spec = spec
        self.rec = rec
        kind = "initContainers" if rec.init else "ephemeralContainers" if rec.ephemeral else "containers"
        self.field_path = f"spec.{kind}{{{rec.name}}}"
        self._kill = asyncio.Event()
        self._backoff = ctx.config.timers.backoff_initial
        self._probe_ctx: ProbeContext | None = None
        self.stdio: ContainerStdio | None = None
        """The running attempt's stdin/terminal when the spec asks for one (``stdin``/``tty``)."""

    @property
    def exec_context(self) -> ProbeContext | None:
        """The environment and working directory of the running attempt (for exec); None before it starts."""
        return self._probe_ctx

    # -- main loop -------------------------------------------------------------------------

    async def run(self) -> None:
        rec = self.rec
        if rec.done:
            return
        if rec.state == "terminated" and rec.terminated is not None:  # exit found while the agent was down
            if self.ctx.halt.is_set() or not self._restarts(int(rec.terminated.get("exitCode", 1))):
                self._finish()
                return
            await self._back_off(time.monotonic())
        while True:
            if rec.state != "running":
                if self.ctx.halt.is_set() or (rec.ephemeral and self._kill.is_set()):
                    break
                prepared = await self._prepare()
                if prepared is None:
                    await self._sleep(RETRY_SECONDS)
                    continue
                try:
                    self._spawn(prepared)
                except OSError as exc:  # no process (EAGAIN, ENOMEM, ENOSPC...): a failed start, not an agent crash
                    code, started = START_ERROR_CODE, time.monotonic()
                    self._record_start_error(exc)
                    if self.ctx.halt.is_set() or not self._restarts(code):
                        break
                    await self._back_off(started)
                    continue
            code, started = await self._wait(rec.pid in _CHILDREN)
            self._record_exit(code)
            if self.ctx.halt.is_set() or not self._restarts(code):
                break
            await self._back_off(started)
        self._finish()

    def _finish(self) -> None:
        rec = self.rec
        if rec.state == "waiting" and rec.terminated is None and rec.last_terminated is not None:
            rec.state, rec.terminated, rec.last_terminated = "terminated", rec.last_terminated, None  # no restart
            rec.reason, rec.message = "", ""
        rec.done = True
        self.ctx.changed()

    async def _back_off(self, started: float) -> None:
        rec = self.rec
        delay = self._next_delay(started)
        rec.last_terminated, rec.terminated = rec.terminated, None
        rec.state, rec.reason = "waiting", "CrashLoopBackOff"
        rec.message = f"back-off {delay:g}s restarting failed container={rec.name} pod={self._pod_ref()}"
        self.ctx.changed()
        self.ctx.events.pod_event(self.ctx.pod, "BackOff", f"Back-off restarting failed container {rec.name} in "
                                  f"pod {self._pod_ref()}", warning=True, field_path=self.field_path)
        await self._sleep(delay)
        rec.reason, rec.message = "ContainerCreating", ""

    def _restarts(self, code: int) -> bool:
        if self.rec.ephemeral:
            return False
        policy = (self.ctx.pod.get("spec") or {}).get("restartPolicy") or "Always"
        if self.rec.init:
            return code != 0 and policy != "Never"
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    def _next_delay(self, started: float) -> float:
        timers = self.ctx.config.timers
        if time.monotonic() - started >= timers.backoff_reset:
            self._backoff = timers.backoff_initial
        delay = self._backoff
        self._backoff = min(self._backoff * 2, timers.backoff_max)
        return delay

    async def _sleep(self, seconds: float) -> None:
        """Sleep until the pod stops (or, for an ephemeral container still waiting, it is killed)."""
        with contextlib.suppress(TimeoutError):  # asyncio.timeout, not wait_for: 3.11's can swallow a cancel
            async with asyncio.timeout(seconds):
                if not self.rec.ephemeral:
                    await self.ctx.halt.wait()
                    return
                stop, kill = asyncio.ensure_future(self.ctx.halt.wait()), asyncio.ensure_future(self._kill.wait())
                try:
                    await asyncio.wait([stop, kill], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stop.cancel()
                    kill.cancel()

    def _pod_ref(self) -> str:
        md = self.ctx.pod["metadata"]
        return f"{md['name']}_{md.get('namespace')}({md.get('uid')})"

    # -- preparing and spawning ------------------------------------------------------------

    async def _prepare(self) -> Prepared | None:
        rec, spec, pod = self.rec, self.spec, self.ctx.pod
        image = self.ctx.images.get(str(spec.get("image") or ""))
        rec.image = str(spec.get("image") or "")
        if image is None:
            reason, message = image_missing(rec.image, spec)
            if rec.reason != reason:
                self.ctx.events.pod_event(pod, reason, message, warning=True, field_path=self.field_path)
            self._wait_with(reason, message)
            return None
        rec.image, rec.image_id = image.reference, image.image_id
        cdir = self.ctx.sandbox.container_dir(rec.name)
        fresh = self.ctx.sandbox.make_container_dir(rec.name)
        host_ip = self.ctx.config.address
        try:
            sources = Sources(self.ctx.sources_client, pod)
            env = await container_env(sources, spec, host_ip=host_ip)
            variables = dict(env)
            annotations = pod["metadata"].get("annotations") or {}
            if annotations.get(ANNOTATION_TEMPLATE_VALUES):
                raw = await sources.data("configmap", str(annotations[ANNOTATION_TEMPLATE_VALUES]), optional=False)
                variables.update(template_values(raw or {}, str(annotations.get(ANNOTATION_COMPRESSED) or "")))
            rendered = render_volumes(pod, self.ctx.volume_dirs, cdir / "rendered", variables)
            mounts = mount_map(spec, {**self.ctx.volume_dirs, **rendered})
        except ConfigMissing as exc:
            self._wait_with("CreateContainerConfigError", str(exc))
            return None
        message_path = str(spec.get("terminationMessagePath") or "/dev/termination-log")
        message_file = cdir / "termination-log"
        mounts[message_path] = message_file
        view = self.ctx.sandbox.dir / "root"
        link_view(view, {k: v for k, v in mounts.items() if k != message_path})
        paths = PathMap(mounts)
        base = {
            "PATH": ":".join([*image.path_entries(), DEFAULT_PATH]),
            "HOSTNAME": str(pod["metadata"]["name"]),
            "HOME": str(cdir),
            "ATOLL_SANDBOX_ROOT": str(view),
            **self.ctx.config.pod_env,
        }
        env = {k: paths.rewrite(v) for k, v in {**base, **env}.items()}
        argv = [str(a) for a in (spec.get("command") or [])] + [str(a) for a in (spec.get("args") or [])]
        if not argv:
            self._wait_with("CreateContainerError", "no command specified (RunP images have no entrypoint)")
            return None
        argv = [paths.rewrite(expand(a, env)) for a in argv]
        cwd = working_dir(paths.rewrite(str(spec.get("workingDir") or "")), view) or str(image.root)
        if not fresh:
            with contextlib.suppress(FileNotFoundError):
                message_file.unlink()
        memory_kb, nice = process_limits(spec)
        ports = {str(p["name"]): int(p["containerPort"]) for p in spec.get("ports") or [] if p.get("name")}
        self._probe_ctx = ProbeContext(env=env, cwd=cwd, ports=ports, host=host_ip)
        return Prepared(argv, env, cwd, memory_kb, nice, message_file, fresh)

    def _wait_with(self, reason: str, message: str) -> None:
        rec = self.rec
        if (rec.state, rec.reason, rec.message) != ("waiting", reason, message):
            rec.state, rec.reason, rec.message = "waiting", reason, message
            self.ctx.changed()

    def _spawn(self, prepared: Prepared) -> None:
        rec, md = self.rec, self.ctx.pod["metadata"]
        if rec.attempt >= 0:
            rec.restart_count = max(rec.restart_count, rec.attempt + 1)
        rec.attempt, rec.pid, rec.start_time, rec.spawning = rec.restart_count, 0, None, True
        self.ctx.changed(durable=True)  # intent first: a crash after spawn is found through the shim's pid file
        logfile = log_path(self.ctx.config.root, md["namespace"], md["name"], md["uid"], rec.name, rec.attempt)
        make_staged(logfile.parent.parent, rec.name, self.ctx.sandbox.dir / "logs.new")
        state = self.ctx.sandbox.shim_state(rec.name, rec.attempt)
        if not prepared.fresh:
            for suffix in (".pid", ".exit"):
                with contextlib.suppress(FileNotFoundError):
                    (state.parent / (state.name + suffix)).unlink()
        tty, stdin = bool(self.spec.get("tty")), bool(self.spec.get("stdin"))
        self.stdio = ContainerStdio(tty=tty, stdin_once=bool(self.spec.get("stdinOnce"))) if tty or stdin else None
        child = self.stdio.child_fd if self.stdio else None
        try:
            spawned = process.spawn(
                prepared.command, env=prepared.env, cwd=prepared.cwd, state=state, log_file=logfile,
                memory_kb=prepared.memory_kb, nice=prepared.nice, stdin_fd=None if tty else child,
                tty_fd=child if tty else None, identify=False,
            )
        finally:
            if self.stdio is not None:
                self.stdio.spawned()
        _CHILDREN.add(spawned.pid)
        rec.pid, rec.start_time, rec.spawning = spawned.pid, spawned.start_time, False
        rec.state, rec.reason, rec.message, rec.started_at = "running", "", "", now_time()
        rec.terminated, rec.ready = None, False
        rec.started = not self.spec.get("startupProbe")
        if not rec.init and not self.spec.get("readinessProbe"):
            rec.ready = rec.started
        self.ctx.changed()
        self.ctx.events.pod_event(self.ctx.pod, "Started", f"Started container {rec.name}", field_path=self.field_path)

    # -- running ---------------------------------------------------------------------------

    async def _wait(self, own: bool) -> tuple[int, float]:
        rec = self.rec
        started = time.monotonic()
        state = self.ctx.sandbox.shim_state(rec.name, rec.attempt)
        async with asyncio.TaskGroup() as tg:
            exited = tg.create_task(self._wait_exit(rec.pid, state, own), name=f"wait/{rec.name}")
            watchers = [tg.create_task(self._stop_when_asked(exited), name=f"stop/{rec.name}")]
            if not rec.init and not rec.ephemeral:
                watchers += self._start_probes(tg)
            stdio, md = self.stdio, self.ctx.pod["metadata"]
            logfile = log_path(self.ctx.config.root, md["namespace"], md["name"], md["uid"], rec.name, rec.attempt)
            copier = tg.create_task(stdio.copy_terminal(logfile)) if stdio else None
            await asyncio.wait([exited])
            for task in watchers:
                task.cancel()
            if copier is not None:  # the terminal's last output, then give up on lingering holders
                await asyncio.wait([copier], timeout=1.0)
                copier.cancel()
        if stdio is not None:
            stdio.release()
            self.stdio = None
        process.kill_group(rec.pid, signal.SIGKILL)  # sweep anything the container left behind
        return exited.result(), started

    @staticmethod
    async def _wait_exit(pid: int, state: Path, own: bool) -> int:
        """The attempt's exit code; a pid this agent spawned leaves ``_CHILDREN`` in the step that reaped
        it (``waitpid`` frees the pid for reuse: no save may read a start time from it after that)."""
        code = await process.wait_exit(pid, state, own_child=own)
        _CHILDREN.discard(pid)
        return code

    def identify(self) -> None:
        """Record the start time of a process this agent spawned, if not yet recorded: the spawn leaves
        it to the next save of the records (the pid, which it identifies, is saved only then too)."""
        rec = self.rec
        if rec.pid and rec.start_time is None and rec.pid in _CHILDREN:
            rec.start_time = process.start_time(rec.pid)

    def kill(self) -> None:
        """Stop the running attempt (an ephemeral container when its pod finishes)."""
        self._kill.set()

    async def _stop_when_asked(self, exited: asyncio.Task[int]) -> None:
        if not self._killable():  # only the pod stopping ends this attempt: no two waiters and a wait()
            await self.ctx.halt.wait()
            await self.stop(self.ctx.grace_seconds(), exited)
            return
        stop = asyncio.ensure_future(self.ctx.halt.wait())
        kill = asyncio.ensure_future(self._kill.wait())
        try:
            await asyncio.wait([stop, kill], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            kill.cancel()
        await self.stop(self.ctx.grace_seconds(), exited)

    def _killable(self) -> bool:
        """Whether something other than the pod stopping may end an attempt: :meth:`kill` (an ephemeral
        container when its pod finishes) or a failed startup or liveness probe."""
        return self.rec.ephemeral or bool(self.spec.get("startupProbe") or self.spec.get("livenessProbe"))

    async def stop(self, grace: float, exited: asyncio.Task[int]) -> None:
        pid = self.rec.pid
        process.kill_group(pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(grace, 0.0)):
                await asyncio.shield(exited)
            return
        process.kill_group(pid, signal.SIGKILL)

    def _start_probes(self, tg: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        ctx, spec, rec = self._probe_ctx, self.spec, self.rec
        if ctx is None:
            return []
        started = asyncio.Event()
        if rec.started:
            started.set()
        tasks: list[asyncio.Task[None]] = []
        min_period = self.ctx.config.timers.probe_min_period

        async def on_startup(ok: bool, message: str) -> None:
            if ok:
                rec.started = True
                if not spec.get("readinessProbe"):
                    rec.ready = True
                started.set()
                self.ctx.changed()
            else:
                await self._unhealthy("Startup", message)

        async def on_liveness(ok: bool, message: str) -> None:
            if not ok:
                await self._unhealthy("Liveness", message)

        async def on_readiness(ok: bool, message: str) -> None:
            if rec.ready != ok:
                rec.ready = ok
                self.ctx.changed()
            if not ok:
                self.ctx.events.pod_event(self.ctx.pod, "Unhealthy", f"Readiness probe failed: {message}",
                                          warning=True, field_path=self.field_path)

        async def after_start(probe: JSON, handler: Any) -> None:
            await started.wait()
            await run_probe(probe, ctx, on_result=handler, min_period=min_period)

        if spec.get("startupProbe") and not rec.started:
            tasks.append(tg.create_task(run_probe(spec["startupProbe"], ctx, on_result=on_startup,
                                                  min_period=min_period, stop_on_success=True)))
        if spec.get("livenessProbe"):
            tasks.append(tg.create_task(after_start(spec["livenessProbe"], on_liveness)))
        if spec.get("readinessProbe"):
            tasks.append(tg.create_task(after_start(spec["readinessProbe"], on_readiness)))
        return tasks

    async def _unhealthy(self, kind: str, message: str) -> None:
        self.ctx.events.pod_event(self.ctx.pod, "Unhealthy", f"{kind} probe failed: {message}", warning=True,
                                  field_path=self.field_path)
        self.ctx.events.pod_event(self.ctx.pod, "Killing", f"Container {self.rec.name} failed {kind.lower()} "
                                  "probe, will be restarted", field_path=self.field_path)
        self._kill.set()

    # -- exit ------------------------------------------------------------------------------

    def _record_start_error(self, exc: OSError) -> None:
        """kubelet's ``StartError``: terminated with exit code 128 and the reason the start failed."""
        rec = self.rec
        rec.spawning, rec.pid = False, 0
        if self.stdio is not None:  # no process holds its other end: close ours too
            self.stdio.release()
            self.stdio = None
        message = f"failed to start container {rec.name}: {exc.strerror or exc}"
        rec.terminated = start_error_state(message, rec.container_id(self.ctx.sandbox.uid))
        rec.state, rec.ready, rec.started = "terminated", False, False
        rec.reason, rec.message = "", ""
        log.warning("pod %s: %s", self._pod_ref(), message)
        self.ctx.changed(durable=True)
        self.ctx.events.pod_event(self.ctx.pod, "Failed", f"Error: {message}", warning=True,
                                  field_path=self.field_path)

    def _record_exit(self, code: int) -> None:
        rec, md = self.rec, self.ctx.pod["metadata"]
        self._kill.clear()
        rec.terminated = terminated_state(
            self.spec, code,
            logfile=log_path(self.ctx.config.root, md["namespace"], md["name"], md["uid"], rec.name, rec.attempt),
            message_file=self.ctx.sandbox.container_dir(rec.name) / "termination-log",
            started_at=rec.started_at, container_id=rec.container_id(self.ctx.sandbox.uid),
        )
        rec.state, rec.ready, rec.started, rec.pid = "terminated", False, False, 0
        rec.reason, rec.message = "", ""
        self.ctx.changed()


_CHILDREN: set[int] = set()
"""Pids this agent process spawned (waited with ``waitpid``); adopted pids are not in it."""
