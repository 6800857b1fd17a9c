"""Validation of ClusterBinding and ResourceLeasingPolicy specs; every problem names its field.

ClusterBinding (the manager's step 5, stricter than Kubeocean where Kubeocean only checks for
presence): ``spec.clusterID`` an RFC 1123 label of at most 24 characters, unique among bindings
and immutable once seen; ``spec.secretRef.name``/``.namespace`` set; ``spec.mountNamespace`` an
RFC 1123 label; no empty ``spec.serviceNamespaces`` entry; a well-formed ``spec.nodeSelector``.
ResourceLeasingPolicy: ``spec.cluster`` set, valid time windows (HH:MM, weekday names), and
``resourceLimits`` entries with a resource, a quantity and a percent in 0..100.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from atoll.api.quantity import parse_quantity
from atoll.pooling.selectors import selector_problem
from atoll.pooling.windows import windows_problem

JSON = dict[str, Any]
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_CLUSTER_ID = 24


def binding_problem(binding: JSON, others: Iterable[JSON], known_id: str | None) -> str | None:
    """``"<field>: <why>"`` for the first problem of a ClusterBinding, or None."""
    spec = binding.get("spec") or {}
    cluster_id = spec.get("clusterID")
    if not cluster_id:
        return "spec.clusterID: Required value"
    if not isinstance(cluster_id, str) or not _LABEL.match(cluster_id) or len(cluster_id) > MAX_CLUSTER_ID:
        return (f"spec.clusterID: Invalid value {cluster_id!r}: must be a lowercase RFC 1123 label "
                f"of at most {MAX_CLUSTER_ID} characters")
    if known_id and known_id != cluster_id:
        return f"spec.clusterID: Invalid value {cluster_id!r}: field is immutable (was {known_id!r})"
    name = binding["metadata"]["name"]
    for other in others:
        if other["metadata"]["name"] != name and (other.get("spec") or {}).get("clusterID") == cluster_id:
            return f"spec.clusterID: Duplicate value {cluster_id!r}: used by ClusterBinding {other['metadata']['name']}"
    ref = spec.get("secretRef") or {}
    for key in ("name", "namespace"):
        if not ref.get(key):
            return f"spec.secretRef.{key}: Required value"
    namespace = spec.get("mountNamespace")
    if not namespace:
        return "spec.mountNamespace: Required value"
    if not isinstance(namespace, str) or not _LABEL.match(namespace):
        return f"spec.mountNamespace: Invalid value {namespace!r}: must be a lowercase RFC 1123 label"
    for i, entry in enumerate(spec.get("serviceNamespaces") or ()):
        if not entry:
            return f"spec.serviceNamespaces[{i}]: Required value"
    return selector_problem(spec.get("nodeSelector"), "spec.nodeSelector")


def policy_problem(policy: JSON) -> str | None:
    spec = policy.get("spec") or {}
    if not spec.get("cluster"):
        return "spec.cluster: Required value"
    problem = windows_problem(spec.get("timeWindows")) or selector_problem(spec.get("nodeSelector"),
                                                                          "spec.nodeSelector")
    if problem:
        return problem
    for i, limit in enumerate(spec.get("resourceLimits") or ()):
        path = f"spec.resourceLimits[{i}]"
        if not limit.get("resource"):
            return f"{path}.resource: Required value"
        if limit.get("quantity") is not None:
            try:
                if parse_quantity(limit["quantity"]) < 0:
                    return f"{path}.quantity: must not be negative"
            except ValueError as exc:
                return f"{path}.quantity: {exc}"
        percent = limit.get("percent")
        if percent is not None and (not isinstance(percent, int) or not 0 <= percent <= 100):
            return f"{path}.percent: Invalid value {percent!r}: must be between 0 and 100"
    grace = spec.get("gracefulReclaimPeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or grace < 0):
        return f"spec.gracefulReclaimPeriodSeconds: Invalid value {grace!r}: must not be negative"
    return None
