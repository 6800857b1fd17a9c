"""Table printer of ``storage.k8s.io/v1`` StorageClass (``kubectl get sc``), after Kubernetes'
``printers.go``: the default class is shown as ``NAME (default)``."""

from __future__ import annotations

from typing import Any

from atoll.api.storage import is_default_class
from atoll.apiserver.tables.columns import AGE_COL, NAME_COL, Printer, age, col

JSON = dict[str, Any]


def _storage_class(obj: JSON, now: float) -> list[Any]:
    md = obj.get("metadata") or {}
    name = str(md.get("name", "")) + (" (default)" if is_default_class(obj) else "")
    return [name, obj.get("provisioner", ""), obj.get("reclaimPolicy") or "Delete",
            obj.get("volumeBindingMode") or "Immediate", bool(obj.get("allowVolumeExpansion")),
            age(md.get("creationTimestamp"), now)]


STORAGE_CLASS = Printer([
    NAME_COL, col("Provisioner", "string", "Indicates the type of the provisioner."),
    col("ReclaimPolicy", "string", "Dynamically provisioned PersistentVolumes of this storage class are created "
        "with this reclaimPolicy. Defaults to Delete."),
    col("VolumeBindingMode", "string", "VolumeBindingMode indicates how PersistentVolumeClaims should be "
        "provisioned and bound. When unset, VolumeBindingImmediate is used."),
    col("AllowVolumeExpansion", "string", "AllowVolumeExpansion shows whether the storage class allow volume "
        "expand."),
    AGE_COL,
], _storage_class)
