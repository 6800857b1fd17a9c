"""Reconcile one Job (``pkg/controller/job``): keep ``min(parallelism, completions - done)`` pods
running (Indexed mode: one pod per pending completion index, with ``JOB_COMPLETION_INDEX``),
wait out the exponential pod-failure backoff (10 s doubling, at most 6 min) before replacing a
failed pod, fail the Job past ``backoffLimit`` or ``activeDeadlineSeconds`` (``FailureTarget``
at once, ``Failed`` once its pods are gone), complete it when enough pods succeeded, stop and
resume its pods with ``suspend``, and delete it ``ttlSecondsAfterFinished`` after it finished.
All timers run on the injected clock (:class:`atoll.runtime.wakeups.Wakeups`).

Unlike upstream, succeeded/failed pods are counted from the pods the Job still owns (kept as
high-water marks in ``status``), without the ``batch.kubernetes.io/job-tracking`` finalizer.
"""

from __future__ import annotations

from typing import Any

from atoll.api.clock import Clock
from atoll.api.errors import NotFound
from atoll.api.kinds import JOBS
from atoll.api.podtemplates import (
    controller_of,
    is_active,
    is_finished,
    is_ready,
    is_terminating,
    pod_from_template,
    random_suffix,
)
from atoll.api.timestamps import format_time, try_parse_time
from atoll.client import Client
from atoll.controllers.job import plan
from atoll.runtime import Cache, ObjectKey, Result
from atoll.runtime.podcontrol import PodControl
from atoll.runtime.wakeups import Wakeups

JSON = dict[str, Any]


def condition(conditions: list[JSON], kind: str, status: str, reason: str, message: str, now: float) -> list[JSON]:
    current = next((c for c in conditions if c.get("type") == kind), None)
    if current is not None and current.get("status") == status and current.get("reason") == reason:
        return conditions
    stamp = format_time(now)
    new = {"type": kind, "status": status, "lastProbeTime": stamp, "lastTransitionTime": stamp,
           "reason": reason, "message": message}
    return [c for c in conditions if c.get("type") != kind] + [new]


def is_true(status: JSON, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or [])


def finished_time(status: JSON) -> float | None:
    for c in status.get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return try_parse_time(str(c.get("lastTransitionTime") or ""))
    return None


