"""Reconcile one KusciaJob (Kuscia ``pkg/controllers/kusciajob``): a phase → handler table.

One pass: act on a pending stage command (:mod:`.stages`), then run the handler of the job's
phase — and of the next phase when a handler moved it, so a valid job goes ``initialized`` →
``Pending`` → ``Running`` and creates its first tasks in one reconcile. Handlers edit a copy of
the status; it is written (PUT ``/status`` with the cached resourceVersion) only if it changed,
then the handled stage command is remembered and Events are recorded.

* **initialized** — :mod:`.initialize`: default task IDs and Kuscia's annotations (one spec
  update), validation (``Failed``/``ValidateFailed`` naming the culprit), ``stageStatus`` and
  ``approveStatus``, then ``AwaitingApproval`` (``enableWorkloadApprove``, or parties of other
  clusters) or ``Pending``;
* **AwaitingApproval** — every party ``JobAccepted`` in ``status.approveStatus`` → ``Pending``;
  any ``JobRejected`` → ``ApprovalReject``;
* **Pending** — every own party created → ``Running``;
* **Running** — the DAG (:func:`.phases.decide`): create ready tasks within ``maxParallelism``,
  finish the job, and carry a failed task's message (which names the party and the reason) to
  ``status.message`` and a Warning Event on the job;
* **Failed / Suspended / Cancelled** — stop unfinished tasks; **Succeeded / ApprovalReject** —
  stamp ``completionTime``.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from atoll.api import errors
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.constants import CROSS_DOMAIN_NAMESPACE
from atoll.api.timestamps import format_time
from atoll.client import Client
from atoll.controllers.kusciajob import constants as c
from atoll.controllers.kusciajob.actions import Actions
from atoll.controllers.kusciajob.dag import tasks_of
from atoll.controllers.kusciajob.initialize import Initializer
from atoll.controllers.kusciajob.phases import decide, failure_message
from atoll.controllers.kusciajob.stages import Command, pending_command, plan
from atoll.controllers.kusciajob.status import (
    event,
    set_condition,
    task_failure,
    task_phase,
)
from atoll.controllers.kusciajob.taskspec import kuscia_task
from atoll.controllers.kusciajob.work import Memory, Parties, Work
from atoll.runtime import Cache, ObjectKey, Result, get_logger

JSON = dict[str, Any]
log = get_logger(__name__)
DONE = frozenset({c.SUCCEEDED, c.CANCELLED, c.APPROVAL_REJECT})
"""Phases that need no more work once ``completionTime`` is set (Kuscia's terminal check)."""
RESTART_POLL = 0.5
CONFLICT_RETRY = 0.1


@dataclass(slots=True)
class Caches:
    jobs: Cache
    tasks: Cache
    domains: Cache
    appimages: Cache


class JobReconciler:
    def __init__(
        self,
        client: Client,
        caches: Caches,
        *,
        enable_workload_approve: bool = False,
        clock: Clock = SYSTEM_CLOCK,
        name: str = "kusciajob",
    ) -> None:
        self.client = client
        self.c = caches
        self.clock = clock
        self.actions = Actions(client, name)
        self.parties = Parties(caches.domains)
        self.initializer = Initializer(
            client, self.actions, self.parties, caches.appimages, enable_workload_approve=enable_workload_approve
        )
        self._memory: dict[ObjectKey, Memory] = {}
        self._handlers: dict[str, Callable[[Work], Awaitable[None]]] = {
            c.INITIALIZED: self.initializer.initialize,
            c.AWAITING_APPROVAL: self._awaiting_approval,
            c.PENDING: self._pending,
            c.RUNNING: self._running,
            c.FAILED: self._stopped,
            c.SUSPENDED: self._stopped,
            c.CANCELLED: self._stopped,
            c.SUCCEEDED: self._done,
            c.APPROVAL_REJECT: self._done,
        }

    async def reconcile(self, key: ObjectKey) -> Result:
        try:
            return await self._reconcile(key)
        except errors.Conflict:
            # our own writes (status, then the stage annotation) race the cache: read again shortly
            log.debug("job %s changed while reconciling; retrying", key)
            return Result(requeue_after=CONFLICT_RETRY)

    async def _reconcile(self, key: ObjectKey) -> Result:
        job = self.c.jobs.get(key.name, key.namespace)
        if job is None or job["metadata"].get("deletionTimestamp") or key.namespace != CROSS_DOMAIN_NAMESPACE:
            self._memory.pop(key, None)
            return Result()
        current = job.get("status") or {}
        if current.get("phase") in DONE and current.get("completionTime"):
            self._memory.pop(key, None)
            return Result()
        uid = str(job["metadata"].get("uid", ""))
        memory = self._memory.get(key)
        if memory is None or memory.uid != uid:  # a new job under a reused name starts afresh
            memory = self._memory[key] = Memory(uid)
        work = Work(job, copy.deepcopy(current), format_time(self.clock.now()), memory)
        if work.phase == c.INITIALIZED and await self.initializer.prepare(job):
            return Result()  # the spec/annotation update brings the job back
        work.command = pending_command(job)
        if work.command is not None and not await self._stage(work, work.command):
            return Result(requeue_after=RESTART_POLL)  # waiting for deleted tasks to disappear
        for _ in range(4):  # follow phase changes made by the handlers
            phase = work.phase
            handler = self._handlers.get(phase)
            if handler is None:
                log.warning("unknown phase %r; leaving the job alone", phase)
                break
            await handler(work)
            if work.phase == phase:
                break
        await self._commit(work, current)
        return Result()

    async def _commit(self, work: Work, current: JSON) -> None:
        if work.status != current:
            work.status.setdefault("startTime", work.now)
            work.status["lastReconcileTime"] = work.now
            await self.actions.write_status(work.job, work.status)
        if work.command is not None:
            await self.actions.annotate(work.job, {c.ANN_STAGE_HANDLED: work.command.token})
        for key, kind, reason, message in work.events:
            said = f"{kind}/{reason}/{message}"  # a job failing with its task's message says it once
            if key not in work.memory.recorded and said not in work.memory.recorded:
                await self.actions.record(event(work.job, key, reason, message, work.now, kind))
                work.memory.recorded.update((key, said))

    # -- helpers --------------------------------------------------------------------------------

    def _job_tasks(self, work: Work) -> dict[str, JSON]:
        """The job's KusciaTasks in the cache, by name (= task ID)."""
        return {t["metadata"]["name"]: t for t in self.c.tasks.by_label(c.LABEL_JOB_UID, work.uid)}

    # -- AwaitingApproval / Pending -------------------------------------------------------------

    async def _awaiting_approval(self, work: Work) -> None:
        approve = work.status.get("approveStatus") or {}
        parties = self.parties.all(work.job)
        rejected = [d for d in parties if approve.get(d) == c.JOB_REJECTED]
        if rejected:
            reason = f"Party: {rejected[0]} approval reject."  # Kuscia's reason (also the message here)
            work.finish(c.APPROVAL_REJECT, reason, reason)
            work.events.append(("approval-reject", "Warning", "ApprovalReject", f"{rejected[0]} rejected the job"))
        elif all(approve.get(d) == c.JOB_ACCEPTED for d in parties):
            work.status["phase"] = c.PENDING

    async def _pending(self, work: Work) -> None:
        stages = work.status.get("stageStatus") or {}
        own = self.parties.own(work.job)
        failed = [d for d in own if stages.get(d) == c.CREATE_STAGE_FAILED]
        if failed:
            work.finish(c.FAILED, "CreateStageFailed", f"Party: {failed[0]} failed to create the job.")
        elif all(stages.get(d) in (c.CREATE_STAGE_SUCCEEDED, c.START_STAGE_SUCCEEDED) for d in own):
            set_condition(work.status, c.COND_START_SUCCEEDED, True, work.now)
            work.status["phase"] = c.RUNNING

    # -- Running --------------------------------------------------------------------------------

    async def _running(self, work: Work) -> None:
        spec = work.spec
        tasks = tasks_of(work.job)
        observed = self._job_tasks(work)
        expected = work.memory.expected
        expected -= observed.keys()
        ids = {t.task_id for t in tasks}
        phases = {tid: task_phase(obj) for tid, obj in observed.items() if tid in ids}
        phases.update({tid: c.TASK_PENDING for tid in expected if tid not in phases})
        messages = {tid: task_failure(observed[tid]) for tid, p in phases.items() if p == c.TASK_FAILED}
        for task in tasks:
            if phases.get(task.task_id) == c.TASK_FAILED:
                uid = observed[task.task_id]["metadata"].get("uid", "")
                work.events.append((f"task/{uid}", "Warning", c.REASON_TASK_FAILED, failure_message(task, messages)))
        work.status["taskStatus"] = dict(phases)
        decision = decide(
            tasks,
            phases,
            messages,
            mode=str(spec.get("scheduleMode") or c.STRICT),
            max_parallelism=int(spec.get("maxParallelism") or 1),
        )
        if decision.phase != c.RUNNING:
            work.finish(decision.phase, decision.reason, decision.message)  # Failed: the next handler stops tasks
            return
        for task in decision.to_create:
            image = self.c.appimages.get(str(task.template.get("appImage") or ""))
            created = await self.actions.create_task(kuscia_task(work.job, task, image), work.uid)
            create_status = dict(work.status.get("partyTaskCreateStatus") or {})
            create_status[task.task_id] = _party_create_status(task.template, created.ok, created.message)
            work.status["partyTaskCreateStatus"] = create_status
            if not created.ok:
                work.finish(c.FAILED, c.REASON_CREATE_TASK_FAILED, created.message)
                return
            expected.add(task.task_id)
            work.status["taskStatus"][task.task_id] = c.TASK_PENDING

    # -- stopped and finished -------------------------------------------------------------------

    async def _stop_tasks(self, work: Work) -> None:
        for task in self._job_tasks(work).values():
            await self.actions.stop_task(task, work.now)
        statuses = dict(work.status.get("taskStatus") or {})
        for tid, phase in statuses.items():
            if phase not in c.TASK_FINISHED:
                statuses[tid] = c.TASK_FAILED
        if statuses:
            work.status["taskStatus"] = statuses

    async def _stopped(self, work: Work) -> None:
        """Failed, Suspended, Cancelled: no task may keep running (including ones created late)."""
        await self._stop_tasks(work)
        if work.phase != c.SUSPENDED:
            work.status.setdefault("completionTime", work.now)

    async def _done(self, work: Work) -> None:
        work.status.setdefault("completionTime", work.now)

    # -- stage commands -------------------------------------------------------------------------

    async def _stage(self, work: Work, command: Command) -> bool:
        """Act on ``command``; False while a restart waits for its deleted tasks to disappear."""
        initiator = str(work.spec.get("initiator") or "")
        p = plan(command, work.status, initiator)
        if p.restart:
            rerun = [t for t in self._job_tasks(work).values() if task_phase(t) != c.TASK_SUCCEEDED]
            if rerun:
                for task in rerun:
                    await self.actions.delete_task(task)
                return False
            work.memory.expected.clear()
            succeeded = {tid for tid, ph in (work.status.get("taskStatus") or {}).items() if ph == c.TASK_SUCCEEDED}
            work.status["taskStatus"] = dict.fromkeys(sorted(succeeded), c.TASK_SUCCEEDED)
            created = work.status.get("partyTaskCreateStatus") or {}
            work.status["partyTaskCreateStatus"] = {k: v for k, v in created.items() if k in succeeded}
            for key in ("completionTime", "reason", "message"):
                work.status.pop(key, None)
        if p.phase is not None:
            work.status["phase"] = p.phase
            if not p.restart:
                work.status["reason"] = p.message
                work.status["message"] = p.message
                if p.phase != c.SUSPENDED:
                    work.status.setdefault("completionTime", work.now)
            set_condition(work.status, c.COND_STOP_SUCCEEDED, p.stop_tasks, work.now, command.stage)
        if p.stage_status is not None:
            self.parties.set_stage_status(work, p.stage_status)
        if p.phase is not None:
            work.events.append((f"stage/{command.token}", "Normal", f"Job{command.stage}", p.message))
        return True


def _party_create_status(template: JSON, ok: bool, message: str) -> list[JSON]:
    """``partyTaskCreateStatus[taskID]``: one entry per party of the task."""
    out = []
    for party in template.get("parties") or ():
        entry: JSON = {"domainID": party.get("domainID", ""), "role": party.get("role", "")}
        entry["phase"] = c.TASK_SUCCEEDED if ok else c.TASK_FAILED
        if message:
            entry["message"] = message
        out.append(entry)
    return out
