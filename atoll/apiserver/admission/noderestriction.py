"""NodeRestriction: a domain's own credentials write only Nodes (and node Leases) of that domain.

The grants themselves are ``atoll.apiserver.auth.nodegrants``; this admission plugin checks the
objects: a Node created or updated by a domain identity must be labelled
``kuscia.secretflow/namespace=<domain>`` before and after, and a Lease in ``kube-node-lease`` must
belong to one of its nodes — as Kubernetes' NodeRestriction does for kubelets.
"""

from __future__ import annotations

from typing import Any

from atoll.api import errors
from atoll.api.constants import LABEL_NODE_NAMESPACE, NODE_LEASE_NAMESPACE
from atoll.apiserver.admission.chain import Attributes
from atoll.apiserver.auth.nodegrants import NodeGrants, node_domain
from atoll.apiserver.cache.watchcache import WatchCache

JSON = dict[str, Any]


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
