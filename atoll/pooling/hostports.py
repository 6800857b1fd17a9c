"""hostPort placeholder pods (Kubeocean's HostPortNodeReconciler).

A worker node's host ports taken by the worker's *own* pods (not ours: their ports are already
known to the computing cluster's scheduler) are invisible to the computing cluster, whose
scheduler would then place a pod wanting the same host port on the vnode, where it could never
start. So for each exported node we keep one placeholder pod in the computing cluster's
namespace ``kubeocean-fake``: ``generateName: fake-pod-for-hostport-``, image ``busybox:1.28``,
priority class ``system-node-critical``, label ``kubeocean.io/hostport-fake-pod=true`` (plus
``managed-by`` and the binding), bound to the vnode (``spec.nodeName``), tolerating every taint,
requesting nothing, and declaring exactly those host ports (``hostPort``, ``protocol``,
``hostIP``; a ``hostNetwork`` pod's container ports count as host ports). It is never synced down
(:mod:`atoll.pooling.topdown` skips it), replaced when the set of ports changes (a pod's ports are
immutable) and deleted when no port is taken or the vnode goes away; teardown deletes what is left.
"""

from __future__ import annotations

import contextlib
from typing import Any

from atoll.api import kinds
from atoll.api.errors import AlreadyExists, Conflict, NotFound
from atoll.pooling import constants as c
from atoll.pooling.capacity import managed
from atoll.pooling.context import SyncContext
from atoll.pooling.vnode import vnode_name
from atoll.runtime import ObjectKey, Result

JSON = dict[str, Any]
Port = tuple[int, str, str]
"""(hostPort, protocol, hostIP)."""
FAKE_NAMESPACE = "kubeocean-fake"
FAKE_LABEL = c.PREFIX + "hostport-fake-pod"
FAKE_IMAGE = "busybox:1.28"
FAKE_PRIORITY_CLASS = "system-node-critical"
ACTIVE = ("Pending", "Running", "")


def host_ports(pod: JSON) -> set[Port]:
    """The host ports a pod holds on its node (app and sidecar init containers)."""
    spec = pod.get("spec") or {}
    containers = [*(spec.get("containers") or ()),
                  *(i for i in spec.get("initContainers") or () if i.get("restartPolicy") == "Always")]
    ports: set[Port] = set()
    for container in containers:
        for port in container.get("ports") or ():
            number = port.get("hostPort") or (port.get("containerPort") if spec.get("hostNetwork") else None)
            if number:
                ports.add((int(number), str(port.get("protocol") or "TCP"), str(port.get("hostIP") or "")))
    return ports


def declared_ports(fake: JSON) -> set[Port]:
    return host_ports(fake)


def physical_node_key(pod: JSON) -> list[ObjectKey]:
    """Worker pod events that can change a node's taken host ports."""
    node = (pod.get("spec") or {}).get("nodeName")
    if not node or managed(pod) or not host_ports(pod):
        return []
    return [ObjectKey(None, node)]


def placeholder_key(ctx: SyncContext, pod: JSON) -> list[ObjectKey]:
    """A placeholder's events concern the physical node behind its vnode (so a deleted one returns)."""
    labels = pod["metadata"].get("labels") or {}
    if pod["metadata"].get("namespace") != FAKE_NAMESPACE or labels.get(FAKE_LABEL) != "true":
        return []
    vnode = ctx.vnodes.get((pod.get("spec") or {}).get("nodeName") or "")
    physical = ((vnode or {}).get("metadata", {}).get("labels") or {}).get(c.LABEL_PHYSICAL_NODE_NAME)
    return [ObjectKey(None, physical)] if physical else []


def placeholder(binding: str, vnode: str, ports: set[Port]) -> JSON:
    declared = [{"containerPort": number, "hostPort": number, "protocol": protocol,
                 **({"hostIP": host_ip} if host_ip else {})} for number, protocol, host_ip in sorted(ports)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "fake-pod-for-hostport-",
            "namespace": FAKE_NAMESPACE,
            "labels": {FAKE_LABEL: "true", c.MANAGED_BY: c.MANAGED_BY_VALUE, c.LABEL_CLUSTER_BINDING: binding},
        },
        "spec": {
            "nodeName": vnode,
            "priorityClassName": FAKE_PRIORITY_CLASS,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "hostport", "image": FAKE_IMAGE, "ports": declared}],
        },
    }


class HostPortReconciler:
    """Key: a physical node. Keeps its vnode's placeholder pod in line with the taken host ports."""

    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx
        self._namespace_ready = False
        self._created: dict[str, set[Port]] = {}
        """vnode → the ports of the placeholder we created and the cache has not shown yet."""

    def vnode_of(self, node: str) -> JSON | None:
        vnode = self.ctx.vnodes.get(vnode_name(self.ctx.cluster_id, node))
        if vnode is None or (vnode["metadata"].get("labels") or {}).get(c.LABEL_PHYSICAL_NODE_NAME) != node:
            return None
        return vnode

    def taken(self, node: str) -> set[Port]:
        ports: set[Port] = set()
        for pod in self.ctx.pods.by_node(node):
            if not managed(pod) and (pod.get("status") or {}).get("phase", "") in ACTIVE:
                ports |= host_ports(pod)
        return ports

    def fakes(self, vnode: str) -> list[JSON]:
        return [p for p in self.ctx.vpods.by_node(vnode)
                if p["metadata"].get("namespace") == FAKE_NAMESPACE
                and (p["metadata"].get("labels") or {}).get(FAKE_LABEL) == "true"]

    async def reconcile(self, key: ObjectKey) -> Result:
        vnode = self.vnode_of(key.name)
        if vnode is None:
            return Result()  # the vnode's fakes go with it (drained); teardown sweeps the rest
        name = vnode["metadata"]["name"]
        gone = bool(vnode["metadata"].get("deletionTimestamp"))
        wanted = set() if gone else self.taken(key.name)
        keep = None
        for fake in self.fakes(name):
            if keep is None and wanted and declared_ports(fake) == wanted and not fake["metadata"].get(
                    "deletionTimestamp"):
                keep = fake
                continue
            await self._delete(fake)
        if keep is not None or not wanted:
            self._created.pop(name, None)
        elif self._created.get(name) != wanted:  # else: ours is created, the cache lags
            await self._create(placeholder(self.ctx.binding_name, name, wanted))
            self._created[name] = wanted
        return Result()

    async def _create(self, body: JSON) -> None:
        if not self._namespace_ready:
            with contextlib.suppress(AlreadyExists):
                await self.ctx.computing.create(kinds.NAMESPACES, {"metadata": {"name": FAKE_NAMESPACE}})
            self._namespace_ready = True
        await self.ctx.computing.create(kinds.PODS, body, FAKE_NAMESPACE)

    async def _delete(self, fake: JSON) -> None:
        md = fake["metadata"]
        with contextlib.suppress(NotFound, Conflict):
            await self.ctx.computing.delete(kinds.PODS, md["name"], FAKE_NAMESPACE, grace_period_seconds=0,
                                            preconditions={"uid": md["uid"]})

    async def sweep(self) -> None:
        """Teardown: delete every placeholder of this binding."""
        for pod in self.ctx.vpods.list(FAKE_NAMESPACE):
            labels = pod["metadata"].get("labels") or {}
            if labels.get(FAKE_LABEL) == "true" and labels.get(c.LABEL_CLUSTER_BINDING) == self.ctx.binding_name:
                await self._delete(pod)
