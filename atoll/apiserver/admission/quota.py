"""ResourceQuota admission: refuse a pod that would exceed a quota of its namespace.

Counts ``pods``, ``count/pods``, ``requests.cpu``/``cpu``, ``requests.memory``/``memory``,
``limits.cpu``, ``limits.memory`` (and any other ``requests.*``/``limits.*`` resource) over the
namespace's non-terminal pods plus the new one, against each quota's ``spec.hard``. The refusal
is Kubernetes' own wording (403 ``exceeded quota: <name>, requested: …, used: …, limited: …``).
The check and a reservation happen in one synchronous step, so two concurrent creates cannot both
take the last slot on one server. A namespace's usage is summed from its pods once (at its first
create under a quota) and then kept up to date from the watch cache's pod events, so a create costs
the same with 10 or 10,000 pods in the namespace.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from atoll.api import errors
from atoll.api.podusage import TERMINAL, counts, namespace_usage, pod_usage
from atoll.api.quantity import format_quantity, parse_quantity
from atoll.api.registry import ResourceDef
from atoll.apiserver.admission.chain import Attributes
from atoll.apiserver.cache.watchcache import WatchCache, WatchEvent

__all__ = ["TERMINAL", "QuotaAdmission", "namespace_usage", "pod_usage"]

JSON = dict[str, Any]


class QuotaAdmission:
    """Checks and reserves in one synchronous step (atomic on the event loop): a pod admitted but
    not yet in the watch cache is counted through its reservation, released when the cache sees
    the pod or when the create fails, so concurrent creates can never overrun a quota."""

    def __init__(self, cache: WatchCache) -> None:
        self._cache = cache
        self._reserved: dict[str, dict[str, dict[str, Fraction]]] = {}  # namespace -> pod key -> usage
        self._usage: dict[str, dict[str, Fraction]] = {}  # namespace -> usage of its counted pods
        cache.add_listener("/core/pods/", self._landed)

    def _landed(self, event: WatchEvent) -> None:
        namespace = event.current.obj["metadata"].get("namespace", "")
        self._release(namespace, event.key)
        usage = self._usage.get(namespace)
        if usage is not None:
            _apply_delta(usage, event)

    def usage(self, namespace: str) -> dict[str, Fraction]:
        """The namespace's usage (pods in the cache), summed once, then maintained from events."""
        usage = self._usage.get(namespace)
        if usage is None:
            pods = self._cache.list(f"/core/pods/{namespace}/")
            usage = self._usage[namespace] = namespace_usage(c.obj for c in pods)
        return usage

    def _release(self, namespace: str, key: str) -> None:
        pods = self._reserved.get(namespace)
        if pods is not None:
            pods.pop(key, None)
            if not pods:
                del self._reserved[namespace]

    def quotas(self, namespace: str) -> list[JSON]:
        return [c.obj for c in self._cache.list(f"/core/resourcequotas/{namespace}/")]

    @staticmethod
    def handles(rd: ResourceDef, operation: str, subresource: str) -> bool:
        return operation == "CREATE"

    @staticmethod
    def applies_to(rd: ResourceDef) -> bool:
        return rd.group == "" and rd.kind == "Pod"

    async def admit(self, attrs: Attributes) -> None:
        rd = attrs.rd
        if attrs.operation != "CREATE" or rd.group != "" or rd.kind != "Pod" or attrs.obj is None:
            return
        namespace = attrs.namespace or ""
        quotas = self.quotas(namespace)
        if not quotas:
            return
        requested = pod_usage(attrs.obj)
        used = dict(self.usage(namespace))
        for reservation in self._reserved.get(namespace, {}).values():
            for key, value in reservation.items():
                used[key] = used.get(key, Fraction(0)) + value
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
        key = attrs.rd.key(namespace, attrs.name)
        self._reserved.setdefault(namespace, {})[key] = requested
        attrs.on_abort.append(lambda: self._release(namespace, key))


def _apply_delta(usage: dict[str, Fraction], event: WatchEvent) -> None:
    """Move ``usage`` by one pod event: its previous state out, its new state in."""
    before = event.previous.obj if event.previous is not None else None
    after = event.current.obj if event.type != "DELETED" else None
    was, now = before is not None and counts(before), after is not None and counts(after)
    if was and now and before is not None and after is not None and before.get("spec") == after.get("spec"):
        return  # a status or metadata change of a pod that still counts: same usage
    if was and before is not None:
        for key, value in pod_usage(before).items():
            usage[key] = usage.get(key, Fraction(0)) - value
    if now and after is not None:
        for key, value in pod_usage(after).items():
            usage[key] = usage.get(key, Fraction(0)) + value
