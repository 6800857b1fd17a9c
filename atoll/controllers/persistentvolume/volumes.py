"""pv-controller's ``syncVolume``: the phase of a PersistentVolume and its reclaim.

* ``Available``: no ``claimRef``, or pre-bound to a claim that is not bound back yet.
* ``Bound``: the claim named by ``claimRef`` (same uid) has ``spec.volumeName`` = this volume.
* ``Released``: that claim is gone (or replaced by another object of the same name). Then the
  reclaim policy acts: ``Retain`` keeps the volume (an administrator clears ``claimRef`` to reuse
  it), ``Delete`` deletes it — after checking with a live read that the claim really is gone, so a
  lagging cache never destroys data — and ``Recycle`` (deprecated upstream) fails the volume.
* Deleting: ``kubernetes.io/pv-protection`` is released once the volume is not ``Bound``;
  ``local-path.atoll.dev/cleanup`` belongs to the node's agent (it removes the directory first),
  and is dropped here only when the node no longer exists.
"""

from __future__ import annotations

from typing import Any

from atoll.api.errors import NotFound
from atoll.api.storage import LOCAL_PATH_CLEANUP, PV_PROTECTION, pv_single_node
from atoll.controllers.persistentvolume.state import PVCS, PVS, Volumes

JSON = dict[str, Any]


async def sync_volume(v: Volumes, pv: JSON) -> None:
    md = pv["metadata"]
    if md.get("deletionTimestamp"):
        await _deleting(v, pv)
        return
    await v.add_finalizer(PVS, pv, PV_PROTECTION)
    ref = (pv.get("spec") or {}).get("claimRef")
    if not ref:
        await v.set_status(PVS, pv, {"phase": "Available"})
        return
    claim = v.claims.get(str(ref.get("name") or ""), str(ref.get("namespace") or ""))
    if claim is not None and ref.get("uid") in (None, "", claim["metadata"].get("uid")):
        bound = (claim.get("spec") or {}).get("volumeName") == md["name"] and ref.get("uid")
        await v.set_status(PVS, pv, {"phase": "Bound" if bound else "Available"})
        return
    if not ref.get("uid"):
        await v.set_status(PVS, pv, {"phase": "Available"})  # pre-bound to a claim not created yet
        return
    if not await _claim_gone(v, ref):
        return  # the cache lags behind; the claim's own event brings us back
    await v.set_status(PVS, pv, {"phase": "Released"})
    policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain"
    if policy == "Delete":
        try:
            await v.client.delete(PVS, md["name"])
        except NotFound:
            return
        await v.event(pv, PVS, "Normal", "VolumeDelete", f"persistentvolume {md['name']} released by its claim "
                      "is deleted (reclaim policy Delete)")
    elif policy == "Recycle":
        await v.set_status(PVS, pv, {"phase": "Failed", "message": "Recycle is not supported; use Delete or Retain"})
        await v.event(pv, PVS, "Warning", "VolumeFailedRecycle", "Recycle is not supported; use Delete or Retain")


async def _deleting(v: Volumes, pv: JSON) -> None:
    """A volume being deleted keeps ``pv-protection`` while it is ``Bound``. Its phase is still
    kept current (as kube's pv-controller does for deleting volumes): a volume deleted right
    after its claim, before this controller marked it ``Released``, must not stay ``Bound`` — and
    protected — for ever (a mirrored claim and its volume are deleted in one go)."""
    finalizers = list(pv["metadata"].get("finalizers") or [])
    if PV_PROTECTION in finalizers:
        if (pv.get("status") or {}).get("phase") != "Bound":
            await v.remove_finalizer(PVS, pv, PV_PROTECTION)
        elif await _bound_claim_gone(v, pv):
            await v.set_status(PVS, pv, {"phase": "Released"})  # its event releases the finalizer
    elif LOCAL_PATH_CLEANUP in finalizers and not _node_exists(v, pv):
        await v.remove_finalizer(PVS, pv, LOCAL_PATH_CLEANUP)


async def _bound_claim_gone(v: Volumes, pv: JSON) -> bool:
    """The claim a ``Bound`` volume names is gone (checked live: a lagging cache must not
    unprotect a volume in use); the claim's own event brings a lagging cache back here."""
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    if not ref.get("uid"):
        return False
    claim = v.claims.get(str(ref.get("name") or ""), str(ref.get("namespace") or ""))
    if claim is not None and claim["metadata"].get("uid") == ref.get("uid"):
        return False
    return await _claim_gone(v, ref)


def _node_exists(v: Volumes, pv: JSON) -> bool:
    node = pv_single_node(pv)
    return node is None or v.nodes.get(node) is not None


async def _claim_gone(v: Volumes, ref: JSON) -> bool:
    try:
        live = await v.client.get(PVCS, str(ref.get("name") or ""), str(ref.get("namespace") or ""))
    except NotFound:
        return True
    return bool(live["metadata"].get("uid") != ref.get("uid"))
