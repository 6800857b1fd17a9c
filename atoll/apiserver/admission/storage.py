"""Admission for persistent storage (kube-apiserver's plugins of these names).

- ``DefaultStorageClass``: a new PersistentVolumeClaim without ``spec.storageClassName`` gets the
  default StorageClass (annotated ``storageclass.kubernetes.io/is-default-class: "true"``; the
  newest when several are). An explicit ``""`` asks for no class and is kept.
- ``StorageObjectInUseProtection``: new claims get the ``kubernetes.io/pvc-protection`` finalizer
  and new volumes ``kubernetes.io/pv-protection``; the pv-controller removes them once the claim
  is used by no pod / the volume is bound to no claim.
"""

from __future__ import annotations

from typing import Any

from atoll.api.registry import ResourceDef
from atoll.api.storage import PV_PROTECTION, PVC_PROTECTION, STORAGE_CLASSES, is_default_class
from atoll.apiserver.admission.chain import Attributes
from atoll.apiserver.cache.watchcache import WatchCache

JSON = dict[str, Any]


class StorageAdmission:
    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache

    @staticmethod
    def applies_to(rd: ResourceDef) -> bool:
        return rd.group == "" and rd.kind in ("PersistentVolumeClaim", "PersistentVolume")

    async def admit(self, attrs: Attributes) -> None:
        if attrs.operation != "CREATE" or attrs.subresource or attrs.obj is None or attrs.rd.group != "":
            return
        if attrs.rd.kind == "PersistentVolumeClaim":
            spec = attrs.obj.setdefault("spec", {})
            if spec.get("storageClassName") is None:
                default = self.default_class()
                if default is not None:
                    spec["storageClassName"] = default
            _add_finalizer(attrs.obj, PVC_PROTECTION)
        elif attrs.rd.kind == "PersistentVolume":
            _add_finalizer(attrs.obj, PV_PROTECTION)

    def default_class(self) -> str | None:
        defaults = [c.obj for c in self.cache.list(STORAGE_CLASSES.key_prefix()) if is_default_class(c.obj)]
        if not defaults:
            return None
        newest = max(defaults, key=lambda c: (str(c["metadata"].get("creationTimestamp") or ""),
                                              str(c["metadata"].get("name"))))
        return str(newest["metadata"]["name"])


def _add_finalizer(obj: JSON, finalizer: str) -> None:
    md = obj.setdefault("metadata", {})
    finalizers = list(md.get("finalizers") or [])
    if finalizer not in finalizers:
        md["finalizers"] = [*finalizers, finalizer]
