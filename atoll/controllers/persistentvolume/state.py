"""What the pv-controller's claim and volume syncs share: the informer caches, the client, the
event recorder, and the small writes they both make (finalizers, annotations, status phases).

Every metadata write is a merge patch pinned to the resourceVersion the cache showed, so a stale
cache makes the write fail (and the key retry) instead of undoing someone else's change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atoll.api.constants import LABEL_NODE_NAMESPACE
from atoll.api.errors import NotFound
from atoll.api.kinds import kind
from atoll.api.registry import ResourceDef
from atoll.api.storage import pod_claims
from atoll.client import Client
from atoll.runtime import Cache
from atoll.runtime.events import EventRecorder

JSON = dict[str, Any]
PVCS = kind("", "persistentvolumeclaims")
PVS = kind("", "persistentvolumes")
DOMAIN_LABEL = "kuscia.secretflow/domain-name"
CLAIMS_INDEX = "persistentvolume/claims"
MAX_TOLD = 10_000


def claims_of_pod(pod: JSON) -> list[str]:
    """Index values: ``<namespace>/<claim>`` of every claim a pod uses."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "")
    return [f"{namespace}/{name}" for name in pod_claims(pod)]


def ensure_index(cache: Cache, name: str, func: Any) -> None:
    try:
        cache.add_index(name, func)
    except ValueError:
        pass  # another controller sharing the informer added it


@dataclass
class Volumes:
    client: Client
    claims: Cache
    volumes: Cache
    classes: Cache
    nodes: Cache
    namespaces: Cache
    pods: Cache
    events: EventRecorder
    _told: set[tuple[str, str]] = field(default_factory=set)

    def first_time(self, obj: JSON, reason: str) -> bool:
        """Whether ``reason`` has not been reported for this object yet (by this process): a
        waiting claim is reconciled on every pod event, one Event is enough."""
        key = (str(obj["metadata"].get("uid")), reason)
        if key in self._told:
            return False
        if len(self._told) > MAX_TOLD:
            self._told.clear()
        self._told.add(key)
        return True

    # ---- reads -------------------------------------------------------------------------------

    def domain_of(self, namespace: str) -> str | None:
        labels = ((self.namespaces.get(namespace) or {}).get("metadata") or {}).get("labels") or {}
        return labels.get(DOMAIN_LABEL) or None

    def domain_nodes(self, namespace: str) -> list[JSON] | None:
        """The nodes a claim of ``namespace`` may use (None: any node, not a Domain's namespace)."""
        domain = self.domain_of(namespace)
        if domain is None:
            return None
        return [n for n in self.nodes.list() if ((n.get("metadata") or {}).get("labels") or {}).get(
            LABEL_NODE_NAMESPACE) == domain]

    def in_use(self, claim: JSON) -> bool:
        """A pod that is not finished uses the claim (pvc-protection keeps it)."""
        md = claim["metadata"]
        for pod in self.pods.by_index(CLAIMS_INDEX, f"{md['namespace']}/{md['name']}"):
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                return True
        return False

    # ---- writes ------------------------------------------------------------------------------

    async def patch_meta(self, rd: ResourceDef, obj: JSON, meta: JSON, spec: JSON | None = None) -> JSON | None:
        md = obj["metadata"]
        body: JSON = {"metadata": {**meta, "resourceVersion": md.get("resourceVersion")}}
        if spec:
            body["spec"] = spec
        try:
            return await self.client.patch(rd, md["name"], body, md.get("namespace"))
        except NotFound:
            return None

    async def set_finalizers(self, rd: ResourceDef, obj: JSON, finalizers: list[str]) -> None:
        await self.patch_meta(rd, obj, {"finalizers": finalizers})

    async def add_finalizer(self, rd: ResourceDef, obj: JSON, finalizer: str) -> None:
        current = list(obj["metadata"].get("finalizers") or [])
        if finalizer not in current and not obj["metadata"].get("deletionTimestamp"):
            await self.set_finalizers(rd, obj, [*current, finalizer])

    async def remove_finalizer(self, rd: ResourceDef, obj: JSON, finalizer: str) -> None:
        current = list(obj["metadata"].get("finalizers") or [])
        if finalizer in current:
            await self.set_finalizers(rd, obj, [f for f in current if f != finalizer])

    async def set_status(self, rd: ResourceDef, obj: JSON, status: JSON) -> None:
        current = obj.get("status") or {}
        if all(current.get(k) == v for k, v in status.items()):
            return
        md = obj["metadata"]
        try:
            await self.client.patch(rd, md["name"], {"status": status}, md.get("namespace"), subresource="status")
        except NotFound:
            pass

    async def event(self, obj: JSON, rd: ResourceDef, event_type: str, reason: str, message: str) -> None:
        await self.events.record({**obj, "apiVersion": rd.api_version, "kind": rd.kind}, event_type, reason,
                                 message)
