"""The objects a Domain wants (pure functions of the Domain; no I/O).

None of them carries an ``ownerReference`` to the Domain: deleting a Domain is a *soft* delete
that must leave its namespace and quota in place, and the garbage collector would otherwise
remove them. They carry the ``kuscia.secretflow/domain-name`` label instead, which is also what
the controller's informers select on.
"""

from __future__ import annotations

from typing import Any

from atoll.api.constants import (
    DOMAIN_CONFIGMAP_NAME,
    DOMAIN_QUOTA_NAME,
    LABEL_DELETED,
    LABEL_DOMAIN_NAME,
    LABEL_INTERCONN_PROTOCOLS,
    LABEL_ROLE,
    ROLE_PARTNER,
)

JSON = dict[str, Any]
DOMAIN_ROLE = "admin"
"""The ClusterRole the domain's service account is bound to, in its own namespace only."""
TOKEN_SECONDS = 3650 * 86400
"""Kuscia requests a ten-year service-account token for the lite → master route."""
ROLLING_UPDATE_PERIOD = 86400


def name_of(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def spec_of(domain: JSON) -> JSON:
    spec = domain.get("spec")
    return spec if isinstance(spec, dict) else {}


def is_partner(domain: JSON) -> bool:
    return spec_of(domain).get("role") == ROLE_PARTNER


def pod_max_count(domain: JSON) -> int | None:
    value = (spec_of(domain).get("resourceQuota") or {}).get("podMaxCount")
    return int(value) if isinstance(value, int) else None


def namespace_labels(domain: JSON) -> dict[str, str | None]:
    """Desired namespace labels; ``None`` means "must be absent" (soft-delete mark, unset role)."""
    spec = spec_of(domain)
    protocols = spec.get("interConnProtocols") or []
    return {
        LABEL_DOMAIN_NAME: name_of(domain),
        LABEL_ROLE: spec.get("role") or None,
        LABEL_INTERCONN_PROTOCOLS: str(protocols[0]) if protocols else None,
        LABEL_DELETED: None,
    }


def label_patch(current: JSON | None, wanted: dict[str, str | None]) -> dict[str, str | None]:
    """The merge-patch ``metadata.labels`` that turns ``current``'s labels into ``wanted`` (may be empty)."""
    labels = ((current or {}).get("metadata") or {}).get("labels") or {}
    return {k: v for k, v in wanted.items() if labels.get(k) != v and not (v is None and k not in labels)}


def _meta(name: str, domain: str, namespace: str | None = None) -> JSON:
    meta: JSON = {"name": name, "labels": {LABEL_DOMAIN_NAME: domain}}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def namespace(domain: JSON) -> JSON:
    labels = {k: v for k, v in namespace_labels(domain).items() if v is not None}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name_of(domain), "labels": labels}}


def resource_quota(domain: str, pods: int) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(DOMAIN_QUOTA_NAME, domain, domain),
        "spec": {"hard": {"pods": str(pods)}},
    }


def config_map(domain: str) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(DOMAIN_CONFIGMAP_NAME, domain, domain)}


def service_account(domain: str) -> JSON:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(domain, domain, domain)}


def role_binding_subjects(domain: str) -> list[JSON]:
    return [{"kind": "ServiceAccount", "name": domain, "namespace": domain}]


def role_binding(domain: str) -> JSON:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(domain, domain, domain),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": DOMAIN_ROLE},
        "subjects": role_binding_subjects(domain),
    }


def cluster_domain_route(domain: JSON, master_domain: str, token: str) -> JSON:
    """The lite → master route of a domain with ``spec.authCenter`` (carries its SA token)."""
    name = name_of(domain)
    auth = spec_of(domain).get("authCenter") or {}
    spec: JSON = {
        "source": name,
        "destination": master_domain,
        "authenticationType": auth.get("authenticationType", "Token"),
        "requestHeadersToAdd": {"Authorization": f"Bearer {token}"},
    }
    if auth.get("tokenGenMethod"):
        spec["tokenConfig"] = {"tokenGenMethod": auth["tokenGenMethod"], "rollingUpdatePeriod": ROLLING_UPDATE_PERIOD}
    return {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "ClusterDomainRoute",
        "metadata": _meta(f"{name}-{master_domain}", name),
        "spec": spec,
    }


def token_request() -> JSON:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": TOKEN_SECONDS},
    }
