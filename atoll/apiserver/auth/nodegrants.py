"""What a lite node's own credentials may do (Kubernetes' Node authorizer + NodeRestriction).

A Kuscia lite reaches the master with its domain's ServiceAccount token
(``system:serviceaccount:<domain>:<domain>``); the domain's RBAC grants cover its own namespace
only. ``NodeGrants`` adds exactly what the node agent needs on top, and nothing of another
domain's:

* ``nodes`` (and ``nodes/status``): read any; create, update, patch and delete only nodes labelled
  ``kuscia.secretflow/namespace=<domain>`` (for create: the new object, checked in admission);
* ``leases`` in ``kube-node-lease``: only the lease of a node of its domain;
* ``pods``: list/watch across namespaces only with ``fieldSelector=spec.nodeName=<its node>``;
* ``certificatesigningrequests``: create, get, list, watch (its serving certificate; the approver
  signs only for nodes of its domain).
* ``persistentvolumes``: read any (the agent mounts the volume of a bound claim and watches for
  deleted local-path volumes); update and patch only a volume pinned to a node of its domain
  (removing ``local-path.atoll.dev/cleanup`` after it deleted the directory). These volume rights
  are also given to a registered lite's certificate (``system:node:<domain>``).

``atoll.apiserver.admission.noderestriction`` makes sure a domain identity never writes a Node
labelled for another domain, nor relabels its own node into one, and that its volume writes do
nothing but drop that finalizer (a volume's path, node or claim are never a tenant's to change).
"""

from __future__ import annotations

from typing import Any

from atoll.api.constants import LABEL_DOMAIN_NAME, LABEL_NODE_NAMESPACE, NODE_LEASE_NAMESPACE
from atoll.api.storage import pv_single_node
from atoll.apiserver.auth.rbac import Request
from atoll.apiserver.auth.user import UserInfo
from atoll.apiserver.cache.watchcache import WatchCache

JSON = dict[str, Any]
SA_PREFIX = "system:serviceaccount:"
NODE_PREFIX, NODES_GROUP = "system:node:", "system:nodes"  # a registered lite's certificate
_READ = frozenset({"get", "list", "watch"})
_WRITE = frozenset({"create", "update", "patch", "delete"})


def node_domain(node: JSON | None) -> str | None:
    """The domain a Node belongs to (its ``kuscia.secretflow/namespace`` label), if any."""
    md = (node or {}).get("metadata")
    labels = md.get("labels") if isinstance(md, dict) else None
    value = labels.get(LABEL_NODE_NAMESPACE) if isinstance(labels, dict) else None
    return str(value) if value else None


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

    def _volume_domain(self, name: str) -> str | None:
        cached = self._cache.get(f"/core/persistentvolumes/{name}")
        node = pv_single_node(cached.obj) if cached else None
        return self._node_of(node) if node else None

    def _volume_grant(self, domain: str, req: Request) -> bool:
        if req.subresource:
            return False
        if req.verb in _READ:
            return True
        return req.verb in ("update", "patch") and bool(req.name) and self._volume_domain(req.name) == domain

    def volume_writer(self, user: UserInfo) -> str | None:
        """The domain of ``user`` when it holds the node-agent volume rights (its ServiceAccount or
        its lite's certificate), else None."""
        return self.domain_of(user) or self._lite_domain(user)

    def _lite_domain(self, user: UserInfo) -> str | None:
        """The domain of a registered lite's own certificate (``system:node:<domain>``, group
        ``system:nodes``), when that namespace is a Domain's."""
        if NODES_GROUP not in user.groups or not user.name.startswith(NODE_PREFIX):
            return None
        domain = user.name.removeprefix(NODE_PREFIX)
        cached = self._cache.get(f"/core/namespaces/{domain}")
        labels = ((cached.obj.get("metadata") or {}).get("labels") or {}) if cached else {}
        return domain if labels.get(LABEL_DOMAIN_NAME) == domain else None

    def authorize(self, user: UserInfo, req: Request) -> bool:
        if not req.is_resource or req.api_group not in ("", "coordination.k8s.io", "certificates.k8s.io"):
            return False
        if req.api_group == "" and req.resource == "persistentvolumes":  # the lite's certificate too
            volume_domain = self.volume_writer(user)
            return volume_domain is not None and self._volume_grant(volume_domain, req)
        domain = self.domain_of(user)
        if domain is None:
            return False
        if req.api_group == "certificates.k8s.io":
            # the agent's serving certificate (kubelets' system:certificates.k8s.io rights); which
            # node a request may name is the CSR approver's check (admission/csr.py)
            return req.resource == "certificatesigningrequests" and not req.subresource and req.verb in (
                "create", "get", "list", "watch")
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
            node = req.node_name
            return bool(node) and self._node_of(node) == domain
        return False
