"""Karmada's controller-manager for one instance: informers on the instance, the template
detector and scheduler (informers per selected kind, started as policies appear; evictions from
:mod:`.failover`), the binding, execution (Push clusters) and cluster controllers, and the
resource interpreter (:mod:`.interpreter`), all in one TaskGroup next to the instance's API
server. The kinds of ``propagateDeps`` dependencies are watched too, so their edits propagate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from atoll.api import kinds
from atoll.api.errors import APIError, NotFound
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.fleet import constants as c
from atoll.fleet.karmada.bindings import BindingReconciler
from atoll.fleet.karmada.clusters import ClusterReconciler
from atoll.fleet.karmada.deps import DEPENDED_BY
from atoll.fleet.karmada.detector import TemplateKey, TemplateReconciler, template_key
from atoll.fleet.karmada.dynamic import DynamicInformers
from atoll.fleet.karmada.execution import ExecutionReconciler, is_pull, work_changed
from atoll.fleet.karmada.interpreter import Interpreter
from atoll.fleet.karmada.members import MemberClients
from atoll.fleet.karmada.names import binding_name
from atoll.fleet.karmada.reported import ReportedIndex
from atoll.fleet.kinds import (
    CLUSTER_OVERRIDE_POLICIES,
    CLUSTER_PROPAGATION_POLICIES,
    CLUSTER_RESOURCE_BINDINGS,
    CLUSTERS,
    OVERRIDE_POLICIES,
    PROPAGATION_POLICIES,
    RESOURCE_BINDINGS,
    RESOURCE_INTERPRETER_CUSTOMIZATIONS,
    WORKS,
)
from atoll.fleet.search import CONTROL_PLANE, Listing, Source
from atoll.runtime import Cache, Controller, InformerFactory, ObjectKey, Result

JSON = dict[str, Any]
log = logging.getLogger(__name__)


@dataclass(slots=True)
class KarmadaSettings:
    cluster_status_period: float = 10.0
    """Karmada's ``--cluster-status-update-frequency``."""
    workers: int = 4
    failure_threshold: float = 30.0
    """Karmada's ``--cluster-failure-threshold``: not ready this long → the ``NoExecute`` taint."""
    monitor_grace: float = 40.0
    """Karmada's ``--cluster-monitor-grace-period``: a Pull agent's lease older → not ready."""


def _binding_of_work(work: JSON) -> list[ObjectKey]:
    annotations = (work.get("metadata") or {}).get("annotations") or {}
    if annotations.get(c.RB_NAME):
        return [ObjectKey(annotations.get(c.RB_NAMESPACE), annotations[c.RB_NAME])]
    if annotations.get("clusterresourcebinding.karmada.io/name"):
        return [ObjectKey(None, annotations["clusterresourcebinding.karmada.io/name"])]
    return []


def _cluster_changed(old: JSON, new: JSON) -> bool:
    """A change the scheduler must see (labels, taints, readiness, deletion, fields an affinity
    selects on); API enablements are compared per kind by :func:`_kinds_changed`."""

    def view(obj: JSON) -> Any:
        ready = [x.get("status") for x in (obj.get("status") or {}).get("conditions") or () if x.get("type") == "Ready"]
        spec = obj.get("spec") or {}
        return (
            obj["metadata"].get("labels"),
            spec.get("taints"),
            ready,
            obj["metadata"].get("deletionTimestamp"),
            [spec.get(k) for k in ("provider", "region", "zone", "zones")],
        )

    return bool(view(old) != view(new))


def _kinds(obj: JSON) -> set[tuple[str, str]]:
    return {
        (str(e.get("groupVersion")), str(r.get("kind")))
        for e in (obj.get("status") or {}).get("apiEnablements") or ()
        for r in e.get("resources") or ()
    }


def _kinds_changed(old: JSON, new: JSON) -> set[tuple[str, str]] | None:
    """The kinds the cluster started or stopped serving (None: enablements not reported before)."""
    if not (old.get("status") or {}).get("apiEnablements"):
        return None
    return _kinds(old) ^ _kinds(new)


class PolicyKinds:
    """Reconciles a policy by watching the kinds its selectors name (templates of those kinds)."""

    def __init__(
        self, client: Client, policies: Cache, cluster_policies: Cache, manager: KarmadaManager, retry: float = 5.0
    ) -> None:
        self.retry = retry
        self.client = client
        self.policies = policies
        self.cluster_policies = cluster_policies
        self.manager = manager

    async def reconcile(self, key: ObjectKey) -> Result:
        policy = (self.policies if key.namespace else self.cluster_policies).get(key.name, key.namespace)
        served = True
        for selector in ((policy or {}).get("spec") or {}).get("resourceSelectors") or ():
            served &= await self.manager.watch_kind(str(selector.get("apiVersion")), str(selector.get("kind")))
        self.manager.requeue_templates()
        # a kind not served yet (its CRD installed later): look again with fresh discovery
        return Result() if served else Result(requeue_after=self.retry)


