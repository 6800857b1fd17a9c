"""Reconcile one ReplicaSet: claim its pods (its own from the pod cache's owner index, matching
orphans from the orphan index — never a namespace scan; adopt those, release pods that stopped
matching), create or delete pods until ``spec.replicas`` are active, and write ``status``
(replicas, fullyLabeledReplicas, readyReplicas, availableReplicas after ``minReadySeconds``,
observedGeneration) once the pods it created are observed. Pods to delete are chosen as
kube-controller-manager's ``ActivePods`` ordering does: unscheduled before scheduled, pending
before running, not ready before ready, recently ready before long ready, more restarts first,
newest first."""

from __future__ import annotations

from typing import Any

from atoll.api.clock import Clock
from atoll.api.errors import BadRequest, NotFound
from atoll.api.kinds import REPLICASETS
from atoll.api.podtemplates import (
    controller_of,
    is_active,
    is_available,
    is_ready,
    pod_from_template,
    random_suffix,
    ready_since,
)
from atoll.api.registry import ResourceDef
from atoll.api.selectors import LabelSelector, label_selector_from_spec, selector_from_labels
from atoll.api.timestamps import try_parse_time
from atoll.client import Client
from atoll.runtime import Cache, ObjectKey, Result, TerminalError
from atoll.runtime.cache import ORPHAN_INDEX, CachedNames
from atoll.runtime.keys import key_of
from atoll.runtime.podcontrol import PodControl

JSON = dict[str, Any]
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_rank(pod: JSON) -> tuple[Any, ...]:
    """Sort key: pods first in this order are deleted first."""
    md, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    since = ready_since(pod)
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    created = try_parse_time(str(md.get("creationTimestamp") or "")) or 0.0
    return (
        bool(spec.get("nodeName")),
        _PHASE_RANK.get(str(status.get("phase")), 1),
        since is not None,
        -(since or 0.0),
        -restarts,
        -created,
    )


def selector_of(owner: JSON, kind: str) -> LabelSelector:
    """A ReplicaSet's ``LabelSelector``, or a ReplicationController's plain map."""
    raw = (owner.get("spec") or {}).get("selector")
    if kind == "ReplicationController":
        return selector_from_labels(raw) if raw else LabelSelector(nothing=True)
    return label_selector_from_spec(raw)


class ReplicaSetReconciler:
    """Also runs ReplicationControllers (``rd``: the kind whose status it writes)."""

    def __init__(self, client: Client, *, replicasets: Cache, pods: Cache, control: PodControl,
                 clock: Clock, rd: ResourceDef = REPLICASETS) -> None:
        self.rd = rd
        self.client = client
        self.replicasets = replicasets
        self.pods = pods
        self.control = control
        self.clock = clock

    async def reconcile(self, key: ObjectKey) -> Result:
        rs = self.replicasets.get_key(key)
        if rs is None or key.namespace is None:
            self.control.expect.forget(key)
            return Result()
        try:
            selector = selector_of(rs, self.rd.kind)
        except BadRequest as exc:
            raise TerminalError(f"replicaset {key}: {exc.message}") from None
        owned = await self._claim(rs, selector, key.namespace)
        active = [p for p in owned if is_active(p)]
        if not rs["metadata"].get("deletionTimestamp"):
            removed = await self._manage(key, rs, active)
            active = [p for p in active if p["metadata"]["name"] not in removed]
        if self.control.expect.creating(key):
            # kube-controller-manager writes the counts of every pass; while pods it created are
            # not yet in the cache they would be stale at once, and each observed pod requeues this
            # set: the status is written then (one write per burst, not one per slow-start batch)
            return Result(requeue_after=self.control.expect.ttl)
        return await self._update_status(rs, active)

    async def _claim(self, rs: JSON, selector: LabelSelector, namespace: str) -> list[JSON]:
        """Its pods (owner index) and matching orphans (orphan index): never a namespace scan."""
        uid, deleting = rs["metadata"]["uid"], bool(rs["metadata"].get("deletionTimestamp"))
        owned: list[JSON] = []
        for pod in self.pods.by_owner(uid):
            ref = controller_of(pod)
            if ref is None or ref.get("uid") != uid or key_of(pod).namespace != namespace:
                continue
            if deleting or selector.matches((pod.get("metadata") or {}).get("labels") or {}):
                owned.append(pod)
            else:
                await self.control.release(rs, pod)
        if deleting:
            return owned
        for pod in self.pods.by_index(ORPHAN_INDEX, namespace):
            labels = (pod.get("metadata") or {}).get("labels") or {}
            if is_active(pod) and selector.matches(labels) and await self.control.adopt(rs, pod):
                owned.append(pod)
        return owned

    async def _manage(self, key: ObjectKey, rs: JSON, active: list[JSON]) -> set[str]:
        """Create or delete pods; returns the names of the pods deleted (no longer active)."""
        expect = self.control.expect
        creating = expect.pending_creates(key, CachedNames(self.pods, key.namespace))
        deleting = expect.pending_deletes(key, {p["metadata"]["name"] for p in active})
        live = [p for p in active if p["metadata"]["name"] not in deleting]
        diff = int((rs.get("spec") or {}).get("replicas") or 0) - len(live) - len(creating)
        if diff > 0:
            template = (rs.get("spec") or {}).get("template") or {}
            name = rs["metadata"]["name"]
            pods = [pod_from_template(template, rs, f"{name}-{random_suffix()}") for _ in range(diff)]
            await self.control.create_many(key, rs, pods)
        elif diff < 0:
            victims = sorted(live, key=deletion_rank)[: -diff]
            await self.control.delete_many(key, rs, victims)
            return deleting | {p["metadata"]["name"] for p in victims}
        return deleting

    async def _update_status(self, rs: JSON, active: list[JSON]) -> Result:
        spec, md = rs.get("spec") or {}, rs["metadata"]
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        ready = [p for p in active if is_ready(p)]
        available = [p for p in ready if is_available(p, min_ready, now)]
        status = dict(rs.get("status") or {})
        status.update(
            replicas=len(active),
            fullyLabeledReplicas=sum(
                1 for p in active if template_labels.items() <= ((p["metadata"].get("labels") or {}).items())),
            readyReplicas=len(ready),
            availableReplicas=len(available),
            observedGeneration=int(md.get("generation") or 1),
        )
        if status != (rs.get("status") or {}):
            try:
                await self.client.patch(self.rd, md["name"], {"status": status}, md["namespace"],
                                        subresource="status")
            except NotFound:
                return Result()
        if len(available) < len(ready):  # pods becoming available after minReadySeconds
            waits = [(ready_since(p) or now) + min_ready - now for p in ready if not is_available(p, min_ready, now)]
            return Result(requeue_after=max(min(waits), 0.05))
        return Result()
