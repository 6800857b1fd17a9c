"""The domain controller's API writes: counted per verb, with the idempotent error cases absorbed.

``create`` treats ``AlreadyExists`` as success (a stale cache or another replica got there
first) and ``delete`` treats ``NotFound`` the same way; everything else propagates so the work
queue retries with backoff. Every call increments ``controller_writes_total{controller,verb}``,
which is how tests and the benchmark prove that an unchanged object is never re-written.
"""

from __future__ import annotations

from typing import Any

from atoll.api.errors import AlreadyExists, NotFound
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.runtime.metrics import controller_writes_total

JSON = dict[str, Any]


class Writes:
    def __init__(self, client: Client, controller: str) -> None:
        self.client = client
        verbs = ("create", "update", "patch", "delete")
        self._count = {verb: controller_writes_total.labels(controller, verb) for verb in verbs}

    async def create(self, rd: ResourceDef, body: JSON, namespace: str | None = None) -> JSON | None:
        """The created object, or ``None`` if it already existed."""
        self._count["create"].inc()
        try:
            return await self.client.create(rd, body, namespace)
        except AlreadyExists:
            return None

    async def patch(
        self, rd: ResourceDef, name: str, patch: JSON, namespace: str | None = None, *, subresource: str | None = None
    ) -> JSON:
        self._count["patch"].inc()
        return await self.client.patch(rd, name, patch, namespace, subresource=subresource)

    async def update_status(self, rd: ResourceDef, body: JSON) -> JSON:
        """PUT ``/status`` with the body's resourceVersion as precondition (409 → retry later)."""
        self._count["update"].inc()
        return await self.client.update(rd, body, subresource="status")

    async def delete(self, rd: ResourceDef, name: str, namespace: str | None = None) -> None:
        self._count["delete"].inc()
        try:
            await self.client.delete(rd, name, namespace)
        except NotFound:
            pass

    async def post(self, path: str, body: JSON) -> JSON:
        """A create on a subresource path (``serviceaccounts/<n>/token``)."""
        self._count["create"].inc()
        result = await self.client.request("POST", path, body=body)
        return result if isinstance(result, dict) else {}