class KarmadaManager:
    def __init__(self, client: Client, settings: KarmadaSettings | None = None) -> None:
        self.client = client
        self.settings = settings or KarmadaSettings()
        f = self.informers = InformerFactory(client)
        self.clusters = f.informer(CLUSTERS)
        self.pps = f.informer(PROPAGATION_POLICIES)
        self.cpps = f.informer(CLUSTER_PROPAGATION_POLICIES)
        self.ops = f.informer(OVERRIDE_POLICIES)
        self.cops = f.informer(CLUSTER_OVERRIDE_POLICIES)
        self.rbs = f.informer(RESOURCE_BINDINGS)
        self.crbs = f.informer(CLUSTER_RESOURCE_BINDINGS)
        self.works = f.informer(WORKS)
        self.secrets = f.informer(kinds.SECRETS, c.CLUSTER_NAMESPACE)
        self.rics = f.informer(RESOURCE_INTERPRETER_CUSTOMIZATIONS)
        self.leases = f.informer(kinds.LEASES, c.CLUSTER_NAMESPACE)  # Pull agents' (search freshness)
        self.reported = ReportedIndex()  # what Pull agents report applied (the search's Pull sources)
        self.interpreter = Interpreter(self.rics.cache)
        self.members = MemberClients(client, self.secrets.cache)
        self.templates: dict[tuple[str, str], tuple[ResourceDef, Cache]] = {}
        self.dynamic = DynamicInformers()
        self._pending_kinds: set[tuple[str, str]] = set()
        self._watching: set[asyncio.Task[bool]] = set()
        n = self.settings.workers
        self.template_ctl: Controller[TemplateKey] = Controller(
            "karmada-detector",
            TemplateReconciler(
                client,
                policies=self.pps.cache,
                cluster_policies=self.cpps.cache,
                clusters=self.clusters.cache,
                templates=self.templates,
                bindings=self.rbs.cache,
                cluster_bindings=self.crbs.cache,
                bindings_synced=lambda: self.rbs.has_synced and self.crbs.has_synced,
                interpreter=self.interpreter,
            ),
            workers=n,
        )
        self.binding = BindingReconciler(
            client,
            bindings=self.rbs.cache,
            cluster_bindings=self.crbs.cache,
            works=self.works.cache,
            clusters=self.clusters.cache,
            overrides=self.ops.cache,
            cluster_overrides=self.cops.cache,
            templates=self.templates,
            interpreter=self.interpreter,
        )
        self.binding_ctl: Controller[ObjectKey] = Controller("karmada-binding", self.binding, workers=n)
        self.execution = ExecutionReconciler(
            client,
            self.works.cache,
            self.clusters.cache,
            self.members,
            lambda key: self.execution_ctl.queue.add(key),
            interpreter=self.interpreter,
        )
        self.execution_ctl: Controller[ObjectKey] = Controller("karmada-execution", self.execution, workers=n)
        self.cluster_ctl: Controller[ObjectKey] = Controller(
            "karmada-cluster",
            ClusterReconciler(
                client,
                self.clusters.cache,
                self.members,
                period=self.settings.cluster_status_period,
                failure_threshold=self.settings.failure_threshold,
                grace=self.settings.monitor_grace,
                leases=self.leases,
            ),
            workers=n,
        )
        self.policy_ctl: Controller[ObjectKey] = Controller(
            "karmada-policy-kinds", PolicyKinds(client, self.pps.cache, self.cpps.cache, self), workers=1
        )
        self._wire()

    def _wire(self) -> None:
        for informer in (self.pps, self.cpps):
            self.policy_ctl.watch(informer)
        self.binding_ctl.watch(self.rbs)  # status updates too: they may be the scheduler's, over ours
        self.binding_ctl.watch(self.crbs)
        self.binding_ctl.watch(self.works, _binding_of_work)
        for informer in (self.ops, self.cops):
            informer.add_handler(
                on_add=lambda _o: self._overrides_changed(),
                on_update=lambda _o, _n: self._overrides_changed(),
                on_delete=lambda _o: self._overrides_changed(),
            )
            self.binding_ctl.watch(informer, lambda _obj: self._all_bindings())
        self.execution_ctl.watch(self.works, update_predicate=work_changed)
        self.works.add_handler(
            on_add=self.reported.on_add, on_update=self.reported.on_update, on_delete=self.reported.on_delete
        )
        self.cluster_ctl.watch(self.clusters)
        self.rbs.add_handler(on_add=self._watch_dependency)
        self.clusters.add_handler(
            on_add=lambda _o: self.requeue_templates(),
            on_update=self._cluster_updated,
            on_delete=lambda _o: self.requeue_templates(),
        )

    def _watch_dependency(self, binding: JSON) -> None:
        """An attached binding (``propagateDeps``): watch its kind, so an edit of the ConfigMap or
        Secret re-queues the attached binding at once (not on the workload's next reconcile)."""
        if not (binding["metadata"].get("labels") or {}).get(DEPENDED_BY):
            return
        resource = (binding.get("spec") or {}).get("resource") or {}
        key = (str(resource.get("apiVersion")), str(resource.get("kind")))
        if key in self.templates or key in self._pending_kinds:
            return
        self._pending_kinds.add(key)
        task = asyncio.get_running_loop().create_task(self.watch_kind(*key), name=f"karmada/watch {key}")
        self._watching.add(task)  # a strong reference until it is done
        task.add_done_callback(self._watching.discard)
        task.add_done_callback(lambda _t: self._pending_kinds.discard(key))

    def _overrides_changed(self) -> None:
        self.binding.override_epoch += 1

    def _all_bindings(self) -> list[ObjectKey]:
        return [
            ObjectKey(b["metadata"].get("namespace"), b["metadata"]["name"])
            for b in (*self.rbs.cache, *self.crbs.cache)
        ]

    async def watch_kind(self, api_version: str, kind: str) -> bool:
        """Watch the templates of this kind; False while the instance does not serve it."""
        if (api_version, kind) in self.templates:
            return True
        try:
            rd = await self.client.discover(api_version, kind)
        except (NotFound, APIError) as exc:
            log.info("policy selects %s %s which this instance does not serve (yet): %s", api_version, kind, exc)
            self.client.invalidate_discovery()
            return False

        def on_event(obj: JSON) -> None:
            key = template_key(obj)
            self.template_ctl.queue.add(key)
            self.binding_ctl.queue.add(ObjectKey(key.namespace, binding_name(key.kind, key.name)))

        informer = self.dynamic.ensure((api_version, kind), self.client, rd, on_event)
        self.templates[(api_version, kind)] = (rd, informer.cache)
        return True

    def search_sources(self, instance: str) -> list[Source]:
        """The read path's view of this instance (:mod:`atoll.fleet.search`): its own objects, and per
        member cluster the objects applied there (Push: the execution controller's member
        informers; Pull: what the agent reported in the Works' status, as of its last lease)."""
        own = (self.clusters, self.pps, self.cpps, self.ops, self.cops, self.rbs, self.crbs, self.works)
        templates = tuple(informer for _key, informer in self.dynamic.items())
        sources = [Source(instance, CONTROL_PLANE, (*own, *templates), True, "")]
        by_cluster: dict[str, list[Listing]] = {}
        for key, informer in self.execution.watches.items():
            assert isinstance(key, tuple)
            by_cluster.setdefault(str(key[0]), []).append(informer)
        for cluster in sorted(self.clusters.cache, key=lambda c: str(c["metadata"]["name"])):
            name = str(cluster["metadata"]["name"])
            ready: JSON = next(
                (x for x in (cluster.get("status") or {}).get("conditions") or () if x.get("type") == "Ready"), {}
            )
            since = str(ready.get("lastTransitionTime") or "")
            if is_pull(cluster):  # the agent applies and reports: its Works' status is the index
                lease = self.leases.cache.get(name, c.CLUSTER_NAMESPACE) or {}
                renewed = str((lease.get("spec") or {}).get("renewTime") or "")
                listings: tuple[Listing, ...] = self.reported.listings(name)
                sources.append(Source(instance, name, listings, ready.get("status") == "True", renewed, renewed))
                continue
            sources.append(
                Source(instance, name, tuple(by_cluster.get(name, ())), ready.get("status") == "True", since)
            )
        return sources

    def _cluster_updated(self, old: JSON, new: JSON) -> None:
        changed = _kinds_changed(old, new)
        if _cluster_changed(old, new) or changed is None:
            self.requeue_templates()
        elif changed:  # a CRD installed or removed on the member: only that kind's templates
            self.requeue_templates(changed)

    def requeue_templates(self, kinds_: set[tuple[str, str]] | None = None) -> None:
        for (api_version, kind), (_rd, cache) in list(self.templates.items()):
            if kinds_ is not None and (api_version, kind) not in kinds_:
                continue
            for obj in cache:
                self.template_ctl.queue.add(
                    TemplateKey(api_version, kind, obj["metadata"].get("namespace"), obj["metadata"]["name"])
                )

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.informers.run(), name="karmada/informers")
                for ctl in (self.cluster_ctl, self.policy_ctl, self.template_ctl, self.binding_ctl, self.execution_ctl):
                    tg.create_task(ctl.run(), name=f"karmada/{ctl.name}")
        finally:
            with contextlib.suppress(Exception):
                await self.dynamic.close()
                await self.execution.watches.close()
                await self.members.close()
