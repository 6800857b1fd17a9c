"""Strategy of ``storage.k8s.io/v1`` StorageClass: upstream's defaults (``reclaimPolicy: Delete``,
``volumeBindingMode: Immediate``) and its printer. PersistentVolumes and claims keep
``PendingStrategy`` (:mod:`.workloads`); the pv-controller moves them on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver.registry.strategies.base import KindStrategy
from atoll.apiserver.tables.columns import Printer
from atoll.apiserver.tables.storage import STORAGE_CLASS

JSON = dict[str, Any]
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
RECLAIM_POLICIES = ("Delete", "Retain")


@dataclass(frozen=True)
class StorageClassStrategy(KindStrategy):
    printer: Printer | None = STORAGE_CLASS
    tracks_generation: bool = False

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        self.defaults_on_update(rd, obj)

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
        name = str((obj.get("metadata") or {}).get("name") or "")
        for field, allowed in (("volumeBindingMode", BINDING_MODES), ("reclaimPolicy", RECLAIM_POLICIES)):
            if obj[field] not in allowed:
                supported = ", ".join(f'"{a}"' for a in allowed)
                raise errors.invalid(rd.kind, rd.group, name, [errors.cause(
                    "FieldValueNotSupported", field, f'Unsupported value: "{obj[field]}": supported values: '
                    f"{supported}")])
        if not obj.get("provisioner"):
            raise errors.invalid(rd.kind, rd.group, name, [errors.cause("FieldValueRequired", "provisioner",
                                                                        "Required value")])
