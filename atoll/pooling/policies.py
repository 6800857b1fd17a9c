"""ResourceLeasingPolicy status in the worker cluster (Kubeocean's ResourceLeasingPolicyReconciler).

Adds ``policy.kubeocean.io/finalizer``; validates (``Valid`` condition, ``ValidationPassed`` /
``ValidationError``); sets ``phase`` ``Active``/``Inactive`` (``Active`` condition with
``ActiveTimeWindow``/``InactiveTimeWindow``) or ``Failed``, ``activeTimeWindow`` and
``lastAppliedTime``; re-checks at the next window change; on deletion releases the finalizer
(the node controller, watching policies, recomputes every vnode). Only policies whose
``spec.cluster`` names this syncer's binding are touched.
"""

from __future__ import annotations

from typing import Any

from atoll.api.errors import NotFound
from atoll.api.timestamps import format_time
from atoll.pooling import constants as c
from atoll.pooling.conditions import same_conditions, set_condition
from atoll.pooling.context import SyncContext
from atoll.pooling.kinds import RESOURCELEASINGPOLICIES
from atoll.pooling.validation import policy_problem
from atoll.pooling.windows import in_windows, seconds_to_next_change
from atoll.runtime import ObjectKey, Result, WorkQueue

JSON = dict[str, Any]


class PolicyReconciler:
    def __init__(self, ctx: SyncContext, queue: WorkQueue[ObjectKey]) -> None:
        self.ctx = ctx
        self.queue = queue

    async def reconcile(self, key: ObjectKey) -> Result:
        ctx = self.ctx
        policy = ctx.policies.get(key.name)
        if policy is None or (policy.get("spec") or {}).get("cluster") != ctx.binding_name:
            return Result()
        md = policy["metadata"]
        finalizers = list(md.get("finalizers") or ())
        if md.get("deletionTimestamp"):
            if c.FINALIZER_POLICY in finalizers:
                await self._patch_meta(policy, [f for f in finalizers if f != c.FINALIZER_POLICY])
            return Result()
        if c.FINALIZER_POLICY not in finalizers:
            await self._patch_meta(policy, [*finalizers, c.FINALIZER_POLICY])
            return Result()
        now = ctx.clock.now()
        status = dict(policy.get("status") or {})
        conditions = list(status.get("conditions") or [])
        problem = policy_problem(policy)
        generation = int(md.get("generation") or 0)
        if problem:
            conditions = set_condition(conditions, "Valid", False, "ValidationError", problem, now, generation)
            phase, active = "Failed", False
        else:
            windows = (policy.get("spec") or {}).get("timeWindows")
            active = in_windows(windows, now, ctx.settings.time_zone)
            conditions = set_condition(conditions, "Valid", True, "ValidationPassed", "", now, generation)
            reason = "ActiveTimeWindow" if active else "InactiveTimeWindow"
            conditions = set_condition(conditions, "Active", active, reason, "", now, generation)
            phase = "Active" if active else "Inactive"
            change = seconds_to_next_change(windows, now, ctx.settings.time_zone)
            if change is not None:
                ctx.timers.after(self.queue, key, change)
        old = policy.get("status") or {}
        if (old.get("phase") != phase or old.get("activeTimeWindow") != active
                or not same_conditions(old.get("conditions") or [], conditions)):
            status.update(phase=phase, activeTimeWindow=active, conditions=conditions, lastAppliedTime=format_time(now))
            try:
                await ctx.worker.update(RESOURCELEASINGPOLICIES, {**policy, "status": status}, subresource="status")
            except NotFound:
                pass
        return Result(requeue_after=ctx.settings.resync)

    async def _patch_meta(self, policy: JSON, finalizers: list[str]) -> None:
        md = policy["metadata"]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": md["resourceVersion"]}}
        try:
            await self.ctx.worker.patch(RESOURCELEASINGPOLICIES, md["name"], patch)
        except NotFound:
            pass
