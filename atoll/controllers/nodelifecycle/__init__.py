"""Node lifecycle controller: a Node whose heartbeat stopped is marked ``Ready=Unknown``.

Agents renew a Lease named after their Node in ``kube-node-lease`` (Kuscia: every 10 s, lease
duration 180 s). When neither that Lease nor the Node's Ready heartbeat has changed for the grace
period, every condition of the Node becomes ``Unknown`` (reason ``NodeStatusUnknown``), which
``kubectl get nodes`` shows as ``NotReady`` and the Domain controller mirrors into
``Domain.status.nodeStatuses``. The agent sets ``Ready=True`` again when it comes back.
"""

from __future__ import annotations

from collections.abc import Iterable

from atoll.api import kinds
from atoll.api.constants import NODE_LEASE_NAMESPACE
from atoll.controllers import ControllerContext
from atoll.controllers.nodelifecycle.reconciler import NodeLifecycleReconciler, Settings
from atoll.runtime import Controller, Manager, ObjectKey
from atoll.runtime.keys import JSON

NAME = "nodelifecycle"


def setup(manager: Manager, ctx: ControllerContext, *, settings: Settings | None = None) -> None:
    nodes = manager.informer(kinds.NODES)
    leases = manager.informer(kinds.LEASES, NODE_LEASE_NAMESPACE)
    reconciler = NodeLifecycleReconciler(ctx.client, nodes=nodes.cache, leases=leases.cache, settings=settings)
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    controller.watch(nodes)
    controller.watch(leases, _node_of_lease)
    manager.add(controller)


def _node_of_lease(lease: JSON) -> Iterable[ObjectKey]:
    name = (lease.get("metadata") or {}).get("name")
    return (ObjectKey(None, str(name)),) if name else ()


__all__ = ["NAME", "NodeLifecycleReconciler", "Settings", "setup"]
