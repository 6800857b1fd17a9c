"""ResourceQuota controller: keeps every quota's ``status.hard`` and ``status.used`` true.

``status.hard`` mirrors ``spec.hard``; ``status.used`` is recomputed from the namespace's pods
that still count (not finished, not being deleted) with the same usage functions the API
server's quota admission uses (:mod:`atoll.api.podusage`). A pod event enqueues every quota of its
namespace; the status is written through ``/status`` only when it differs.
"""

from __future__ import annotations

from collections.abc import Iterable

from atoll.api.kinds import PODS, RESOURCEQUOTAS
from atoll.controllers import ControllerContext
from atoll.controllers.resourcequota.reconciler import QuotaReconciler
from atoll.runtime import Controller, Manager, ObjectKey
from atoll.runtime.keys import JSON, Gated, key_of, namespace_of

NAME = "resourcequota"


def setup(manager: Manager, ctx: ControllerContext) -> None:
    """Informers on quotas and pods (all namespaces) feed one ``resourcequota`` controller."""
    quotas = manager.informer(RESOURCEQUOTAS)
    pods = manager.informer(PODS)
    reconciler = QuotaReconciler(ctx.client, quotas=quotas.cache, pods=pods.cache, name=NAME)
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    controller.watch(quotas)

    def quotas_of_namespace(pod: JSON) -> Iterable[ObjectKey]:
        namespace = key_of(pod).namespace
        return [key_of(q) for q in quotas.cache.list(namespace)] if namespace else ()

    controller.watch(pods, Gated(quotas_of_namespace, lambda pod: quotas.cache.any_in(namespace_of(pod))),
                     update_predicate=_usage_may_change)
    manager.add(controller)


def _usage_may_change(old: JSON, new: JSON) -> bool:
    """Pod updates that can change quota usage: phase, deletion, or (resized) resources."""
    return bool(
        (old.get("status") or {}).get("phase") != (new.get("status") or {}).get("phase")
        or (old.get("metadata") or {}).get("deletionTimestamp") != (new.get("metadata") or {}).get("deletionTimestamp")
        or (old.get("spec") or {}).get("containers") != (new.get("spec") or {}).get("containers")
        or (old.get("spec") or {}).get("initContainers") != (new.get("spec") or {}).get("initContainers")
    )
