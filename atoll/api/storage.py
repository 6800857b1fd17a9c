"""Persistent storage vocabulary shared by the API server, the PV controller, the scheduler and the
agents: the ``storage.k8s.io/v1`` StorageClass kind, the annotations and finalizers of
kube-controller-manager's pv-controller, and the local-path provisioner's names (Rancher
local-path-provisioner / K3s compatible: class ``local-path``, provisioner ``rancher.io/local-path``).
"""

from __future__ import annotations

from typing import Any

from atoll.api.registry import ResourceDef

JSON = dict[str, Any]

STORAGE_CLASSES = ResourceDef("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", False,
                              ("sc",))

LOCAL_PATH_CLASS = "local-path"
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"

# pv-controller's annotations
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
SELECTED_NODE = "volume.kubernetes.io/selected-node"

PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
LOCAL_PATH_CLEANUP = "local-path.atoll.dev/cleanup"
"""Held by a local-path PV until the agent of its node removed the directory (Delete reclaim)."""
LOCAL_PATH_ROOT = "local-path.atoll.dev/root"
"""Node annotation: the absolute directory under which the node's agent keeps local-path volumes."""
HOSTNAME_LABEL = "kubernetes.io/hostname"

WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


def default_local_path_class() -> JSON:
    """The ``local-path`` StorageClass every master starts with (K3s' manifest, default class)."""
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": LOCAL_PATH_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER, "reclaimPolicy": "Delete",
        "volumeBindingMode": WAIT_FOR_FIRST_CONSUMER,
    }


def is_default_class(sc: JSON) -> bool:
    annotations = (sc.get("metadata") or {}).get("annotations") or {}
    return "true" in (annotations.get(DEFAULT_CLASS_ANNOTATION), annotations.get(BETA_DEFAULT_CLASS_ANNOTATION))


def claim_class(pvc: JSON) -> str:
    return str((pvc.get("spec") or {}).get("storageClassName") or "")


def pv_path(pv: JSON) -> str | None:
    """The directory of a ``hostPath`` or ``local`` PersistentVolume."""
    spec = pv.get("spec") or {}
    for field in ("hostPath", "local"):
        source = spec.get(field)
        if isinstance(source, dict) and source.get("path"):
            return str(source["path"])
    return None


def pv_node_terms(pv: JSON) -> list[JSON]:
    """``spec.nodeAffinity.required.nodeSelectorTerms`` (empty: any node)."""
    required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}
    return [t for t in required.get("nodeSelectorTerms") or [] if isinstance(t, dict)]


def pv_single_node(pv: JSON) -> str | None:
    """The node a local PV is pinned to by a ``kubernetes.io/hostname In [node]`` term, if exactly one."""
    nodes: set[str] = set()
    for term in pv_node_terms(pv):
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == HOSTNAME_LABEL and expr.get("operator") == "In":
                nodes.update(str(v) for v in expr.get("values") or [])
    return next(iter(nodes)) if len(nodes) == 1 else None


def pod_claims(pod: JSON) -> list[str]:
    """Names of the PersistentVolumeClaims a pod's volumes use."""
    out = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        claim = (volume or {}).get("persistentVolumeClaim") if isinstance(volume, dict) else None
        if isinstance(claim, dict) and claim.get("claimName"):
            out.append(str(claim["claimName"]))
    return out
