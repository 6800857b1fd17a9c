"""DaemonSet controller (kube-controller-manager's ``daemonset``): one pod per eligible node,
rolling template changes node by node; a Domain's DaemonSet stays on that domain's nodes. See
:mod:`.reconciler`. Node and namespace changes re-check every DaemonSet."""

from __future__ import annotations

from collections.abc import Iterable

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.kinds import CONTROLLERREVISIONS, DAEMONSETS, NAMESPACES, NODES, PODS
from atoll.controllers import ControllerContext
from atoll.controllers.daemonset.reconciler import DaemonSetReconciler
from atoll.runtime import Cache, Controller, Manager, ObjectKey, owner_mapper
from atoll.runtime.expectations import Expectations
from atoll.runtime.keys import JSON, Mapper, key_of
from atoll.runtime.podcontrol import PodControl

NAME = "daemonset"


def setup(manager: Manager, ctx: ControllerContext, *, clock: Clock = SYSTEM_CLOCK) -> None:
    daemonsets = manager.informer(DAEMONSETS)
    pods = manager.informer(PODS)
    nodes = manager.informer(NODES)
    namespaces = manager.informer(NAMESPACES)
    revisions = manager.informer(CONTROLLERREVISIONS)
    control = PodControl(ctx.client, "daemonset-controller", Expectations(clock=clock))
    reconciler = DaemonSetReconciler(ctx.client, daemonsets=daemonsets.cache, pods=pods.cache, nodes=nodes.cache,
                                     namespaces=namespaces.cache, control=control, revisions=revisions.cache)
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    controller.watch(daemonsets)
    controller.watch(pods, owner_mapper("DaemonSet", "apps/v1"))
    controller.watch(revisions, owner_mapper("DaemonSet", "apps/v1"))
    controller.watch(nodes, _every(daemonsets.cache), update_predicate=_placement_changed)
    controller.watch(namespaces, _every(daemonsets.cache), update_predicate=_labels_changed)
    manager.add(controller)


def _every(daemonsets: Cache) -> Mapper:
    def mapper(_: JSON) -> Iterable[ObjectKey]:
        return [key_of(ds) for ds in daemonsets.list()]

    return mapper


def _labels_changed(old: JSON, new: JSON) -> bool:
    return (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels")


def _placement_changed(old: JSON, new: JSON) -> bool:
    return _labels_changed(old, new) or (old.get("spec") or {}).get("taints") != (new.get("spec") or {}).get("taints")
