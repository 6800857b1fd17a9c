"""Built-in Kubernetes kinds served by Atoll's API server (core/v1, coordination, RBAC, CRDs)."""

from __future__ import annotations

from atoll.api.registry import ResourceDef
from atoll.api.storage import STORAGE_CLASSES
from atoll.api.workload_kinds import WORKLOAD_BUILTINS

_RBAC = "rbac.authorization.k8s.io"

BUILTINS: tuple[ResourceDef, ...] = (
    ResourceDef(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        False,
        ("ns",),
        subresources=("status", "finalize"),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    ResourceDef("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",)),
    ResourceDef("", "v1", "Secret", "secrets", "secret", True),
    ResourceDef(
        "", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True, ("sa",), subresources=("token",)
    ),
    ResourceDef(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        True,
        ("po",),
        ("all",),
        subresources=("status", "binding", "log", "exec", "attach", "portforward", "eviction", "ephemeralcontainers"),
    ),
    ResourceDef("", "v1", "Service", "services", "service", True, ("svc",), ("all",), subresources=("status",)),
    ResourceDef("", "v1", "Endpoints", "endpoints", "endpoints", True, ("ep",), list_kind="EndpointsList"),
    ResourceDef("", "v1", "Node", "nodes", "node", False, ("no",), subresources=("status",)),
    ResourceDef("", "v1", "Event", "events", "event", True, ("ev",)),
    ResourceDef(
        "", "v1", "ResourceQuota", "resourcequotas", "resourcequota", True, ("quota",), subresources=("status",)
    ),
    ResourceDef("", "v1", "LimitRange", "limitranges", "limitrange", True, ("limits",)),
    ResourceDef("coordination.k8s.io", "v1", "Lease", "leases", "lease", True),
    ResourceDef(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        False,
        ("crd", "crds"),
        ("api-extensions",),
        subresources=("status",),
    ),
    ResourceDef(
        "certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests",
        "certificatesigningrequest", False, ("csr",), subresources=("status", "approval"),
    ),
    ResourceDef(_RBAC, "v1", "Role", "roles", "role", True),
    ResourceDef(_RBAC, "v1", "RoleBinding", "rolebindings", "rolebinding", True),
    ResourceDef(_RBAC, "v1", "ClusterRole", "clusterroles", "clusterrole", False),
    ResourceDef(_RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", False),
    *WORKLOAD_BUILTINS,
    STORAGE_CLASSES,
)
