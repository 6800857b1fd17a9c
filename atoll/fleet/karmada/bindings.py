"""The binding controller of one instance: ResourceBinding → one Work per target cluster, and the
binding-status controller: Works' status → ``aggregatedStatus``, ``FullyApplied`` and the
template's ``.status``.

Manifests are the template without server-set metadata and status, with the cluster's replica
count (Divided) and the OverridePolicies applied (:mod:`.overrides`). Work ``<name>-<hash>`` lives
in ``karmada-es-<cluster>``, labelled with the binding's permanent id. Works of clusters no longer
targeted are deleted; a deleted binding first deletes all its Works (finalizer
``karmada.io/binding-controller``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from typing import Any

import orjson

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import AlreadyExists, APIError, Conflict, NotFound
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.fleet import constants as c
from atoll.fleet.karmada import failover
from atoll.fleet.karmada.conditions import is_true, set_condition
from atoll.fleet.karmada.deps import dependencies, sync_attached
from atoll.fleet.karmada.interpreter import Interpreter
from atoll.fleet.karmada.names import cluster_of, execution_namespace, work_name
from atoll.fleet.karmada.overrides import apply_overrides
from atoll.fleet.kinds import CLUSTER_RESOURCE_BINDINGS, RESOURCE_BINDINGS, WORKS
from atoll.runtime import Cache, ObjectKey, Result

JSON = dict[str, Any]
log = logging.getLogger(__name__)
_SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "ownerReferences",
    "finalizers",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
CRB_PERMANENT_ID = "clusterresourcebinding.karmada.io/permanent-id"


def id_label(namespaced: bool) -> str:
    return c.RB_PERMANENT_ID if namespaced else CRB_PERMANENT_ID


def _generations(works: list[JSON], wanted: dict[str, JSON]) -> tuple[tuple[str, Any], ...]:
    """The target clusters' Works as the cache has them (a draining cluster's Work is not ours to keep)."""
    return tuple(
        sorted(
            (str(w["metadata"]["namespace"]), w["metadata"].get("generation"))
            for w in works
            if cluster_of(w["metadata"]["namespace"]) in wanted
        )
    )


def clean_manifest(template: JSON) -> JSON:
    """The template without status and server fields — copied without them (the status and
    ``managedFields`` are often most of the object), so overriders may edit the copy freely."""
    md = {k: v for k, v in (template.get("metadata") or {}).items() if k not in _SERVER_FIELDS}
    manifest = copy.deepcopy({**{k: v for k, v in template.items() if k != "status"}, "metadata": md})
    md = manifest["metadata"]
    annotations = md.get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if not annotations:
        md.pop("annotations", None)
    return manifest


class BindingReconciler:
    def __init__(
        self,
        client: Client,
        *,
        bindings: Cache,
        cluster_bindings: Cache,
        works: Cache,
        clusters: Cache,
        overrides: Cache,
        cluster_overrides: Cache,
        templates: dict[tuple[str, str], tuple[ResourceDef, Cache]] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        interpreter: Interpreter | None = None,
    ) -> None:
        self.interpreter = interpreter or Interpreter()
        self.templates = templates if templates is not None else {}
        self.client = client
        self.bindings = bindings
        self.cluster_bindings = cluster_bindings
        self.works = works
        self.clusters = clusters
        self.overrides = overrides
        self.cluster_overrides = cluster_overrides
        self.clock = clock
        self.override_epoch = 0
        """Bumped by the manager on every (Cluster)OverridePolicy event (part of the memo)."""
        self._ensured: dict[str, tuple[Any, ...] | None] = {}

    async def reconcile(self, key: ObjectKey) -> Result:
        namespaced = key.namespace is not None
        rd = RESOURCE_BINDINGS if namespaced else CLUSTER_RESOURCE_BINDINGS
        binding = (self.bindings if namespaced else self.cluster_bindings).get(key.name, key.namespace)
        if binding is None:
            return Result()
        works = self.works.by_label(id_label(namespaced), str(binding["metadata"]["uid"]))
        if binding["metadata"].get("deletionTimestamp"):
            return await self._remove(rd, binding, works)
        spec = binding.get("spec") or {}
        resource = spec.get("resource") or {}
        try:
            template_rd, template = await self._template(resource)
        except NotFound:
            return Result()
        wanted = {str(t["name"]): t for t in spec.get("clusters") or ()}
        draining = failover.draining(spec)
        for work in works:  # an evicted cluster's Work stays while its graceful eviction task does
            held = cluster_of(work["metadata"]["namespace"])
            if held not in wanted and held not in draining:
                with contextlib.suppress(NotFound):
                    await self.client.delete(WORKS, work["metadata"]["name"], work["metadata"]["namespace"])
        uid = str(binding["metadata"]["uid"])
        if self._ensured.get(uid) != self._memo(binding, template, _generations(works, wanted), wanted):
            async with asyncio.TaskGroup() as tg:  # the clusters' Works in parallel, not one after the other
                ensured = [
                    tg.create_task(self._ensure_work(binding, template, cluster_name, target, namespaced))
                    for cluster_name, target in wanted.items()
                ]
            written = [task.result() for task in ensured]
            # the Works as just written (the cache may lag): their events then skip the rebuild
            done = None if None in written else tuple(sorted(w for w in written if w is not None))
            self._ensured[uid] = self._memo(binding, template, done, wanted) if done is not None else None
        if namespaced and spec.get("propagateDeps"):
            await sync_attached(self.client, self.bindings, binding, dependencies(template))
        await self._status(rd, binding, template_rd, template, wanted, namespaced)
        return await self._evictions(rd, binding, works)

    def _memo(
        self, binding: JSON, template: JSON, works: tuple[tuple[str, Any], ...], wanted: dict[str, JSON]
    ) -> tuple[Any, ...]:
        """What the Works were last made from: while it holds, a status-only event (a Work's or the
        binding's) skips rebuilding every manifest."""
        clusters = [  # what an override's targetCluster can select on
            (
                name,
                (cl or {}).get("metadata", {}).get("labels"),
                {k: ((cl or {}).get("spec") or {}).get(k) for k in ("provider", "region", "zone", "zones")},
            )
            for name in sorted(wanted)
            for cl in (self.clusters.get(name),)
        ]
        return (
            binding["metadata"].get("generation"),
            orjson.dumps(binding.get("spec"), option=orjson.OPT_SORT_KEYS),
            template["metadata"].get("resourceVersion"),
            self.override_epoch,
            orjson.dumps(clusters, option=orjson.OPT_SORT_KEYS),
            works,
        )

    async def _evictions(self, rd: ResourceDef, binding: JSON, works: list[JSON]) -> Result:
        """Drop the graceful eviction tasks that are done (:func:`.failover.finished_tasks`)."""
        spec = binding.get("spec") or {}
        tasks = list(spec.get("gracefulEvictionTasks") or ())
        if not tasks:
            return Result()
        by_cluster = {cluster_of(w["metadata"]["namespace"]): w for w in works}
        pending, due = failover.finished_tasks(spec, by_cluster, self.clock.now())
        if pending != tasks:
            md = binding["metadata"]
            patch = {"metadata": {"resourceVersion": md["resourceVersion"]}, "spec": {"gracefulEvictionTasks": pending}}
            with contextlib.suppress(NotFound, Conflict):  # Conflict: the newer binding comes as an event
                await self.client.patch(rd, md["name"], patch, md.get("namespace"))
        return Result(requeue_after=due) if due is not None else Result()

    async def _template(self, resource: JSON) -> tuple[ResourceDef, JSON]:
        """The template from the detector's informer cache (an API read only when not cached yet)."""
        found = self.templates.get((resource["apiVersion"], resource["kind"]))
        cached = found[1].get(resource["name"], resource.get("namespace")) if found is not None else None
        if found is not None and cached is not None:
            return found[0], cached
        rd = await self.client.discover(resource["apiVersion"], resource["kind"])
        return rd, await self.client.get(rd, resource["name"], resource.get("namespace"))

    async def _remove(self, rd: ResourceDef, binding: JSON, works: list[JSON]) -> Result:
        self._ensured.pop(str(binding["metadata"]["uid"]), None)
        for work in works:
            if not work["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(NotFound):
                    await self.client.delete(WORKS, work["metadata"]["name"], work["metadata"]["namespace"])
        if works:
            return Result(requeue_after=1.0)
        md = binding["metadata"]
        if md.get("namespace") and (binding.get("spec") or {}).get("propagateDeps"):
            await sync_attached(self.client, self.bindings, binding, set())
        remaining = [f for f in md.get("finalizers") or () if f != c.BINDING_FINALIZER]
        with contextlib.suppress(NotFound):
            await self.client.patch(
                rd, md["name"], {"metadata": {"finalizers": remaining or None}}, md.get("namespace")
            )
        return Result()

    def _manifest(self, binding: JSON, template: JSON, cluster_name: str, target: JSON) -> tuple[JSON, list[str]]:
        manifest = clean_manifest(template)
        if (binding.get("spec") or {}).get("replicas") and "replicas" in target:
            revised = self.interpreter.revise_replica(manifest, int(target["replicas"]))
            if revised is not None:
                manifest = revised
            else:
                manifest.setdefault("spec", {})["replicas"] = int(target["replicas"])
        cluster = self.clusters.get(cluster_name) or {"metadata": {"name": cluster_name}}
        namespace = (template.get("metadata") or {}).get("namespace")
        ops = [p for p in self.overrides if p["metadata"].get("namespace") == namespace] if namespace else []
        return apply_overrides(manifest, cluster, list(self.cluster_overrides), ops)

    async def _ensure_work(
        self, binding: JSON, template: JSON, cluster_name: str, target: JSON, namespaced: bool
    ) -> tuple[str, Any] | None:
        """Create or update the cluster's Work; its (namespace, generation) as written (None: unknown)."""
        md = template["metadata"]
        manifest, applied = self._manifest(binding, template, cluster_name, target)
        spec = binding.get("spec") or {}
        name = work_name(md.get("namespace") or "", md["name"], template["kind"])
        ns = execution_namespace(cluster_name)
        bmd = binding["metadata"]
        labels = {id_label(namespaced): str(bmd["uid"])}
        annotations = {
            c.RB_NAME if namespaced else "clusterresourcebinding.karmada.io/name": bmd["name"],
            c.CONFLICT_RESOLUTION: "overwrite" if spec.get("conflictResolution") == "Overwrite" else "abort",
        }
        if namespaced:
            annotations[c.RB_NAMESPACE] = bmd["namespace"]
        if applied:
            annotations["policy.karmada.io/applied-overrides"] = ",".join(applied)
        work_spec = {
            "workload": {"manifests": [manifest]},
            "preserveResourcesOnDeletion": bool(spec.get("preserveResourcesOnDeletion")),
        }
        current = self.works.get(name, ns)
        if current is None:
            body = {
                "apiVersion": WORKS.api_version,
                "kind": "Work",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": labels,
                    "annotations": annotations,
                    # set here rather than by the execution controller: one write and one event less
                    # on the propagation path (the executor, Push or Pull, removes it)
                    "finalizers": [c.EXECUTION_FINALIZER],
                },
                "spec": work_spec,
            }
            try:
                current = await self.client.create(WORKS, body, ns)
            except AlreadyExists:
                return None
        elif current.get("spec") != work_spec or (current["metadata"].get("annotations") or {}) != annotations:
            current = await self.client.patch(
                WORKS,
                name,
                {
                    "metadata": {"labels": labels, "annotations": annotations},
                    "spec": {**work_spec, "workload": {"manifests": [manifest]}},
                },
                ns,
            )
        return str(current["metadata"]["namespace"]), current["metadata"].get("generation")

    async def _status(
        self,
        rd: ResourceDef,
        binding: JSON,
        template_rd: ResourceDef,
        template: JSON,
        wanted: dict[str, JSON],
        namespaced: bool,
    ) -> None:
        works = {
            cluster_of(w["metadata"]["namespace"]): w
            for w in self.works.by_label(id_label(namespaced), str(binding["metadata"]["uid"]))
        }
        aggregated: list[JSON] = []
        member_statuses: list[JSON] = []
        for cluster_name in sorted(wanted):
            work = works.get(cluster_name)
            entry: JSON = {"clusterName": cluster_name, "applied": bool(work and is_true(work, "Applied"))}
            if work is not None:
                cond = next(
                    (x for x in (work.get("status") or {}).get("conditions") or () if x.get("type") == "Applied"), None
                )
                if cond is not None and cond.get("status") != "True":
                    entry["appliedMessage"] = cond.get("message", "")
                manifests = (work.get("status") or {}).get("manifestStatuses") or ()
                if manifests:
                    entry["status"] = manifests[0].get("status") or {}
                    entry["health"] = manifests[0].get("health") or "Unknown"
                    member_statuses.append(entry["status"])
            aggregated.append(entry)
        status = dict(binding.get("status") or {})
        status["aggregatedStatus"] = aggregated
        fully = bool(aggregated) and all(e["applied"] for e in aggregated)
        status["conditions"] = set_condition(
            status.get("conditions"),
            "FullyApplied",
            fully,
            "FullyAppliedSuccess" if fully else "FullyAppliedFailed",
            "All works have been successfully applied"
            if fully
            else "Failed to apply all works, see status.aggregatedStatus for details",
        )
        md = binding["metadata"]
        reported = any(w.get("status") for w in works.values())
        # nothing to aggregate before a Work reports (one write per propagated object less)
        if status != binding.get("status") and (reported or (binding.get("status") or {}).get("aggregatedStatus")):
            patch = {"metadata": {"resourceVersion": md["resourceVersion"]}, "status": status}
            with contextlib.suppress(NotFound, Conflict):  # Conflict: the newer binding comes as an event
                await self.client.patch(rd, md["name"], patch, md.get("namespace"), subresource="status")
        if len(member_statuses) < len(wanted):
            return
        wanted_status = self.interpreter.aggregate(template, aggregated)
        if wanted_status is None or _contains(template.get("status") or {}, wanted_status):
            return
        sub = "status" if template_rd.has_status else None
        with contextlib.suppress(NotFound, APIError):
            await self.client.patch(
                template_rd,
                template["metadata"]["name"],
                {"status": wanted_status},
                template["metadata"].get("namespace"),
                subresource=sub,
            )


def _contains(current: JSON, wanted: JSON) -> bool:
    return all(current.get(k) == v for k, v in wanted.items())
