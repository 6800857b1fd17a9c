"""Dependency copies (ConfigMaps, Secrets, PVCs and their PVs) in the target cluster.

A source object is copied only while a mirrored pod uses it. While copied, the source object
carries label ``synced-by-<clusterID>=true``, finalizer ``finalizer-<clusterID>`` (so deleting it
first removes the copy) and the forward annotations ``physical-name``/``physical-namespace``; the
copy carries ``managed-by`` and the backward annotations ``virtual-name``/``virtual-namespace``.
A copy is only ever updated or deleted after its backward annotations were checked to point at
the source object, so an unrelated object with a colliding name is never touched.

Claims: a bound source claim (``spec.volumeName``) brings its PersistentVolume along — copied
first, named ``target_name("", pv)``, its ``claimRef`` pointing at the claim's copy (no uid, so
the target's binder binds the pair), reclaim policy ``Retain`` (the source cluster owns the
volume's life: deleting a copy must never delete data); the claim's copy then names that PV.
An unbound source claim is copied without ``volumeName``, so the target cluster's own storage
provisions it. Of a claim's spec only ``resources`` may change later (expansion); the copy follows.
Secrets of type ``kubernetes.io/service-account-token`` are copied as ``Opaque``: the target's
token controller would otherwise delete them (their service account does not exist there).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from atoll.api import kinds
from atoll.api.errors import AlreadyExists, Conflict, NotFound
from atoll.api.registry import ResourceDef
from atoll.api.workload_kinds import MORE_WORKLOADS
from atoll.client import Client
from atoll.mirror import keys
from atoll.mirror.names import target_name

JSON = dict[str, Any]
PVS = next(rd for rd in MORE_WORKLOADS if rd.kind == "PersistentVolume")
PVCS = next(rd for rd in MORE_WORKLOADS if rd.kind == "PersistentVolumeClaim")
KINDS: dict[str, ResourceDef] = {"ConfigMap": kinds.CONFIGMAPS, "Secret": kinds.SECRETS, "PersistentVolumeClaim": PVCS,
                                 "PersistentVolume": PVS}
COPIED_FIELDS: dict[str, tuple[str, ...]] = {
    "ConfigMap": ("data", "binaryData", "immutable"),
    "Secret": ("type", "data", "immutable"),
    "PersistentVolumeClaim": ("spec",),
    "PersistentVolume": ("spec",),
}
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
PVC_DROPPED_SPEC = ("volumeName", "dataSource", "dataSourceRef")
"""Source-cluster references a claim's copy cannot honour (its PV is named anew, snapshots stay behind)."""
PVLookup = Callable[[str], JSON | None]
"""A source PersistentVolume by name, or None."""
SecretLookup = Callable[[str, str], JSON | None]
"""A source Secret by (namespace, name), or None."""
CSI_SECRET_REFS = ("nodePublishSecretRef", "nodeStageSecretRef", "nodeExpandSecretRef", "controllerPublishSecretRef",
                   "controllerExpandSecretRef")


def csi_secrets(pv: JSON) -> list[tuple[str, str]]:
    """(namespace, name) of the Secrets a CSI volume's driver is handed."""
    csi = (pv.get("spec") or {}).get("csi") or {}
    refs = [csi.get(field) or {} for field in CSI_SECRET_REFS]
    return sorted({(str(r.get("namespace") or ""), str(r["name"])) for r in refs if r.get("name")})


class OwnershipError(Exception):
    """A target object with the computed name belongs to something else."""


def owned_copy(target: JSON, namespace: str, name: str) -> bool:
    annotations = (target.get("metadata") or {}).get("annotations") or {}
    return annotations.get(keys.VIRTUAL_NAMESPACE) == namespace and annotations.get(keys.VIRTUAL_NAME) == name


def source_namespace(source: JSON) -> str:
    return str(source["metadata"].get("namespace") or "")


