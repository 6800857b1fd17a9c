"""What a registered lite may do on the master (contract C5), as RBAC objects.

The lite's API identity is its ``node.crt``: user ``system:node:<domain>``, group
``system:nodes``. The domain's ServiceAccount ``<domain>/<domain>`` (the credential the master's
gateway adds to lite traffic, Kuscia §3.5) gets the same node rights. Granted:

* everything the domain's own ServiceAccount may do **in its namespace** (ClusterRole ``admin``
  bound there): pods and their status, services, endpoints, configmaps, secrets, events, Kuscia
  objects such as its Gateway, DomainData …;
* its **Node**: ``create`` (nameless in RBAC — :class:`LiteNodeRestriction` admission makes
  sure a lite only creates Nodes labelled with its own domain) and get/update/patch/delete of
  ``nodes`` and ``nodes/status`` named after its registered node only; reading Nodes;
* its **Lease** in ``kube-node-lease``: create, and get/update/patch/delete of its own name.

Nothing else: another domain's namespace, Domains, routes and jobs stay out of reach.
"""

from __future__ import annotations

from typing import Any

from atoll.api.constants import NODE_LEASE_NAMESPACE
from atoll.node.registration_messages import NODES_GROUP, node_user

JSON = dict[str, Any]
RBAC = "rbac.authorization.k8s.io"
DOMAIN_ROLE = "admin"
_OWN = ["get", "update", "patch", "delete"]


def identity_name(domain: str) -> str:
    return f"kuscia:lite:{domain}"


def _subjects(domain: str) -> list[JSON]:
    return [
        {"apiGroup": RBAC, "kind": "User", "name": node_user(domain)},
        {"kind": "ServiceAccount", "name": domain, "namespace": domain},
    ]


def _meta(domain: str, namespace: str | None = None) -> JSON:
    meta: JSON = {"name": identity_name(domain), "labels": {"kuscia.secretflow/domain-name": domain}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def cluster_role(domain: str, node_name: str) -> JSON:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": _meta(domain),
        "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch", "create"]},
            {"apiGroups": [""], "resources": ["nodes", "nodes/status"], "resourceNames": [node_name], "verbs": _OWN},
        ],
    }


def cluster_role_binding(domain: str) -> JSON:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(domain),
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": identity_name(domain)},
        "subjects": _subjects(domain),
    }


def lease_role(domain: str, node_name: str) -> JSON:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": _meta(domain, NODE_LEASE_NAMESPACE),
        "rules": [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [node_name],
             "verbs": _OWN},
        ],
    }


def lease_role_binding(domain: str) -> JSON:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": _meta(domain, NODE_LEASE_NAMESPACE),
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": identity_name(domain)},
        "subjects": _subjects(domain),
    }


def namespace_binding(domain: str) -> JSON:
    """The node user gets the domain's own rights in the domain's namespace."""
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": _meta(domain, domain),
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": DOMAIN_ROLE},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": node_user(domain)}],
    }


def identity_objects(domain: str, node_name: str) -> list[JSON]:
    return [
        cluster_role(domain, node_name),
        cluster_role_binding(domain),
        lease_role(domain, node_name),
        lease_role_binding(domain),
        namespace_binding(domain),
    ]


def is_node_user(groups: tuple[str, ...]) -> bool:
    return NODES_GROUP in groups
