"""A ``persistentVolumeClaim`` volume of a RunP pod: the bound volume's directory on this node.

The claim must be ``Bound`` (until then the container waits in ``ContainerCreating``, as the
kubelet does while a volume attaches, and is retried); its PersistentVolume must name that claim
(``spec.claimRef`` namespace, name and uid, as the kubelet checks: a claim's ``volumeName`` alone
never reaches another claim's volume) and be a ``hostPath`` or ``local`` volume that is not pinned
to another node. A directory under the agent's local-path
root is created (0700) when missing, as is a ``hostPath`` of type ``DirectoryOrCreate``; any other
path must exist. The directory is then mounted by path rewriting like every other volume.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from atoll.agent.localpath import make_dir, owned_dir
from atoll.agent.runp.sources import ConfigMissing
from atoll.api.errors import APIError, NotFound
from atoll.api.kinds import kind
from atoll.api.storage import pv_path, pv_single_node
from atoll.client import Client, ClientError

JSON = dict[str, Any]
PVCS = kind("", "persistentvolumeclaims")
PVS = kind("", "persistentvolumes")


class VolumeNotReady(ConfigMissing):
    """The claim is not bound (yet): the container keeps ``ContainerCreating`` and is retried."""


async def claim_dir(client: Client, pod: JSON, claim_name: str, root: Path) -> Path:
    try:
        return await _claim_dir(client, pod, claim_name, root)
    except (APIError, ClientError) as exc:  # e.g. a claim this node's credentials may not read
        raise VolumeNotReady(f'persistentvolumeclaim "{claim_name}": {exc}') from None


async def _claim_dir(client: Client, pod: JSON, claim_name: str, root: Path) -> Path:
    namespace = str(pod["metadata"].get("namespace") or "default")
    try:
        claim = await client.get(PVCS, claim_name, namespace)
    except NotFound:
        raise VolumeNotReady(f'persistentvolumeclaim "{claim_name}" not found') from None
    if claim["metadata"].get("deletionTimestamp"):
        raise VolumeNotReady(f'persistentvolumeclaim "{claim_name}" is being deleted')
    volume = (claim.get("spec") or {}).get("volumeName")
    if not volume or (claim.get("status") or {}).get("phase") != "Bound":
        raise VolumeNotReady(f'persistentvolumeclaim "{claim_name}" is not bound yet')
    try:
        pv = await client.get(PVS, str(volume))
    except NotFound:
        raise VolumeNotReady(f'persistentvolume "{volume}" of claim "{claim_name}" not found') from None
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    if (ref.get("namespace"), ref.get("name"), ref.get("uid")) != (namespace, claim_name, claim["metadata"].get("uid")):
        raise VolumeNotReady(f'persistentvolume "{volume}" is not bound to claim "{claim_name}" (its claimRef names '
                             f'{ref.get("namespace")}/{ref.get("name")})')
    node = pv_single_node(pv)
    if node is not None and node != (pod.get("spec") or {}).get("nodeName"):
        raise ConfigMissing(f'persistentvolume "{volume}" is pinned to node "{node}", not this one')
    path = pv_path(pv)
    if path is None:
        raise ConfigMissing(f'persistentvolume "{volume}": only hostPath and local volumes are supported by the '
                            "process runtime")
    creates = owned_dir(root, pv) is not None or (
        ((pv.get("spec") or {}).get("hostPath") or {}).get("type") == "DirectoryOrCreate")
    return await asyncio.to_thread(_ensure_dir, Path(path), creates, str(volume))


def _ensure_dir(target: Path, creates: bool, volume: str) -> Path:
    if creates and not target.is_dir():
        make_dir(target)
    if not target.is_dir():
        raise ConfigMissing(f'persistentvolume "{volume}": directory {target} does not exist on this node')
    return target
