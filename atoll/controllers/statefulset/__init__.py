"""StatefulSet controller (kube-controller-manager's ``statefulset``): ordered or parallel pods
with stable names, rolling updates with a partition, ControllerRevisions; see :mod:`.reconciler`."""

from __future__ import annotations

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.kinds import CONTROLLERREVISIONS, PODS, STATEFULSETS
from atoll.controllers import ControllerContext
from atoll.controllers.statefulset.claims import PVCS
from atoll.controllers.statefulset.reconciler import StatefulSetReconciler
from atoll.runtime import Controller, Manager, ObjectKey, owner_mapper
from atoll.runtime.expectations import Expectations
from atoll.runtime.podcontrol import PodControl

NAME = "statefulset"


def setup(manager: Manager, ctx: ControllerContext, *, clock: Clock = SYSTEM_CLOCK) -> None:
    statefulsets = manager.informer(STATEFULSETS)
    pods = manager.informer(PODS)
    revisions = manager.informer(CONTROLLERREVISIONS)
    claims = manager.informer(PVCS)
    control = PodControl(ctx.client, "statefulset-controller", Expectations(clock=clock))
    reconciler = StatefulSetReconciler(ctx.client, statefulsets=statefulsets.cache, pods=pods.cache,
                                       revisions=revisions.cache, control=control, claims=claims.cache)
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    controller.watch(statefulsets)
    controller.watch(pods, owner_mapper("StatefulSet", "apps/v1"))
    controller.watch(revisions, owner_mapper("StatefulSet", "apps/v1"))
    controller.watch(claims, owner_mapper("StatefulSet", "apps/v1", controller_only=False))
    manager.add(controller)
