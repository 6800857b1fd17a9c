"""Phase one of a binding's two-phase teardown, run by its syncer (:mod:`atoll.pooling.syncer`)
under the ``kubeocean.io/clusterbinding-syncer`` finalizer: drain and delete every vnode, release
every copied dependency, sweep hostPort placeholders, delete what is still ours in the worker's
``mountNamespace``, release our finalizer on the binding's policies, and only then remove the
syncer finalizer from the binding (which lets the manager finish).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from atoll.api import kinds
from atoll.api.errors import NotFound
from atoll.mirror import keys
from atoll.mirror.objects import PVCS, PVS, DependencyMirror
from atoll.pooling import constants as c
from atoll.pooling.context import SyncContext
from atoll.pooling.hostports import HostPortReconciler
from atoll.pooling.kinds import CLUSTERBINDINGS, RESOURCELEASINGPOLICIES
from atoll.runtime import Controller, ObjectKey, Result

JSON = dict[str, Any]
log = logging.getLogger(__name__)


class Teardown:
    """Phase one of the two-phase teardown (the syncer's finalizer)."""

    def __init__(self, ctx: SyncContext, done: asyncio.Event, node_ctl: Controller[ObjectKey],
                 deps: DependencyMirror, namespace: str, label: str, hostports: HostPortReconciler) -> None:
        self.hostports = hostports
        self.done = done
        self.ctx = ctx
        self.node_ctl = node_ctl
        self.deps = deps
        self.namespace = namespace
        self.label = label

    async def reconcile(self, key: ObjectKey) -> Result:
        ctx = self.ctx
        binding = ctx.binding()
        if binding is None:
            self.done.set()
            return Result()
        if not binding["metadata"].get("deletionTimestamp"):
            return Result()
        if len(ctx.vnodes):
            for vnode in ctx.vnodes:
                physical = (vnode["metadata"].get("labels") or {}).get(c.LABEL_PHYSICAL_NODE_NAME)
                if physical:
                    self.node_ctl.queue.add(ObjectKey(None, physical))
            return Result(requeue_after=ctx.settings.drain_poll)
        for kind, cache in (("ConfigMap", ctx.configmaps), ("Secret", ctx.secrets),
                            ("PersistentVolumeClaim", ctx.claims), ("PersistentVolume", ctx.volumes)):
            for obj in cache:
                md = obj["metadata"]
                if (md.get("labels") or {}).get(self.label) or self.deps.finalizer in (md.get("finalizers") or ()):
                    await self.deps.release(kind, md.get("namespace") or "", md["name"], obj)
        await self.hostports.sweep()
        if await self._leftovers():
            return Result(requeue_after=ctx.settings.drain_poll)
        await self._release_policies()
        md = binding["metadata"]
        finalizers = [f for f in md.get("finalizers") or () if f != c.FINALIZER_SYNCER]
        try:
            await ctx.computing.patch(CLUSTERBINDINGS, md["name"], {"metadata": {
                "finalizers": finalizers, "resourceVersion": md["resourceVersion"]}})
        except NotFound:
            pass
        log.info("binding %s drained; syncer finalizer released", md["name"])
        self.done.set()
        return Result()

    async def _release_policies(self) -> None:
        """Our finalizer must not outlive the syncer on this binding's policies."""
        for policy in self.ctx.policies:
            md = policy["metadata"]
            if (policy.get("spec") or {}).get("cluster") != self.ctx.binding_name:
                continue
            if c.FINALIZER_POLICY in (md.get("finalizers") or ()):
                finalizers = [f for f in md.get("finalizers") or () if f != c.FINALIZER_POLICY]
                with contextlib.suppress(NotFound):
                    await self.ctx.worker.patch(RESOURCELEASINGPOLICIES, md["name"], {"metadata": {
                        "finalizers": finalizers, "resourceVersion": md["resourceVersion"]}})

    async def _leftovers(self) -> int:
        """Delete what is still ours in the worker's mount namespace (and the volumes bound into
        it); how many objects remain."""
        selector = f"{keys.MANAGED_BY}={keys.MANAGED_BY_VALUE}"
        remaining = 0
        for rd in (kinds.PODS, kinds.CONFIGMAPS, kinds.SECRETS, PVCS, PVS):
            namespace = self.namespace if rd.namespaced else None
            items, _ = await self.ctx.worker.list_all(rd, namespace, label_selector=selector)
            for obj in items:
                if not rd.namespaced and ((obj.get("spec") or {}).get("claimRef") or {}).get(
                        "namespace") != self.namespace:
                    continue  # another binding's (or computing cluster's) volume
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(NotFound):
                        await self.ctx.worker.delete(rd, obj["metadata"]["name"], namespace)
        return remaining

