"""Reconcile one TaskResourceGroup: Kuscia's co-scheduling state machine (reference §2.6).

``Pending`` (validate; name the TaskResources) → ``Creating`` (create one TaskResource per party,
link the pods to it) → ``Reserving`` (the scheduler reserves each party's pods all-or-nothing and
marks its TaskResource ``Reserved`` — or ``Failed`` in its own words) → ``Reserved`` once at least
``minReservedMembers`` parties reserved, which makes every TaskResource ``Schedulable``: only then
does any pod of the task bind. When too many parties failed: every TaskResource ``Failed`` (so
reserved parties release their nodes), the group ``ReserveFailed`` with the reasons per domain,
and after ``retryIntervalSeconds`` everything goes back to ``Reserving``. A group neither
``Reserved`` nor ``Failed`` ``lifecycleSeconds`` after its start fails (``TaskResourceGroupExpired``)
with the last reservation failure in its message.

All timers use the injected :class:`~atoll.runtime.Clock`: deadlines are computed from the
status timestamps (so they survive restarts) and a clock timer re-enqueues the group when due.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from atoll.api import kinds
from atoll.api.clock import TimerHandle
from atoll.api.errors import AlreadyExists, Conflict, NotFound
from atoll.api.kuscia_tasks import (
    ANNOTATION_RESERVING_TIMESTAMP,
    ANNOTATION_TASK_RESOURCE,
    DEFAULT_LIFECYCLE_SECONDS,
    DEFAULT_RETRY_INTERVAL_SECONDS,
    LABEL_TASK_RESOURCE_GROUP_UID,
    LABEL_TASK_RESOURCE_UID,
    NEED_RETRY_REASON,
    TASKRESOURCEGROUPS,
    TASKRESOURCES,
    TR_FAILED,
    TR_RESERVED,
    TR_RESERVING,
    TR_SCHEDULABLE,
    TRG_CREATING,
    TRG_FAILED,
    TRG_PENDING,
    TRG_RESERVE_FAILED,
    TRG_RESERVED,
    TRG_RESERVING,
)
from atoll.api.timestamps import format_time, try_parse_time
from atoll.client import Client
from atoll.controllers.taskresourcegroup.resources import (
    failure_reason,
    set_condition,
    task_resource,
    tr_name,
    with_phase,
)
from atoll.runtime import Cache, Clock, ObjectKey, Result, get_logger
from atoll.runtime.latest import LatestWrites

JSON = dict[str, Any]
log = get_logger(__name__)
RESERVED_CONDITION = "TaskResourcesReserved"


@dataclass(slots=True)
class Caches:
    groups: Cache
    resources: Cache
    pods: Cache


class GroupReconciler:
    def __init__(self, client: Client, caches: Caches, clock: Clock) -> None:
        self.client = client
        self.c = caches
        self.clock = clock
        self.enqueue: Callable[[ObjectKey], None] = lambda key: None
        self._timers: dict[ObjectKey, tuple[float, TimerHandle]] = {}
        self.latest = LatestWrites()

    def now(self) -> str:
        return format_time(self.clock.now())

    async def reconcile(self, key: ObjectKey) -> Result:
        group = self.latest.fresher(self.c.groups.get_key(key), key)
        if group is None:
            self._cancel_timer(key)
            return Result()
        phase = (group.get("status") or {}).get("phase") or TRG_PENDING
        if phase not in (TRG_RESERVED, TRG_FAILED) and self._expired(group):
            await self._expire(group)
            return Result()
        handler = {
            TRG_PENDING: self._pending,
            TRG_CREATING: self._creating,
            TRG_RESERVING: self._reserving,
            TRG_RESERVE_FAILED: self._reserve_failed,
            TRG_RESERVED: self._reserved,
            TRG_FAILED: self._failed,
        }.get(phase)
        if handler is not None:
            await handler(group)
        group = self.latest.fresher(self.c.groups.get_key(key), key) or group
        if ((group.get("status") or {}).get("phase") or TRG_PENDING) not in (TRG_RESERVED, TRG_FAILED):
            self._arm_lifecycle(group)
        else:
            self._cancel_timer(key)
        return Result()

    # -- phases --------------------------------------------------------------------------------

    async def _pending(self, group: JSON) -> None:
        spec = group.get("spec") or {}
        parties = spec.get("parties") or []
        problem = None
        if not parties:
            problem = "the group has no parties"
        elif not spec.get("initiator"):
            problem = "spec.initiator is empty"
        elif int(spec.get("minReservedMembers") or 0) > len(parties):
            problem = f"minReservedMembers {spec.get('minReservedMembers')} exceeds the {len(parties)} parties"
        now = self.now()
        if problem:
            await self._write_group(group, with_phase(group, TRG_FAILED, now, condition="TaskResourceGroupValidated",
                                                      value="False", reason=problem))
            return
        named = [{**p, "taskResourceName": tr_name(group["metadata"]["name"], p)} for p in parties]
        if named != parties:  # the KusciaTask controller names them already; others may not
            group = await self.client.update(TASKRESOURCEGROUPS, {**group, "spec": {**spec, "parties": named}})
        # Creating is passed through in the same reconcile: one status write instead of two
        status = with_phase(group, TRG_CREATING, now, condition="TaskResourceGroupValidated")
        set_condition(status, "TaskResourceNameGenerated", "True", "", now)
        await self._creating({**group, "status": status})

    async def _creating(self, group: JSON) -> None:
        now = self.now()
        parties = (group.get("spec") or {}).get("parties") or []
        await asyncio.gather(*(self._create_party(group, party, now) for party in parties))
        status = with_phase(group, TRG_RESERVING, now, condition="TaskResourcesCreated")
        set_condition(status, "PodAnnotationUpdated", "True", "", now)
        await self._write_group(group, status)

    async def _create_party(self, group: JSON, party: JSON, now: str) -> None:
        pods = {n: p for n in self._pod_names(party) if (p := self.c.pods.get(n, party["domainID"])) is not None}
        body = task_resource(group, party, pods)
        try:
            created = await self.client.create(TASKRESOURCES, body, party["domainID"])
        except AlreadyExists:
            created = self.c.resources.get(body["metadata"]["name"], party["domainID"]) or await self.client.get(
                TASKRESOURCES, body["metadata"]["name"], party["domainID"]
            )
        if (created.get("status") or {}).get("phase") != TR_RESERVING:
            status = with_phase(created, TR_RESERVING, now, condition="Reserving")
            created = self.latest.remember(
                await self.client.update(TASKRESOURCES, {**created, "status": status}, subresource="status")
            )
        await self._link_pods(group, party, created, now)

    async def _reserving(self, group: JSON) -> None:
        spec = group.get("spec") or {}
        members = int(spec.get("minReservedMembers") or 1)
        trs = self._task_resources(group)
        reserved = [tr for tr in trs if _phase(tr) in (TR_RESERVED, TR_SCHEDULABLE)]
        failed = [tr for tr in trs if _phase(tr) == TR_FAILED]
        now = self.now()
        if len(reserved) >= members:
            # the go: the group is Reserved (and done) first, then its TaskResources Schedulable
            status = with_phase(group, TRG_RESERVED, now, condition=RESERVED_CONDITION)
            status["completionTime"] = now
            set_condition(status, "TaskResourcesScheduled", "True", "", now)
            await self._write_group(group, status)
            await self._schedulable(trs)
            return
        if members > len(trs) - len(failed):
            await self._reserve_failed_now(group, failed)

    async def _reserve_failed_now(self, group: JSON, failed: list[JSON]) -> None:
        """Every TaskResource ``Failed`` (reserved parties release their nodes), the group
        ``ReserveFailed`` with one ``domain: reason`` line per failed party, a retry armed."""
        now = self.now()
        trs = self._task_resources(group)
        reasons = "\n".join(f"{tr['metadata']['namespace']}: {failure_reason(tr)}" for tr in failed)
        await asyncio.gather(
            *(self._tr_phase(tr, TR_FAILED, "Failed", NEED_RETRY_REASON) for tr in trs if _phase(tr) != TR_FAILED)
        )
        status = with_phase(group, TRG_RESERVE_FAILED, now, condition=RESERVED_CONDITION, value="False", reason=reasons)
        status.pop("completionTime", None)
        name = group["metadata"]["name"]
        log.info("task resource group %s could not reserve: %s", name, "; ".join(reasons.splitlines()))
        await self._write_group(group, status)
        self._arm(group, self._retry_at(group, now))

    async def _reserve_failed(self, group: JSON) -> None:
        due = self._retry_at(group, None)
        if self.clock.now() < due:
            self._arm(group, due)
            return
        now = self.now()
        await asyncio.gather(
            *(self._tr_phase(tr, TR_RESERVING, "Reserving", NEED_RETRY_REASON) for tr in self._task_resources(group))
        )
        for party in (group.get("spec") or {}).get("parties") or []:
            await self._stamp_pods(party, now)
        status = with_phase(group, TRG_RESERVING, now)
        status["retryCount"] = int(status.get("retryCount") or 0) + 1
        await self._write_group(group, status)

    async def _reserved(self, group: JSON) -> None:
        trs = self._task_resources(group)
        failed = [tr for tr in trs if _phase(tr) == TR_FAILED]
        if failed and not any(_phase(tr) == TR_SCHEDULABLE for tr in trs):
            # a party gave its nodes up (reservation window over) before the go: nothing is
            # bound yet, so reserve again rather than let the others start alone
            await self._reserve_failed_now(group, failed)
            return
        await self._schedulable(trs)
        status = copy.deepcopy(group.get("status") or {})
        if not status.get("completionTime"):
            now = self.now()
            status["completionTime"] = now
            set_condition(status, "TaskResourcesScheduled", "True", "", now)
            await self._write_group(group, status)

    async def _schedulable(self, trs: list[JSON]) -> None:
        await asyncio.gather(
            *(
                self._tr_phase(tr, TR_SCHEDULABLE, "Schedulable", "all parties reserved resources", done=True)
                for tr in trs
                if _phase(tr) != TR_SCHEDULABLE
            )
        )

    async def _failed(self, group: JSON) -> None:
        await asyncio.gather(
            *(
                self._tr_phase(tr, TR_FAILED, "Failed", "the task resource group failed", done=True)
                for tr in self._task_resources(group)
                if _phase(tr) != TR_FAILED
            )
        )
        status = copy.deepcopy(group.get("status") or {})
        if not status.get("completionTime"):
            now = self.now()
            status["completionTime"] = now
            set_condition(status, "TaskResourceGroupFailed", "True", "", now)
            await self._write_group(group, status)

    async def _expire(self, group: JSON) -> None:
        spec = group.get("spec") or {}
        seconds = int(spec.get("lifecycleSeconds") or DEFAULT_LIFECYCLE_SECONDS)
        last = next(
            (c.get("reason") for c in (group.get("status") or {}).get("conditions") or []
             if c.get("type") == RESERVED_CONDITION and c.get("status") == "False" and c.get("reason")),
            "",
        )
        trs = self._task_resources(group)
        if not last:
            waiting = [tr["metadata"]["namespace"] for tr in trs if _phase(tr) not in (TR_RESERVED, TR_SCHEDULABLE)]
            last = "\n".join(f"{d}: did not reserve resources for its pods" for d in waiting)
        message = f"The task was not scheduled within {seconds} seconds: {'; '.join(last.splitlines())}"
        now = self.now()
        status = with_phase(group, TRG_FAILED, now, condition="TaskResourceGroupExpired", reason=message)
        log.info("task resource group %s expired: %s", group["metadata"]["name"], message)
        await self._write_group(group, status)

    # -- helpers -------------------------------------------------------------------------------

    def _pod_names(self, party: JSON) -> list[str]:
        return [str(p.get("name")) for p in party.get("pods") or []]

    def _task_resources(self, group: JSON) -> list[JSON]:
        out = []
        for party in (group.get("spec") or {}).get("parties") or []:
            name = tr_name(group["metadata"]["name"], party)
            tr = self.latest.fresher(self.c.resources.get(name, party["domainID"]), ObjectKey(party["domainID"], name))
            if tr is not None:
                out.append(tr)
        return out

    async def _link_pods(self, group: JSON, party: JSON, tr: JSON, now: str) -> None:
        """Point pods at their TaskResource (pods the KusciaTask controller created already are)."""
        for name in self._pod_names(party):
            pod = self.c.pods.get(name, party["domainID"])
            if pod is not None and (pod["metadata"].get("annotations") or {}).get(ANNOTATION_TASK_RESOURCE) == \
                    tr["metadata"]["name"]:
                continue
            patch = {
                "metadata": {
                    "labels": {
                        LABEL_TASK_RESOURCE_GROUP_UID: group["metadata"].get("uid", ""),
                        LABEL_TASK_RESOURCE_UID: tr["metadata"].get("uid", ""),
                    },
                    "annotations": {
                        ANNOTATION_TASK_RESOURCE: tr["metadata"]["name"],
                        ANNOTATION_RESERVING_TIMESTAMP: now,
                    },
                }
            }
            try:
                await self.client.patch(kinds.PODS, name, patch, party["domainID"])
            except NotFound:
                log.info("pod %s/%s of task resource %s is missing", party["domainID"], name, tr["metadata"]["name"])

    async def _stamp_pods(self, party: JSON, now: str) -> None:
        """A new reserving timestamp: the scheduler tries the pods again at once."""
        for name in self._pod_names(party):
            try:
                stamp = {"metadata": {"annotations": {ANNOTATION_RESERVING_TIMESTAMP: now}}}
                await self.client.patch(kinds.PODS, name, stamp, party["domainID"])
            except NotFound:
                continue

    async def _tr_phase(self, tr: JSON, phase: str, condition: str, reason: str, *, done: bool = False) -> None:
        now = self.now()
        status = with_phase(tr, phase, now, condition=condition, reason=reason)
        if done:
            status["completionTime"] = now
        else:
            status.pop("completionTime", None)
        try:
            self.latest.remember(
                await self.client.update(TASKRESOURCES, {**tr, "status": status}, subresource="status")
            )
        except NotFound:
            pass

    async def _write_group(self, group: JSON, status: JSON) -> None:
        try:
            self.latest.remember(
                await self.client.update(TASKRESOURCEGROUPS, {**group, "status": status}, subresource="status")
            )
        except Conflict:
            raise  # stale cache: the work queue retries with the fresh object
        except NotFound:
            pass

    # -- timers --------------------------------------------------------------------------------

    def _start(self, group: JSON) -> float:
        """``status.startTime`` (written by the first reconcile, on this controller's clock)."""
        started = try_parse_time(str((group.get("status") or {}).get("startTime") or ""))
        return started if started is not None else self.clock.now()

    def _expired(self, group: JSON) -> bool:
        seconds = int((group.get("spec") or {}).get("lifecycleSeconds") or DEFAULT_LIFECYCLE_SECONDS)
        return self.clock.now() >= self._start(group) + seconds

    def _retry_at(self, group: JSON, now: str | None) -> float:
        seconds = int((group.get("spec") or {}).get("retryIntervalSeconds") or DEFAULT_RETRY_INTERVAL_SECONDS)
        since = try_parse_time(now or str((group.get("status") or {}).get("lastTransitionTime") or ""))
        return (since if since is not None else self.clock.now()) + seconds

    def _arm_lifecycle(self, group: JSON) -> None:
        seconds = int((group.get("spec") or {}).get("lifecycleSeconds") or DEFAULT_LIFECYCLE_SECONDS)
        self._arm(group, self._start(group) + seconds, keep_earlier=True)

    def _arm(self, group: JSON, due: float, *, keep_earlier: bool = False) -> None:
        key = ObjectKey(None, group["metadata"]["name"])
        current = self._timers.get(key)
        if current is not None:
            if keep_earlier and current[0] <= due and current[0] > self.clock.now():
                return
            current[1].cancel()
        handle = self.clock.call_later(due - self.clock.now(), lambda: self._fire(key))
        self._timers[key] = (due, handle)

    def _fire(self, key: ObjectKey) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    def _cancel_timer(self, key: ObjectKey) -> None:
        current = self._timers.pop(key, None)
        if current is not None:
            current[1].cancel()


def _phase(obj: JSON) -> str:
    return str((obj.get("status") or {}).get("phase") or "")
