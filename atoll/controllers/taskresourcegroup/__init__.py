"""TaskResourceGroup / TaskResource controller (Kuscia §2.6): all-or-nothing reservation across parties.

Watches TaskResourceGroups and TaskResources (each TaskResource maps to its group through the
``kuscia.secretflow/task-resource-group`` annotation) and reads the task pods (label
``kuscia.secretflow/controller=kusciatask``) to size the TaskResources. Timers (retry interval,
lifecycle) run on the injected clock. See :mod:`.reconciler` for the phase machine.
"""

from __future__ import annotations

from collections.abc import Iterable

from atoll.api import kinds
from atoll.api.kuscia_tasks import (
    ANNOTATION_TASK_RESOURCE_GROUP,
    CONTROLLER_KUSCIATASK,
    LABEL_CONTROLLER,
    TASKRESOURCEGROUPS,
    TASKRESOURCES,
)
from atoll.controllers import ControllerContext
from atoll.controllers.taskresourcegroup.reconciler import Caches, GroupReconciler
from atoll.runtime import SYSTEM_CLOCK, Clock, Controller, Manager, ObjectKey
from atoll.runtime.keys import JSON

NAME = "taskresourcegroup"


def by_group_annotation(obj: JSON) -> Iterable[ObjectKey]:
    group = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_TASK_RESOURCE_GROUP)
    return (ObjectKey(None, str(group)),) if group else ()


def setup(manager: Manager, ctx: ControllerContext, *, clock: Clock = SYSTEM_CLOCK) -> GroupReconciler:
    groups = manager.informer(TASKRESOURCEGROUPS)
    resources = manager.informer(TASKRESOURCES)
    pods = manager.informer(kinds.PODS, label_selector=f"{LABEL_CONTROLLER}={CONTROLLER_KUSCIATASK}")
    reconciler = GroupReconciler(ctx.client, Caches(groups.cache, resources.cache, pods.cache), clock)
    # two queues over one reconciler (serialised per group): new groups' creation work cannot
    # delay the reservation outcomes the TaskResources report, which pods are waiting on
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    controller.watch(groups)
    reservations: Controller[ObjectKey] = Controller(f"{NAME}-reservations", reconciler, workers=ctx.workers)
    reservations.watch(resources, by_group_annotation)
    reconciler.enqueue = lambda key: reservations.queue.add(key)
    manager.add(controller)
    manager.add(reservations)
    return reconciler