def target_copy(kind: str, source: JSON, target_namespace: str) -> JSON:
    md = source["metadata"]
    out: JSON = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": target_name(source_namespace(source), md["name"]),
            "namespace": target_namespace,
            "labels": {
                **{k: v for k, v in (md.get("labels") or {}).items() if not k.startswith(keys.PREFIX + "synced-by-")},
                keys.MANAGED_BY: keys.MANAGED_BY_VALUE,
            },
            "annotations": {keys.VIRTUAL_NAME: md["name"], keys.VIRTUAL_NAMESPACE: source_namespace(source)},
        },
    }
    for fieldname in COPIED_FIELDS[kind]:
        if fieldname in source:
            out[fieldname] = copy.deepcopy(source[fieldname])
    if kind == "Secret" and out.get("type") == SA_TOKEN_TYPE:
        out["type"] = "Opaque"
    elif kind == "PersistentVolumeClaim":
        spec = out.setdefault("spec", {})
        bound = spec.get("volumeName")
        for name in PVC_DROPPED_SPEC:
            spec.pop(name, None)
        if bound:
            spec["volumeName"] = target_name("", str(bound))
    elif kind == "PersistentVolume":
        del out["metadata"]["namespace"]
        spec = out.setdefault("spec", {})
        spec["persistentVolumeReclaimPolicy"] = "Retain"
        ref = spec.get("claimRef") or {}
        if ref.get("name"):
            spec["claimRef"] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": target_namespace,
                                "name": target_name(str(ref.get("namespace") or ""), str(ref["name"]))}
        else:
            spec.pop("claimRef", None)
        csi = spec.get("csi") or {}
        for field in CSI_SECRET_REFS:
            ref = csi.get(field) or {}
            if ref.get("name"):
                csi[field] = {"name": target_name(str(ref.get("namespace") or ""), str(ref["name"])),
                              "namespace": target_namespace}
    return out


def _differs(kind: str, current: JSON, wanted: JSON) -> bool:
    if any(current.get(f) != wanted.get(f) for f in COPIED_FIELDS[kind] if f != "spec"):
        return True
    if kind == "PersistentVolumeClaim" and _requests(current) != _requests(wanted):
        return True
    return bool((current.get("metadata") or {}).get("labels") != wanted["metadata"]["labels"])


def _requests(claim: JSON) -> Any:
    return ((claim.get("spec") or {}).get("resources") or {}).get("requests")


def _update_body(kind: str, current: JSON, wanted: JSON) -> JSON:
    """The copy as we want it, on the current object's metadata; a claim keeps its own spec (the
    target's binder has filled it) except for the requested size, a volume its own spec entirely."""
    body = {**wanted, "metadata": {**current["metadata"], "labels": wanted["metadata"]["labels"]}}
    if kind == "PersistentVolumeClaim":
        spec = copy.deepcopy(current.get("spec") or {})
        spec["resources"] = {**(spec.get("resources") or {}), "requests": _requests(wanted)}
        body["spec"] = spec
    elif kind == "PersistentVolume":
        body["spec"] = current.get("spec") or {}
    return {k: v for k, v in body.items() if k != "status"}


