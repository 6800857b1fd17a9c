"""Reconcile one ResourceQuota: ``status = {hard: spec.hard, used: usage of counted pods}``."""

from __future__ import annotations

from typing import Any

from atoll.api.errors import NotFound
from atoll.api.kinds import RESOURCEQUOTAS
from atoll.api.podusage import namespace_usage, quota_used
from atoll.client import Client
from atoll.runtime import Cache, ObjectKey, Result, get_logger
from atoll.runtime.metrics import controller_writes_total

JSON = dict[str, Any]
log = get_logger(__name__)


def desired_status(quota: JSON, pods: list[JSON]) -> JSON:
    """The status a quota should have given the pods of its namespace."""
    hard = dict((quota.get("spec") or {}).get("hard") or {})
    return {"hard": hard, "used": quota_used(hard, namespace_usage(pods))}


class QuotaReconciler:
    """Reads quotas and pods from informer caches; writes ``/status`` only on a difference."""

    def __init__(self, client: Client, *, quotas: Cache, pods: Cache, name: str = "resourcequota") -> None:
        self.client = client
        self.quotas = quotas
        self.pods = pods
        self._writes = controller_writes_total.labels(name, "update")

    async def reconcile(self, key: ObjectKey) -> Result:
        quota = self.quotas.get_key(key)
        if quota is None or not key.namespace:
            return Result()
        status = desired_status(quota, self.pods.list(key.namespace))
        current = quota.get("status") or {}
        if (current.get("hard") or {}) == status["hard"] and (current.get("used") or {}) == status["used"]:
            return Result()
        body = {**quota, "status": status}
        self._writes.inc()
        try:
            # the cached resourceVersion is the precondition: a stale cache gets 409 and a retry
            await self.client.update(RESOURCEQUOTAS, body, subresource="status")
        except NotFound:
            return Result()
        log.debug("quota %s: used %s", key, status["used"])
        return Result()
