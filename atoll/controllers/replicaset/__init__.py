"""ReplicaSet controller (kube-controller-manager's ``replicaset``): keeps ``spec.replicas`` pods
of each ReplicaSet active, adopting matching orphans and releasing pods that stop matching; see
:mod:`.reconciler`. Pods map to the ReplicaSet that controls them, orphans to every ReplicaSet of
their namespace whose selector matches them (adoption)."""

from __future__ import annotations

from collections.abc import Iterable

from atoll.api.errors import BadRequest
from atoll.api.kinds import PODS, REPLICASETS
from atoll.api.podtemplates import controller_of
from atoll.api.selectors import label_selector_from_spec
from atoll.controllers import ControllerContext
from atoll.controllers.replicaset.reconciler import ReplicaSetReconciler
from atoll.runtime import Cache, Controller, Manager, ObjectKey
from atoll.runtime.clock import SYSTEM_CLOCK, Clock
from atoll.runtime.expectations import Expectations
from atoll.runtime.keys import JSON, Mapper, key_of
from atoll.runtime.podcontrol import PodControl

NAME = "replicaset"


def setup(manager: Manager, ctx: ControllerContext, *, clock: Clock = SYSTEM_CLOCK) -> None:
    replicasets = manager.informer(REPLICASETS)
    pods = manager.informer(PODS)
    control = PodControl(ctx.client, "replicaset-controller", Expectations(clock=clock))
    reconciler = ReplicaSetReconciler(ctx.client, replicasets=replicasets.cache, pods=pods.cache,
                                      control=control, clock=clock)
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    controller.watch(replicasets)
    controller.watch(pods, owners_of("ReplicaSet", replicasets.cache))
    manager.add(controller)


def owners_of(kind: str, owners: Cache) -> Mapper:
    """A pod's controller of ``kind``; for an orphan, every owner whose selector matches it."""

    def mapper(pod: JSON) -> Iterable[ObjectKey]:
        namespace = key_of(pod).namespace
        ref = controller_of(pod)
        if ref is not None:
            return (ObjectKey(namespace, str(ref.get("name", ""))),) if ref.get("kind") == kind else ()
        labels = (pod.get("metadata") or {}).get("labels") or {}
        keys = []
        for owner in owners.list(namespace):
            try:
                if label_selector_from_spec((owner.get("spec") or {}).get("selector")).matches(labels):
                    keys.append(key_of(owner))
            except BadRequest:
                continue
        return keys

    return mapper
