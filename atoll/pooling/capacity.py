"""Virtual node capacity: Kubeocean's formula, with its init-container over-count fixed.

``available[r] = max(0, base[r] - Σ requests[r] of non-managed pods)`` where ``base`` is the
physical node's allocatable (capacity when allocatable is empty) and the sum runs over pods on
the node in phase Pending or Running; each such pod also uses 1 ``pods``. Pods created by
pooling itself (label ``kubeocean.io/managed-by=kubeocean``) are not subtracted: the computing
cluster's scheduler already accounts for them against the virtual node.

A pod's request is the kube-scheduler's: ``max(Σ app containers, max init container) +
spec.overhead``. Kubeocean sums init and app containers and ignores overhead, which
over-counts usage (docs/pooling.md, "Differences from Kubeocean").

Then each ResourceLeasingPolicy ``resourceLimits`` entry caps its resource at
``min(quantity, available * percent / 100)`` (either may be absent; percent of the current
*available*, as in Kubeocean), applied only when below ``available``. Resources without an entry
pass through uncapped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from atoll.api.quantity import format_quantity, parse_quantity
from atoll.mirror.keys import MANAGED_BY, MANAGED_BY_VALUE

JSON = dict[str, Any]
Resources = dict[str, Fraction]
ACTIVE_PHASES = ("Pending", "Running")


def _requests(container: JSON) -> Resources:
    out: Resources = {}
    for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
        try:
            out[name] = parse_quantity(value)
        except ValueError:
            continue
    return out


def pod_requests(pod: JSON) -> Resources:
    """max(Σ app containers, max over init containers) + overhead, per resource."""
    spec = pod.get("spec") or {}
    total: Resources = {}
    for container in spec.get("containers") or ():
        for name, value in _requests(container).items():
            total[name] = total.get(name, Fraction(0)) + value
    for container in spec.get("initContainers") or ():
        for name, value in _requests(container).items():
            total[name] = max(total.get(name, Fraction(0)), value)
    for name, value in (spec.get("overhead") or {}).items():
        try:
            total[name] = total.get(name, Fraction(0)) + parse_quantity(value)
        except ValueError:
            continue
    return total


def managed(pod: JSON) -> bool:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY) == MANAGED_BY_VALUE


@dataclass(slots=True)
class Usage:
    physical: Resources = field(default_factory=dict)
    pooled: Resources = field(default_factory=dict)


def node_usage(pods: Iterable[JSON]) -> Usage:
    usage = Usage()
    for pod in pods:
        if (pod.get("status") or {}).get("phase", "Pending") not in ACTIVE_PHASES:
            continue
        bucket = usage.pooled if managed(pod) else usage.physical
        for name, value in pod_requests(pod).items():
            bucket[name] = bucket.get(name, Fraction(0)) + value
        bucket["pods"] = bucket.get("pods", Fraction(0)) + 1
    return usage


def base_resources(node: JSON) -> Resources:
    status = node.get("status") or {}
    raw = status.get("allocatable") or status.get("capacity") or {}
    out: Resources = {}
    for name, value in raw.items():
        try:
            out[name] = parse_quantity(value)
        except ValueError:
            continue
    return out


def available(base: Resources, physical: Resources) -> Resources:
    return {name: max(Fraction(0), value - physical.get(name, Fraction(0))) for name, value in base.items()}


def apply_limits(avail: Resources, limits: Iterable[JSON]) -> Resources:
    """RLP ``resourceLimits`` caps (the smaller of quantity and percent wins)."""
    out = dict(avail)
    for limit in limits:
        name = str(limit.get("resource") or "")
        if name not in out:
            continue
        candidates = []
        quantity = limit.get("quantity")
        if quantity not in (None, "", 0, "0"):
            try:
                candidates.append(parse_quantity(quantity))
            except ValueError:
                pass
        percent = limit.get("percent")
        if isinstance(percent, int) and 0 < percent <= 100:
            candidates.append(_percent_of(name, avail[name], percent))
        if candidates and min(candidates) < out[name]:
            out[name] = min(candidates)
    return out


def _percent_of(name: str, value: Fraction, percent: int) -> Fraction:
    """``value * percent / 100`` rounded down: CPU to millicores, other resources to whole units."""
    scaled = value * percent / 100
    if name == "cpu":
        return Fraction(int(scaled * 1000), 1000)
    return Fraction(int(scaled))


def vnode_capacity(node: JSON, pods: Iterable[JSON], limits: Iterable[JSON]) -> tuple[Resources, Usage]:
    usage = node_usage(pods)
    return apply_limits(available(base_resources(node), usage.physical), limits), usage


def format_resources(resources: Resources, like: dict[str, str]) -> dict[str, str]:
    return {name: format_quantity(value, str(like.get(name, ""))) for name, value in resources.items()}
