"""Karmada's names (``pkg/util/names``): bindings, Works, execution namespaces."""

from __future__ import annotations

from atoll.fleet.constants import EXECUTION_PREFIX
from atoll.fleet.karmada.division import fnv32a


def binding_name(kind: str, name: str) -> str:
    """``<name>-<kind>`` lower-cased (``:`` → ``.``)."""
    return f"{name}-{kind}".lower().replace(":", ".")


def work_name(namespace: str, name: str, kind: str) -> str:
    """``<name>-<fnv32a("<ns>-<name>-<kind>")>`` (``<name>-<kind>`` hashed for cluster-scoped)."""
    key = f"{namespace}-{name}-{kind}" if namespace else f"{name}-{kind}"
    return f"{name}-{fnv32a(key)}".lower().replace(":", ".")


def execution_namespace(cluster: str) -> str:
    return EXECUTION_PREFIX + cluster


def cluster_of(execution_ns: str) -> str:
    return execution_ns[len(EXECUTION_PREFIX) :] if execution_ns.startswith(EXECUTION_PREFIX) else ""
