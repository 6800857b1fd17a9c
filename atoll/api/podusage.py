"""What pods count against ResourceQuota keys — shared by quota admission and the quota controller.

Counts ``pods``, ``count/pods``, ``requests.cpu``/``cpu``, ``requests.memory``/``memory``,
``limits.cpu``, ``limits.memory`` (and any other ``requests.*``/``limits.*`` resource). A pod that
finished (``Succeeded``/``Failed``) or is being deleted no longer counts, as in Kubernetes. Lives
in ``api`` (the lowest layer) so the API server's admission and the controllers compute usage
with the same code without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from atoll.api.quantity import format_quantity, parse_quantity

JSON = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")


def _container_totals(pod: JSON, kind: str) -> dict[str, Fraction]:
    totals: dict[str, Fraction] = {}
    spec = pod.get("spec") or {}
    for container in spec.get("containers") or []:
        for res, value in ((container.get("resources") or {}).get(kind) or {}).items():
            try:
                totals[res] = totals.get(res, Fraction(0)) + parse_quantity(value)
            except ValueError:
                continue
    for container in spec.get("initContainers") or []:  # init containers run alone: take the max
        for res, value in ((container.get("resources") or {}).get(kind) or {}).items():
            try:
                totals[res] = max(totals.get(res, Fraction(0)), parse_quantity(value))
            except ValueError:
                continue
    return totals


def pod_usage(pod: JSON) -> dict[str, Fraction]:
    """What one pod counts against quota keys."""
    usage: dict[str, Fraction] = {"pods": Fraction(1), "count/pods": Fraction(1)}
    requests, limits = _container_totals(pod, "requests"), _container_totals(pod, "limits")
    for res, value in limits.items():
        requests.setdefault(res, value)  # a limit without a request implies the request
    for res, value in requests.items():
        usage[f"requests.{res}"] = value
        if res in ("cpu", "memory", "ephemeral-storage"):
            usage[res] = value
    for res, value in limits.items():
        usage[f"limits.{res}"] = value
    return usage


def counts(pod: JSON) -> bool:
    """Whether ``pod`` counts against quota (not finished, not being deleted)."""
    return (pod.get("status") or {}).get("phase") not in TERMINAL and not (pod.get("metadata") or {}).get(
        "deletionTimestamp"
    )


def namespace_usage(pods: Iterable[JSON]) -> dict[str, Fraction]:
    """The summed usage of the pods that count."""
    total: dict[str, Fraction] = {}
    for pod in pods:
        if not counts(pod):
            continue
        for key, value in pod_usage(pod).items():
            total[key] = total.get(key, Fraction(0)) + value
    return total


def quota_used(hard: Mapping[str, Any], usage: Mapping[str, Fraction]) -> dict[str, str]:
    """``status.used`` for a quota's ``hard`` keys, each formatted like its limit (``0`` when unused)."""
    return {key: format_quantity(usage.get(key, Fraction(0)), str(limit)) for key, limit in hard.items()}
