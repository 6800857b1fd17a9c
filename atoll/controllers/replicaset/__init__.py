"""ReplicaSet and ReplicationController controllers (kube-controller-manager's ``replicaset`` and
``replicationcontroller``, one reconciler): keep ``spec.replicas`` pods of each active, adopting
matching orphans and releasing pods that stop matching; see :mod:`.reconciler`. Pods map to the
owner that controls them, orphans to every owner of their namespace whose selector matches them
(adoption)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import BadRequest
from atoll.api.kinds import PODS, REPLICASETS, REPLICATIONCONTROLLERS
from atoll.api.podtemplates import controller_of
from atoll.controllers import ControllerContext
from atoll.controllers.replicaset.reconciler import ReplicaSetReconciler, selector_of
from atoll.runtime import Cache, Controller, Manager, ObjectKey
from atoll.runtime.cache import ORPHAN_INDEX, by_orphan_namespace
from atoll.runtime.expectations import Expectations
from atoll.runtime.keys import JSON, Gated, Mapper, has_owners, key_of, namespace_of
from atoll.runtime.podcontrol import PodControl

NAME = "replicaset"


def setup(manager: Manager, ctx: ControllerContext, *, clock: Clock = SYSTEM_CLOCK) -> None:
    """Two controllers on one reconciler: ``replicaset`` and ``replicationcontroller``."""
    pods = manager.informer(PODS)
    pods.cache.ensure_index(ORPHAN_INDEX, by_orphan_namespace)
    for name, rd, component in ((NAME, REPLICASETS, "replicaset-controller"),
                                ("replicationcontroller", REPLICATIONCONTROLLERS, "replication-controller")):
        owners = manager.informer(rd)
        control = PodControl(ctx.client, component, Expectations(clock=clock))
        reconciler = ReplicaSetReconciler(ctx.client, replicasets=owners.cache, pods=pods.cache,
                                          control=control, clock=clock, rd=rd)
        controller: Controller[ObjectKey] = Controller(name, reconciler, workers=ctx.workers)
        controller.watch(owners)
        controller.watch(pods, owners_of(rd.kind, owners.cache))
        pods.add_handler(on_add=creation_observer(rd.kind, control.expect))
        manager.add(controller)


def creation_observer(kind: str, expect: Expectations) -> Callable[[JSON], None]:
    """Settle the create expectation of each pod of ``kind`` the informer adds."""

    def observe(pod: JSON) -> None:
        ref = controller_of(pod)
        if ref is not None and ref.get("kind") == kind:
            expect.observed(ObjectKey(key_of(pod).namespace, str(ref.get("name", ""))), pod["metadata"]["name"])

    return observe


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
                if selector_of(owner, kind).matches(labels):
                    keys.append(key_of(owner))
            except BadRequest:
                continue
        return keys

    def gate(pod: JSON) -> bool:  # an orphan in a namespace without owners of this kind: no key
        namespace = namespace_of(pod)
        return has_owners(pod) or namespace is None or owners.any_in(namespace)

    return Gated(mapper, gate)
