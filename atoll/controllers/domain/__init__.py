"""Domain controller (Kuscia §2.1): a Domain's namespace, identity, quota, config and status.

Watches Domains, and — filtered by label so that unrelated objects never reach the cache — the
namespaces, ResourceQuotas, ConfigMaps, ServiceAccounts, RoleBindings and DomainDataSources labelled
``kuscia.secretflow/domain-name`` plus the Nodes labelled ``kuscia.secretflow/namespace``. Every
one of them maps to the key of its Domain; see :mod:`.reconciler` for the steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from atoll.api import kinds
from atoll.api.constants import LABEL_DOMAIN_NAME, LABEL_NODE_NAMESPACE
from atoll.controllers import ControllerContext
from atoll.controllers.domain.reconciler import Caches, DomainReconciler
from atoll.datamesh.constants import DOMAINDATASOURCES
from atoll.runtime import Controller, Manager, ObjectKey
from atoll.runtime.keys import JSON

NAME = "domain"
STATUS_PERIOD = 10.0
"""Kuscia re-syncs the status of its own domains every 10 s."""


def by_label(label: str) -> Callable[[JSON], Iterable[ObjectKey]]:
    """Map an object to the Domain named by its ``label``."""

    def mapper(obj: JSON) -> Iterable[ObjectKey]:
        value = ((obj.get("metadata") or {}).get("labels") or {}).get(label)
        return (ObjectKey(None, str(value)),) if value else ()

    return mapper


def setup(manager: Manager, ctx: ControllerContext, *, status_period: float = STATUS_PERIOD) -> None:
    labelled = {"label_selector": LABEL_DOMAIN_NAME}
    informers = {
        "domains": manager.informer(kinds.DOMAINS),
        "namespaces": manager.informer(kinds.NAMESPACES, **labelled),
        "quotas": manager.informer(kinds.RESOURCEQUOTAS, **labelled),
        "configmaps": manager.informer(kinds.CONFIGMAPS, **labelled),
        "serviceaccounts": manager.informer(kinds.SERVICEACCOUNTS, **labelled),
        "rolebindings": manager.informer(kinds.ROLEBINDINGS, **labelled),
        "nodes": manager.informer(kinds.NODES, label_selector=LABEL_NODE_NAMESPACE),
        "datasources": manager.informer(DOMAINDATASOURCES, **labelled),
    }
    caches = Caches(**{name: informer.cache for name, informer in informers.items()})
    reconciler = DomainReconciler(
        ctx.client, caches, master_domain=ctx.master_domain, status_period=status_period, name=NAME
    )
    controller: Controller[ObjectKey] = Controller(NAME, reconciler, workers=ctx.workers)
    for name, informer in informers.items():
        if name == "domains":
            controller.watch(informer)
        else:
            controller.watch(informer, by_label(LABEL_NODE_NAMESPACE if name == "nodes" else LABEL_DOMAIN_NAME))
    manager.add(controller)
