"""The pod worker: one asyncio task per pod bound to this node, the kubelet's pod state machine.

Phases, each idempotent so a restarted agent re-enters at the right one:

1. **sandbox** — recover persisted records (or refuse to start a pod that already ran
   elsewhere), materialise volumes (retried while a ConfigMap/Secret is missing);
2. **init** — init containers one at a time, in order; a failure under ``Never`` fails the pod;
3. **run** — all containers concurrently, each with its own :class:`ContainerRunner`; ephemeral
   containers start as they are added to the spec (``kubectl debug``), run once, and are stopped
   when the pod's containers finish;
4. **idle** — a finished pod keeps its sandbox and logs until the pod object is deleted;
5. **terminate** — on ``deletionTimestamp``: SIGTERM every process group, SIGKILL after the
   grace period, then confirm with a delete of grace 0 and remove the sandbox and logs.

``halt`` (set on deletion, and once ``spec.activeDeadlineSeconds`` has passed: :mod:`.deadline`)
stops every container and starts none again; only a deletion (``stopping``) also terminates.

Status is written by a coalescing writer: ``changed()`` only sets flags, so a burst of transitions
costs one ``PUT …/status`` and one rewrite of the sandbox records, done by the writer just before
the PUT. The writers of all the agent's pods wait for one shared window (:mod:`.window`), so
their PUTs reach the master together and share its commits and watch frames; queued Events
wait while a pod's status write is pending (at most a second). Only the
intent to spawn is persisted at once (``changed(durable=True)``): everything else a restarted
agent recomputes from the shim's pid and exit files. A deleted pod's sandbox and
logs are removed on a worker thread: that ``rmtree`` waits on the file system (7.6 ms per pod on
this project's VM, against 0.4 ms of CPU), which on the loop stalled every other pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

from atoll.agent.config import AgentConfig
from atoll.agent.events import EventRecorder
from atoll.agent.localpath import local_path_root
from atoll.agent.runp import deadline, recover
from atoll.agent.runp.claims import VolumeNotReady
from atoll.agent.runp.container import RETRY_SECONDS, ContainerRunner
from atoll.agent.runp.images import ImageStore
from atoll.agent.runp.logs import container_dir
from atoll.agent.runp.sandbox import ContainerRecord, Sandbox, SandboxState
from atoll.agent.runp.sources import ConfigMissing, Sources
from atoll.agent.runp.status import pod_status
from atoll.agent.runp.volumes import materialize
from atoll.agent.runp.window import WriteWindow
from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import APIError, NotFound
from atoll.client import Client, ClientError

JSON = dict[str, Any]
VOLUME_RETRY_SECONDS = 1.0
"""How often a container waiting for its claim to be bound looks again."""
log = logging.getLogger(__name__)


class PodWorker:
    def __init__(
        self, pod: JSON, *, client: Client, config: AgentConfig, images: ImageStore, events: EventRecorder,
        clock: Clock = SYSTEM_CLOCK, window: WriteWindow | None = None,
    ) -> None:
        self.pod = pod
        self.uid = str(pod["metadata"]["uid"])
        self.client = client
        self.sources_client = client
        self.config = config
        self.images = images
        self.events = events
        self.clock = clock
        self.window = window or WriteWindow(config.timers.status_debounce)
        """Shared by the agent's pods: their status writes leave together (:mod:`.window`)."""
        self.sandbox = Sandbox(config.root, self.uid)
        self.state: SandboxState | None = None
        self.volume_dirs: dict[str, Path] = {}
        self.volume_waiting = False
        self.stopping = asyncio.Event()
        """The pod is being deleted (or is gone): stop its containers, then terminate."""
        self.halt = asyncio.Event()
        """Stop every container and start none again: deletion, or the active deadline passed."""
        self._deadline_changed = asyncio.Event()
        self._counting = asyncio.Event()
        """Set once the pod's records exist and its containers may start: its deadline counts."""
        self.gone = False
        self._dirty = asyncio.Event()
        self._unsaved = False
        self._written: JSON | None = None
        self.runners: dict[str, ContainerRunner] = {}
        self._spec_changed = asyncio.Event()

    # -- called by the runtime (no I/O) ----------------------------------------------------

    def update(self, pod: JSON) -> None:
        before, spec = self.pod.get("spec") or {}, pod.get("spec") or {}
        self.pod = pod
        if spec.get("ephemeralContainers") != before.get("ephemeralContainers"):
            self._spec_changed.set()  # wake ``_ephemeral`` only when there is something to start
        if spec.get("activeDeadlineSeconds") != before.get("activeDeadlineSeconds"):
            self._deadline_changed.set()
        if pod["metadata"].get("deletionTimestamp"):
            self.stopping.set()
            self.halt.set()

    def forget(self) -> None:
        """The pod object is gone (force-deleted): stop at once, write nothing more."""
        self.gone = True
        self.stopping.set()
        self.halt.set()

    def changed(self, *, durable: bool = False) -> None:
        """Records changed: schedule a status write; persist them now if ``durable``, else before that write."""
        self._unsaved = True
        if durable:
            self.save()
        self._dirty.set()

    def save(self) -> None:
        """Persist the container records if they changed since the last save."""
        if self._unsaved and self.state is not None and not self.gone:
            self._unsaved = False
            for runner in self.runners.values():
                runner.identify()
            self.sandbox.save(self.state)

    def grace_seconds(self) -> float:
        md, spec = self.pod["metadata"], self.pod.get("spec") or {}
        if self.gone:
            return 2.0
        if md.get("deletionGracePeriodSeconds") is not None:
            return float(md["deletionGracePeriodSeconds"])
        return float(spec.get("terminationGracePeriodSeconds", 30))

    def record(self, container: str) -> ContainerRecord | None:
        return self.state.containers.get(container) if self.state else None

    @property
    def phase(self) -> str:
        return str((self.pod.get("status") or {}).get("phase") or "")

    # -- the task --------------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            writer = tg.create_task(self._status_writer(), name=f"pod/{self.uid}/status")
            timer = tg.create_task(self._enforce_deadline(), name=f"pod/{self.uid}/deadline")
            try:
                await self._live()
                timer.cancel()  # a finished pod has no deadline
                await self.stopping.wait()
            finally:
                timer.cancel()
                self.save()
                if self.stopping.is_set():
                    await self._flush()
                writer.cancel()
        if self.stopping.is_set():
            await self._terminate()

    async def _live(self) -> None:
        if self.sandbox.exists():  # a new pod has no records: skip the thread hop
            self.state = await asyncio.to_thread(recover.recover, self.sandbox)
        if self.state is None:
            if recover.ran_before(self.pod):
                self.state = recover.lost_state(self.pod, self.uid)
                self.changed()
                return
            md = self.pod["metadata"]
            self.state = SandboxState(uid=self.uid, namespace=str(md.get("namespace")), name=str(md["name"]))
        if self.state.terminal:
            self.changed()
            return
        self._ensure_records()
        self.changed()
        left = deadline.remaining(self.pod, self.state.start_time, self.clock.now())
        if left is not None and left <= 0:  # passed while the agent was down: start nothing, stop the rest
            self._exceed_deadline()
        self._counting.set()
        while not self.halt.is_set() and not await self._prepare_volumes():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(VOLUME_RETRY_SECONDS if self.volume_waiting else RETRY_SECONDS):
                    await self.halt.wait()
        if self.stopping.is_set():
            return
        spec = self.pod.get("spec") or {}
        for c in spec.get("initContainers") or []:
            runner = self._runner(c)
            await runner.run()
            term = runner.rec.terminated or {}
            if self.halt.is_set() or term.get("exitCode") != 0:
                self._mark_terminal()
                return
        async with asyncio.TaskGroup() as tg:
            mains = [tg.create_task(self._runner(c).run(), name=f"pod/{self.uid}/{c['name']}")
                     for c in spec.get("containers") or []]
            tg.create_task(self._ephemeral(tg, mains), name=f"pod/{self.uid}/ephemeral")
        self._mark_terminal()

    async def _ephemeral(self, tg: asyncio.TaskGroup, mains: list[asyncio.Task[None]]) -> None:
        """Start each ephemeral container added through ``pods/ephemeralcontainers`` (once, never
        restarted) while the pod's containers run; stop those still running when the pod finishes."""
        started: set[str] = set()
        while True:
            self._spec_changed.clear()
            for c in (self.pod.get("spec") or {}).get("ephemeralContainers") or []:
                if c["name"] not in started and not self.halt.is_set():
                    started.add(c["name"])
                    self._ensure_records()
                    tg.create_task(self._runner(c).run(), name=f"pod/{self.uid}/{c['name']}")
            changed = asyncio.ensure_future(self._spec_changed.wait())
            await asyncio.wait([*mains, changed], return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            if all(t.done() for t in mains):
                for name in started:
                    self.runners[name].kill()
                return

    async def _enforce_deadline(self) -> None:
        await self._counting.wait()
        assert self.state is not None
        if await deadline.wait_deadline(lambda: self.pod, self.state.start_time, self.clock,
                                        self._deadline_changed, self.halt):
            self._exceed_deadline()

    def _exceed_deadline(self) -> None:
        """The kubelet's ``DeadlineExceeded``: stop every container, restart none; the pod is Failed."""
        assert self.state is not None
        if not self.state.deadline_exceeded:
            self.state.deadline_exceeded = True
            self.events.pod_event(self.pod, deadline.REASON, deadline.MESSAGE)
        self.halt.set()
        self.changed(durable=True)

    def _ensure_records(self) -> None:
        assert self.state is not None
        spec = self.pod.get("spec") or {}
        for key in ("initContainers", "containers", "ephemeralContainers"):
            for c in spec.get(key) or []:
                if c["name"] not in self.state.containers:
                    self.state.containers[c["name"]] = ContainerRecord(
                        name=c["name"], init=key == "initContainers", ephemeral=key == "ephemeralContainers",
                        image=str(c.get("image") or ""),
                    )

    def _runner(self, spec: JSON) -> ContainerRunner:
        assert self.state is not None
        runner = ContainerRunner(self, spec, self.state.containers[spec["name"]])
        self.runners[spec["name"]] = runner
        return runner

    def _mark_terminal(self) -> None:
        assert self.state is not None
        for rec in self.state.containers.values():
            rec.done = rec.done or rec.state != "running"
        self.state.terminal = True
        self.changed()

    async def _prepare_volumes(self) -> bool:
        assert self.state is not None
        try:
            self.volume_dirs = await materialize(
                Sources(self.client, self.pod), self.sandbox.dir, host_ip=self.config.address,
                local_root=local_path_root(self.config),
            )
        except ConfigMissing as exc:
            self.volume_waiting = isinstance(exc, VolumeNotReady)
            reason = "ContainerCreating" if self.volume_waiting else "CreateContainerConfigError"
            for rec in self.state.containers.values():
                if rec.state == "waiting":
                    rec.reason, rec.message = reason, str(exc)
            self.changed()
            return False
        return True

    # -- status ----------------------------------------------------------------------------

    async def _status_writer(self) -> None:
        while True:
            await self._dirty.wait()
            with self.events.holding():  # queued Events wait for this write (events.py)
                await self.window.wait()
                self._dirty.clear()
                self.save()
                written = await self._write_status()
            if not written:
                await asyncio.sleep(1.0)
                self._dirty.set()

    async def _write_status(self) -> bool:
        if self.state is None or self.gone:
            return True
        status = pod_status(self.pod, self.state, self.config.address)
        if status == self._written:
            return True
        md = self.pod["metadata"]
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": md["name"], "namespace": md["namespace"],
                                                               "uid": self.uid}, "status": status}
        try:
            updated = await self.client.update(kinds.PODS, body, subresource="status")
        except NotFound:
            return True
        except (APIError, ClientError) as exc:
            log.warning("pod %s/%s: status update failed: %s", md["namespace"], md["name"], exc)
            return False
        self._written = status
        if updated.get("metadata", {}).get("uid") == self.uid:
            self.pod = {**self.pod, "status": updated.get("status")}
        return True

    async def _flush(self) -> None:
        self._dirty.clear()
        with contextlib.suppress(asyncio.CancelledError):
            await self._write_status()

    # -- termination -----------------------------------------------------------------------

    async def _terminate(self) -> None:
        md = self.pod["metadata"]
        if not self.gone:
            try:
                await self.client.delete(
                    kinds.PODS, md["name"], md["namespace"], grace_period_seconds=0, preconditions={"uid": self.uid}
                )
            except NotFound:
                pass
            except (APIError, ClientError) as exc:
                log.warning("pod %s/%s: confirming deletion failed: %s", md["namespace"], md["name"], exc)
        await asyncio.to_thread(self.remove_files)

    def remove_files(self) -> None:
        md = self.pod["metadata"]
        self.sandbox.remove()
        shutil.rmtree(container_dir(self.config.root, md["namespace"], md["name"], self.uid, "x").parent, True)

    def kill_now(self) -> None:
        """Agent shutdown with ``stopPodsOnExit``: SIGKILL every process group of this pod."""
        if self.state is not None:
            recover.kill_all(self.state, self.sandbox)
