"""pv-controller's ``syncClaim``: bind a PersistentVolumeClaim, provision for it, or report why not.

* A claim being deleted keeps ``kubernetes.io/pvc-protection`` while a pod that is not finished
  uses it (the pvc-protection controller), then lets go.
* A bound claim (``spec.volumeName``) is ``Bound`` with the volume's capacity and access modes
  while the volume's ``claimRef`` names it, and ``Lost`` once the volume is gone or names another.
  A claim whose user named a volume binds it only if it matches (:mod:`.matching`, domain
  included: ``VolumeMismatch`` otherwise); a volume taken by another claim leaves it ``Pending``.
* An unbound claim binds to the best matching volume (:mod:`.matching`); the volume's
  ``claimRef`` is written first (``pv.kubernetes.io/bound-by-controller``), then the claim's
  ``volumeName`` with ``pv.kubernetes.io/bind-completed``, then both statuses.
* Without a match: a ``WaitForFirstConsumer`` class waits for a pod (event ``WaitForFirstConsumer``)
  until the scheduler sets ``volume.kubernetes.io/selected-node``; the ``local-path`` provisioner
  then creates the volume (:mod:`.provision`, event ``ProvisioningSucceeded``); a class of another
  provisioner is left to it (``ExternalProvisioning``); no class at all: ``FailedBinding``.
"""

from __future__ import annotations

from typing import Any

from atoll.api.constants import LABEL_NODE_NAMESPACE
from atoll.api.errors import AlreadyExists
from atoll.api.storage import (
    BETA_STORAGE_PROVISIONER,
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    LOCAL_PATH_PROVISIONER,
    PROVISIONED_BY,
    PVC_PROTECTION,
    SELECTED_NODE,
    STORAGE_PROVISIONER,
    WAIT_FOR_FIRST_CONSUMER,
    claim_class,
)
from atoll.controllers.persistentvolume.matching import best_match, claimed_by, matches
from atoll.controllers.persistentvolume.provision import CannotProvision, local_path_volume, volume_name
from atoll.controllers.persistentvolume.state import PVCS, PVS, Volumes

JSON = dict[str, Any]


async def sync_claim(v: Volumes, claim: JSON) -> None:
    md = claim["metadata"]
    if md.get("deletionTimestamp"):
        if not v.in_use(claim):
            await v.remove_finalizer(PVCS, claim, PVC_PROTECTION)
        return
    await v.add_finalizer(PVCS, claim, PVC_PROTECTION)
    name = (claim.get("spec") or {}).get("volumeName")
    if name:
        await _sync_bound(v, claim, str(name))
    else:
        await _sync_unbound(v, claim)


async def _sync_bound(v: Volumes, claim: JSON, name: str) -> None:
    pv = v.volumes.get(name)
    annotations = claim["metadata"].get("annotations") or {}
    if pv is None:
        if annotations.get(BIND_COMPLETED) or (claim.get("status") or {}).get("phase") == "Bound":
            await v.set_status(PVCS, claim, {"phase": "Lost"})
            await v.event(claim, PVCS, "Warning", "ClaimLost", "Bound claim has lost reference to PersistentVolume. "
                          "Data on the volume is lost!")
        return
    ref = (pv.get("spec") or {}).get("claimRef")
    if not ref:  # a claim pre-bound by its user to a free volume: only if it suits (class, size, domain)
        if matches(pv, claim, selected=None, domain_nodes=v.domain_nodes(claim["metadata"]["namespace"])):
            await _bind_volume(v, pv, claim)
        else:
            await v.set_status(PVCS, claim, {"phase": "Pending"})
            await v.event(claim, PVCS, "Warning", "VolumeMismatch", f'Cannot bind to requested volume "{name}": '
                          "it does not satisfy the claim (class, volume mode, access modes, size, selector or "
                          "its nodes' domain)")
        return
    if not claimed_by(pv, claim):
        if not annotations.get(BIND_COMPLETED):  # never bound: the user asked for a taken volume
            await v.set_status(PVCS, claim, {"phase": "Pending"})
            await v.event(claim, PVCS, "Warning", "FailedBinding", "volume already bound to a different claim.")
            return
        await v.set_status(PVCS, claim, {"phase": "Lost"})
        await v.event(claim, PVCS, "Warning", "ClaimMisbound", "Two claims are bound to the same volume, this one is "
                      "bound incorrectly")
        return
    if not ref.get("uid"):
        await _bind_volume(v, pv, claim)
        return
    if not annotations.get(BIND_COMPLETED):
        await v.patch_meta(PVCS, claim, {"annotations": {BIND_COMPLETED: "yes"}})
        return
    spec = pv.get("spec") or {}
    await v.set_status(PVCS, claim, {"phase": "Bound", "accessModes": list(spec.get("accessModes") or []),
                                     "capacity": dict(spec.get("capacity") or {})})


