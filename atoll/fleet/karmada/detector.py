"""The resource detector and scheduler of one instance: resource template → ResourceBinding.

For every kind some (Cluster)PropagationPolicy selects, an informer on the instance feeds template
keys to this reconciler. Per template: the claiming policy (:mod:`.policies`); none → its binding
is removed. Otherwise the ``ResourceBinding`` (``<name>-<kind>`` in the template's namespace, or a
``ClusterResourceBinding`` for cluster-scoped templates) gets the resource reference, replicas,
placement and policy settings (replicas from the resource interpreter), is scheduled
(:mod:`.placement`) into ``spec.clusters`` and its ``Scheduled`` condition says how. Clusters
whose ``NoExecute`` taint the binding no longer tolerates are evicted first (:mod:`.failover`:
``gracefulEvictionTasks``, rescheduled elsewhere). A deleted template's binding is deleted (the
binding controller then removes the Works and the member copies).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import AlreadyExists, APIError, Conflict, NotFound
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.fleet import constants as c
from atoll.fleet.karmada import failover
from atoll.fleet.karmada.conditions import set_condition
from atoll.fleet.karmada.deps import DEPENDED_BY
from atoll.fleet.karmada.interpreter import Interpreter
from atoll.fleet.karmada.names import binding_name
from atoll.fleet.karmada.placement import ScheduleError, schedule
from atoll.fleet.karmada.policies import matching_policy
from atoll.fleet.kinds import CLUSTER_RESOURCE_BINDINGS, RESOURCE_BINDINGS
from atoll.runtime import Cache, Result

JSON = dict[str, Any]
log = logging.getLogger(__name__)
REPLICA_KINDS = ("Deployment", "StatefulSet", "ReplicaSet")


class TemplateKey(NamedTuple):
    api_version: str
    kind: str
    namespace: str | None
    name: str


def template_key(obj: JSON) -> TemplateKey:
    md = obj["metadata"]
    return TemplateKey(str(obj.get("apiVersion")), str(obj.get("kind")), md.get("namespace"), md["name"])


def replica_request(template: JSON) -> JSON:
    """One replica's resource request (summed over the pod template's containers)."""
    from fractions import Fraction

    from atoll.api.quantity import format_quantity, parse_quantity

    pod = (((template.get("spec") or {}).get("template") or {}).get("spec")) or {}
    total: dict[str, Fraction] = {}
    for container in pod.get("containers") or ():
        for res, qty in (((container.get("resources") or {}).get("requests")) or {}).items():
            total[res] = total.get(res, Fraction(0)) + parse_quantity(qty)
    return {k: format_quantity(v) for k, v in total.items()}


class TemplateReconciler:
    def __init__(
        self,
        client: Client,
        *,
        policies: Cache,
        cluster_policies: Cache,
        clusters: Cache,
        templates: dict[tuple[str, str], tuple[ResourceDef, Cache]],
        bindings: Cache | None = None,
        cluster_bindings: Cache | None = None,
        bindings_synced: Callable[[], bool] = lambda: False,
        clock: Clock = SYSTEM_CLOCK,
        interpreter: Interpreter | None = None,
    ) -> None:
        self.interpreter = interpreter or Interpreter()
        self.clock = clock
        self.bindings_synced = bindings_synced
        """True once the binding informers listed: a cache miss then means "no binding" (no GET)."""
        self.bindings = bindings
        self.cluster_bindings = cluster_bindings
        self.client = client
        self.policies = policies
        self.cluster_policies = cluster_policies
        self.clusters = clusters
        self.templates = templates
        """(apiVersion, kind) → the kind's ResourceDef and its informer cache."""

    async def reconcile(self, key: TemplateKey) -> Result:
        found = self.templates.get((key.api_version, key.kind))
        if found is None:
            return Result()
        template = found[1].get(key.name, key.namespace)
        rd = RESOURCE_BINDINGS if key.namespace else CLUSTER_RESOURCE_BINDINGS
        name = binding_name(key.kind, key.name)
        policy = None
        if template is not None and not template["metadata"].get("deletionTimestamp"):
            policy = matching_policy(template, list(self.policies), list(self.cluster_policies))
        if template is None or policy is None:
            current = await self._current(rd, name, key.namespace)
            attached = current is not None and (current["metadata"].get("labels") or {}).get(DEPENDED_BY)
            if current is not None and not (attached and template is not None):
                with contextlib.suppress(NotFound):  # an attached binding lives while its template does
                    await self.client.delete(rd, name, key.namespace)
            return Result()
        due = await self._bind(rd, name, template, policy)
        return Result(requeue_after=due) if due is not None else Result()

    async def _bind(self, rd: ResourceDef, name: str, template: JSON, policy: JSON) -> float | None:
        """Create or update the binding; in how many seconds a toleration runs out (None: never)."""
        md = template["metadata"]
        spec = policy.get("spec") or {}
        namespaced_policy = bool(policy["metadata"].get("namespace"))
        replicas, request = self._replicas(template)
        placement = spec.get("placement") or {}
        labels = (
            {
                c.PP_NAME: policy["metadata"]["name"],
                c.PP_NAMESPACE: policy["metadata"]["namespace"],
                c.PP_PERMANENT_ID: policy["metadata"]["uid"],
            }
            if namespaced_policy
            else {
                c.CPP_NAME: policy["metadata"]["name"],
                "clusterpropagationpolicy.karmada.io/permanent-id": policy["metadata"]["uid"],
            }
        )
        binding_spec: JSON = {
            "resource": {
                "apiVersion": template["apiVersion"],
                "kind": template["kind"],
                "namespace": md.get("namespace"),
                "name": md["name"],
                "uid": md.get("uid"),
                "resourceVersion": md.get("resourceVersion"),
            },
            "replicas": replicas,
            "replicaRequirements": {"resourceRequest": request} if replicas else None,
            "placement": placement,
            "propagateDeps": bool(spec.get("propagateDeps")),
            "conflictResolution": spec.get("conflictResolution") or "Abort",
            "preserveResourcesOnDeletion": bool(spec.get("preserveResourcesOnDeletion")),
            "schedulerName": spec.get("schedulerName") or "default-scheduler",
            "failover": spec.get("failover"),
        }
        binding_spec = {k: v for k, v in binding_spec.items() if v is not None}
        current = await self._current(rd, name, md.get("namespace"))
        current_spec = (current or {}).get("spec") or {}
        by_name = {str(cl["metadata"]["name"]): cl for cl in self.clusters}
        evict, due = failover.evictions(current_spec, by_name, self.clock.now())
        tasks = list(current_spec.get("gracefulEvictionTasks") or ())
        for cluster_name in evict:
            if cluster_name not in failover.evicted(current_spec):
                failing = {**current_spec, "failover": spec.get("failover")}
                tasks.append(failover.eviction_task(failing, cluster_name, self.clock.now()))
                log.info("evicting %s %s from cluster %s", template["kind"], md["name"], cluster_name)
        if tasks != list(current_spec.get("gracefulEvictionTasks") or ()):
            binding_spec["gracefulEvictionTasks"] = tasks
        gone = failover.evicted({"gracefulEvictionTasks": tasks}) | set(evict)
        clusters = [
            failover.schedulable(cl, current_spec)
            for cl in self.clusters
            if not cl["metadata"].get("deletionTimestamp") and cl["metadata"]["name"] not in gone
        ]
        try:
            targets, group = schedule(
                {**placement, "clusterTolerations": failover.tolerations(placement)},
                clusters,
                api_version=template["apiVersion"],
                kind=template["kind"],
                replicas=replicas,
                uid=str(md.get("uid") or ""),
                request=binding_spec.get("replicaRequirements", {}).get("resourceRequest"),
                placed={str(t.get("name")) for t in current_spec.get("clusters") or ()},
            )
            binding_spec["clusters"] = [
                {"name": t.name, "replicas": t.replicas} if replicas else {"name": t.name} for t in targets
            ]
            scheduled = (True, "Success", "Binding has been scheduled successfully.")
        except ScheduleError as exc:
            targets, group = [], ""
            scheduled = (False, exc.reason, str(exc))
        owner = {
            "apiVersion": template["apiVersion"],
            "kind": template["kind"],
            "name": md["name"],
            "uid": md.get("uid"),
            "controller": True,
            "blockOwnerDeletion": False,
        }
        if current is None:
            body: JSON = {
                "apiVersion": rd.api_version,
                "kind": rd.kind,
                "metadata": {
                    "name": name,
                    "labels": labels,
                    "ownerReferences": [owner],
                    "finalizers": [c.BINDING_FINALIZER],
                },
                "spec": binding_spec,
            }
            if md.get("namespace"):
                body["metadata"]["namespace"] = md["namespace"]
            try:
                current = await self.client.create(rd, body, md.get("namespace"))
            except AlreadyExists:  # the cache lagged: bring the stored one up to date
                current = await self.client.patch(
                    rd, name, {"metadata": {"labels": labels}, "spec": binding_spec}, md.get("namespace")
                )
        elif (current.get("spec") or {}) != {**(current.get("spec") or {}), **binding_spec} or any(
            (current["metadata"].get("labels") or {}).get(k) != v for k, v in labels.items()
        ):
            if not scheduled[0]:
                binding_spec["clusters"] = (current.get("spec") or {}).get("clusters") or []
            current = await self.client.patch(
                rd, name, {"metadata": {"labels": labels}, "spec": binding_spec}, md.get("namespace")
            )
        if current is None:
            return due
        old = current.get("status") or {}
        mine: JSON = {
            "conditions": set_condition(old.get("conditions"), "Scheduled", *scheduled),
            "schedulerObservedGeneration": current["metadata"].get("generation"),
        }
        if group:
            mine["schedulerObservingAffinityName"] = group
        if any(old.get(k) != v for k, v in mine.items()):
            # only the scheduler's fields, and only over the version read: the binding controller
            # writes aggregatedStatus and FullyApplied next to them
            patch = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}, "status": mine}
            try:
                await self.client.patch(rd, name, patch, md.get("namespace"), subresource="status")
            except Conflict:
                return 0.1  # again over the newer binding
            except APIError as exc:
                log.warning("binding %s: cannot write its Scheduled condition: %s", name, exc)
        return due

    def _replicas(self, template: JSON) -> tuple[int, JSON]:
        """Karmada's InterpretReplica: built in for apps' Deployment/StatefulSet/ReplicaSet, a
        ``replicaResource`` customization for other kinds, else none (the kind is not divided)."""
        custom = self.interpreter.replicas(template)
        if custom is not None:
            return custom[0], custom[1] or {}
        if template["kind"] in REPLICA_KINDS and str(template.get("apiVersion")).startswith("apps/"):
            return int((template.get("spec") or {}).get("replicas") or 0), replica_request(template)
        return 0, {}

    async def _current(self, rd: ResourceDef, name: str, namespace: str | None) -> JSON | None:
        """The binding as the informer last saw it (no round trip), else from the API."""
        cache = self.bindings if namespace else self.cluster_bindings
        cached = cache.get(name, namespace) if cache is not None else None
        if cached is not None or self.bindings_synced():
            return cached
        try:
            return await self.client.get(rd, name, namespace)
        except NotFound:
            return None
