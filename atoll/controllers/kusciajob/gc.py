"""KusciaJob garbage collection (Kuscia §2.9): finished jobs are deleted ``durationHours`` after
they completed (``garbageCollection.kusciaJobGC.durationHours`` in the node config, default 720 h).

Level-based instead of Kuscia's 10-minute scan: each finished job is reconciled once and requeued
for the moment it expires (re-checked at least every ``scan_period`` seconds, so a clock that jumps
— or the injected clock of a test — is honoured). Deletion uses background propagation, so the
garbage collector removes the job's KusciaTasks (and what they own) after it.
"""

from __future__ import annotations

from atoll.api import errors, kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.timestamps import try_parse_time
from atoll.client import Client
from atoll.controllers.kusciajob.constants import FINISHED_PHASES
from atoll.runtime import Cache, ObjectKey, Result, get_logger
from atoll.runtime.metrics import controller_writes_total

log = get_logger(__name__)
KUSCIAJOBS = kinds.kind("kuscia.secretflow", "kusciajobs")
DEFAULT_DURATION_HOURS = 720.0
SCAN_PERIOD = 600.0
"""Kuscia scans every 10 minutes; here it bounds how long a requeue waits."""


class JobGarbageCollector:
    def __init__(
        self,
        client: Client,
        jobs: Cache,
        *,
        duration_hours: float = DEFAULT_DURATION_HOURS,
        clock: Clock = SYSTEM_CLOCK,
        scan_period: float = SCAN_PERIOD,
        name: str = "kusciajob-gc",
    ) -> None:
        self.client = client
        self.jobs = jobs
        self.duration = duration_hours * 3600.0
        self.clock = clock
        self.scan_period = scan_period
        self._deletes = controller_writes_total.labels(name, "delete")

    async def reconcile(self, key: ObjectKey) -> Result:
        job = self.jobs.get(key.name, key.namespace)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return Result()
        status = job.get("status") or {}
        completed = try_parse_time(str(status.get("completionTime") or ""))
        if status.get("phase") not in FINISHED_PHASES or completed is None:
            return Result()
        left = completed + self.duration - self.clock.now()
        if left > 0:
            return Result(requeue_after=min(left, self.scan_period))
        log.info("deleting KusciaJob %s: finished at %s, over %.0f s ago", key, status["completionTime"], self.duration)
        self._deletes.inc()
        try:
            await self.client.delete(
                KUSCIAJOBS,
                key.name,
                key.namespace,
                propagation_policy="Background",
                preconditions={"uid": job["metadata"].get("uid")},
            )
        except (errors.NotFound, errors.Conflict):
            pass
        return Result()
