"""ResourceQuota admission: refuse a pod that would exceed a quota of its namespace.

Counts ``pods``, ``count/pods``, ``requests.cpu``/``cpu``, ``requests.memory``/``memory``,
``limits.cpu``, ``limits.memory`` (and any other ``requests.*``/``limits.*`` resource) over the
namespace's non-terminal pods plus the new one, against each quota's ``spec.hard``. The refusal
is Kubernetes' own wording (403 ``exceeded quota: <name>, requested: …, used: …, limited: …``).
Creates of pods are serialised per namespace in ``Objects`` so two concurrent creates cannot both
take the last slot on one server.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from atoll.api import errors
from atoll.api.quantity import format_quantity, parse_quantity
from atoll.apiserver.admission import Attributes
from atoll.apiserver.watchcache import WatchCache

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


def namespace_usage(pods: list[JSON]) -> dict[str, Fraction]:
    total: dict[str, Fraction] = {}
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in TERMINAL or (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        for key, value in pod_usage(pod).items():
            total[key] = total.get(key, Fraction(0)) + value
    return total


class QuotaAdmission:
    def __init__(self, cache: WatchCache) -> None:
        self._cache = cache

    def quotas(self, namespace: str) -> list[JSON]:
        return [c.obj for c in self._cache.list(f"/core/resourcequotas/{namespace}/")]

    async def admit(self, attrs: Attributes) -> None:
        rd = attrs.rd
        if attrs.operation != "CREATE" or rd.group != "" or rd.kind != "Pod" or attrs.obj is None:
            return
        namespace = attrs.namespace or ""
        quotas = self.quotas(namespace)
        if not quotas:
            return
        requested = pod_usage(attrs.obj)
        used = namespace_usage([c.obj for c in self._cache.list(f"/core/pods/{namespace}/")])
        for quota in quotas:
            hard = (quota.get("spec") or {}).get("hard") or {}
            over_req, over_used, over_lim = [], [], []
            for key, limit_text in sorted(hard.items()):
                if key not in requested:
                    continue
                try:
                    limit = parse_quantity(limit_text)
                except ValueError:
                    continue
                current = used.get(key, Fraction(0))
                if current + requested[key] > limit:
                    like = str(limit_text)
                    over_req.append(f"{key}={format_quantity(requested[key], like)}")
                    over_used.append(f"{key}={format_quantity(current, like)}")
                    over_lim.append(f"{key}={limit_text}")
            if over_req:
                raise errors.Forbidden(
                    f'pods "{attrs.name}" is forbidden: exceeded quota: {quota["metadata"]["name"]}, '
                    f"requested: {','.join(over_req)}, used: {','.join(over_used)}, limited: {','.join(over_lim)}"
                )
