"""``POST pods/NAME/eviction`` (policy/v1 Eviction) honouring PodDisruptionBudgets, as
kube-apiserver's eviction REST does, so ``kubectl drain`` stops where a budget says so.

A pod that is finished, Pending or already being deleted is deleted without a budget check, as is
a pod no budget selects. A pod selected by more than one budget is refused (500, upstream's
wording). Otherwise the budget must have been processed (``observedGeneration``) and allow a
disruption: its ``status.disruptionsAllowed`` is decremented and the pod recorded in
``disruptedPods`` (one write with the budget's resourceVersion), then the pod is deleted with the
Eviction's ``deleteOptions``. A concurrent eviction that changed the budget first (a conflict) makes
the check run again on the budget as it is now, a few times, as upstream's ``EvictionsRetry`` does;
only then is the eviction refused. A refusal is ``429 TooManyRequests`` with a
``DisruptionBudget`` cause; kubectl retries it. An unready pod may go when the budget is already met
(``unhealthyPodEvictionPolicy: IfHealthyBudget``, the default) or always (``AlwaysAllow``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atoll.api import errors
from atoll.api.kinds import PODDISRUPTIONBUDGETS
from atoll.api.selectors import label_selector_from_spec
from atoll.api.timestamps import format_time
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.apiserver.registry.subresources import Reply, StatusReply, SubresourceCall, method_not_allowed, require_body

if TYPE_CHECKING:
    from atoll.apiserver.registry.storage import ResourceStorage

JSON = dict[str, Any]
CREATED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."
SPEND_ATTEMPTS = 5


def _refused(detail: str) -> errors.TooManyRequests:
    return errors.TooManyRequests(REFUSED, details={"causes": [{"reason": "DisruptionBudget", "message": detail}]})


def _ready(pod: JSON) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def budgets_for(cache: WatchCache, pod: JSON) -> list[JSON]:
    md = pod["metadata"]
    labels = md.get("labels") or {}
    out = []
    for cached in cache.list(PODDISRUPTIONBUDGETS.key_prefix(md.get("namespace"))):
        pdb = cached.obj
        try:
            selector = label_selector_from_spec((pdb.get("spec") or {}).get("selector"))
        except errors.BadRequest:
            continue
        if selector.matches(labels):
            out.append(pdb)
    return out


@dataclass(frozen=True, slots=True)
class BudgetedEviction:
    cache: WatchCache
    verbs: tuple[str, ...] = ("create",)
    response_kind: tuple[str, str, str] | None = ("policy", "v1", "Eviction")
    generic_methods: frozenset[str] = frozenset()

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        if call.method != "POST":
            raise method_not_allowed(call)
        body = require_body(call)
        named = (body.get("metadata") or {}).get("name")
        if named and named != call.name:
            raise errors.BadRequest(f"name in URL does not match name in Eviction object ({named} != {call.name})")
        options = body.get("deleteOptions") or {}
        if not isinstance(options, dict):
            raise errors.BadRequest("deleteOptions must be an object")
        pod = (await storage.current(call.rd, call.namespace, call.name)).obj
        if not self._exempt(pod):
            budgets = budgets_for(self.cache, pod)
            if len(budgets) > 1:
                raise errors.InternalError("This pod has more than one PodDisruptionBudget, which the eviction "
                                           "subresource does not support.")
            if budgets:
                await self._spend_retrying(storage, call, pod, budgets[0])
        await storage.delete(call.rd, call.namespace, call.name, options, call.opts)
        return StatusReply(CREATED, 201)

    @staticmethod
    def _exempt(pod: JSON) -> bool:
        phase = (pod.get("status") or {}).get("phase")
        return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))

    async def _spend_retrying(self, storage: ResourceStorage, call: SubresourceCall, pod: JSON, pdb: JSON) -> None:
        name = pdb["metadata"]["name"]
        for _ in range(SPEND_ATTEMPTS - 1):
            try:
                await self._spend(storage, call, pod, pdb)
                return
            except errors.Conflict:  # another eviction spent first: look again at the budget as stored now
                await storage.cache.wait_for(await storage.store.current_revision())
                pdb = (await storage.current(PODDISRUPTIONBUDGETS, call.namespace, name)).obj
        try:
            await self._spend(storage, call, pod, pdb)
        except errors.Conflict:
            raise _refused(f"The disruption budget {name} changed; try again") from None

    async def _spend(self, storage: ResourceStorage, call: SubresourceCall, pod: JSON, pdb: JSON) -> None:
        name, status = pdb["metadata"]["name"], pdb.get("status") or {}
        if int(status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation") or 1):
            raise _refused(f"The disruption budget {name} is still being processed by the server.")
        healthy, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
        if not _ready(pod):
            policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
            if policy == "AlwaysAllow" or healthy >= desired:
                return
        if int(status.get("disruptionsAllowed") or 0) <= 0:
            raise _refused(f"The disruption budget {name} needs {desired} healthy pods and has {healthy} currently")
        seen = pdb["metadata"]["resourceVersion"]
        now = format_time(storage.clock.now())

        def spend(current: JSON) -> JSON:
            if current["metadata"]["resourceVersion"] != seen:
                raise errors.Conflict(f"The disruption budget {name} changed")
            st = dict(current.get("status") or {})
            st["disruptionsAllowed"] = int(st.get("disruptionsAllowed") or 0) - 1
            st["disruptedPods"] = {**(st.get("disruptedPods") or {}), pod["metadata"]["name"]: now}
            return {**current, "status": st}

        await storage.modify(PODDISRUPTIONBUDGETS, call.namespace, name, spend, call.opts, subresource="status",
                             pinned=True)
