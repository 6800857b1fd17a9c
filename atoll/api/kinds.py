"""Well-known resource definitions by name, for clients and controllers.

``kind("", "pods")`` or ``kind("kuscia.secretflow", "domains")`` — built-ins from
``atoll.api.builtins`` and the Kuscia CRDs shipped in ``atoll/api/crds``.
"""

from __future__ import annotations

import functools

from atoll.api.builtins import BUILTINS
from atoll.api.crd import crd_to_resource_defs, kuscia_crds
from atoll.api.registry import ResourceDef


@functools.cache
def _all() -> dict[tuple[str, str], ResourceDef]:
    out = {(rd.group, rd.plural): rd for rd in BUILTINS}
    for crd in kuscia_crds():
        for rd in crd_to_resource_defs(crd):
            out.setdefault((rd.group, rd.plural), rd)
    return out


def kind(group: str, plural: str) -> ResourceDef:
    """The ResourceDef for ``plural`` in ``group``; ``KeyError`` naming it when unknown."""
    try:
        return _all()[(group, plural)]
    except KeyError:
        raise KeyError(f"unknown resource {plural}.{group or 'core'}") from None


NAMESPACES = kind("", "namespaces")
PODS = kind("", "pods")
NODES = kind("", "nodes")
CONFIGMAPS = kind("", "configmaps")
SECRETS = kind("", "secrets")
SERVICEACCOUNTS = kind("", "serviceaccounts")
RESOURCEQUOTAS = kind("", "resourcequotas")
EVENTS = kind("", "events")
SERVICES = kind("", "services")
ENDPOINTS = kind("", "endpoints")
LEASES = kind("coordination.k8s.io", "leases")
ROLEBINDINGS = kind("rbac.authorization.k8s.io", "rolebindings")
CLUSTERROLES = kind("rbac.authorization.k8s.io", "clusterroles")
CLUSTERROLEBINDINGS = kind("rbac.authorization.k8s.io", "clusterrolebindings")
DOMAINS = kind("kuscia.secretflow", "domains")
DEPLOYMENTS = kind("apps", "deployments")
REPLICASETS = kind("apps", "replicasets")
CONTROLLERREVISIONS = kind("apps", "controllerrevisions")
JOBS = kind("batch", "jobs")
CRONJOBS = kind("batch", "cronjobs")
PODDISRUPTIONBUDGETS = kind("policy", "poddisruptionbudgets")
STATEFULSETS = kind("apps", "statefulsets")
DAEMONSETS = kind("apps", "daemonsets")
REPLICATIONCONTROLLERS = kind("", "replicationcontrollers")