async def _sync_unbound(v: Volumes, claim: JSON) -> None:
    md = claim["metadata"]
    selected_name = (md.get("annotations") or {}).get(SELECTED_NODE)
    selected = v.nodes.get(str(selected_name)) if selected_name else None
    domain_nodes = v.domain_nodes(md["namespace"])
    pv = best_match(v.volumes.list(), claim, selected=selected, domain_nodes=domain_nodes)
    if pv is not None:
        if await _bind_volume(v, pv, claim):
            await _bind_claim(v, claim, pv)
        return
    await v.set_status(PVCS, claim, {"phase": "Pending"})
    sc = v.classes.get(claim_class(claim)) if claim_class(claim) else None
    if sc is None:
        why = (f'storageclass.storage.k8s.io "{claim_class(claim)}" not found' if claim_class(claim) else
               "no persistent volumes available for this claim and no storage class is set")
        await v.event(claim, PVCS, "Warning" if claim_class(claim) else "Normal", "FailedBinding", why)
        return
    if sc.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER and not selected_name:
        if v.first_time(claim, "WaitForFirstConsumer"):
            await v.event(claim, PVCS, "Normal", "WaitForFirstConsumer",
                          "waiting for first consumer to be created before binding")
        return
    provisioner = str(sc.get("provisioner") or "")
    if provisioner != LOCAL_PATH_PROVISIONER:
        if (md.get("annotations") or {}).get(STORAGE_PROVISIONER) != provisioner:  # what it watches for
            await v.patch_meta(PVCS, claim, {"annotations": {STORAGE_PROVISIONER: provisioner,
                                                             BETA_STORAGE_PROVISIONER: provisioner}})
        await v.event(claim, PVCS, "Normal", "ExternalProvisioning", "Waiting for a volume to be created either by "
                      f"the external provisioner '{provisioner}' or manually by the system administrator. If volume "
                      "creation is delayed, please verify that the provisioner is running and correctly registered.")
        return
    await _provision(v, claim, sc, selected_name)


async def _provision(v: Volumes, claim: JSON, sc: JSON, selected_name: str | None) -> None:
    md = claim["metadata"]
    if v.volumes.get(volume_name(claim)) is not None:
        return  # provisioned; binding follows when the cache shows it
    try:
        if not selected_name:
            raise CannotProvision("configuration error, no node was specified (use volumeBindingMode "
                                  "WaitForFirstConsumer)")
        node = v.nodes.get(selected_name)
        if node is None:
            raise CannotProvision(f'node "{selected_name}" not found')
        domain = v.domain_of(md["namespace"])
        node_domain = ((node.get("metadata") or {}).get("labels") or {}).get(LABEL_NODE_NAMESPACE)
        if domain is not None and node_domain != domain:
            raise CannotProvision(f'node "{selected_name}" does not belong to domain "{domain}"')
        body = local_path_volume(claim, sc, node)
    except CannotProvision as exc:
        await v.event(claim, PVCS, "Warning", "ProvisioningFailed", f"failed to provision volume with StorageClass "
                      f'"{sc["metadata"]["name"]}": {exc}')
        return
    try:
        await v.client.create(PVS, body)
    except AlreadyExists:
        return
    await v.event(claim, PVCS, "Normal", "ProvisioningSucceeded",
                  f"Successfully provisioned volume {body['metadata']['name']}")


async def _bind_volume(v: Volumes, pv: JSON, claim: JSON) -> bool:
    """Point the volume's ``claimRef`` at the claim (with its uid); False if the volume is gone."""
    md = claim["metadata"]
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    if ref.get("uid") == md["uid"]:
        return True
    claim_ref = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": md["namespace"],
                 "name": md["name"], "uid": md["uid"], "resourceVersion": str(md.get("resourceVersion") or "")}
    meta: JSON = {} if ref else {"annotations": {BOUND_BY_CONTROLLER: "yes"}}
    # a Conflict (our cache was behind, or another claim won) propagates: the key is retried
    return await v.patch_meta(PVS, pv, meta, {"claimRef": claim_ref}) is not None


async def _bind_claim(v: Volumes, claim: JSON, pv: JSON) -> None:
    annotations = {BIND_COMPLETED: "yes"}
    if not (claim.get("spec") or {}).get("volumeName"):
        annotations[BOUND_BY_CONTROLLER] = "yes"
    provisioner = (pv["metadata"].get("annotations") or {}).get(PROVISIONED_BY)
    if provisioner:  # our own provisioning: recorded with the binding (one write less per claim)
        annotations[STORAGE_PROVISIONER] = annotations[BETA_STORAGE_PROVISIONER] = str(provisioner)
    bound = await v.patch_meta(PVCS, claim, {"annotations": annotations}, {"volumeName": pv["metadata"]["name"]})
    if bound is not None:
        spec = pv.get("spec") or {}
        await v.set_status(PVCS, bound, {"phase": "Bound", "accessModes": list(spec.get("accessModes") or []),
                                         "capacity": dict(spec.get("capacity") or {})})
