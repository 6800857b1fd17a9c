"""One binding's syncer: informers on both clusters, the bottom-up/top-down controllers (nodes,
pods, their ConfigMaps/Secrets/claims/volumes, policies, hostPort placeholders), leases, the
proxier, worker health, and the two-phase teardown (:mod:`atoll.pooling.teardown`).

It runs until its binding is gone or its teardown is complete (the
``kubeocean.io/clusterbinding-syncer`` finalizer released), and raises on anything it cannot
handle so its supervisor (:mod:`atoll.pooling.supervisor`) restarts it with backoff. It needs
nothing but two API clients, so it runs the same inside the master (one task per binding) and
as its own process (``atoll pool-syncer --binding NAME``).

Teardown (binding deleted): every vnode is drained and deleted through the node deletion state
machine, every copied dependency released, leftover managed objects in the worker's
``mountNamespace`` deleted; only when the worker holds nothing of ours is the syncer finalizer
removed, which lets the manager finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from atoll.api import kinds
from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import AlreadyExists, APIError, Conflict, Forbidden, NotFound
from atoll.client import Client, ClientError
from atoll.mirror import keys
from atoll.mirror.objects import PVCS, PVS, DependencyMirror
from atoll.mirror.podsync import PodSync
from atoll.pooling import constants as c
from atoll.pooling import metrics
from atoll.pooling.bottomup import NodeReconciler
from atoll.pooling.capacity import managed
from atoll.pooling.context import SyncContext, SyncerSettings
from atoll.pooling.hostports import HostPortReconciler, physical_node_key, placeholder_key
from atoll.pooling.kinds import CLUSTERBINDINGS, PRIORITYCLASSES, RESOURCELEASINGPOLICIES
from atoll.pooling.leases import LeaseKeeper
from atoll.pooling.policies import PolicyReconciler
from atoll.pooling.proxier import Proxier, ProxierTLS
from atoll.pooling.teardown import Teardown
from atoll.pooling.topdown import (
    DEPS_INDEX,
    DependencyReconciler,
    DepKey,
    PodReconciler,
    claim_of_volume,
    dep_values,
    physical_to_virtual,
    source_lookup,
    target_lookup,
)
from atoll.runtime import Controller, InformerFactory, ObjectKey, WorkQueue
from atoll.runtime.events import EventRecorder

JSON = dict[str, Any]
log = logging.getLogger(__name__)
METRICS_PERIOD = 15.0
CLAIM_ATTEMPTS = 5
"""Reads of the binding before a finalizer patch that keeps conflicting fails the syncer."""


class Syncer:
    def __init__(
        self,
        binding: str,
        computing: Client,
        worker: Client,
        *,
        clock: Clock = SYSTEM_CLOCK,
        settings: SyncerSettings | None = None,
        tls: ProxierTLS | None = None,
        proxier_host: str = "127.0.0.1",
        on_started: Callable[[], None] | None = None,
    ) -> None:
        self.ctx = SyncContext(binding, computing, worker, clock=clock, settings=settings or SyncerSettings(),
                               proxier_host=proxier_host)
        self.tls = tls
        self.on_started = on_started
        self.done = asyncio.Event()

    # -- start -----------------------------------------------------------------------------

    async def _prepare(self) -> JSON | None:
        binding = await self._claim_binding()
        if binding is None:
            return None
        ctx = self.ctx
        await ctx.worker.get_path("/version")
        namespace = str(binding["spec"]["mountNamespace"])
        with contextlib.suppress(AlreadyExists, Forbidden):
            await ctx.worker.create(kinds.NAMESPACES, {"metadata": {"name": namespace}})
        return binding

    async def _claim_binding(self) -> JSON | None:
        """The binding with our finalizer on it (added if missing), or None if it is gone or
        deleting and already drained. The manager writes the binding's status while this syncer
        starts (it marks the binding Ready right after starting us), so the finalizer patch of the
        copy just read can lose that race: a Conflict reads the binding again, it is no failure of
        the syncer (that cost a restart after backoff and a ``SyncerReady=False`` flap)."""
        ctx = self.ctx
        for attempt in range(1, CLAIM_ATTEMPTS + 1):
            try:
                binding: JSON = await ctx.computing.get(CLUSTERBINDINGS, ctx.binding_name)
                md = binding["metadata"]
                finalizers = list(md.get("finalizers") or ())
                if c.FINALIZER_SYNCER in finalizers or md.get("deletionTimestamp"):
                    return binding if c.FINALIZER_SYNCER in finalizers else None  # else: already drained
                patch = {"finalizers": [*finalizers, c.FINALIZER_SYNCER], "resourceVersion": md["resourceVersion"]}
                patched: JSON = await ctx.computing.patch(CLUSTERBINDINGS, md["name"], {"metadata": patch})
                return patched
            except NotFound:
                return None
            except Conflict:
                if attempt == CLAIM_ATTEMPTS:
                    raise
                log.info("binding %s changed while the syncer claimed it (attempt %d); reading it again",
                         ctx.binding_name, attempt)
        raise AssertionError("unreachable")

    async def _priority_class(self, binding: JSON) -> str | None:
        named = (binding.get("spec") or {}).get("podPriorityClassName")
        if named:
            return str(named)
        body = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": c.DEFAULT_PRIORITY_CLASS}, "value": c.DEFAULT_PRIORITY_VALUE,
                "description": "Pods of pooled (Kubeocean) workloads: preempted first."}
        try:
            await self.ctx.worker.create(PRIORITYCLASSES, body)
        except AlreadyExists:
            pass
        except NotFound:
            log.info("worker of %s serves no PriorityClasses; physical pods get none", self.ctx.binding_name)
            return None
        return c.DEFAULT_PRIORITY_CLASS

    async def run(self) -> None:
        binding = await self._prepare()
        if binding is None:
            return
        ctx = self.ctx
        cluster_id = str(binding["spec"]["clusterID"])
        namespace = str(binding["spec"]["mountNamespace"])
        priority = await self._priority_class(binding)
        proxier = Proxier(ctx, self.tls, ctx.proxier_host)
        ctx.proxier_port = await proxier.start()
        try:
            await self._run(cluster_id, namespace, priority)
        finally:
            ctx.timers.cancel_all()
            await proxier.stop()

    async def _run(self, cluster_id: str, namespace: str, priority: str | None) -> None:
        ctx = self.ctx
        name = ctx.binding_name
        computing = InformerFactory(ctx.computing)
        worker = InformerFactory(ctx.worker)
        selector = f"{keys.MANAGED_BY}={keys.MANAGED_BY_VALUE},{c.LABEL_CLUSTER_BINDING}={name}"
        bindings_inf = computing.informer(CLUSTERBINDINGS)
        vnodes_inf = computing.informer(kinds.NODES, label_selector=selector)
        vpods_inf = computing.informer(kinds.PODS)
        cms_inf = computing.informer(kinds.CONFIGMAPS)
        secrets_inf = computing.informer(kinds.SECRETS)
        claims_inf = computing.informer(PVCS)
        volumes_inf = computing.informer(PVS)
        nodes_inf = worker.informer(kinds.NODES)
        pods_inf = worker.informer(kinds.PODS)
        rlp_inf = worker.informer(RESOURCELEASINGPOLICIES)
        ctx.bindings, ctx.vnodes, ctx.vpods = bindings_inf.cache, vnodes_inf.cache, vpods_inf.cache
        ctx.configmaps, ctx.secrets = cms_inf.cache, secrets_inf.cache
        ctx.claims, ctx.volumes = claims_inf.cache, volumes_inf.cache
        ctx.nodes, ctx.pods, ctx.policies = nodes_inf.cache, pods_inf.cache, rlp_inf.cache
        ctx.vpods.add_index(DEPS_INDEX, dep_values)

        node_queue: WorkQueue[ObjectKey] = WorkQueue(f"pool-node-{name}")
        nodes_rec = NodeReconciler(ctx, node_queue)
        node_ctl = Controller(f"pool-node-{name}", nodes_rec, node_queue, workers=ctx.settings.workers)

        def capacity_key(pod: JSON) -> list[ObjectKey]:
            """Physical pods change a vnode's capacity, except our own (never subtracted): their
            churn would only recompute an unchanged vnode (the 300 s resync refreshes usage metrics)."""
            node = (pod.get("spec") or {}).get("nodeName")
            if not node or managed(pod):
                return []
            return [ObjectKey(None, node)]

        def all_nodes(_obj: JSON) -> Iterable[ObjectKey]:
            return [ObjectKey(None, key.name) for key in ctx.nodes.keys()]

        node_ctl.watch(nodes_inf, lambda n: [ObjectKey(None, n["metadata"]["name"])])
        node_ctl.watch(pods_inf, capacity_key)
        node_ctl.watch(vnodes_inf, lambda v: [ObjectKey(None, n)] if (
            n := (v["metadata"].get("labels") or {}).get(c.LABEL_PHYSICAL_NODE_NAME)) else [])
        node_ctl.watch(rlp_inf, all_nodes, update_predicate=spec_changed)
        node_ctl.watch(bindings_inf, lambda b: all_nodes(b) if b["metadata"]["name"] == name else [],
                       update_predicate=spec_changed)

        recorder = EventRecorder(ctx.computing, "kubeocean-syncer")
        deps = DependencyMirror(ctx.computing, ctx.worker, namespace, cluster_id, volumes=ctx.volumes.get,
                                secrets=lambda ns, n: ctx.secrets.get(n, ns))
        sync = PodSync(ctx.computing, ctx.worker, deps, target_pod=target_lookup(ctx, namespace),
                       source_object=source_lookup(ctx), recorder=recorder, clock=ctx.clock,
                       unschedulable_timeout=ctx.settings.unschedulable_timeout,
                       cached_target=lambda n: ctx.pods.get(n, namespace))
        sync.counters.hooks.append(self._count)
        pod_queue: WorkQueue[ObjectKey] = WorkQueue(f"pool-pod-{name}")
        pod_rec = PodReconciler(ctx, sync, pod_queue)
        pod_rec.priority_class = priority
        pod_ctl = Controller(f"pool-pod-{name}", pod_rec, pod_queue, workers=ctx.settings.pod_workers)

        def virtual_key(pod: JSON) -> list[ObjectKey]:
            node = (pod.get("spec") or {}).get("nodeName") or ""
            if ctx.vnodes.get(node) is None:
                return []
            return [ObjectKey(pod["metadata"]["namespace"], pod["metadata"]["name"])]

        def physical_key(pod: JSON) -> list[ObjectKey]:
            if pod["metadata"].get("namespace") != namespace:
                return []
            if (pod["metadata"].get("labels") or {}).get(keys.MANAGED_BY) != keys.MANAGED_BY_VALUE:
                return []
            return physical_to_virtual(pod)

        pod_ctl.watch(vpods_inf, virtual_key)
        pod_ctl.watch(pods_inf, physical_key)

        dep_ctl: Controller[DepKey] = Controller(f"pool-deps-{name}", DependencyReconciler(ctx, deps),
                                                 workers=ctx.settings.workers)
        label = keys.synced_by(cluster_id)

        def own_dep(kind: str) -> Callable[[JSON], list[DepKey]]:
            def mapper(obj: JSON) -> list[DepKey]:
                md = obj["metadata"]
                key = DepKey(kind, md["namespace"], md["name"])
                if (md.get("labels") or {}).get(label) or ctx.vpods.by_index(DEPS_INDEX, "/".join(key)):
                    return [key]
                return []
            return mapper

        dep_ctl.watch(cms_inf, own_dep("ConfigMap"))
        dep_ctl.watch(secrets_inf, own_dep("Secret"))
        dep_ctl.watch(claims_inf, own_dep("PersistentVolumeClaim"))
        dep_ctl.watch(volumes_inf, claim_of_volume)
        dep_ctl.watch(vpods_inf, lambda p: [DepKey(*v.split("/", 2)) for v in dep_values(p)])

        policy_queue: WorkQueue[ObjectKey] = WorkQueue(f"pool-policy-{name}")
        policy_ctl = Controller(f"pool-policy-{name}", PolicyReconciler(ctx, policy_queue), policy_queue)
        policy_ctl.watch(rlp_inf)

        hostports = HostPortReconciler(ctx)
        hostport_ctl: Controller[ObjectKey] = Controller(f"pool-hostports-{name}", hostports, workers=2)
        hostport_ctl.watch(pods_inf, physical_node_key)
        hostport_ctl.watch(vnodes_inf, lambda v: [ObjectKey(None, n)] if (
            n := (v["metadata"].get("labels") or {}).get(c.LABEL_PHYSICAL_NODE_NAME)) else [])
        hostport_ctl.watch(vpods_inf, lambda p: placeholder_key(ctx, p))

        teardown_ctl: Controller[ObjectKey] = Controller(
            f"pool-teardown-{name}", Teardown(self.ctx, self.done, node_ctl, deps, namespace, label, hostports))
        teardown_ctl.watch(bindings_inf, lambda b: [ObjectKey(None, name)] if b["metadata"]["name"] == name else [])
        teardown_ctl.watch(vnodes_inf, lambda _v: [ObjectKey(None, name)])

        leases = LeaseKeeper(ctx.computing, ctx.vnodes, clock=ctx.clock, healthy=lambda: ctx.worker_healthy,
                             duration=ctx.settings.lease_duration)
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(computing.run(), name=f"pool/{name}/informers/computing"),
                tg.create_task(worker.run(), name=f"pool/{name}/informers/worker"),
                tg.create_task(leases.run(), name=f"pool/{name}/leases"),
                tg.create_task(self._health(node_ctl), name=f"pool/{name}/health"),
                tg.create_task(self._metrics(namespace, nodes_rec), name=f"pool/{name}/metrics"),
            ]
            controllers = [tg.create_task(ctl.run(), name=f"pool/{ctl.name}")
                           for ctl in (node_ctl, pod_ctl, dep_ctl, policy_ctl, hostport_ctl, teardown_ctl)]
            await computing.wait_synced()
            await worker.wait_synced()
            if self.on_started is not None:
                self.on_started()
            log.info("syncer of binding %s started (cluster %s, proxier port %d)", name, cluster_id, ctx.proxier_port)
            await self.done.wait()
            for task in [*controllers, *tasks]:
                task.cancel()

    def _count(self, what: str) -> None:
        name = self.ctx.binding_name
        if what == "created":
            metrics.create_pod_total.labels(name).inc()
            metrics.pod_created_total.labels(name).inc()
        elif what == "create_error":
            metrics.create_pod_total.labels(name).inc()
            metrics.create_pod_errors.labels(name).inc()
        elif what == "lost":
            metrics.pod_created_failed.labels(name).inc()

    async def _health(self, node_ctl: Controller[ObjectKey]) -> None:
        """Probe the worker API; a return to health re-syncs every node at once."""
        ctx = self.ctx
        every = ctx.settings.lease_duration / 4
        while True:
            try:
                async with asyncio.timeout(ctx.settings.health_timeout):
                    await ctx.worker.get_path("/version")
                healthy = True
            except (TimeoutError, APIError, ClientError):
                healthy = False
            if healthy != ctx.worker_healthy:
                log.warning("worker cluster of binding %s is %s", ctx.binding_name,
                            "reachable again" if healthy else "unreachable")
                ctx.worker_healthy = healthy
                if healthy:
                    for key in ctx.nodes.keys():
                        node_ctl.queue.add(ObjectKey(None, key.name))
            await ctx.clock.sleep(every)

    async def _metrics(self, namespace: str, nodes: NodeReconciler) -> None:
        """Pods by phase and the cluster resource sums, every 15 s."""
        ctx = self.ctx
        while True:
            await asyncio.sleep(METRICS_PERIOD)
            nodes.record_cluster()
            for gauge, pods in ((metrics.virtual_pods, [p for v in ctx.vnodes for p in ctx.vpods.by_node(
                    v["metadata"]["name"])]), (metrics.physical_pods, ctx.pods.list(namespace))):
                counts: dict[str, int] = {}
                for pod in pods:
                    phase = str((pod.get("status") or {}).get("phase") or "Pending")
                    counts[phase] = counts.get(phase, 0) + 1
                for phase in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
                    gauge.labels(ctx.binding_name, phase).set(counts.get(phase, 0))


def spec_changed(old: JSON, new: JSON) -> bool:
    """Updates that matter to every node of the binding: spec or deletion. Status and finalizer
    writes (ours among them) must not re-check a thousand nodes."""
    return old.get("spec") != new.get("spec") or bool(old["metadata"].get("deletionTimestamp")) != bool(
        new["metadata"].get("deletionTimestamp"))
