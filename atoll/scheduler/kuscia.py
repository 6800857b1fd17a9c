"""The ``kuscia-scheduler`` profile: the default filters (resource fit with numbers in its
reasons) plus :class:`~atoll.scheduler.plugins.coscheduling.KusciaScheduling`.

Kuscia's task pods carry ``schedulerName: kuscia-scheduler``, tolerate the agent taint and
select their domain's nodes (``kuscia.secretflow/namespace=<domain>``), so the ordinary taint
and node-selector filters place them; the co-scheduling plugin makes each party's pods and all
parties of a task all-or-nothing.
"""

from __future__ import annotations

from atoll.api.kuscia_tasks import KUSCIA_SCHEDULER, TASKRESOURCES
from atoll.client import Client
from atoll.runtime import Clock, Manager
from atoll.scheduler.framework import Profile
from atoll.scheduler.plugins import (
    DomainIsolation,
    LeastAllocated,
    NamespaceDomain,
    NodeAffinity,
    NodeReady,
    NodeUnschedulable,
    TaintToleration,
)
from atoll.scheduler.plugins.coscheduling import KusciaScheduling
from atoll.scheduler.plugins.detailedfit import DetailedResourcesFit


def kuscia_profile(
    manager: Manager, client: Client, clock: Clock, namespace_domain: NamespaceDomain | None = None
) -> tuple[Profile, KusciaScheduling]:
    """The profile and its co-scheduling plugin (fed by a TaskResource informer of ``manager``)."""
    task_resources = manager.informer(TASKRESOURCES)
    plugin = KusciaScheduling(client, task_resources.cache, clock)
    task_resources.add_handler(
        on_add=lambda tr: plugin.on_task_resource(None, tr),
        on_update=plugin.on_task_resource,
        on_delete=plugin.on_task_resource_delete,
    )
    plugins: list[object] = [
        DomainIsolation(namespace_domain),
        NodeUnschedulable(),
        NodeReady(),
        TaintToleration(),
        NodeAffinity(),
        DetailedResourcesFit(),
        LeastAllocated(),
        plugin,
    ]
    return Profile.from_plugins(KUSCIA_SCHEDULER, plugins), plugin
