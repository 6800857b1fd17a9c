"""Reconcile one KusciaTask (Kuscia ``pkg/controllers/kusciatask``, reference §2.5).

Steps, each idempotent and driven by what the API shows:

1. **kits** — every party's AppImage resolved into a :class:`~.kits.PartyKit`; an unknown AppImage
   or role fails the task with a message naming the party;
2. **ports** (once, condition ``PortsAllocated``) — ports from the per-domain allocator recorded
   in ``status.allocatedPorts`` (the write is the commit: a conflict releases them again);
3. **resources** (once, condition ``ResourceCreated``) — ConfigMaps, pods, headless Services,
   egress Services and the TaskResourceGroup, all created with ``AlreadyExists`` tolerated;
4. **status** — ``podStatuses``, ``serviceStatuses``, ``partyTaskStatus``, ``progress`` and the
   phase from the pods and the TaskResourceGroup;
5. **finish** — ``completionTime``; the task's Services, egress Services and (on success) pods and
   ConfigMaps are deleted; pods of a failed task that failed themselves are kept for their logs;
   the in-memory port hold is released (the finished status no longer counts as in use).

A deleted task has everything it created deleted (found by the ``task-id`` annotation).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from atoll.api import kinds
from atoll.api.constants import CROSS_DOMAIN_NAMESPACE
from atoll.api.errors import AlreadyExists, Conflict, NotFound
from atoll.api.kuscia_tasks import (
    APPIMAGES,
    KUSCIATASKS,
    LABEL_TASK_UID,
    TASK_FAILED,
    TASK_FINISHED,
    TASK_PENDING,
    TASK_RUNNING,
    TASK_SUCCEEDED,
    TASKRESOURCEGROUPS,
    TRG_FAILED,
    TRG_RESERVED,
)
from atoll.api.timestamps import format_time
from atoll.client import Client
from atoll.controllers.kusciatask import resources as res
from atoll.controllers.kusciatask.cleanup import Cleanup
from atoll.controllers.kusciatask.kits import KitError, PartyKit, build_kits
from atoll.controllers.kusciatask.plan import Plan, allocated_ports_status, wanted_ports
from atoll.controllers.kusciatask.ports import PortAllocator, PortsExhausted
from atoll.controllers.kusciatask.status import party_state, pod_status, progress, task_verdict
from atoll.controllers.kusciatask.trgstatus import trg_failure, trg_party_messages
from atoll.runtime import Cache, Clock, ObjectKey, Result, get_logger
from atoll.runtime.latest import LatestWrites
from atoll.scheduler.events import EventRecorder

JSON = dict[str, Any]
LINGER_RECHECK = 0.5
"""Seconds between checks while a previous run's objects of the same names are being deleted."""
log = get_logger(__name__)


@dataclass(slots=True)
class Caches:
    tasks: Cache
    app_images: Cache
    domain_app_images: Cache
    pods: Cache
    services: Cache
    configmaps: Cache
    groups: Cache


def condition(status: JSON, kind: str) -> JSON | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