class JobReconciler:
    def __init__(self, client: Client, *, jobs: Cache, pods: Cache, control: PodControl, clock: Clock,
                 wakeups: Wakeups[ObjectKey], backoff_base: float = plan.BACKOFF_BASE) -> None:
        self.client = client
        self.jobs = jobs
        self.pods = pods
        self.control = control
        self.clock = clock
        self.wakeups = wakeups
        self.backoff_base = backoff_base

    async def reconcile(self, key: ObjectKey) -> Result:
        job = self.jobs.get_key(key)
        if job is None or key.namespace is None:
            self.control.expect.forget(key)
            return Result()
        status = job.get("status") or {}
        if is_true(status, "Complete") or is_true(status, "Failed"):
            await self._expire(key, job)
            return Result()
        if job["metadata"].get("deletionTimestamp"):
            return Result()
        uid = job["metadata"]["uid"]
        pods = [p for p in self.pods.list(key.namespace) if (controller_of(p) or {}).get("uid") == uid]
        new_status = await self._sync(key, job, pods)
        if new_status != status:
            md = job["metadata"]
            try:
                await self.client.patch(JOBS, md["name"], {"status": new_status}, md["namespace"],
                                        subresource="status")
            except NotFound:
                return Result()
            if finished_time(new_status) is not None:
                reason = "Completed" if is_true(new_status, "Complete") else "BackoffLimitExceeded"
                kind = "Normal" if reason == "Completed" else "Warning"
                failed = next((c for c in new_status["conditions"] if c["type"] == "Failed"), None)
                message = "Job completed" if failed is None else str(failed["message"])
                await self.control.events.record(job, kind, reason if failed is None else failed["reason"], message)
                job = {**job, "status": new_status}
                await self._expire(key, job)
        return Result()

    async def _sync(self, key: ObjectKey, job: JSON, pods: list[JSON]) -> JSON:
        spec, status, now = job.get("spec") or {}, dict(job.get("status") or {}), self.clock.now()
        active = [p for p in pods if is_active(p)]
        terminating = [p for p in pods if is_terminating(p) and not is_finished(p)]
        done = [p for p in pods if plan.phase(p) == "Succeeded"]
        failed_pods = [p for p in pods if plan.phase(p) == "Failed"]
        indexed = spec.get("completionMode") == "Indexed"
        completed = plan.parse_indexes(str(status.get("completedIndexes") or "")) if indexed else set()
        completed |= {i for p in done if (i := plan.pod_index(p)) is not None} if indexed else set()
        counts = plan.Counts(max(int(status.get("succeeded") or 0), len(done)),
                             max(int(status.get("failed") or 0), len(failed_pods)), frozenset(completed))
        conditions = list(status.get("conditions") or [])
        if spec.get("suspend"):
            await self.control.delete_many(key, job, active)
            active = []
            conditions = condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", now)
            status.pop("startTime", None)
        else:
            if is_true(status, "Suspended"):
                conditions = condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", now)
            status.setdefault("startTime", format_time(now))
            conditions, active = await self._step(key, job, conditions, counts, active, terminating, failed_pods)
        status.update(active=len(active), ready=sum(1 for p in active if is_ready(p)), terminating=len(terminating),
                      succeeded=counts.succeeded, failed=counts.failed, conditions=conditions)
        if indexed:
            status["completedIndexes"] = plan.format_indexes(completed)
        if is_true(status, "Complete"):
            status["completionTime"] = format_time(now)
        for fld in ("active", "ready", "terminating", "succeeded", "failed"):
            if not status[fld] and fld not in (job.get("status") or {}):
                status.pop(fld)
        if not conditions:
            status.pop("conditions")
        return status

    async def _step(self, key: ObjectKey, job: JSON, conditions: list[JSON], counts: plan.Counts,
                    active: list[JSON], terminating: list[JSON], failed_pods: list[JSON]
                    ) -> tuple[list[JSON], list[JSON]]:
        spec, now = job.get("spec") or {}, self.clock.now()
        start = try_parse_time(str((job.get("status") or {}).get("startTime") or "")) or now
        deadline = spec.get("activeDeadlineSeconds")
        failure = None
        if plan.failures_for_backoff(spec, counts, active) > int(spec.get("backoffLimit") or 0):
            failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif isinstance(deadline, int) and start + deadline <= now:
            failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
        if failure is not None or plan.succeeded(spec, counts, len(active)):
            await self.control.delete_many(key, job, active)
            if failure is not None:
                conditions = condition(conditions, "FailureTarget", "True", *failure, now)
                if not active and not terminating:
                    conditions = condition(conditions, "Failed", "True", *failure, now)
            elif not active and not terminating:
                message = "Reached expected number of succeeded pods"
                conditions = condition(conditions, "SuccessCriteriaMet", "True", "CompletionsReached", message, now)
                conditions = condition(conditions, "Complete", "True", "CompletionsReached", message, now)
            return conditions, []
        if isinstance(deadline, int):
            self.wakeups.at(key, start + deadline - now)
        await self._scale(key, job, counts, active, failed_pods, now)
        return conditions, active

    async def _scale(self, key: ObjectKey, job: JSON, counts: plan.Counts, active: list[JSON],
                     failed_pods: list[JSON], now: float) -> None:
        spec = job.get("spec") or {}
        names = {p["metadata"]["name"] for p in self.pods.list(key.namespace)}
        creating = self.control.expect.pending_creates(key, names)
        deleting = self.control.expect.pending_deletes(key, {p["metadata"]["name"] for p in active})
        live = [p for p in active if p["metadata"]["name"] not in deleting]
        want = plan.wanted_active(spec, counts)
        if len(live) + len(creating) > want:
            extra = len(live) + len(creating) - want
            victims = sorted(live, key=lambda p: str(p["metadata"].get("creationTimestamp")), reverse=True)
            await self.control.delete_many(key, job, victims[:extra])
            return
        missing = want - len(live) - len(creating)
        if missing <= 0 or creating:
            return
        wait = plan.backoff_remaining(failed_pods, self.backoff_base, now)
        if wait > 0:
            self.wakeups.at(key, wait)
            return
        await self.control.create_many(key, job, self._new_pods(job, counts, live, missing))

    def _new_pods(self, job: JSON, counts: plan.Counts, live: list[JSON], missing: int) -> list[JSON]:
        spec, name = job.get("spec") or {}, job["metadata"]["name"]
        template = spec.get("template") or {}
        if spec.get("completionMode") != "Indexed":
            return [pod_from_template(template, job, f"{name}-{random_suffix()}") for _ in range(missing)]
        pods = []
        for index in plan.pending_indexes(spec, counts, live)[:missing]:
            marks = {plan.INDEX_KEY: str(index)}
            pod = pod_from_template(template, job, f"{name}-{index}-{random_suffix()}", extra_labels=marks,
                                    extra_annotations=marks)
            pod_spec = pod["spec"] = dict(pod["spec"])
            pod_spec.setdefault("hostname", f"{name}-{index}")
            pod_spec["containers"] = [
                {**c, "env": [*(c.get("env") or []), {"name": "JOB_COMPLETION_INDEX", "value": str(index)}]}
                for c in pod_spec.get("containers") or []
            ]
            pods.append(pod)
        return pods

    async def _expire(self, key: ObjectKey, job: JSON) -> None:
        """``ttlSecondsAfterFinished``: delete a finished Job (and, in the background, its pods)."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        finished = finished_time(job.get("status") or {})
        if not isinstance(ttl, int) or finished is None or job["metadata"].get("deletionTimestamp"):
            return
        left = finished + ttl - self.clock.now()
        if left > 0:
            self.wakeups.at(key, left)
            return
        md = job["metadata"]
        try:
            await self.client.delete(JOBS, md["name"], md["namespace"], propagation_policy="Background",
                                     preconditions={"uid": md["uid"]})
        except NotFound:
            pass
