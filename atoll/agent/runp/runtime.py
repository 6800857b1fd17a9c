"""RunP: pods bound to this node run as local process groups, one :class:`PodWorker` per pod.

An informer watches only this node's pods (``fieldSelector=spec.nodeName=<node>``; its cache keeps
no secondary indexes); its handlers create, update or forget workers (no I/O). The workers share
one status-write window, so the agent's status writes leave together. Worker tasks live in
this runtime's ``TaskGroup``. After the first list, sandboxes of pods that no longer exist (deleted
while the agent was down) are killed and removed. A housekeeping loop rotates container logs by
size.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
from typing import Any

from atoll.agent.config import AgentConfig
from atoll.agent.events import EventRecorder
from atoll.agent.runp import recover
from atoll.agent.runp.images import ImageStore
from atoll.agent.runp.logs import log_path, rotate_if_needed
from atoll.agent.runp.pod import PodWorker
from atoll.agent.runp.sandbox import Sandbox, list_sandboxes
from atoll.agent.runp.spread import spread_subdirectories
from atoll.agent.runp.window import WriteWindow
from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.client import Client
from atoll.runtime.informer import Informer

JSON = dict[str, Any]
log = logging.getLogger(__name__)
HOUSEKEEPING_SECONDS = 5.0


class PodInformer(Informer):
    """This node's pods. RunP looks them up by key only: its cache keeps no secondary indexes (no index
    functions run per pod event)."""

    default_indexes = False


class RunP:
    def __init__(
        self, client: Client, config: AgentConfig, events: EventRecorder, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.client = client
        self.clock = clock
        self.config = config
        self.events = events
        self.window = WriteWindow(config.timers.status_debounce)
        """The pods' shared status-write window (:mod:`.window`)."""
        self.images = ImageStore(config.root / "images")
        self.workers: dict[str, PodWorker] = {}
        self.by_name: dict[tuple[str, str], str] = {}
        self.informer = PodInformer(
            client, kinds.PODS, config.pod_namespace, field_selector=f"spec.nodeName={config.name}"
        )
        self._tg: asyncio.TaskGroup | None = None
        self._pending: list[JSON] = []
        self.refused: set[str] = set()  # uids of pods of another domain, reported once

    def worker(self, namespace: str, name: str) -> PodWorker | None:
        uid = self.by_name.get((namespace, name))
        return self.workers.get(uid) if uid else None

    async def run(self) -> None:
        self.informer.add_handler(on_add=self._on_pod, on_update=lambda _old, new: self._on_pod(new),
                                  on_delete=self._on_delete)
        for sub in ("pods", "logs"):  # each pod's inodes in a block group of their own (ext4)
            spread_subdirectories(self.config.root / sub)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for pod in self._pending:
                    self._on_pod(pod)
                tg.create_task(self.informer.run(), name=f"runp/{self.config.name}/informer")
                tg.create_task(self._housekeeping(), name=f"runp/{self.config.name}/housekeeping")
                await self.informer.wait_synced()
                await asyncio.to_thread(self._collect_orphans)
        finally:
            self._tg = None
            if self.config.stop_pods_on_exit:
                for worker in self.workers.values():
                    worker.kill_now()

    # -- informer handlers (no I/O) --------------------------------------------------------

    def _on_pod(self, pod: JSON) -> None:
        md = pod["metadata"]
        uid = str(md.get("uid") or "")
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        namespace = str(md.get("namespace") or "")
        if not self.config.runs_namespace(namespace):
            self._refuse(pod, namespace, uid)
            return
        if self._tg is None:
            self._pending.append(pod)
            return
        worker = PodWorker(pod, client=self.client, config=self.config, images=self.images, events=self.events,
                           clock=self.clock, window=self.window)
        worker.update(pod)
        self.workers[uid] = worker
        self.by_name[(str(md.get("namespace")), str(md["name"]))] = uid
        task = self._tg.create_task(worker.run(), name=f"runp/pod/{md.get('namespace')}/{md['name']}")
        task.add_done_callback(lambda _t: self._worker_done(uid))

    def _refuse(self, pod: JSON, namespace: str, uid: str) -> None:
        """A pod of another domain was bound here: never run it; log and report it once."""
        if uid in self.refused:
            return
        self.refused.add(uid)
        log.warning("refusing pod %s/%s (uid %s): namespace %r is not domain %r's", namespace,
                    pod["metadata"].get("name"), uid, namespace, self.config.domain)
        md = pod["metadata"]
        self.events.event(
            self.config.domain,
            {"apiVersion": "v1", "kind": "Node", "name": self.config.name},
            "DomainMismatch",
            f"refused pod {namespace}/{md.get('name')} (uid {uid}): node {self.config.name} of domain "
            f"{self.config.domain} runs only pods of namespaces {self.config.domain}, "
            f"{', '.join(self.config.shared_namespaces) or '(none)'}",
            warning=True,
        )

    def _worker_done(self, uid: str) -> None:
        worker = self.workers.pop(uid, None)
        if worker is not None:
            md = worker.pod["metadata"]
            key = (str(md.get("namespace")), str(md["name"]))
            if self.by_name.get(key) == uid:
                del self.by_name[key]

    def _on_delete(self, pod: JSON) -> None:
        self.refused.discard(str(pod["metadata"].get("uid") or ""))
        worker = self.workers.get(str(pod["metadata"].get("uid") or ""))
        if worker is not None:
            worker.forget()

    # -- housekeeping ----------------------------------------------------------------------

    def _collect_orphans(self) -> None:
        known = {str(p["metadata"].get("uid")) for p in self.informer.cache}
        for uid in list_sandboxes(self.config.root):
            if uid in known or uid in self.workers:
                continue
            sandbox = Sandbox(self.config.root, uid)
            state = sandbox.load()
            if state is not None:
                recover.kill_all(state, sandbox, signal.SIGKILL)
                shutil.rmtree(self.config.root / "logs" / f"{state.namespace}_{state.name}_{uid}", True)
            sandbox.remove()
            log.info("removed the sandbox of pod %s (deleted while the agent was down)", uid)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            await asyncio.to_thread(self._rotate_logs)

    def _rotate_logs(self) -> None:
        for worker in list(self.workers.values()):
            state = worker.state
            if state is None:
                continue
            for rec in list(state.containers.values()):
                if rec.state == "running" and rec.attempt >= 0:
                    path = log_path(self.config.root, state.namespace, state.name, state.uid, rec.name, rec.attempt)
                    rotate_if_needed(path, self.config.log_max_bytes, self.config.log_max_files)
