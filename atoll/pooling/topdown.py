"""Top-down: pods bound to this binding's virtual nodes → physical pods (and their dependencies).

``PodReconciler`` (key: the virtual pod) decides whether a pod is ours — bound to one of this
binding's vnodes, not in a system namespace, not a DaemonSet pod unless allowed (binding flag or
``kubeocean.io/running-daemonset="true"``) — and drives :class:`atoll.mirror.podsync.PodSync`.
Physical pod events are mapped back to the virtual pod through the backward annotations, so one
reconcile sees both sides. ``DependencyReconciler`` (key: kind/namespace/name of a ConfigMap,
Secret or PersistentVolumeClaim — a bound claim brings its PersistentVolume) keeps a copy in the
worker while some pod on a vnode of this binding uses it and removes it (and our label and
finalizer on the original) once none does. A claim's copy, once made, lives as long as the claim
(as in Kubeocean, where a virtual claim's deletion deletes its copy): a claim the worker
provisioned holds data the next pod on the claim must find, so it never goes with its last pod.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from atoll.api import kinds
from atoll.api.errors import NotFound
from atoll.mirror import keys
from atoll.mirror.deps import dependencies
from atoll.mirror.objects import DependencyMirror, csi_secrets
from atoll.mirror.podspec import Placement, workload
from atoll.mirror.podsync import PodSync
from atoll.pooling import constants as c
from atoll.pooling.context import SyncContext
from atoll.runtime import Cache, ObjectKey, Result, WorkQueue

JSON = dict[str, Any]
DEPS_INDEX = "pooling-deps"


class DepKey(NamedTuple):
    kind: str
    namespace: str
    name: str


def dep_values(pod: JSON) -> list[str]:
    """Index values ``Kind/namespace/name`` of the ConfigMaps, Secrets and claims a pod uses."""
    if not (pod.get("spec") or {}).get("nodeName", "").startswith("vnode-"):
        return []
    namespace = pod["metadata"].get("namespace", "")
    return [f"{kind}/{namespace}/{name}" for kind, name in dependencies(pod).items()]


class PodReconciler:
    def __init__(self, ctx: SyncContext, sync: PodSync, queue: WorkQueue[ObjectKey]) -> None:
        self.ctx = ctx
        self.sync = sync
        self.queue = queue

    def ours(self, pod: JSON) -> JSON | None:
        """The vnode of ``pod`` if this binding manages the pod, else None."""
        vnode = self.ctx.vnodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if vnode is None or pod["metadata"]["namespace"] in c.SYSTEM_NAMESPACES:
            return None
        if (pod["metadata"].get("labels") or {}).get("kubeocean.io/hostport-fake-pod") == "true":
            return None
        if workload(pod)[0] == "DaemonSet":
            binding = self.ctx.binding() or {}
            allowed = (binding.get("spec") or {}).get("runningDaemonsetByDefault") or (
                (pod["metadata"].get("annotations") or {}).get(c.ANN_RUNNING_DAEMONSET) == "true"
            )
            if not allowed:
                return None
        return vnode

    async def reconcile(self, key: ObjectKey) -> Result:
        assert key.namespace is not None
        pod = self.ctx.vpods.get(key.name, key.namespace)
        if pod is None:
            await self.sync.delete_orphan(key.namespace, key.name)
            return Result()
        if self.sync.stale(pod):
            return Result()  # our own write's event is on its way and will bring the pod back
        vnode = self.ours(pod)
        if vnode is None:
            return Result()
        if pod["metadata"].get("deletionTimestamp"):
            await self.sync.delete(pod)
            return Result()
        binding = self.ctx.binding() or {}
        spec = binding.get("spec") or {}
        placement = Placement(
            namespace=str(spec.get("mountNamespace")),
            node_name=str((vnode["metadata"].get("labels") or {}).get(c.LABEL_PHYSICAL_NODE_NAME)),
            virtual_node=vnode["metadata"]["name"],
            direct=bool(spec.get("directScheduling")),
            priority_class=self.priority_class,
        )
        again = await self.sync.sync(pod, placement)
        if again is not None:
            self.ctx.timers.after(self.queue, key, again)
        return Result()

    priority_class: str | None = None
    """Set by the syncer once it knows whether the worker serves PriorityClasses."""


def physical_to_virtual(pod: JSON) -> list[ObjectKey]:
    annotations = pod["metadata"].get("annotations") or {}
    namespace, name = annotations.get(keys.VIRTUAL_POD_NAMESPACE), annotations.get(keys.VIRTUAL_POD_NAME)
    return [ObjectKey(namespace, name)] if namespace and name else []


class DependencyReconciler:
    def __init__(self, ctx: SyncContext, mirror: DependencyMirror) -> None:
        self.ctx = ctx
        self.mirror = mirror

    def cache(self, kind: str) -> Cache:
        return dependency_cache(self.ctx, kind)

    def used(self, key: DepKey) -> bool:
        for pod in self.ctx.vpods.by_index(DEPS_INDEX, f"{key.kind}/{key.namespace}/{key.name}"):
            if self.ctx.vnodes.get(pod["spec"]["nodeName"]) is not None:
                return True
        return key.kind == "Secret" and self.held_by_volume(key)

    def held_by_volume(self, key: DepKey) -> bool:
        """A Secret handed to the CSI driver of a volume we copied stays copied with it."""
        for pv in self.ctx.volumes:
            if (pv["metadata"].get("labels") or {}).get(self.mirror.label) and (
                    key.namespace, key.name) in csi_secrets(pv):
                return True
        return False

    async def reconcile(self, key: DepKey) -> Result:
        source = self.cache(key.kind).get(key.name, key.namespace)
        if source is None:
            return Result()
        binding = self.ctx.binding()
        tearing_down = binding is None or bool(binding["metadata"].get("deletionTimestamp"))
        md = source["metadata"]
        copied = self.mirror.finalizer in (md.get("finalizers") or ()) or bool(
            (md.get("labels") or {}).get(self.mirror.label))
        wanted = self.used(key) or (key.kind == "PersistentVolumeClaim" and copied)
        if wanted and not md.get("deletionTimestamp") and not tearing_down:
            await self.mirror.ensure(key.kind, source)
            return Result()
        if copied:
            try:
                await self.mirror.release(key.kind, key.namespace, key.name, source)
            except NotFound:
                pass
        return Result()


def dependency_cache(ctx: SyncContext, kind: str) -> Cache:
    return {"ConfigMap": ctx.configmaps, "Secret": ctx.secrets, "PersistentVolumeClaim": ctx.claims}[kind]


def source_lookup(ctx: SyncContext) -> Any:
    def lookup(kind: str, namespace: str, name: str) -> JSON | None:
        return dependency_cache(ctx, kind).get(name, namespace)

    return lookup


def claim_of_volume(pv: JSON) -> list[DepKey]:
    """A volume's change concerns the claim it is bound to and the Secrets of its CSI driver."""
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    secrets = [DepKey("Secret", namespace, name) for namespace, name in csi_secrets(pv)]
    if not ref.get("name") or not ref.get("namespace"):
        return secrets
    return [DepKey("PersistentVolumeClaim", str(ref["namespace"]), str(ref["name"])), *secrets]


def target_lookup(ctx: SyncContext, namespace: str) -> Any:
    async def lookup(name: str) -> JSON | None:
        cached = ctx.pods.get(name, namespace)
        if cached is not None:
            return cached
        try:
            pod: JSON = await ctx.worker.get(kinds.PODS, name, namespace)
        except NotFound:
            return None
        return pod

    return lookup
