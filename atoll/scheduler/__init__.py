"""The scheduler: binds pending pods to nodes through a small plugin framework.

``setup(manager, ctx)`` adds the scheduler to a runtime ``Manager`` (so it runs only on the
leader, next to the controllers). The ``default-scheduler`` profile filters on node readiness,
cordons, taints/tolerations, node selector/affinity and resource fit and scores by least
allocation; more profiles (Kuscia's co-scheduling ``kuscia-scheduler``) are passed as
``profiles=[Profile.from_plugins("kuscia-scheduler", [...])]``. See :mod:`.framework` for the
extension points and :mod:`.scheduler` for the cycles.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from atoll.api.constants import LABEL_DOMAIN_NAME
from atoll.api.kinds import NAMESPACES, NODES, PODS
from atoll.client import Client
from atoll.runtime import SYSTEM_CLOCK, Clock, Controller, Informer, Manager, ObjectKey
from atoll.runtime.keys import Gated
from atoll.scheduler.framework import (
    MAX_NODE_SCORE,
    SUCCESS,
    Code,
    CycleState,
    FilterPlugin,
    PermitPlugin,
    PostBindPlugin,
    PostFilterPlugin,
    PreBindPlugin,
    PreFilterPlugin,
    Profile,
    ReservePlugin,
    ScorePlugin,
    Status,
)
from atoll.scheduler.kuscia import kuscia_profile
from atoll.scheduler.nodeinfo import NodeInfo
from atoll.scheduler.plugins import NamespaceDomain, default_plugins
from atoll.scheduler.plugins.volumebinding import PVCS, PVS, STORAGE_CLASSES, VolumeBinding
from atoll.scheduler.retry import RetrySettings
from atoll.scheduler.scheduler import DEFAULT_SCHEDULER, Scheduler

NAME = "scheduler"
JSON = dict[str, Any]


class SchedulerContext(Protocol):
    """What the scheduler needs from its node (``ControllerContext`` satisfies it)."""

    @property
    def client(self) -> Client: ...


class SchedulerController(Controller[ObjectKey]):
    """A controller whose reconciles start binding-cycle tasks; it owns them in a TaskGroup."""

    def __init__(self, scheduler: Scheduler, *, workers: int = 1) -> None:
        super().__init__(NAME, scheduler, workers=workers)
        self.scheduler = scheduler
        scheduler.retry.requeue = self._requeue

    def _requeue(self, key: ObjectKey, delay: float) -> None:
        self.queue.add_after(key, delay)  # the current queue: run() makes a new one per term

    async def run(self) -> None:
        self.scheduler.cache.reset()
        async with asyncio.TaskGroup() as bindings:
            self.scheduler.bindings = bindings
            try:
                await super().run()
            finally:
                self.scheduler.bindings = None


def default_profile(namespace_domain: NamespaceDomain | None = None, *extra: object) -> Profile:
    return Profile.from_plugins(DEFAULT_SCHEDULER, default_plugins(namespace_domain, *extra))


def setup(
    manager: Manager,
    ctx: SchedulerContext,
    *,
    profiles: Sequence[Profile] | None = None,
    settings: RetrySettings = RetrySettings(),
    workers: int = 4,
    clock: Clock = SYSTEM_CLOCK,
) -> Scheduler:
    """Informers on nodes and pods feed one ``scheduler`` controller added to ``manager``.

    Without ``profiles`` it serves ``default-scheduler`` and Kuscia's co-scheduling
    ``kuscia-scheduler`` (whose reservation windows run on ``clock``)."""
    nodes = manager.informer(NODES)
    pods = manager.informer(PODS)
    namespaces = manager.informer(NAMESPACES)

    def namespace_domain(name: str) -> str | None:
        labels = ((namespaces.cache.get(name) or {}).get("metadata") or {}).get("labels") or {}
        return labels.get(LABEL_DOMAIN_NAME) or None

    coscheduling = None
    volume_informers: tuple[Informer, ...] = ()
    if profiles is None:
        kuscia, coscheduling = kuscia_profile(manager, ctx.client, clock, namespace_domain)
        claims, pvs, classes = manager.informer(PVCS), manager.informer(PVS), manager.informer(STORAGE_CLASSES)
        volumes = VolumeBinding(ctx.client, claims=claims.cache, volumes=pvs.cache, classes=classes.cache)
        profiles = [default_profile(namespace_domain, volumes), kuscia]
        volume_informers = (claims, pvs)
    scheduler = Scheduler(ctx.client, nodes=nodes.cache, pods=pods.cache, profiles=profiles, settings=settings)
    controller = SchedulerController(scheduler, workers=workers)
    if coscheduling is not None:
        coscheduling.activate = lambda key: scheduler.retry.requeue(key, 0.0)
    controller.watch(pods, Gated(scheduler.pods_to_schedule, _unbound), update_predicate=_pod_spec_or_meta_changed)
    pods.add_handler(on_add=scheduler.on_pod_add, on_update=scheduler.on_pod_update, on_delete=scheduler.on_pod_delete)
    nodes.add_handler(on_add=scheduler.on_node_add, on_update=scheduler.on_node_update)
    for informer in volume_informers:  # a claim created or bound may let waiting pods fit
        informer.add_handler(on_add=lambda _o: scheduler.retry.cluster_changed(),
                             on_update=lambda _o, _n: scheduler.retry.cluster_changed())
    manager.add(controller)
    return scheduler


def _unbound(pod: JSON) -> bool:
    """The gate of ``pods_to_schedule``: a pod with ``spec.nodeName`` is never this scheduler's to place."""
    return not (pod.get("spec") or {}).get("nodeName")


def _pod_spec_or_meta_changed(old: JSON, new: JSON) -> bool:
    """Our own ``PodScheduled`` writes change only status; they must not re-trigger scheduling."""
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    return bool(
        old.get("spec") != new.get("spec")
        or old_meta.get("labels") != new_meta.get("labels")
        or old_meta.get("annotations") != new_meta.get("annotations")
        or old_meta.get("deletionTimestamp") != new_meta.get("deletionTimestamp")
    )


__all__ = [
    "DEFAULT_SCHEDULER",
    "MAX_NODE_SCORE",
    "NAME",
    "SUCCESS",
    "Code",
    "CycleState",
    "FilterPlugin",
    "NodeInfo",
    "PermitPlugin",
    "PostBindPlugin",
    "PostFilterPlugin",
    "PreBindPlugin",
    "PreFilterPlugin",
    "Profile",
    "ReservePlugin",
    "RetrySettings",
    "Scheduler",
    "SchedulerContext",
    "SchedulerController",
    "ScorePlugin",
    "Status",
    "default_profile",
    "setup",
]
