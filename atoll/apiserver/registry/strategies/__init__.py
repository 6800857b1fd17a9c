"""Per-kind strategies, registered by (group, kind): the one place that says how a kind differs.

``Strategies.for_resource(rd)`` answers the registered strategy of a built-in kind, the custom
resource strategy for CRD-served kinds (unless one is registered for the CRD's kind, e.g. the fleet's
``Instance`` with its ``proxy`` subresource), and the plain default for built-ins without one. Adding a
kind with its own defaults, printer or subresources means registering a strategy here.
"""

from __future__ import annotations

from atoll.api.clock import SYSTEM_CLOCK, Clock
from atoll.api.registry import ResourceDef
from atoll.apiserver.auth.reviews import Reviews
from atoll.apiserver.cache.watchcache import WatchCache
from atoll.apiserver.registry.strategies.base import CustomResourceStrategy, KindStrategy
from atoll.apiserver.registry.strategies.core import EmptyStatusStrategy, SecretStrategy, ServiceStrategy
from atoll.apiserver.registry.strategies.csr import CSRStrategy
from atoll.apiserver.registry.strategies.namespaces import NamespaceStrategy
from atoll.apiserver.registry.strategies.pods import PodStrategy, pod_subresources
from atoll.apiserver.registry.strategies.serviceaccounts import TokenSubresource
from atoll.apiserver.tables import printers

__all__ = ["CustomResourceStrategy", "KindStrategy", "Strategies", "builtin_strategies"]

_RBAC = "rbac.authorization.k8s.io"
_DEFAULT = KindStrategy()
_CUSTOM = CustomResourceStrategy()


class Strategies:
    def __init__(self, by_kind: dict[tuple[str, str], KindStrategy] | None = None) -> None:
        self._by_kind = dict(by_kind or {})

    def register(self, group: str, kind: str, strategy: KindStrategy) -> None:
        self._by_kind[(group, kind)] = strategy

    def for_resource(self, rd: ResourceDef) -> KindStrategy:
        if not rd.builtin:
            return self._by_kind.get((rd.group, rd.kind), _CUSTOM)
        return self._by_kind.get((rd.group, rd.kind), _DEFAULT)


def builtin_strategies(
    cache: WatchCache, *, reviews: Reviews | None = None, clock: Clock = SYSTEM_CLOCK
) -> Strategies:
    """The strategies of every built-in kind (``cache`` serves pod logs, ``reviews`` tokens)."""
    return Strategies(
        {
            ("", "Namespace"): NamespaceStrategy(),
            ("", "Pod"): PodStrategy(subresources=pod_subresources(cache, clock)),
            ("", "Secret"): SecretStrategy(),
            ("", "Service"): ServiceStrategy(),
            ("", "ServiceAccount"): KindStrategy(printers.SERVICE_ACCOUNT,
                                                 subresources={"token": TokenSubresource(reviews)}),
            ("", "ResourceQuota"): EmptyStatusStrategy(printers.RESOURCE_QUOTA),
            ("", "ConfigMap"): KindStrategy(printers.CONFIG_MAP),
            ("", "Node"): KindStrategy(printers.NODE),
            ("", "Event"): KindStrategy(printers.EVENT),
            ("", "Endpoints"): KindStrategy(printers.ENDPOINTS),
            ("", "LimitRange"): KindStrategy(printers.CREATED_AT),
            ("coordination.k8s.io", "Lease"): KindStrategy(printers.LEASE),
            ("apiextensions.k8s.io", "CustomResourceDefinition"): EmptyStatusStrategy(printers.CREATED_AT),
            ("certificates.k8s.io", "CertificateSigningRequest"): CSRStrategy(),
            (_RBAC, "Role"): KindStrategy(printers.RBAC_ROLE, name_rule="path"),
            (_RBAC, "ClusterRole"): KindStrategy(printers.RBAC_ROLE, name_rule="path"),
            (_RBAC, "RoleBinding"): KindStrategy(printers.RBAC_BINDING, name_rule="path"),
            (_RBAC, "ClusterRoleBinding"): KindStrategy(printers.RBAC_BINDING, name_rule="path"),
        }
    )