class TaskReconciler:
    def __init__(self, client: Client, caches: Caches, ports: PortAllocator, clock: Clock) -> None:
        self.client = client
        self.c = caches
        self.ports = ports
        self.clock = clock
        self.cleanup = Cleanup(client, caches.pods, caches.services, caches.configmaps)
        self.events = EventRecorder(client, "kusciatask-controller")
        self.latest = LatestWrites()

    def now(self) -> str:
        return format_time(self.clock.now())

    async def reconcile(self, key: ObjectKey) -> Result:
        task = self.latest.fresher(self.c.tasks.get_key(key), key)
        if task is None:
            await self.cleanup.deleted(key.name)
            await self._delete_group(key.name)
            self.ports.release(key.name)
            return Result()
        if task["metadata"].get("deletionTimestamp"):
            return Result()
        status = task.get("status") or {}
        if status.get("completionTime"):
            await self.cleanup.finished(task, succeeded=status.get("phase") == TASK_SUCCEEDED)
            self.ports.release(key.name)
            return Result()
        try:
            kits = build_kits(task, await self._app_images(task), self._domain_app_image)
        except KitError as exc:
            await self._finish(task, TASK_FAILED, "KitError", str(exc))
            return Result()
        if not status.get("allocatedPorts"):
            await self._allocate(task, kits)
            return Result()
        plan = Plan(kits, status["allocatedPorts"])
        if condition(status, "ResourceCreated") is None:
            if self._previous_run_lingers(task, kits):
                return Result(requeue_after=LINGER_RECHECK)  # same names: wait until they are gone
            await self._create_resources(task, kits, plan)
            return Result()
        await self._sync_status(task, kits, plan)
        return Result()

    # -- lookups -------------------------------------------------------------------------------

    def _previous_run_lingers(self, task: JSON, kits: list[PartyKit]) -> bool:
        """A task re-created under the same name (a job's Restart) reuses its pods' and group's
        names: while the previous run's objects are still being deleted, creating ours would only
        find theirs (AlreadyExists) and adopt objects that are about to disappear."""
        uid = res.task_uid(task)

        def other_run(obj: JSON | None) -> bool:
            return obj is not None and (obj["metadata"].get("labels") or {}).get(LABEL_TASK_UID) != uid

        pods = (self.c.pods.get(name, kit.domain) for kit in kits for name in kit.pod_names)
        return any(other_run(pod) for pod in pods) or other_run(self.c.groups.get(res.task_name(task)))

    async def _app_images(self, task: JSON) -> Callable[[str, str | None], JSON | None]:
        """AppImage lookup from the cache, with a live read for ones the cache has not seen yet (an
        AppImage applied just before its task must not fail the task)."""
        fetched: dict[str, JSON] = {}
        for party in (task.get("spec") or {}).get("parties") or []:
            ref = str(party.get("appImageRef") or "")
            if ref and ref not in fetched and self.c.app_images.get(ref) is None:
                try:
                    fetched[ref] = await self.client.get(APPIMAGES, ref)
                except NotFound:
                    continue
        return lambda name, namespace: self.c.app_images.get(name) or fetched.get(name)

    def _domain_app_image(self, name: str, namespace: str | None) -> JSON | None:
        return self.c.domain_app_images.get(name, namespace)

    # -- steps ---------------------------------------------------------------------------------

    async def _allocate(self, task: JSON, kits: list[PartyKit]) -> None:
        name = res.task_name(task)
        try:
            ports = self.ports.allocate(name, wanted_ports(kits))
        except PortsExhausted as exc:
            await self._finish(task, TASK_FAILED, "PortsExhausted", str(exc))
            return
        status = self._base_status(task)
        status["allocatedPorts"] = allocated_ports_status(kits, ports)
        _set_condition(status, "PortsAllocated", "True", "", "", self.now())
        try:
            await self._write_status(task, status)
        except (Conflict, NotFound):
            self.ports.release(name)  # the write did not land: the ports were never handed out
            raise

    async def _create_resources(self, task: JSON, kits: list[PartyKit], plan: Plan) -> None:
        created: dict[tuple[str, str], JSON] = {}
        for kit in kits:
            try:
                if kit.config_templates:
                    await self._create(kinds.CONFIGMAPS, res.config_map(task, kit), kit.domain)
                pods = await asyncio.gather(
                    *(self._create(kinds.PODS, res.pod(task, plan, kit, i), kit.domain) for i in range(kit.replicas))
                )
            except NotFound as exc:  # the party's namespace does not exist
                await self._finish(task, TASK_FAILED, "CreateResourceFailed", f"party {kit.key}: {exc}")
                return
            for name, obj in zip(kit.pod_names, pods, strict=True):
                created[(kit.domain, name)] = obj or self.c.pods.get(name, kit.domain) or {}

        def owner(domain: str, pod: str) -> JSON | None:
            obj = created.get((domain, pod))
            return obj if obj and obj.get("metadata") else None

        await asyncio.gather(
            *(self._create(kinds.SERVICES, res.service(task, s, owner(s.kit.domain, s.pod)), s.kit.domain)
              for s in plan.services),
            *(self._create(kinds.SERVICES, res.egress_service(task, e), e.consumer) for e in plan.egress),
        )
        await self._create(TASKRESOURCEGROUPS, res.task_resource_group(task, kits), None)
        status = copy.deepcopy(task.get("status") or {})
        _set_condition(status, "ResourceCreated", "True", "", "", self.now())
        await self._write_status(task, status)

    async def _create(self, rd: Any, body: JSON, namespace: str | None) -> JSON | None:
        try:
            return await self.client.create(rd, body, namespace)
        except AlreadyExists:
            return None

    async def _sync_status(self, task: JSON, kits: list[PartyKit], plan: Plan) -> None:
        status = copy.deepcopy(task.get("status") or {})
        pods = {kit.key: self._pods_of(task, kit) for kit in kits}
        status["podStatuses"] = {
            f"{p['metadata']['namespace']}/{p['metadata']['name']}": pod_status(p)
            for by_name in pods.values()
            for p in by_name.values()
        }
        status["serviceStatuses"] = self._service_statuses(plan)
        parties = [party_state(kit, pods[kit.key]) for kit in kits]
        group = self.c.groups.get(res.task_name(task))
        tr_messages = trg_party_messages(group)
        for party in parties:
            if party.phase == TASK_PENDING and tr_messages.get(party.kit.domain):
                party.message = tr_messages[party.kit.domain]
        status["partyTaskStatus"] = [p.status() for p in parties]
        status["progress"] = progress(parties)
        min_members = res.min_reserved_members(task, len(kits))
        verdict = task_verdict(parties, min_members)
        failure = trg_failure(group)
        phase, reason, message = verdict.phase, verdict.reason, verdict.message
        if failure is not None and phase != TASK_SUCCEEDED:
            phase, reason, message = TASK_FAILED, "TaskResourceGroupPhaseFailed", failure
        elif phase == TASK_PENDING and group and (group.get("status") or {}).get("phase") == TRG_RESERVED:
            phase = TASK_RUNNING
        if phase in TASK_FINISHED:
            await self._finish(task, phase, reason, message, status=status, parties=[p.status() for p in parties])
            return
        status["phase"] = phase
        if phase == TASK_RUNNING and condition(status, "Running") is None:
            _set_condition(status, "Running", "True", "", "", self.now())
        if status != (task.get("status") or {}):
            status["lastReconcileTime"] = self.now()
            await self._write_status(task, status)

    def _pods_of(self, task: JSON, kit: PartyKit) -> dict[str, JSON]:
        uid = res.task_uid(task)
        out = {}
        for name in kit.pod_names:
            pod = self.c.pods.get(name, kit.domain)
            if pod is not None and (pod["metadata"].get("labels") or {}).get(LABEL_TASK_UID) == uid:
                out[name] = pod
        return out

    def _service_statuses(self, plan: Plan) -> JSON:
        out = {}
        for svc in plan.services:
            obj = self.c.services.get(svc.name, svc.kit.domain)
            entry: JSON = {
                "namespace": svc.kit.domain,
                "serviceName": svc.name,
                "portName": svc.port.name,
                "portNumber": svc.number,
                "scope": svc.port.scope,
            }
            if obj is not None:
                entry["createTime"] = obj["metadata"].get("creationTimestamp")
                entry["readyTime"] = obj["metadata"].get("creationTimestamp")
            out[f"{svc.kit.domain}/{svc.name}"] = entry
        return out

    # -- finishing ---------------------------------------------------------------------------

    async def _finish(
        self,
        task: JSON,
        phase: str,
        reason: str,
        message: str,
        *,
        status: JSON | None = None,
        parties: list[JSON] | None = None,
    ) -> None:
        status = copy.deepcopy(status if status is not None else (task.get("status") or {}))
        now = self.now()
        status.setdefault("startTime", now)
        status.update({"phase": phase, "completionTime": now, "lastReconcileTime": now})
        if phase == TASK_SUCCEEDED:
            status["progress"] = 1.0
            _set_condition(status, "Success", "True", "", "", now)
        else:
            status.update({"reason": reason, "message": message})
            _set_condition(status, "Success", "False", reason, message, now)
            status["partyTaskStatus"] = [
                {**p, "phase": TASK_FAILED} if p.get("phase") in (TASK_PENDING, TASK_RUNNING) else p
                for p in (parties if parties is not None else status.get("partyTaskStatus") or [])
            ]
            await self._fail_group(res.task_name(task))
        written = await self._write_status(task, status)
        log.info("task %s %s%s", res.task_name(task), phase, f": {message}" if message else "")
        if phase == TASK_FAILED:
            await self.events.record(written, "Warning", reason or "TaskFailed", message or "task failed")
        await self.cleanup.finished(written, succeeded=phase == TASK_SUCCEEDED)
        self.ports.release(res.task_name(task))

    async def _fail_group(self, name: str) -> None:
        group = self.c.groups.get(name)
        if group is None or (group.get("status") or {}).get("phase") in (TRG_FAILED, TRG_RESERVED):
            return
        status = copy.deepcopy(group.get("status") or {})
        now = self.now()
        status["phase"] = TRG_FAILED
        status["lastTransitionTime"] = now
        status.setdefault("conditions", []).append(
            {"type": "DependentTaskFailed", "status": "True", "reason": "the KusciaTask failed",
             "lastTransitionTime": now}
        )
        try:
            await self.client.update(TASKRESOURCEGROUPS, {**group, "status": status}, subresource="status")
        except (Conflict, NotFound) as exc:
            log.info("could not mark TaskResourceGroup %s failed: %s", name, exc)

    async def _delete_group(self, name: str) -> None:
        if self.c.groups.get(name) is None:
            return
        try:
            await self.client.delete(TASKRESOURCEGROUPS, name, propagation_policy="Background")
        except NotFound:
            pass

    # -- status ------------------------------------------------------------------------------

    def _base_status(self, task: JSON) -> JSON:
        status = copy.deepcopy(task.get("status") or {})
        status.setdefault("phase", TASK_PENDING)
        status.setdefault("startTime", self.now())
        return status

    async def _write_status(self, task: JSON, status: JSON) -> JSON:
        body = {**task, "status": status}
        return self.latest.remember(await self.client.update(KUSCIATASKS, body, subresource="status"))


def _set_condition(status: JSON, kind: str, value: str, reason: str, message: str, now: str) -> None:
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    previous = next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)
    since = previous["lastTransitionTime"] if previous and previous.get("status") == value else now
    entry = {"type": kind, "status": value, "lastTransitionTime": since}
    if reason:
        entry["reason"] = reason
    if message:
        entry["message"] = message
    conditions.append(entry)
    status["conditions"] = conditions


def task_key(name: str) -> ObjectKey:
    return ObjectKey(CROSS_DOMAIN_NAMESPACE, name)
