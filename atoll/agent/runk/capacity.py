"""The capacity a RunK node advertises.

Kuscia requires ``capacity`` for RunK (it cannot see the institution's free resources). Atoll
keeps that rule with one convenience: fields missing from ``capacity`` are taken from the
ResourceQuotas of ``runk.namespace`` (``requests.cpu`` or ``cpu``, ``requests.memory`` or
``memory``, ``pods``; the smallest when several quotas set one), because that quota is exactly
what the namespace may use. ``cpu`` and ``memory`` must come from one of the two, else the agent
refuses to start naming both ways out. Other fields default as for RunP (``pods`` 110).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from atoll.agent.runk.settings import RunKSettingsError
from atoll.api import kinds
from atoll.api.errors import Forbidden
from atoll.api.quantity import parse_quantity
from atoll.client import Client

JSON = dict[str, Any]
FROM_QUOTA = {"cpu": ("requests.cpu", "cpu"), "memory": ("requests.memory", "memory"), "pods": ("pods",)}
REQUIRED = ("cpu", "memory")


def from_quotas(quotas: list[JSON]) -> dict[str, str]:
    """The smallest hard limit of each capacity field over ``quotas``."""
    best: dict[str, tuple[Fraction, str]] = {}
    for quota in quotas:
        hard = (quota.get("status") or {}).get("hard") or (quota.get("spec") or {}).get("hard") or {}
        for field, names in FROM_QUOTA.items():
            value = next((str(hard[n]) for n in names if n in hard), None)
            if value is None:
                continue
            amount = parse_quantity(value)
            if field not in best or amount < best[field][0]:
                best[field] = (amount, value)
    return {field: value for field, (_, value) in best.items()}


async def resolve_capacity(target: Client, namespace: str, configured: dict[str, str]) -> dict[str, str]:
    """``configured`` completed from the namespace's ResourceQuotas; raises when cpu/memory are unknown."""
    capacity = dict(configured)
    if any(field not in capacity for field in (*REQUIRED, "pods")):
        try:
            quotas, _ = await target.list_all(kinds.RESOURCEQUOTAS, namespace)
        except Forbidden:
            quotas = []  # reported by the RunKPermissions condition; configured values still work
        for field, value in from_quotas(quotas).items():
            capacity.setdefault(field, value)
    lacking = [field for field in REQUIRED if field not in capacity]
    if lacking:
        raise RunKSettingsError(
            f"capacity.{lacking[0]}: required for runtime runk (set capacity.{'/'.join(lacking)}, or give "
            f"namespace {namespace} of the institution's cluster a ResourceQuota with requests.{lacking[0]})"
        )
    return capacity
