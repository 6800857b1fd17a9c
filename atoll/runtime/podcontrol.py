"""Creating, deleting, adopting and releasing pods for a controller that owns them (ReplicaSet,
Job): kube-controller-manager's ``PodControl`` plus its ``ControllerExpectations`` (see
:mod:`atoll.runtime.expectations`), with ``SuccessfulCreate``/``SuccessfulDelete`` Events.

Creates go in slow-start batches (1, 2, 4, …) like ``slowStartBatch``: when the first pods fail
(quota, admission), the rest are not attempted in this pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

from atoll.api.errors import AlreadyExists, Conflict, NotFound
from atoll.api.kinds import PODS
from atoll.api.podtemplates import controller_ref
from atoll.client import Client
from atoll.runtime.events import EventRecorder
from atoll.runtime.expectations import Expectations

JSON = dict[str, Any]
BURST = 500  # most pods created or deleted in one pass (``burstReplicas``)


class PodControl:
    def __init__(self, client: Client, component: str, expectations: Expectations) -> None:
        self.client = client
        self.expect = expectations
        self.events = EventRecorder(client, component, correlate=True, clock=expectations.clock)

    async def create_many(self, owner_key: Hashable, owner: JSON, pods: list[JSON]) -> int:
        """Create ``pods`` (slow start); returns how many were created; re-raises the first failure."""
        namespace = owner["metadata"]["namespace"]
        done, batch, pending = 0, 1, pods[:BURST]
        while pending:
            chunk, pending = pending[:batch], pending[batch:]
            results = await asyncio.gather(*(self._create(owner_key, owner, namespace, p) for p in chunk),
                                           return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            done += len(chunk) - len(failures)
            if failures:
                raise failures[0]
            batch *= 2
        return done

    async def _create(self, owner_key: Hashable, owner: JSON, namespace: str, pod: JSON) -> None:
        name = pod["metadata"]["name"]
        self.expect.created(owner_key, name)
        try:
            await self.client.create(PODS, pod, namespace)
        except AlreadyExists:
            return
        except BaseException:
            self.expect.pending_creates(owner_key, [name])  # not coming: forget it
            raise
        await self.events.record(owner, "Normal", "SuccessfulCreate", f"Created pod: {name}")

    async def delete_many(self, owner_key: Hashable, owner: JSON, pods: list[JSON]) -> None:
        await asyncio.gather(*(self._delete(owner_key, owner, p) for p in pods[:BURST]))

    async def _delete(self, owner_key: Hashable, owner: JSON, pod: JSON) -> None:
        md = pod["metadata"]
        self.expect.deleted(owner_key, md["name"])
        try:
            await self.client.delete(PODS, md["name"], md["namespace"], preconditions={"uid": md["uid"]})
        except (NotFound, Conflict):
            return
        await self.events.record(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {md['name']}")

    async def adopt(self, owner: JSON, pod: JSON) -> bool:
        """Add ``owner`` as the controller of an orphan pod (resourceVersion-pinned); False if it moved on."""
        md = pod["metadata"]
        refs = [*(md.get("ownerReferences") or []), controller_ref(owner)]
        return await self._patch_refs(md, refs)

    async def release(self, owner: JSON, pod: JSON) -> bool:
        """Remove ``owner``'s reference from a pod that no longer matches its selector."""
        md, uid = pod["metadata"], owner["metadata"]["uid"]
        refs = [r for r in md.get("ownerReferences") or [] if r.get("uid") != uid]
        return await self._patch_refs(md, refs)

    async def _patch_refs(self, md: JSON, refs: list[JSON]) -> bool:
        patch = {"metadata": {"resourceVersion": md["resourceVersion"], "ownerReferences": refs or None}}
        try:
            await self.client.patch(PODS, md["name"], patch, md["namespace"])
        except (NotFound, Conflict):
            return False
        return True
