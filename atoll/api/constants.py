"""Kuscia's well-known label and annotation keys and fixed names (``pkg/common/constants.go``).

One place for every string that several components must agree on, so a typo cannot silently
split "the label the controller writes" from "the label the agent selects on".
"""

from __future__ import annotations

import re

KUSCIA_PREFIX = "kuscia.secretflow"

# -- labels ----------------------------------------------------------------------------------------
LABEL_DOMAIN_NAME = "kuscia.secretflow/domain-name"
"""On a domain's namespace and every object the Domain controller creates for it."""
LABEL_NODE_NAMESPACE = "kuscia.secretflow/namespace"
"""On a Node: the domain (namespace) that owns it."""
LABEL_DELETED = "kuscia.secretflow/deleted"
"""``"true"`` on the namespace of a Domain that was deleted (soft delete)."""
LABEL_ROLE = "kuscia.secretflow/role"
LABEL_INTERCONN_PROTOCOLS = "kuscia.secretflow/interconn-protocols"
LABEL_DOMAIN_AUTH = "kuscia.secretflow/domain-auth"
"""``"completed"`` on a Domain once its auth resources (service account, routes) exist."""
LABEL_RUNTIME = "kuscia.secretflow/runtime"
LABEL_CONTROLLER = "kuscia.secretflow/controller"

# -- domains ---------------------------------------------------------------------------------------
ROLE_PARTNER = "partner"
INTERCONN_PROTOCOLS = ("kuscia", "bfia")
RESERVED_DOMAIN_IDS = frozenset({"default", "kube-system", "kube-public", "kube-node-lease", "master", "cross-domain"})
"""Namespaces that already mean something else; the master's own domain (``kuscia-system``) is allowed."""
DOMAIN_QUOTA_NAME = "resource-limitation"
DOMAIN_CONFIGMAP_NAME = "domain-config"
CROSS_DOMAIN_NAMESPACE = "cross-domain"
NODE_LEASE_NAMESPACE = "kube-node-lease"

_RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def domain_id_problem(name: str) -> str | None:
    """Why ``name`` cannot be a domain ID (an RFC 1123 label, not reserved), or ``None``."""
    if not name or len(name) > 63 or not _RFC1123_LABEL.match(name):
        return (
            "a domain ID must be an RFC 1123 label: at most 63 lower-case letters, digits or '-', "
            "starting and ending with a letter or digit (regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    if name in RESERVED_DOMAIN_IDS:
        return f"domain ID {name!r} is reserved (reserved: {', '.join(sorted(RESERVED_DOMAIN_IDS))})"
    return None
