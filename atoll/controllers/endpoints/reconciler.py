"""Reconcile one Service's Endpoints: create, update (only on a difference) or delete them."""

from __future__ import annotations

from typing import Any

from atoll.api.errors import NotFound
from atoll.api.kinds import ENDPOINTS
from atoll.client import Client
from atoll.controllers.endpoints.subsets import desired_labels, desired_subsets, selector_matches
from atoll.runtime import Cache, ObjectKey, Result, get_logger
from atoll.runtime.metrics import controller_writes_total

JSON = dict[str, Any]
log = get_logger(__name__)


def service_selector(service: JSON) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((service.get("spec") or {}).get("selector") or {}).items()}


class EndpointsReconciler:
    """Reads Services, pods and Endpoints from informer caches; writes Endpoints."""

    def __init__(self, client: Client, *, services: Cache, pods: Cache, endpoints: Cache, name: str) -> None:
        self.client = client
        self.services = services
        self.pods = pods
        self.endpoints = endpoints
        self._writes = {verb: controller_writes_total.labels(name, verb) for verb in ("create", "update", "delete")}

    async def reconcile(self, key: ObjectKey) -> Result:
        if not key.namespace:
            return Result()
        service = self.services.get_key(key)
        current = self.endpoints.get_key(key)
        if service is None:
            if current is not None:
                await self._delete(key)
            return Result()
        selector = service_selector(service)
        if not selector:
            return Result()  # no selector: the user manages these Endpoints
        pods = [p for p in self.pods.list(key.namespace) if selector_matches(selector, _labels(p))]
        subsets, labels = desired_subsets(service, pods), desired_labels(service)
        if current is None:
            body: JSON = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": key.name, "labels": labels}}
            if subsets:
                body["subsets"] = subsets
            self._writes["create"].inc()
            await self.client.create(ENDPOINTS, body, key.namespace)  # AlreadyExists: stale cache, retried
            log.debug("created endpoints %s", key)
            return Result()
        meta = current.get("metadata") or {}
        if (current.get("subsets") or []) == subsets and (meta.get("labels") or {}) == labels:
            return Result()
        updated = {**current, "metadata": {**meta, "labels": labels}, "subsets": subsets}
        self._writes["update"].inc()
        try:
            await self.client.update(ENDPOINTS, updated)  # cached resourceVersion is the precondition
        except NotFound:
            return Result(requeue_after=0.1)
        log.debug("updated endpoints %s", key)
        return Result()

    async def _delete(self, key: ObjectKey) -> None:
        self._writes["delete"].inc()
        try:
            await self.client.delete(ENDPOINTS, key.name, key.namespace)
        except NotFound:
            pass


def _labels(obj: JSON) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})
