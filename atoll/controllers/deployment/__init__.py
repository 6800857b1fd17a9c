"""Deployment controller (kube-controller-manager's ``deployment``): rolling updates and
recreates through ReplicaSets, revision history, pause/resume, and the ``Available`` /
``Progressing`` conditions with ``progressDeadlineSeconds`` on the injected clock; see
:mod:`.reconciler`, :mod:`.rollout` (arithmetic) and :mod:`.status` (conditions).

``kubectl rollout undo`` and ``restart`` are client-side edits of the template (as upstream);
this controller then finds (undo) or creates (restart) the matching ReplicaSet.
"""

from __future__ import annotations

from collections.abc import Iterable

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.errors import BadRequest
from atoll.api.kinds import DEPLOYMENTS, PODS, REPLICASETS
from atoll.api.podtemplates import controller_of
from atoll.api.selectors import label_selector_from_spec
from atoll.controllers import ControllerContext
from atoll.controllers.deployment.reconciler import DeploymentReconciler
from atoll.controllers.deployment.rollout import is_rolling
from atoll.runtime import Cache, Controller, Manager, ObjectKey
from atoll.runtime.keys import JSON, Gated, Mapper, has_owners, key_of
from atoll.runtime.wakeups import Wakeups

NAME = "deployment"


def setup(manager: Manager, ctx: ControllerContext, *, clock: Clock = SYSTEM_CLOCK) -> None:
    deployments = manager.informer(DEPLOYMENTS)
    replicasets = manager.informer(REPLICASETS)
    pods = manager.informer(PODS)
    wakeups: Wakeups[ObjectKey] = Wakeups(clock)
    reconciler = DeploymentReconciler(ctx.client, deployments=deployments.cache, replicasets=replicasets.cache,
                                      pods=pods.cache, clock=clock, wakeups=wakeups)
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    wakeups.enqueue = controller.queue.add
    controller.watch(deployments)
    controller.watch(replicasets, _deployments_of(deployments.cache))
    controller.watch(pods, _recreating_deployment_of(deployments.cache, replicasets.cache),
                     update_predicate=_finished_or_gone)
    manager.add(controller)


def _deployments_of(deployments: Cache) -> Mapper:
    """A ReplicaSet's controlling Deployment; for an orphan, every Deployment selecting it."""

    def mapper(rs: JSON) -> Iterable[ObjectKey]:
        namespace = key_of(rs).namespace
        ref = controller_of(rs)
        if ref is not None:
            return (ObjectKey(namespace, str(ref.get("name", ""))),) if ref.get("kind") == "Deployment" else ()
        labels = (rs.get("metadata") or {}).get("labels") or {}
        keys = []
        for d in deployments.list(namespace):
            try:
                if label_selector_from_spec((d.get("spec") or {}).get("selector")).matches(labels):
                    keys.append(key_of(d))
            except BadRequest:
                continue
        return keys

    return mapper


def _recreating_deployment_of(deployments: Cache, replicasets: Cache) -> Mapper:
    """Pods matter only to Recreate Deployments (waiting for the old pods to be gone)."""

    def mapper(pod: JSON) -> Iterable[ObjectKey]:
        namespace = key_of(pod).namespace
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return ()
        rs = replicasets.get(str(ref.get("name", "")), namespace)
        owner = controller_of(rs) if rs is not None else None
        if owner is None or owner.get("kind") != "Deployment":
            return ()
        d = deployments.get(str(owner.get("name", "")), namespace)
        return () if d is None or is_rolling(d) else (key_of(d),)

    return Gated(mapper, has_owners)  # needs a controller reference


def _finished_or_gone(old: JSON, new: JSON) -> bool:
    return (old.get("status") or {}).get("phase") != (new.get("status") or {}).get("phase")
