"""Reconcile one CronJob (``pkg/controller/cronjob``, v2): track its Jobs (``status.active``,
``lastSuccessfulTime``), prune finished Jobs beyond the history limits, and when a scheduled time
has come (in ``spec.timeZone``) create its Job ``<name>-<minutes since the epoch>`` — unless the
time is older than ``startingDeadlineSeconds`` (missed), the CronJob is suspended, or
``concurrencyPolicy: Forbid`` finds a Job still running (``Replace`` deletes it first). The next
schedule is a wake-up on the injected clock."""

from __future__ import annotations

from typing import Any

from atoll.api.clock import Clock
from atoll.api.cron import ScheduleError, parse
from atoll.api.errors import AlreadyExists, NotFound
from atoll.api.kinds import CRONJOBS, JOBS
from atoll.api.podtemplates import controller_of, controller_ref
from atoll.api.timestamps import format_time, try_parse_time
from atoll.client import Client
from atoll.runtime import Cache, ObjectKey, Result, TerminalError
from atoll.runtime.events import EventRecorder
from atoll.runtime.wakeups import Wakeups

JSON = dict[str, Any]
SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def _finished(job: JSON) -> str:
    """``Complete``, ``Failed`` or '' (still running)."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return ""


def _ref(job: JSON) -> JSON:
    md = job["metadata"]
    return {"kind": "Job", "namespace": md["namespace"], "name": md["name"], "uid": md["uid"],
            "apiVersion": "batch/v1", "resourceVersion": md.get("resourceVersion", "")}


class CronJobReconciler:
    def __init__(self, client: Client, *, cronjobs: Cache, jobs: Cache, clock: Clock,
                 wakeups: Wakeups[ObjectKey]) -> None:
        self.client = client
        self.cronjobs = cronjobs
        self.jobs = jobs
        self.clock = clock
        self.wakeups = wakeups
        self.events = EventRecorder(client, "cronjob-controller")

    async def reconcile(self, key: ObjectKey) -> Result:
        cj = self.cronjobs.get_key(key)
        if cj is None or key.namespace is None or cj["metadata"].get("deletionTimestamp"):
            return Result()
        spec, now = cj.get("spec") or {}, self.clock.now()
        try:
            schedule = parse(str(spec.get("schedule") or ""), spec.get("timeZone"))
        except ScheduleError as exc:
            await self.events.record(cj, "Warning", "UnparseableSchedule", f"unparseable schedule: {exc}")
            raise TerminalError(f"cronjob {key}: {exc}") from None
        uid = cj["metadata"]["uid"]
        jobs = [j for j in self.jobs.list(key.namespace) if (controller_of(j) or {}).get("uid") == uid]
        active = [j for j in jobs if not _finished(j) and not j["metadata"].get("deletionTimestamp")]
        status = dict(cj.get("status") or {})
        await self._prune(cj, jobs)
        if not spec.get("suspend"):
            created = await self._run_due(key, cj, schedule, active, status, now)
            if created is not None:
                active.append(created)
        succeeded = [try_parse_time(str((j.get("status") or {}).get("completionTime") or "")) for j in jobs
                     if _finished(j) == "Complete"]
        times = [t for t in succeeded if t is not None]
        if times:
            status["lastSuccessfulTime"] = max(format_time(max(times)), str(status.get("lastSuccessfulTime") or ""))
        status["active"] = sorted((_ref(j) for j in active), key=lambda r: r["name"]) or None
        if status["active"] is None:
            status.pop("active")
        if status != (cj.get("status") or {}):
            md = cj["metadata"]
            try:
                await self.client.patch(CRONJOBS, md["name"], {"status": {**status, "active": status.get("active")}},
                                        md["namespace"], subresource="status")
            except NotFound:
                return Result()
        return Result()

    async def _run_due(self, key: ObjectKey, cj: JSON, schedule: Any, active: list[JSON], status: JSON,
                       now: float) -> JSON | None:
        spec, md = cj.get("spec") or {}, cj["metadata"]
        since = try_parse_time(str(status.get("lastScheduleTime") or md.get("creationTimestamp") or "")) or now
        due, _missed = schedule.last_due(since, now)
        upcoming = schedule.next_after(now)
        if upcoming is not None:
            self.wakeups.at(key, upcoming - now)
        if due is None:
            return None
        deadline = spec.get("startingDeadlineSeconds")
        if isinstance(deadline, int) and due + deadline < now:
            await self.events.record(cj, "Warning", "MissSchedule",
                                     f"Missed scheduled time to start a job: {format_time(due)}")
            return None
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            return None  # retried when the running Job finishes (its event requeues us)
        if policy == "Replace":
            for job in list(active):
                await self._delete(job)
                await self.events.record(cj, "Normal", "SuccessfulDelete", f"Deleted job {job['metadata']['name']}")
                active.remove(job)
        job = await self._create(cj, due)
        status["lastScheduleTime"] = format_time(due)
        return job

    async def _create(self, cj: JSON, due: float) -> JSON:
        template, md = (cj.get("spec") or {}).get("jobTemplate") or {}, cj["metadata"]
        tmd = template.get("metadata") or {}
        name = f"{md['name']}-{int(due // 60)}"
        body = {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": dict(tmd.get("labels") or {}),
                         "annotations": {**(tmd.get("annotations") or {}), SCHEDULED_AT: format_time(due)},
                         "ownerReferences": [controller_ref(cj)]},
            "spec": template.get("spec") or {},
        }
        try:
            job = await self.client.create(JOBS, body, md["namespace"])
        except AlreadyExists:
            existing = self.jobs.get(name, md["namespace"])
            return existing if existing is not None else await self.client.get(JOBS, name, md["namespace"])
        await self.events.record(cj, "Normal", "SuccessfulCreate", f"Created job {name}")
        return job

    async def _prune(self, cj: JSON, jobs: list[JSON]) -> None:
        spec = cj.get("spec") or {}
        for state, limit_field in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(limit_field)
            if not isinstance(limit, int):
                continue
            done = sorted((j for j in jobs if _finished(j) == state and not j["metadata"].get("deletionTimestamp")),
                          key=lambda j: str((j.get("status") or {}).get("startTime")
                                            or j["metadata"].get("creationTimestamp") or ""))
            for job in done[: max(len(done) - limit, 0)]:
                await self._delete(job)
                await self.events.record(cj, "Normal", "SawCompletedJob" if state == "Complete" else "SuccessfulDelete",
                                         f"Deleted job {job['metadata']['name']}")

    async def _delete(self, job: JSON) -> None:
        md = job["metadata"]
        try:
            await self.client.delete(JOBS, md["name"], md["namespace"], propagation_policy="Background")
        except NotFound:
            pass
