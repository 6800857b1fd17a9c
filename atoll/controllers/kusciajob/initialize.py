"""The ``initialized`` phase: prepare the job once, then validate it and decide the next phase.

``prepare`` writes (one spec update) what Kuscia's initiator writes: default task IDs into
``spec.tasks[].taskID`` and the annotations ``initiator``, ``self-cluster-as-initiator``,
``interconn-self-parties`` (own parties joined with ``_``) and ``interconn-kuscia-parties``
(partner parties). ``initialize`` validates (domains and app images looked up in the caches, and
through the API on a miss, since a Domain created just before the job may not be cached yet),
sets ``stageStatus``/``approveStatus`` of the parties and moves to ``AwaitingApproval`` or
``Pending``.
"""

from __future__ import annotations

import copy
from typing import Any

from atoll.api import errors, kinds
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.controllers.kusciajob import constants as c
from atoll.controllers.kusciajob.actions import Actions
from atoll.controllers.kusciajob.dag import tasks_of, validate
from atoll.controllers.kusciajob.status import set_condition
from atoll.controllers.kusciajob.work import Parties, Work
from atoll.runtime import Cache

JSON = dict[str, Any]
APPIMAGES = kinds.kind("kuscia.secretflow", "appimages")


class Initializer:
    def __init__(
        self, client: Client, actions: Actions, parties: Parties, appimages: Cache, *, enable_workload_approve: bool
    ) -> None:
        self.client = client
        self.actions = actions
        self.parties = parties
        self.appimages = appimages
        self.approve = enable_workload_approve

    def _annotations(self, job: JSON) -> dict[str, str]:
        initiator = str((job.get("spec") or {}).get("initiator") or "")
        parties = self.parties.all(job)
        partners = [d for d in parties if self.parties.is_partner(d)]
        wanted = {
            c.ANN_INITIATOR: initiator,
            c.ANN_SELF_CLUSTER_AS_INITIATOR: "false" if self.parties.is_partner(initiator) else "true",
            c.ANN_INTERCONN_SELF_PARTIES: "_".join(d for d in parties if d not in partners),
        }
        if partners:
            wanted[c.ANN_INTERCONN_KUSCIA_PARTIES] = "_".join(partners)
        return wanted

    async def prepare(self, job: JSON) -> bool:
        """Fill in default task IDs and Kuscia's job annotations (one update); True if written."""
        tasks = tasks_of(job)
        raw = list((job.get("spec") or {}).get("tasks") or ())
        missing_ids = [i for i, t in enumerate(raw) if not t.get("taskID") and tasks[i].alias]
        annotations = dict(job["metadata"].get("annotations") or {})
        wanted = self._annotations(job)
        if not missing_ids and all(annotations.get(k) == v for k, v in wanted.items()):
            return False
        updated = copy.deepcopy(job)
        updated["metadata"]["annotations"] = {**annotations, **wanted}
        for i in missing_ids:
            updated["spec"]["tasks"][i]["taskID"] = tasks[i].task_id
        updated.pop("status", None)
        await self.actions.update_job(updated)
        return True

    async def _exists(self, cache: Cache, rd: ResourceDef, names: set[str]) -> set[str]:
        """Which of ``names`` exist: the cache first, then the API for misses (the cache may lag)."""
        found = {n for n in names if cache.get(n) is not None}
        for name in names - found:
            try:
                await self.client.get(rd, name)
                found.add(name)
            except errors.NotFound:
                pass
        return found

    async def initialize(self, work: Work) -> None:
        job, spec = work.job, work.spec
        initiator = str(spec.get("initiator") or "")
        templates = spec.get("tasks") or ()
        domains = await self._exists(self.parties.domains, kinds.DOMAINS, {initiator, *self.parties.all(job)} - {""})
        images = {str(t.get("appImage")) for t in templates if t.get("appImage")}
        images = await self._exists(self.appimages, APPIMAGES, images)
        problem = validate(job, domain_exists=domains.__contains__, app_image_exists=images.__contains__)
        if problem:
            set_condition(work.status, c.COND_VALIDATED, False, work.now, c.REASON_VALIDATE_FAILED, problem)
            work.finish(c.FAILED, c.REASON_VALIDATE_FAILED, problem)
            return
        set_condition(work.status, c.COND_VALIDATED, True, work.now)
        own = self.parties.own(job)
        self.parties.set_stage_status(work, c.CREATE_STAGE_SUCCEEDED)
        approve = dict.fromkeys([initiator] if self.approve else own, c.JOB_ACCEPTED)
        work.status["approveStatus"] = {**approve, **(work.status.get("approveStatus") or {})}
        set_condition(work.status, c.COND_CREATE_SUCCEEDED, True, work.now)
        interconnected = len(own) < len(self.parties.all(job))
        work.status["phase"] = c.AWAITING_APPROVAL if self.approve or interconnected else c.PENDING
