"""The local-path provisioner's volume (Rancher local-path-provisioner's ``Provision``).

A claim of a class whose provisioner is ``rancher.io/local-path`` gets, once a node is selected
for it, a PersistentVolume ``pvc-<claim uid>`` of type ``hostPath`` (``DirectoryOrCreate``) at
``<node's local-path root>/pvc-<uid>_<namespace>_<name>``, pinned to the node by required node
affinity ``kubernetes.io/hostname In [node]``, pre-bound to the claim (``claimRef`` with uid), with
the class's reclaim policy. The root is what the node's agent publishes in the Node annotation
``local-path.atoll.dev/root`` (a directory under the agent's data dir); the agent creates the
directory (0700) and removes it when the volume is deleted (``local-path.atoll.dev/cleanup``).
"""

from __future__ import annotations

from typing import Any

from atoll.api.storage import (
    HOSTNAME_LABEL,
    LOCAL_PATH_CLEANUP,
    LOCAL_PATH_ROOT,
    PROVISIONED_BY,
    PV_PROTECTION,
)

JSON = dict[str, Any]


class CannotProvision(Exception):
    """The selected node cannot hold the volume now (reported as ``ProvisioningFailed``)."""


def volume_name(claim: JSON) -> str:
    return f"pvc-{claim['metadata']['uid']}"


def local_path_volume(claim: JSON, sc: JSON, node: JSON) -> JSON:
    md, cmd = node.get("metadata") or {}, claim["metadata"]
    root = str((md.get("annotations") or {}).get(LOCAL_PATH_ROOT) or "")
    if not root.startswith("/"):
        raise CannotProvision(f'node "{md.get("name")}" publishes no local-path root (annotation '
                              f"{LOCAL_PATH_ROOT}); is its agent a RunP agent of this version?")
    spec = claim.get("spec") or {}
    requests = (spec.get("resources") or {}).get("requests") or {}
    node_name = str(md.get("name"))
    path = f"{root.rstrip('/')}/pvc-{cmd['uid']}_{cmd['namespace']}_{cmd['name']}"
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": volume_name(claim), "annotations": {PROVISIONED_BY: str(sc.get("provisioner"))},
                     "finalizers": [PV_PROTECTION, LOCAL_PATH_CLEANUP]},
        "spec": {
            "capacity": {"storage": str(requests.get("storage") or "0")},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": str(sc.get("reclaimPolicy") or "Delete"),
            "storageClassName": str(sc["metadata"]["name"]),
            "volumeMode": str(spec.get("volumeMode") or "Filesystem"),
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [node_name]}]}]}},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": cmd["namespace"],
                         "name": cmd["name"], "uid": cmd["uid"],
                         "resourceVersion": str(cmd.get("resourceVersion") or "")},
        },
    }
