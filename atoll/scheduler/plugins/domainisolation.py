"""``DomainIsolation``: a pod of a domain namespace fits only its own domain's nodes (or shared ones).

A node labelled ``kuscia.secretflow/namespace=<domain>`` belongs to that domain; a namespace
labelled ``kuscia.secretflow/domain-name`` is that domain's. Pods of non-domain namespaces
(``default``, system namespaces) may use any node; unlabelled nodes take any pod. The API server
refuses a cross-domain binding anyway (``atoll.apiserver.domain_isolation``); this filter keeps the
scheduler from ever trying one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from atoll.api.constants import LABEL_NODE_NAMESPACE
from atoll.scheduler.framework import SUCCESS, CycleState, Status
from atoll.scheduler.nodeinfo import NodeInfo

JSON = dict[str, Any]
NAME = "DomainIsolation"
NamespaceDomain = Callable[[str], str | None]


class DomainIsolation:
    name = NAME

    def __init__(self, namespace_domain: NamespaceDomain | None = None) -> None:
        self._namespace_domain = namespace_domain or (lambda _ns: None)

    def filter(self, state: CycleState, pod: JSON, node: NodeInfo) -> Status:
        theirs = node.labels.get(LABEL_NODE_NAMESPACE)
        namespace = str((pod.get("metadata") or {}).get("namespace") or "")
        if not theirs or theirs == namespace:
            return SUCCESS
        mine = self._namespace_domain(namespace)
        if mine is None or mine == theirs:
            return SUCCESS
        return Status.unschedulable("node(s) belonged to another domain", resolvable=False)
