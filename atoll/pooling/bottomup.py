"""Bottom-up: one physical node → one virtual node (Kubeocean's PhysicalNodeReconciler).

Per physical node: never export virtual/serverless nodes; delete the vnode when the node is gone,
deleting, recreated (uid changed), no longer selected by the binding, or matched by no
ResourceLeasingPolicy; otherwise pick the oldest matching policy (ties by name), compute the
capacity (:mod:`atoll.pooling.capacity`), create or update the vnode (:mod:`atoll.pooling.vnode`),
stamp ``kubeocean.io/policy-applied`` on the physical node, and handle the time window: outside
it the vnode is tainted ``kubeocean.io/out-of-time-windows`` (``NoSchedule``, or ``NoExecute``
with ``forceReclaim``) and, with ``forceReclaim``, its pods are evicted once
``gracefulReclaimPeriodSeconds`` have passed since the taint was added. Node deletion: taint
``vnode-deleting`` + unschedulable, delete (the ``kubeocean.io/vnode`` finalizer holds it), evict
its pods, wait until none is Pending/Running, then release the finalizer.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

from atoll.api import kinds
from atoll.api.errors import Conflict, NotFound
from atoll.api.timestamps import format_time, try_parse_time
from atoll.pooling import constants as c
from atoll.pooling import metrics
from atoll.pooling.capacity import base_resources, format_resources, vnode_capacity
from atoll.pooling.context import SyncContext
from atoll.pooling.selectors import matches
from atoll.pooling.vnode import (
    VNodeInputs,
    desired_vnode,
    merge_vnode,
    metadata_differs,
    never_exported,
    status_differs,
    vnode_name,
)
from atoll.pooling.windows import in_windows, seconds_to_next_change
from atoll.runtime import ObjectKey, Result, WorkQueue, get_logger

JSON = dict[str, Any]
log = get_logger(__name__)
LAG_LIMIT = 30.0


def revision(obj: JSON) -> int | None:
    try:
        return int(obj["metadata"].get("resourceVersion") or "")
    except ValueError:
        return None


def oldest_policy(policies: list[JSON]) -> JSON | None:
    ordered = sorted(policies, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))
    return ordered[0] if ordered else None


def policy_details(policy: JSON) -> str:
    parts = []
    for limit in (policy.get("spec") or {}).get("resourceLimits") or ():
        qty = limit.get("quantity")
        pct = limit.get("percent")
        parts.append(f"{limit.get('resource')}={qty if qty is not None else '-'}/{pct if pct is not None else '-'}%")
    return f"{policy['metadata']['name']}({','.join(parts)})"


def tolerates_window(pod: JSON) -> bool:
    return any(
        t.get("key") == c.TAINT_OUT_OF_WINDOW or (not t.get("key") and t.get("operator") == "Exists")
        for t in (pod.get("spec") or {}).get("tolerations") or ()
    )


class NodeReconciler:
    def __init__(self, ctx: SyncContext, queue: WorkQueue[ObjectKey]) -> None:
        self.ctx = ctx
        self.queue = queue
        self.resources: dict[str, tuple[dict[str, Fraction], ...]] = {}
        """vnode → (origin, available, physical usage, pooled usage), for the cluster gauges."""
        self._written: dict[str, tuple[int, float]] = {}
        """vnode → (resourceVersion of our last write, when): the vnode cache lags behind it."""

    def lagging(self, vname: str, vnode: JSON | None) -> bool:
        """True while the cached vnode is older than our own last write to it (its event is on the
        way and brings the node back): reconciling stale state would only repeat that write (or
        fail creating a node that exists). Trusted for ``LAG_LIMIT`` seconds at most."""
        written = self._written.get(vname)
        if written is None:
            return False
        seen = revision(vnode) if vnode is not None else None
        if (seen is None or seen < written[0]) and time.monotonic() - written[1] < LAG_LIMIT:
            return True
        del self._written[vname]
        return False

    def _wrote(self, vnode: JSON) -> None:
        rv = revision(vnode)
        if rv is not None:
            self._written[vnode["metadata"]["name"]] = (rv, time.monotonic())

    def matching_policies(self, binding: JSON, node: JSON) -> list[JSON]:
        return [
            p
            for p in self.ctx.policies
            if (p.get("spec") or {}).get("cluster") == binding["metadata"]["name"]
            and not p["metadata"].get("deletionTimestamp")
            and matches((p.get("spec") or {}).get("nodeSelector"), node)
        ]

    async def reconcile(self, key: ObjectKey) -> Result:
        ctx = self.ctx
        binding = ctx.binding()
        if binding is None or not ctx.cluster_id:
            return Result()
        if not ctx.worker_healthy:
            # what we know of the worker is stale: write nothing (the lease lapses, the node
            # lifecycle controller marks the vnode Unknown); recovery re-enqueues every node
            return Result()
        name = key.name
        vname = vnode_name(ctx.cluster_id, name)
        physical = ctx.nodes.get(name)
        vnode = ctx.vnodes.get(vname)
        if self.lagging(vname, vnode):
            return Result()
        gone = physical is None or bool(physical["metadata"].get("deletionTimestamp"))
        if (
            gone
            or binding["metadata"].get("deletionTimestamp")
            or never_exported(physical or {})
            or not matches((binding.get("spec") or {}).get("nodeSelector"), physical or {})
        ):
            return await self.delete_vnode(vname, vnode, physical, immediate=gone)
        assert physical is not None
        if vnode is not None and (
            vnode["metadata"].get("deletionTimestamp")
            or (vnode["metadata"].get("labels") or {}).get(c.LABEL_PHYSICAL_NODE_UID) != physical["metadata"]["uid"]
        ):
            return await self.delete_vnode(vname, vnode, physical, immediate=True)
        policy = oldest_policy(self.matching_policies(binding, physical))
        if policy is None:
            return await self.delete_vnode(vname, vnode, physical, immediate=False)
        return await self.sync_vnode(binding, physical, vname, vnode, policy)

    async def sync_vnode(self, binding: JSON, physical: JSON, vname: str, vnode: JSON | None, policy: JSON) -> Result:
        ctx = self.ctx
        spec = policy.get("spec") or {}
        now = ctx.clock.now()
        pods = ctx.pods.by_node(physical["metadata"]["name"])
        capacity, usage = vnode_capacity(physical, pods, spec.get("resourceLimits") or ())
        like = (physical.get("status") or {}).get("allocatable") or (physical.get("status") or {}).get("capacity") or {}
        active = in_windows(spec.get("timeWindows"), now, ctx.settings.time_zone)
        inputs = VNodeInputs(
            binding, physical, format_resources(capacity, like), policy["metadata"]["name"], policy_details(policy),
            ctx.proxier_host, ctx.proxier_port, not active, bool(spec.get("forceReclaim")), now,
        )
        merged = merge_vnode(vnode, desired_vnode(inputs, vname, vnode))
        vnode = await self._write(vnode, merged)
        await self._stamp_policy(physical, policy["metadata"]["name"])
        self._record(vname, base_resources(physical), capacity, usage.physical, usage.pooled)
        if not active:
            await self._out_of_window(vnode, spec)
        change = seconds_to_next_change(spec.get("timeWindows"), now, ctx.settings.time_zone)
        if change is not None:
            ctx.timers.after(self.queue, ObjectKey(None, physical["metadata"]["name"]), change)
        return Result(requeue_after=ctx.settings.resync)

    async def _write(self, current: JSON | None, merged: JSON) -> JSON:
        result = await self._write_vnode(current, merged)
        if result is not current:
            self._wrote(result)
        return result

    async def _write_vnode(self, current: JSON | None, merged: JSON) -> JSON:
        client = self.ctx.computing
        if current is None:
            # with its status, as a kubelet registers its Node (kept on create, unlike a pod's);
            # a server that dropped it gets it from the next reconcile's status update
            created: JSON = await client.create(kinds.NODES, merged)
            return created
        result = current
        if metadata_differs(current, merged):
            result = await client.update(kinds.NODES, {**merged, "status": current.get("status") or {}})
        if status_differs(result, merged):
            result = await client.update(kinds.NODES, {**result, "status": {**(result.get("status") or {}),
                                                                             **merged["status"]}},
                                         subresource="status")
        return result

    async def _stamp_policy(self, physical: JSON, policy: str) -> None:
        if (physical["metadata"].get("labels") or {}).get(c.LABEL_POLICY_APPLIED) == policy:
            return
        patch = {"metadata": {"labels": {c.LABEL_POLICY_APPLIED: policy}}}
        await self.ctx.worker.patch(kinds.NODES, physical["metadata"]["name"], patch)

    async def _out_of_window(self, vnode: JSON, spec: JSON) -> None:
        if not spec.get("forceReclaim"):
            return
        taints = (vnode.get("spec") or {}).get("taints") or ()
        taint: JSON = next((t for t in taints if t.get("key") == c.TAINT_OUT_OF_WINDOW), {})
        grace = int(spec.get("gracefulReclaimPeriodSeconds") or 0)
        added = try_parse_time(str(taint.get("timeAdded") or ""))
        if grace > 0 and added is not None:
            remaining = added + grace - self.ctx.clock.now()
            if remaining > 0:
                physical = (vnode["metadata"].get("labels") or {}).get(c.LABEL_PHYSICAL_NODE_NAME, "")
                self.ctx.timers.after(self.queue, ObjectKey(None, physical), remaining)
                return
        for pod in self.ctx.vpods.by_node(vnode["metadata"]["name"]):
            if pod["metadata"].get("deletionTimestamp") or tolerates_window(pod):
                continue
            log.info("evicting %s/%s from %s: outside the leasing window", pod["metadata"]["namespace"],
                     pod["metadata"]["name"], vnode["metadata"]["name"])
            await self._delete_pod(pod)

    async def _delete_pod(self, pod: JSON) -> None:
        md = pod["metadata"]
        try:
            await self.ctx.computing.delete(kinds.PODS, md["name"], md["namespace"], preconditions={"uid": md["uid"]})
        except (NotFound, Conflict):
            pass

    # -- deletion ---------------------------------------------------------------------------

    async def delete_vnode(self, vname: str, vnode: JSON | None, physical: JSON | None, *, immediate: bool) -> Result:
        ctx = self.ctx
        if physical is not None and c.LABEL_POLICY_APPLIED in (physical["metadata"].get("labels") or {}):
            try:
                await ctx.worker.patch(kinds.NODES, physical["metadata"]["name"],
                                       {"metadata": {"labels": {c.LABEL_POLICY_APPLIED: None}}})
            except NotFound:
                pass
        if vnode is None:
            self._forget(vname)
            return Result()
        vnode = await self._mark_deleting(vnode)
        if not vnode["metadata"].get("deletionTimestamp"):
            await ctx.computing.delete(kinds.NODES, vname, preconditions={"uid": vnode["metadata"]["uid"]})
            return Result(requeue_after=ctx.settings.drain_poll)
        remaining = 0
        for pod in ctx.vpods.by_node(vname):
            if pod["metadata"]["namespace"] in c.SYSTEM_NAMESPACES:
                continue
            if (pod.get("status") or {}).get("phase", "Pending") in ("Pending", "Running"):
                remaining += 1
            if not pod["metadata"].get("deletionTimestamp"):
                await self._delete_pod(pod)
        if remaining:
            return Result(requeue_after=ctx.settings.drain_poll)
        finalizers = [f for f in vnode["metadata"].get("finalizers") or () if f != c.FINALIZER_VNODE]
        try:
            await ctx.computing.patch(kinds.NODES, vname, {"metadata": {"finalizers": finalizers,
                                                                        "resourceVersion": vnode["metadata"]
                                                                        ["resourceVersion"]}})
        except NotFound:
            pass
        self._forget(vname)
        return Result()

    async def _mark_deleting(self, vnode: JSON) -> JSON:
        taints = list((vnode.get("spec") or {}).get("taints") or ())
        if any(t.get("key") == c.TAINT_VNODE_DELETING for t in taints) and (vnode.get("spec") or {}).get(
            "unschedulable"
        ):
            return vnode
        taints.append({"key": c.TAINT_VNODE_DELETING, "value": "true", "effect": "NoSchedule"})
        patch = {
            "metadata": {"annotations": {c.ANN_DELETION_TAINT_TIME: format_time(self.ctx.clock.now())},
                         "resourceVersion": vnode["metadata"]["resourceVersion"]},
            "spec": {"taints": taints, "unschedulable": True},
        }
        try:
            result: JSON = await self.ctx.computing.patch(kinds.NODES, vnode["metadata"]["name"], patch)
        except NotFound:
            return vnode
        return result

    # -- metrics ----------------------------------------------------------------------------

    def _record(self, vname: str, base: dict[str, Fraction], avail: dict[str, Fraction],
                physical: dict[str, Fraction], pooled: dict[str, Fraction]) -> None:
        binding = self.ctx.binding_name
        self.resources[vname] = (base, avail, physical, pooled)
        for resource, value in base.items():
            metrics.vnode_origin.labels(binding, vname, resource).set(metrics.unit_value(resource, value))
            metrics.vnode_available.labels(binding, vname, resource).set(
                metrics.unit_value(resource, avail.get(resource, Fraction(0))))
            metrics.vnode_physical_usage.labels(binding, vname, resource).set(
                metrics.unit_value(resource, physical.get(resource, Fraction(0))))
            metrics.vnode_virtual_usage.labels(binding, vname, resource).set(
                metrics.unit_value(resource, pooled.get(resource, Fraction(0))))
        metrics.vnode_total.labels(binding).set(len(self.ctx.vnodes))

    def _forget(self, vname: str) -> None:
        self.resources.pop(vname, None)
        metrics.vnode_total.labels(self.ctx.binding_name).set(len(self.ctx.vnodes))

    def record_cluster(self) -> None:
        """The ``kubeocean_syncer_cluster_*`` gauges: sums over this binding's vnodes."""
        gauges = (metrics.cluster_origin, metrics.cluster_available, metrics.cluster_physical_usage,
                  metrics.cluster_virtual_usage)
        totals: list[dict[str, Fraction]] = [{}, {}, {}, {}]
        for values in self.resources.values():
            for total, per_node in zip(totals, values, strict=True):
                for resource, value in per_node.items():
                    total[resource] = total.get(resource, Fraction(0)) + value
        for gauge, total in zip(gauges, totals, strict=True):
            for resource, value in total.items():
                gauge.labels(self.ctx.binding_name, resource).set(metrics.unit_value(resource, value))
