"""The KusciaJob controller's writes to other objects: create, stop and delete KusciaTasks; Events.

Creation is idempotent (``AlreadyExists`` from a task of the *same* job is success; from another
job it is a name collision the caller reports). Stopping a task is what Kuscia does: its status
becomes ``Failed`` with reason ``KusciaJobStopped`` and its unfinished parties ``Failed`` too; the
KusciaTask controller then cleans up below it. Events are best effort: a failure to record one is
logged, never retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atoll.api import errors, kinds
from atoll.client import Client
from atoll.controllers.kusciajob.constants import (
    ANN_JOB_ID,
    LABEL_JOB_UID,
    REASON_JOB_STOPPED,
    TASK_FAILED,
    TASK_FINISHED,
)
from atoll.controllers.kusciajob.status import task_phase
from atoll.runtime import get_logger
from atoll.runtime.metrics import controller_writes_total

JSON = dict[str, Any]
log = get_logger(__name__)
KUSCIATASKS = kinds.kind("kuscia.secretflow", "kusciatasks")
KUSCIAJOBS = kinds.kind("kuscia.secretflow", "kusciajobs")
STOPPED_MESSAGE = "Job was stopped"


@dataclass(frozen=True, slots=True)
class Created:
    ok: bool
    message: str = ""


def stopped_parties(task: JSON) -> list[JSON]:
    """The task's ``partyTaskStatus`` with every unfinished (or missing) party ``Failed``."""
    current = list((task.get("status") or {}).get("partyTaskStatus") or ())
    out = [
        {**p, "phase": TASK_FAILED, "message": p.get("message") or STOPPED_MESSAGE}
        if p.get("phase") not in TASK_FINISHED
        else p
        for p in current
    ]
    seen = {(p.get("domainID"), p.get("role") or "") for p in current}
    for party in (task.get("spec") or {}).get("parties") or ():
        key = (party.get("domainID"), party.get("role") or "")
        if key not in seen:
            entry = {"domainID": party.get("domainID"), "phase": TASK_FAILED, "message": STOPPED_MESSAGE}
            if party.get("role"):
                entry["role"] = party["role"]
            out.append(entry)
    return out


class Actions:
    def __init__(self, client: Client, controller: str) -> None:
        self.client = client
        verbs = ("create", "update", "patch", "delete")
        self._count = {verb: controller_writes_total.labels(controller, verb) for verb in verbs}

    async def create_task(self, body: JSON, job_uid: str) -> Created:
        """Create one KusciaTask; ``ok=False`` with a message naming the problem otherwise."""
        name = body["metadata"]["name"]
        self._count["create"].inc()
        try:
            await self.client.create(KUSCIATASKS, body, body["metadata"]["namespace"])
            return Created(True)
        except errors.AlreadyExists:
            existing = await self.client.get(KUSCIATASKS, name, body["metadata"]["namespace"])
            meta = existing.get("metadata") or {}
            if (meta.get("labels") or {}).get(LABEL_JOB_UID) == job_uid:
                return Created(True)
            other = (meta.get("annotations") or {}).get(ANN_JOB_ID) or "another owner"
            return Created(False, f"task ID {name!r} is already used by a KusciaTask of {other}")
        except errors.Invalid as exc:
            return Created(False, f"KusciaTask {name!r} was refused: {exc.message}")

    async def stop_task(self, task: JSON, now: str) -> None:
        """Mark an unfinished task ``Failed`` (``KusciaJobStopped``), with ``completionTime`` so the
        KusciaTask controller finishes it (cleans up below it); every party not yet finished —
        including ones without a status entry — becomes ``Failed`` too, as Kuscia's stopTasks does."""
        if task_phase(task) in TASK_FINISHED:
            return
        meta = task["metadata"]
        status: JSON = {
            "phase": TASK_FAILED,
            "reason": REASON_JOB_STOPPED,
            "message": STOPPED_MESSAGE,
            "completionTime": now,
            "lastReconcileTime": now,
            "partyTaskStatus": stopped_parties(task),
        }
        self._count["patch"].inc()
        try:
            await self.client.patch(
                KUSCIATASKS, meta["name"], {"status": status}, meta["namespace"], subresource="status"
            )
        except errors.NotFound:
            pass

    async def delete_task(self, task: JSON) -> None:
        meta = task["metadata"]
        self._count["delete"].inc()
        try:
            await self.client.delete(
                KUSCIATASKS, meta["name"], meta["namespace"], preconditions={"uid": meta.get("uid")}
            )
        except (errors.NotFound, errors.Conflict):
            pass

    async def write_status(self, job: JSON, status: JSON) -> JSON:
        """PUT ``/status`` with the cached resourceVersion as precondition (409 → the queue retries)."""
        self._count["update"].inc()
        return await self.client.update(KUSCIAJOBS, {**job, "status": status}, subresource="status")

    async def update_job(self, job: JSON) -> JSON:
        self._count["update"].inc()
        return await self.client.update(KUSCIAJOBS, job)

    async def annotate(self, job: JSON, annotations: dict[str, str]) -> None:
        meta = job["metadata"]
        self._count["patch"].inc()
        await self.client.patch(KUSCIAJOBS, meta["name"], {"metadata": {"annotations": annotations}}, meta["namespace"])

    async def record(self, event: JSON) -> None:
        self._count["create"].inc()
        try:
            await self.client.create(kinds.EVENTS, event, event["metadata"]["namespace"])
        except errors.AlreadyExists:
            pass
        except errors.APIError as exc:
            log.warning("could not record event %s: %s", event.get("reason"), exc)
