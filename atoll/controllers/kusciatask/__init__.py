"""KusciaTask controller (Kuscia §2.5): party kits, ports, pods, Services, egress Services and status.

Watches KusciaTasks, AppImages, DomainAppImages, and — filtered by the label
``kuscia.secretflow/controller=kusciatask`` so unrelated objects never reach the cache — the
pods, Services and ConfigMaps it creates, plus TaskResourceGroups. Every one of them maps to the
key of its task (``cross-domain/<task-id>``). See :mod:`.reconciler` for the steps, :mod:`.ports`
for the per-domain port allocator and :mod:`.plan` for contract C2's networking.
"""

from __future__ import annotations

from collections.abc import Iterable

from atoll.api import kinds
from atoll.api.kuscia_tasks import (
    ANNOTATION_TASK_ID,
    APPIMAGES,
    CONTROLLER_KUSCIATASK,
    DOMAINAPPIMAGES,
    KUSCIATASKS,
    LABEL_CONTROLLER,
    TASK_FINISHED,
    TASKRESOURCEGROUPS,
)
from atoll.controllers import ControllerContext
from atoll.controllers.kusciatask.ports import PortAllocator, port_free
from atoll.controllers.kusciatask.reconciler import Caches, TaskReconciler, task_key
from atoll.runtime import SYSTEM_CLOCK, Cache, Clock, Controller, Manager, ObjectKey
from atoll.runtime.keys import JSON

NAME = "kusciatask"


def by_task_annotation(obj: JSON) -> Iterable[ObjectKey]:
    task = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_TASK_ID)
    return (task_key(str(task)),) if task else ()


def by_name(obj: JSON) -> Iterable[ObjectKey]:
    return (task_key(str((obj.get("metadata") or {}).get("name", ""))),)


def live_ports(tasks: Cache, *, probe: bool = False) -> PortAllocator:
    """An allocator whose in-use set is read from the unfinished tasks' ``status.allocatedPorts``
    (``probe``: also skip ports busy on this host, where every lite runs)."""

    def live() -> Iterable[tuple[str, int]]:
        for task in tasks:
            status = task.get("status") or {}
            if status.get("completionTime") or status.get("phase") in TASK_FINISHED:
                continue
            for entry in status.get("allocatedPorts") or []:
                domain = str(entry.get("domainID") or "")
                yield from ((domain, int(p)) for p in (entry.get("namedPort") or {}).values())

    return PortAllocator(live, probe=port_free if probe else None)


def setup(manager: Manager, ctx: ControllerContext, *, clock: Clock = SYSTEM_CLOCK) -> TaskReconciler:
    ours = {"label_selector": f"{LABEL_CONTROLLER}={CONTROLLER_KUSCIATASK}"}
    tasks = manager.informer(KUSCIATASKS)
    app_images = manager.informer(APPIMAGES)
    domain_app_images = manager.informer(DOMAINAPPIMAGES)
    pods = manager.informer(kinds.PODS, **ours)
    services = manager.informer(kinds.SERVICES, **ours)
    configmaps = manager.informer(kinds.CONFIGMAPS, **ours)
    groups = manager.informer(TASKRESOURCEGROUPS, **ours)
    caches = Caches(
        tasks=tasks.cache,
        app_images=app_images.cache,
        domain_app_images=domain_app_images.cache,
        pods=pods.cache,
        services=services.cache,
        configmaps=configmaps.cache,
        groups=groups.cache,
    )
    reconciler = TaskReconciler(ctx.client, caches, live_ports(tasks.cache, probe=ctx.probe_task_ports), clock)
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    controller.watch(tasks)
    controller.watch(pods, by_task_annotation)
    controller.watch(services, by_task_annotation)
    controller.watch(groups, by_name)
    manager.add(controller)
    return reconciler
