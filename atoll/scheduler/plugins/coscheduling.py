"""``KusciaScheduling``: all-or-nothing co-scheduling through TaskResources (reference §2.7).

A pod annotated ``kuscia.secretflow/task-resource: <tr>`` belongs to the gang of that
TaskResource (one party of a task). Per pod:

* **PreFilter** — an empty annotation, a missing or ``Pending`` TaskResource: "waiting for task
  resource" (``Code.PENDING``: retried when the pod is linked or re-stamped, not reported as a
  failure); a ``Failed`` TaskResource: unschedulable, naming the domain and the reason. Pods
  without the annotation are ordinary pods.
* **PostFilter** (the pod fits nowhere) — the TaskResource is marked ``Failed`` with the
  scheduler's own words (``0/1 nodes are available: 1 Insufficient cpu (requested 5, free 1.9).``),
  which fails the whole party, and through the TaskResourceGroup the whole task's reservation.
* **Reserve / Unreserve** — the pod's node is remembered in the gang (the scheduler cache has
  already assumed the pod there, so the node's resources stay held while the gang waits).
* **Permit** — wait until ``minReservedPods`` pods of the gang are reserved.
* **PreBind** — one pod moves the TaskResource ``Reserving → Reserved``; then every pod waits
  until the TaskResourceGroup has made it ``Schedulable`` (all parties reserved) — only then is
  any pod of the task bound. ``Failed`` or the ``resourceReservedSeconds`` window running out
  rejects the pod, which releases its node.

Waits are woken by TaskResource informer events and time out on the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from atoll.api.errors import Conflict, NotFound
from atoll.api.kuscia_tasks import (
    ANNOTATION_TASK_RESOURCE,
    DEFAULT_RESOURCE_RESERVED_SECONDS,
    RESERVED_REASON,
    TASKRESOURCES,
    TR_FAILED,
    TR_RESERVED,
    TR_RESERVING,
    TR_SCHEDULABLE,
)
from atoll.api.timestamps import format_time
from atoll.client import Client, ClientError
from atoll.runtime import Cache, Clock, ObjectKey
from atoll.runtime.keys import key_of
from atoll.scheduler.diagnosis import Diagnosis, fit_error_message
from atoll.scheduler.framework import SUCCESS, Code, CycleState, Status

JSON = dict[str, Any]
NAME = "KusciaScheduling"
log = logging.getLogger(__name__)
WAITING = "waiting for task resource"


@dataclass(slots=True)
class Gang:
    """The pods of one TaskResource that hold a node in this scheduler."""

    reserved: dict[ObjectKey, str] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    marking: bool = False

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


def task_resource_of(pod: JSON) -> str | None:
    """The pod's TaskResource name; ``""`` while not yet linked; ``None`` for ordinary pods."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if ANNOTATION_TASK_RESOURCE not in annotations:
        return None
    return str(annotations.get(ANNOTATION_TASK_RESOURCE) or "")


def _phase(tr: JSON | None) -> str:
    return str(((tr or {}).get("status") or {}).get("phase") or "")


def _failure(tr: JSON) -> str:
    for c in reversed((tr.get("status") or {}).get("conditions") or []):
        if c.get("type") == "Failed" and c.get("reason"):
            return str(c["reason"])
    return "could not reserve resources for pods"


