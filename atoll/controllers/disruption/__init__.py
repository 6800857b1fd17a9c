"""Disruption controller (kube-controller-manager's ``disruption``): the status of every
PodDisruptionBudget — ``expectedPods``, ``currentHealthy`` (ready pods it selects, not counting
pods just evicted), ``desiredHealthy`` (from ``minAvailable`` or ``maxUnavailable``, percentages
of the owning ReplicaSets' scale rounded up), ``disruptionsAllowed`` and the
``DisruptionAllowed`` condition — which the pods/eviction subresource spends. Evictions recorded
in ``disruptedPods`` are forgotten when the pod is gone or after 2 minutes (injected clock)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import BadRequest, NotFound
from atoll.api.kinds import PODDISRUPTIONBUDGETS, PODS, REPLICASETS
from atoll.api.podtemplates import controller_of, is_ready
from atoll.api.selectors import label_selector_from_spec
from atoll.api.timestamps import format_time, try_parse_time
from atoll.client import Client
from atoll.controllers import ControllerContext
from atoll.runtime import Cache, Controller, Manager, ObjectKey, Result
from atoll.runtime.keys import Gated, Mapper, key_of, namespace_of
from atoll.runtime.wakeups import Wakeups

NAME = "disruption"
JSON = dict[str, Any]
DELETION_TIMEOUT = 120.0


def scaled(value: Any, total: int) -> int:
    text = str(value)
    if text.endswith("%"):
        return -(-int(text[:-1]) * total // 100)  # rounded up
    return int(text)


class DisruptionReconciler:
    def __init__(self, client: Client, *, pdbs: Cache, pods: Cache, replicasets: Cache, clock: Clock,
                 wakeups: Wakeups[ObjectKey]) -> None:
        self.client, self.pdbs, self.pods, self.replicasets = client, pdbs, pods, replicasets
        self.clock, self.wakeups = clock, wakeups

    async def reconcile(self, key: ObjectKey) -> Result:
        pdb = self.pdbs.get_key(key)
        if pdb is None or key.namespace is None:
            return Result()
        spec, old = pdb.get("spec") or {}, pdb.get("status") or {}
        try:
            selector = label_selector_from_spec(spec.get("selector"))
        except BadRequest:
            return Result()
        pods = [p for p in self.pods.list(key.namespace)
                if selector.matches(p["metadata"].get("labels") or {}) and not p["metadata"].get("deletionTimestamp")]
        now = self.clock.now()
        disrupted = self._still_disrupted(key, old.get("disruptedPods") or {}, {p["metadata"]["name"] for p in pods},
                                          now)
        healthy = sum(1 for p in pods if is_ready(p) and p["metadata"]["name"] not in disrupted)
        expected, desired = self._budget(spec, pods)
        allowed = max(healthy - desired, 0)
        status: JSON = {**old, "observedGeneration": int(pdb["metadata"].get("generation") or 1),
                        "disruptedPods": disrupted or None, "currentHealthy": healthy, "desiredHealthy": desired,
                        "expectedPods": expected, "disruptionsAllowed": allowed}
        reason, message = ("SufficientPods", "") if allowed > 0 else ("InsufficientPods", "")
        cond = {"type": "DisruptionAllowed", "status": "True" if allowed > 0 else "False", "reason": reason,
                "message": message, "observedGeneration": status["observedGeneration"]}
        current = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
        same = current is not None and current.get("status") == cond["status"]
        cond["lastTransitionTime"] = current["lastTransitionTime"] if same and current else format_time(now)
        status["conditions"] = [cond]
        if status.get("disruptedPods") is None:
            status.pop("disruptedPods")
        if status != old:
            md = pdb["metadata"]
            patch = {"status": {**status, "disruptedPods": status.get("disruptedPods")}}
            try:
                await self.client.patch(PODDISRUPTIONBUDGETS, md["name"], patch, md["namespace"],
                                        subresource="status")
            except NotFound:
                pass
        return Result()

    def _still_disrupted(self, key: ObjectKey, recorded: JSON, present: set[str], now: float) -> JSON:
        out = {}
        for name, stamp in recorded.items():
            at = try_parse_time(str(stamp)) or now
            if name in present and at + DELETION_TIMEOUT > now:
                out[name] = stamp
                self.wakeups.at(key, at + DELETION_TIMEOUT - now)
        return out

    def _budget(self, spec: JSON, pods: list[JSON]) -> tuple[int, int]:
        """(expectedPods, desiredHealthy)."""
        min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
        if isinstance(min_available, int) and not isinstance(min_available, bool):
            return len(pods), min_available
        expected = self._expected(pods)
        if max_unavailable is not None:
            return expected, max(expected - scaled(max_unavailable, expected), 0)
        if min_available is not None:
            return expected, scaled(min_available, expected)
        return expected, expected

    def _expected(self, pods: list[JSON]) -> int:
        """Pods the budget's pods' controllers want (ReplicaSet scale), other pods counted once."""
        scales: dict[str, int] = {}
        loose = 0
        for pod in pods:
            ref = controller_of(pod)
            rs = self.replicasets.get(str(ref.get("name")), pod["metadata"]["namespace"]) if (
                ref is not None and ref.get("kind") == "ReplicaSet") else None
            if rs is not None:
                scales[rs["metadata"]["uid"]] = int((rs.get("spec") or {}).get("replicas") or 0)
            else:
                loose += 1
        return sum(scales.values()) + loose


def setup(manager: Manager, ctx: ControllerContext, *, clock: Clock = SYSTEM_CLOCK) -> None:
    pdbs = manager.informer(PODDISRUPTIONBUDGETS)
    pods = manager.informer(PODS)
    replicasets = manager.informer(REPLICASETS)
    wakeups: Wakeups[ObjectKey] = Wakeups(clock)
    reconciler = DisruptionReconciler(ctx.client, pdbs=pdbs.cache, pods=pods.cache, replicasets=replicasets.cache,
                                      clock=clock, wakeups=wakeups)
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    wakeups.enqueue = controller.queue.add
    controller.watch(pdbs)
    controller.watch(pods, _budgets_of(pdbs.cache))
    manager.add(controller)


def _budgets_of(pdbs: Cache) -> Mapper:
    def mapper(pod: JSON) -> Iterable[ObjectKey]:
        namespace, labels = key_of(pod).namespace, (pod.get("metadata") or {}).get("labels") or {}
        keys = []
        for pdb in pdbs.list(namespace):
            try:
                if label_selector_from_spec((pdb.get("spec") or {}).get("selector")).matches(labels):
                    keys.append(key_of(pdb))
            except BadRequest:
                continue
        return keys

    def gate(pod: JSON) -> bool:  # no PDB in the pod's namespace: no key
        namespace = namespace_of(pod)
        return namespace is None or pdbs.any_in(namespace)

    return Gated(mapper, gate)
