"""Objects every cluster starts with: system namespaces and the default RBAC roles.

``cluster-admin`` (bound to ``system:masters``), the aggregate-style ``admin``/``edit``/``view``
roles for namespace-scoped grants (as in Kubernetes, ``admin`` only reads ResourceQuotas: a domain
cannot change or delete the ``resource-limitation`` quota the platform sets for it), and
``system:basic-user`` so every authenticated identity can ask what it may do (``kubectl auth can-i``,
``kubectl auth whoami``).
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "cross-domain")
_READ = ["get", "list", "watch"]
_WRITE = ["create", "update", "patch", "delete", "deletecollection"]
_NAMESPACED = [
    "pods",
    "pods/log",
    "pods/status",
    "configmaps",
    "secrets",
    "serviceaccounts",
    "services",
    "endpoints",
    "events",
    "resourcequotas",
    "persistentvolumeclaims",
]
# kubectl exec/cp, attach, run -i, port-forward and debug on a namespace's own pods (upstream's edit/admin)
_POD_STREAMS = {"apiGroups": [""], "resources": ["pods/exec", "pods/attach", "pods/portforward",
                                                 "pods/ephemeralcontainers"], "verbs": ["get", "create", "patch",
                                                                                        "update"]}


def _role(name: str, rules: list[JSON]) -> JSON:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": rules,
    }


def _binding(name: str, role: str, group: str) -> JSON:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }


def default_cluster_roles() -> list[JSON]:
    return [
        _role(
            "cluster-admin",
            [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}],
        ),
        _role(
            "admin",
            [
                {
                    "apiGroups": [""],
                    "resources": [r for r in _NAMESPACED if r != "resourcequotas"],
                    "verbs": _READ + _WRITE,
                },
                _POD_STREAMS,
                # the platform sets a domain's quota (resource-limitation); its admin only reads it
                {"apiGroups": [""], "resources": ["resourcequotas"], "verbs": _READ},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": _READ + _WRITE},
                {
                    "apiGroups": ["rbac.authorization.k8s.io"],
                    "resources": ["roles", "rolebindings"],
                    "verbs": _READ + _WRITE,
                },
                {"apiGroups": ["kuscia.secretflow"], "resources": ["*"], "verbs": _READ + _WRITE},
            ],
        ),
        _role(
            "edit",
            [
                {
                    "apiGroups": [""],
                    "resources": [r for r in _NAMESPACED if r != "resourcequotas"],
                    "verbs": _READ + _WRITE,
                },
                _POD_STREAMS,
                {"apiGroups": ["kuscia.secretflow"], "resources": ["*"], "verbs": _READ + _WRITE},
            ],
        ),
        _role(
            "view",
            [
                {"apiGroups": [""], "resources": [r for r in _NAMESPACED if r != "secrets"], "verbs": _READ},
                {"apiGroups": ["kuscia.secretflow"], "resources": ["*"], "verbs": _READ},
            ],
        ),
        _role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
            ],
        ),
    ]


def default_cluster_role_bindings() -> list[JSON]:
    return [
        _binding("cluster-admin", "cluster-admin", "system:masters"),
        _binding("system:basic-user", "system:basic-user", "system:authenticated"),
    ]
