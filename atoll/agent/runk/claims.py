"""RunK claims: a PersistentVolumeClaim's copy in the institution lives as long as the claim.

A pod's ConfigMaps and Secrets are copied while a pod uses them; a claim is different — its data
must outlive the pods (a task re-run, a StatefulSet pod restarted). The pod sync copies a claim
the first time a pod uses it (unbound: the institution's own storage provisions it, see
:mod:`atoll.mirror.objects`), and its finalizer on the source claim holds the claim's deletion.
This controller releases the copy — and with it the institution's volume — once the source claim
is being deleted and no live pod of this node still uses it; then the claim's deletion proceeds.
"""

from __future__ import annotations

from typing import Any

from atoll.api.errors import NotFound
from atoll.mirror.deps import dependencies
from atoll.mirror.objects import DependencyMirror
from atoll.runtime import Controller, Informer, ObjectKey, Result

JSON = dict[str, Any]
KIND = "PersistentVolumeClaim"


class ClaimReleaser:
    """Reconciles this domain's claims: releases the copy of a claim being deleted."""

    def __init__(self, claims: Informer, pods: Informer, deps: DependencyMirror, name: str) -> None:
        self.claims, self.pods, self.deps = claims, pods, deps
        self.controller: Controller[ObjectKey] = Controller(name, self, workers=1)
        self.controller.watch(claims)
        self.controller.watch(pods, self._claims_of)

    @staticmethod
    def _claims_of(pod: JSON) -> list[ObjectKey]:
        namespace = str(pod["metadata"]["namespace"])
        return [ObjectKey(namespace, name) for name in sorted(dependencies(pod).pvcs)]

    def _ours(self, claim: JSON) -> bool:
        md = claim["metadata"]
        marked = bool((md.get("labels") or {}).get(self.deps.label))
        return marked or self.deps.finalizer in (md.get("finalizers") or ())

    def _used(self, namespace: str, name: str) -> bool:
        return any(not pod["metadata"].get("deletionTimestamp") and pod["metadata"]["namespace"] == namespace
                   and name in dependencies(pod).pvcs for pod in self.pods.cache)

    async def reconcile(self, key: ObjectKey) -> Result:
        assert key.namespace is not None
        claim = self.claims.cache.get(key.name, key.namespace)
        if claim is None or not claim["metadata"].get("deletionTimestamp") or not self._ours(claim):
            return Result()
        if self._used(key.namespace, key.name):
            return Result()  # a pod still mounts it: released when that pod is gone (pods are watched)
        try:
            await self.deps.release(KIND, key.namespace, key.name, claim)
        except NotFound:
            pass
        return Result()

