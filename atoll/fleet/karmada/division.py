"""Replica division (Karmada ``pkg/scheduler/core``): the Webster / Sainte-Laguë highest-averages
method with Karmada's deterministic tie-break, and the static, dynamic and aggregated strategies.

Tie-break: among clusters with the same quotient, the one holding fewer seats wins; then the
object UID's FNV-32a hash parity picks name-ascending (even) or name-descending (odd) order, so
one object always divides the same way and different objects spread their remainders.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction


class DivisionError(Exception):
    """The replicas cannot be divided (no weight, or not enough available replicas)."""


def fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def webster(
    seats: int, weights: Mapping[str, int], uid: str = "", *, initial: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Allocate ``seats`` among the positive ``weights`` by highest averages (divisors 2s+1)."""
    held = {name: int((initial or {}).get(name, 0)) for name, w in weights.items() if w > 0}
    if not held:
        if seats:
            raise DivisionError("no cluster has a positive weight")
        return {}
    descending = fnv32a(uid) % 2 == 1
    names = sorted(held, reverse=descending)
    order = {name: i for i, name in enumerate(names)}
    for _ in range(seats):
        best = max(names, key=lambda n: (Fraction(weights[n], 2 * held[n] + 1), -held[n], -order[n]))
        held[best] += 1
    return held


def static_weights(clusters: list[str], weight_of: Mapping[str, int]) -> dict[str, int]:
    """Weights from ``staticWeightList`` (clusters not listed get 0; all 1 if nothing is listed)."""
    if not weight_of:
        return dict.fromkeys(clusters, 1)
    return {name: int(weight_of.get(name, 0)) for name in clusters}


def divide_by_availability(replicas: int, available: Mapping[str, int], uid: str) -> dict[str, int]:
    """Dynamic weights: each cluster weighted by the replicas it can still hold."""
    if sum(max(0, a) for a in available.values()) < replicas:
        raise DivisionError(
            f"available replicas {sum(max(0, a) for a in available.values())} are not enough to schedule {replicas}"
        )
    return webster(replicas, {n: max(0, a) for n, a in available.items()}, uid)


def aggregated(replicas: int, available: Mapping[str, int], uid: str) -> dict[str, int]:
    """As few clusters as possible: the shortest prefix (most available first) covering ``replicas``."""
    ordered = sorted(available, key=lambda n: (-available[n], n))
    chosen: dict[str, int] = {}
    total = 0
    for name in ordered:
        if total >= replicas:
            break
        if available[name] > 0:
            chosen[name] = available[name]
            total += available[name]
    return divide_by_availability(replicas, chosen, uid) if replicas else {}
