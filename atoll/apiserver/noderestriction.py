"""What a lite node's own credentials may do (Kubernetes' Node authorizer + NodeRestriction).

A Kuscia lite reaches the master with its domain's ServiceAccount token
(``system:serviceaccount:<domain>:<domain>``); the domain's RBAC grants cover its own namespace
only. ``NodeGrants`` adds exactly what the node agent needs on top, and nothing of another
domain's:

* ``nodes`` (and ``nodes/status``): read any; create, update, patch and delete only nodes labelled
  ``kuscia.secretflow/namespace=<domain>`` (for create: the new object, checked in admission);
* ``leases`` in ``kube-node-lease``: only the lease of a node of its domain;
* ``pods``: list/watch across namespaces only with ``fieldSelector=spec.nodeName=<its node>``.

``NodeRestriction`` (admission) makes sure a domain identity never writes a Node labelled for
another domain, nor relabels its own node into one.
"""

from __future__ import annotations

from typing import Any

from atoll.api import errors
from atoll.api.constants import LABEL_DOMAIN_NAME, LABEL_NODE_NAMESPACE, NODE_LEASE_NAMESPACE
from atoll.apiserver.admission import Attributes, UserInfo
from atoll.apiserver.domain_isolation import node_domain
from atoll.apiserver.rbac import Request
from atoll.apiserver.watchcache import WatchCache

JSON = dict[str, Any]
SA_PREFIX = "system:serviceaccount:"
_READ = frozenset({"get", "list", "watch"})
_WRITE = frozenset({"create", "update", "patch", "delete"})


def _node_name_in(field_selector: str) -> str:
    for part in field_selector.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "spec.nodeName":
            return value.lstrip("=").strip()
    return ""


class NodeGrants:
    """Grants node-agent permissions to a domain's own ServiceAccount (consulted after RBAC)."""

    def __init__(self, cache: WatchCache) -> None:
        self._cache = cache

    def domain_of(self, user: UserInfo) -> str | None:
        """The domain whose own ServiceAccount ``user`` is, if any."""
        if not user.name.startswith(SA_PREFIX):
            return None
        namespace, _, name = user.name.removeprefix(SA_PREFIX).partition(":")
        if not namespace or namespace != name:
            return None
        cached = self._cache.get(f"/core/namespaces/{namespace}")
        labels = ((cached.obj.get("metadata") or {}).get("labels") or {}) if cached else {}
        return namespace if labels.get(LABEL_DOMAIN_NAME) == namespace else None

    def _node_of(self, name: str) -> str | None:
        cached = self._cache.get(f"/core/nodes/{name}")
        return node_domain(cached.obj) if cached else None

    def authorize(self, user: UserInfo, req: Request, field_selector: str = "") -> bool:
        if not req.is_resource or req.api_group not in ("", "coordination.k8s.io"):
            return False
        domain = self.domain_of(user)
        if domain is None:
            return False
        if req.api_group == "" and req.resource == "nodes" and req.subresource in ("", "status"):
            if req.verb in _READ:
                return True
            if req.verb == "create":
                return True  # the new object's label is checked by NodeRestriction
            return req.verb in _WRITE and bool(req.name) and self._node_of(req.name) == domain
        if req.resource == "leases" and req.api_group == "coordination.k8s.io":
            if req.namespace != NODE_LEASE_NAMESPACE or req.verb not in _READ | _WRITE:
                return False
            return bool(req.name) and self._node_of(req.name) == domain if req.verb != "create" else True
        if req.api_group == "" and req.resource == "pods" and not req.subresource and req.verb in ("list", "watch"):
            node = _node_name_in(field_selector)
            return bool(node) and self._node_of(node) == domain
        return False


class NodeRestriction:
    """A domain identity writes only Nodes (and node Leases) of its own domain."""

    def __init__(self, grants: NodeGrants, cache: WatchCache) -> None:
        self._grants = grants
        self._cache = cache

    async def admit(self, attrs: Attributes) -> None:
        if attrs.user is None or attrs.operation not in ("CREATE", "UPDATE"):
            return
        plural, group = attrs.rd.plural, attrs.rd.group
        if not ((plural == "nodes" and group == "") or (plural == "leases" and group == "coordination.k8s.io")):
            return
        domain = self._grants.domain_of(attrs.user)
        if domain is None:
            return
        if plural == "nodes":
            for obj in (attrs.obj, attrs.old):
                if obj is not None and node_domain(obj) != domain:
                    raise errors.Forbidden(
                        f'nodes "{attrs.name}" is forbidden: domain "{domain}" may only write nodes labelled '
                        f"{LABEL_NODE_NAMESPACE}={domain}",
                        details={"name": attrs.name, "kind": "nodes"},
                    )
            return
        if attrs.namespace == NODE_LEASE_NAMESPACE:
            cached = self._cache.get(f"/core/nodes/{attrs.name}")
            if cached is None or node_domain(cached.obj) != domain:
                raise errors.Forbidden(
                    f'leases.coordination.k8s.io "{attrs.name}" is forbidden: domain "{domain}" may only write '
                    f"the leases of its own nodes",
                    details={"name": attrs.name, "group": "coordination.k8s.io", "kind": "leases"},
                )