class DependencyMirror:
    """Copies source dependencies into ``namespace`` of the target cluster for one binding."""

    def __init__(self, source: Client, target: Client, namespace: str, cluster_id: str,
                 volumes: PVLookup | None = None, secrets: SecretLookup | None = None) -> None:
        self.source = source
        self.target = target
        self.namespace = namespace
        self.cluster_id = cluster_id
        self.finalizer = keys.finalizer_for(cluster_id)
        self.label = keys.synced_by(cluster_id)
        self.volumes = volumes
        """Source PVs by name (a bound claim's volume is copied with it); None: claims only."""
        self.secrets = secrets
        """Source Secrets by (namespace, name): a copied CSI volume's Secrets are copied with it."""

    def _ns(self, kind: str) -> str | None:
        return None if kind == "PersistentVolume" else self.namespace

    async def ensure(self, kind: str, source: JSON) -> str:
        """Mark ``source`` as copied, then create or update its copy; returns the copy's name.
        A bound claim's volume is ensured first."""
        rd = KINDS[kind]
        md = source["metadata"]
        if kind == "PersistentVolumeClaim":
            await self._ensure_volume(source)
        wanted = target_copy(kind, source, self.namespace)
        name = str(wanted["metadata"]["name"])
        await self._mark(rd, source, name)
        if kind == "PersistentVolume":  # after marking the volume: its mark is what keeps them copied
            await self._ensure_csi_secrets(source)
        namespace = self._ns(kind)
        try:
            current = await self.target.get(rd, name, namespace)
        except NotFound:
            try:
                await self.target.create(rd, wanted, namespace)
            except AlreadyExists:
                raise Conflict(f"{kind} {self.namespace}/{name} appeared concurrently; retrying") from None
            return name
        if not owned_copy(current, source_namespace(source), md["name"]):
            source_name = f"{source_namespace(source)}/{md['name']}"
            raise OwnershipError(f"{kind} {namespace or ''}/{name} exists and is not a copy of {source_name}")
        if _differs(kind, current, wanted):
            await self.target.update(rd, _update_body(kind, current, wanted))
        return name

    async def _ensure_csi_secrets(self, pv: JSON) -> None:
        for namespace, name in csi_secrets(pv):
            secret = self.secrets(namespace, name) if self.secrets is not None else None
            if secret is None:
                raise NotFound(f'Secret "{namespace}/{name}" of PersistentVolume {pv["metadata"]["name"]} not found')
            await self.ensure("Secret", secret)

    async def _ensure_volume(self, claim: JSON) -> None:
        volume = (claim.get("spec") or {}).get("volumeName")
        if not volume or self.volumes is None:
            return
        pv = self.volumes(str(volume))
        if pv is None:
            raise NotFound(f'PersistentVolume "{volume}" bound to claim '
                           f'{claim["metadata"]["namespace"]}/{claim["metadata"]["name"]} not found')
        await self.ensure("PersistentVolume", pv)

    async def _mark(self, rd: ResourceDef, source: JSON, name: str) -> None:
        md = source["metadata"]
        finalizers = list(md.get("finalizers") or [])
        labels = md.get("labels") or {}
        annotations = md.get("annotations") or {}
        marked = labels.get(self.label) == "true" and annotations.get(keys.PHYSICAL_NAME) == name
        if self.finalizer in finalizers and marked:
            return
        if self.finalizer not in finalizers:
            finalizers.append(self.finalizer)
        patch = {
            "metadata": {
                "resourceVersion": md.get("resourceVersion"),
                "finalizers": finalizers,
                "labels": {self.label: "true"},
                "annotations": {keys.PHYSICAL_NAME: name,
                                keys.PHYSICAL_NAMESPACE: self._ns(rd.kind) or ""},
            }
        }
        await self.source.patch(rd, md["name"], patch, md.get("namespace"))

    async def release(self, kind: str, namespace: str, name: str, source: JSON | None) -> None:
        """Delete the copy (if it is ours), then drop our label/finalizer from the source; a
        claim's volume copy goes with the claim's."""
        rd = KINDS[kind]
        copy_name = target_name(namespace, name)
        try:
            current = await self.target.get(rd, copy_name, self._ns(kind))
        except NotFound:
            pass
        else:
            if owned_copy(current, namespace, name):
                try:
                    await self.target.delete(rd, copy_name, self._ns(kind),
                                             preconditions={"uid": current["metadata"]["uid"]})
                except NotFound:
                    pass
        if source is not None:
            await self.unmark(kind, source)
        volume = ((source or {}).get("spec") or {}).get("volumeName")
        if kind == "PersistentVolumeClaim" and volume:
            pv = self.volumes(str(volume)) if self.volumes is not None else None
            await self.release("PersistentVolume", "", str(volume), pv)

    async def unmark(self, kind: str, source: JSON) -> None:
        md = source["metadata"]
        finalizers = list(md.get("finalizers") or [])
        labels = md.get("labels") or {}
        annotations = md.get("annotations") or {}
        if self.finalizer not in finalizers and self.label not in labels and keys.PHYSICAL_NAME not in annotations:
            return
        patch = {
            "metadata": {
                "resourceVersion": md.get("resourceVersion"),
                "finalizers": [f for f in finalizers if f != self.finalizer],
                "labels": {self.label: None},
                "annotations": {keys.PHYSICAL_NAME: None, keys.PHYSICAL_NAMESPACE: None},
            }
        }
        try:
            await self.source.patch(KINDS[kind], md["name"], patch, md.get("namespace"))
        except NotFound:
            pass