class KusciaScheduling:
    name = NAME

    def __init__(self, client: Client, task_resources: Cache, clock: Clock) -> None:
        self.client = client
        self.task_resources = task_resources
        self.clock = clock
        self.gangs: dict[ObjectKey, Gang] = {}
        self.activate: Callable[[ObjectKey], None] = lambda key: None
        """Set by the scheduler: retry a pod now (its TaskResource went back to ``Reserving``)."""
        self._background: set[asyncio.Task[None]] = set()

    # -- informer events -----------------------------------------------------------------------

    def on_task_resource(self, old: JSON | None, new: JSON) -> None:
        key = key_of(new)
        gang = self.gangs.get(key)
        if gang is not None:
            gang.notify()
        if _phase(new) in (TR_RESERVING, TR_SCHEDULABLE) and _phase(old) != _phase(new):
            namespace = key.namespace
            for pod in (new.get("spec") or {}).get("pods") or []:
                self.activate(ObjectKey(namespace, str(pod.get("name"))))

    def on_task_resource_delete(self, tr: JSON) -> None:
        gang = self.gangs.pop(key_of(tr), None)
        if gang is not None:
            gang.notify()

    # -- scheduling cycle ----------------------------------------------------------------------

    def _key(self, pod: JSON, name: str) -> ObjectKey:
        return ObjectKey((pod.get("metadata") or {}).get("namespace") or "default", name)

    def pre_filter(self, state: CycleState, pod: JSON) -> Status:
        name = task_resource_of(pod)
        if name is None:
            return SUCCESS
        if not name:  # the TaskResourceGroup controller links it in a moment
            return Status(Code.PENDING, (WAITING,))
        tr = self.task_resources.get_key(self._key(pod, name))
        if tr is None:
            return Status(Code.PENDING, (f"{WAITING} {name}",))
        phase = _phase(tr)
        if phase == TR_FAILED:
            domain = tr["metadata"].get("namespace")
            return Status.unschedulable(f"domain [{domain}] can not reserve resources for pods: {_failure(tr)}")
        if phase not in (TR_RESERVING, TR_RESERVED, TR_SCHEDULABLE):
            return Status(Code.PENDING, (f"task resource {name} is {phase or 'Pending'}",))
        state[NAME] = tr
        return SUCCESS

    def post_filter(self, state: CycleState, pod: JSON, statuses: Mapping[str, Status]) -> None:
        tr = state.get(NAME)
        if not isinstance(tr, dict) or _phase(tr) != TR_RESERVING:
            return
        diagnosis = Diagnosis(len(statuses), dict(statuses))
        message = fit_error_message(pod, diagnosis).split(" preemption:", 1)[0]
        self._spawn(self._mark(key_of(tr), TR_FAILED, "Failed", f"pod {pod['metadata']['name']}: {message}"))

    def reserve(self, state: CycleState, pod: JSON, node_name: str) -> Status:
        tr = state.get(NAME)
        if isinstance(tr, dict):
            gang = self.gangs.setdefault(key_of(tr), Gang())
            gang.reserved[key_of(pod)] = node_name
            gang.notify()
        return SUCCESS

    def unreserve(self, state: CycleState, pod: JSON, node_name: str) -> None:
        tr = state.get(NAME)
        if isinstance(tr, dict):
            gang = self.gangs.get(key_of(tr))
            if gang is not None:
                gang.reserved.pop(key_of(pod), None)
                gang.notify()
                if not gang.reserved:  # every waiter holds a reservation: none is left waiting
                    self.gangs.pop(key_of(tr), None)

    # -- binding cycle -------------------------------------------------------------------------

    async def permit(self, state: CycleState, pod: JSON, node_name: str) -> Status:
        tr = state.get(NAME)
        if not isinstance(tr, dict):
            return SUCCESS
        key = key_of(tr)
        gang = self.gangs.setdefault(key, Gang())
        wanted = int((tr.get("spec") or {}).get("minReservedPods") or 1)

        def ready() -> Status | None:
            current = self.task_resources.get_key(key)
            if current is None or _phase(current) == TR_FAILED:
                return self._rejected(key, current)
            if _phase(current) == TR_SCHEDULABLE or len(gang.reserved) >= wanted:
                return SUCCESS
            return None

        return await self._wait(gang, tr, ready, f"only {{n}}/{wanted} pods of task resource {key} were reserved")

    async def pre_bind(self, state: CycleState, pod: JSON, node_name: str) -> Status:
        tr = state.get(NAME)
        if not isinstance(tr, dict):
            return SUCCESS
        key = key_of(tr)
        gang = self.gangs.setdefault(key, Gang())
        current = self.task_resources.get_key(key)
        if _phase(current) == TR_RESERVING and not gang.marking:
            gang.marking = True
            try:
                await self._mark(key, TR_RESERVED, "Reserved", RESERVED_REASON)
            finally:
                gang.marking = False

        def ready() -> Status | None:
            current = self.task_resources.get_key(key)
            if current is None or _phase(current) == TR_FAILED:
                return self._rejected(key, current)
            return SUCCESS if _phase(current) == TR_SCHEDULABLE else None

        return await self._wait(gang, tr, ready, f"the other parties of task resource {key} did not reserve in time")

    def post_bind(self, state: CycleState, pod: JSON, node_name: str) -> None:
        tr = state.get(NAME)
        if isinstance(tr, dict):
            gang = self.gangs.get(key_of(tr))
            if gang is not None:
                gang.reserved.pop(key_of(pod), None)
                if not gang.reserved:
                    self.gangs.pop(key_of(tr), None)

    # -- helpers -------------------------------------------------------------------------------

    def _rejected(self, key: ObjectKey, tr: JSON | None) -> Status:
        if tr is None:
            return Status.unschedulable(f"task resource {key} was deleted")
        return Status.unschedulable(f"domain [{key.namespace}] can not reserve resources for pods: {_failure(tr)}")

    async def _wait(self, gang: Gang, tr: JSON, ready: Callable[[], Status | None], timeout_text: str) -> Status:
        seconds = float((tr.get("spec") or {}).get("resourceReservedSeconds") or DEFAULT_RESOURCE_RESERVED_SECONDS)
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            gang.notify()

        handle = self.clock.call_later(seconds, expire)
        try:
            while True:
                verdict = ready()
                if verdict is not None:
                    return verdict
                if expired:
                    message = f"{timeout_text.format(n=len(gang.reserved))} within {seconds:g}s"
                    # Kuscia's Unreserve: a gang that gave up its nodes must not be Schedulable later
                    await self._mark(key_of(tr), TR_FAILED, "Failed", message, only_from=(TR_RESERVING, TR_RESERVED))
                    return Status.unschedulable(message)
                await gang.changed.wait()
        finally:
            handle.cancel()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _mark(
        self, key: ObjectKey, phase: str, condition: str, reason: str, *, only_from: tuple[str, ...] = (TR_RESERVING,)
    ) -> None:
        """Move the TaskResource to ``phase`` (if it is in one of ``only_from``), retrying conflicts."""
        for _ in range(10):
            try:
                tr = await self.client.get(TASKRESOURCES, key.name, key.namespace)
                if _phase(tr) not in only_from:
                    return
                now = format_time(self.clock.now())
                status = dict(tr.get("status") or {})
                status["phase"] = phase
                status["lastTransitionTime"] = now
                conditions = [c for c in status.get("conditions") or [] if c.get("type") != condition]
                conditions.append({"type": condition, "status": "True", "reason": reason, "lastTransitionTime": now})
                status["conditions"] = conditions
                await self.client.update(TASKRESOURCES, {**tr, "status": status}, subresource="status")
                log.info("task resource %s: %s (%s)", key, phase, reason)
                return
            except Conflict:
                continue
            except (NotFound, ClientError) as exc:
                log.info("task resource %s not marked %s: %s", key, phase, exc)
                return
