"""Dependency copies (ConfigMaps, Secrets, PVCs, service-account token Secrets) in the target cluster.

A source object is copied only while a mirrored pod uses it. While copied, the source object
carries label ``synced-by-<clusterID>=true``, finalizer ``finalizer-<clusterID>`` (so deleting it
first removes the copy) and the forward annotations ``physical-name``/``physical-namespace``; the
copy carries ``managed-by`` and the backward annotations ``virtual-name``/``virtual-namespace``.
A copy is only ever updated or deleted after its backward annotations were checked to point at
the source object, so an unrelated object with a colliding name is never touched.
"""

from __future__ import annotations

import copy
from typing import Any

from atoll.api import kinds
from atoll.api.errors import AlreadyExists, Conflict, NotFound
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.mirror import keys
from atoll.mirror.names import target_name

JSON = dict[str, Any]
PVCS = ResourceDef(
    "", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", True, ("pvc",),
    subresources=("status",),
)
KINDS: dict[str, ResourceDef] = {"ConfigMap": kinds.CONFIGMAPS, "Secret": kinds.SECRETS, "PersistentVolumeClaim": PVCS}
COPIED_FIELDS: dict[str, tuple[str, ...]] = {
    "ConfigMap": ("data", "binaryData", "immutable"),
    "Secret": ("type", "data", "immutable"),
    "PersistentVolumeClaim": ("spec",),
}


class OwnershipError(Exception):
    """A target object with the computed name belongs to something else."""


def owned_copy(target: JSON, namespace: str, name: str) -> bool:
    annotations = (target.get("metadata") or {}).get("annotations") or {}
    return annotations.get(keys.VIRTUAL_NAMESPACE) == namespace and annotations.get(keys.VIRTUAL_NAME) == name


def target_copy(kind: str, source: JSON, target_namespace: str) -> JSON:
    md = source["metadata"]
    out: JSON = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": target_name(md["namespace"], md["name"]),
            "namespace": target_namespace,
            "labels": {
                **{k: v for k, v in (md.get("labels") or {}).items() if not k.startswith(keys.PREFIX + "synced-by-")},
                keys.MANAGED_BY: keys.MANAGED_BY_VALUE,
            },
            "annotations": {keys.VIRTUAL_NAME: md["name"], keys.VIRTUAL_NAMESPACE: md["namespace"]},
        },
    }
    for fieldname in COPIED_FIELDS[kind]:
        if fieldname in source:
            out[fieldname] = copy.deepcopy(source[fieldname])
    return out


def _differs(kind: str, current: JSON, wanted: JSON) -> bool:
    if any(current.get(f) != wanted.get(f) for f in COPIED_FIELDS[kind] if f != "spec"):
        return True
    return bool((current.get("metadata") or {}).get("labels") != wanted["metadata"]["labels"])


class DependencyMirror:
    """Copies source dependencies into ``namespace`` of the target cluster for one binding."""

    def __init__(self, source: Client, target: Client, namespace: str, cluster_id: str) -> None:
        self.source = source
        self.target = target
        self.namespace = namespace
        self.cluster_id = cluster_id
        self.finalizer = keys.finalizer_for(cluster_id)
        self.label = keys.synced_by(cluster_id)

    async def ensure(self, kind: str, source: JSON) -> str:
        """Mark ``source`` as copied, then create or update its copy; returns the copy's name."""
        rd = KINDS[kind]
        md = source["metadata"]
        wanted = target_copy(kind, source, self.namespace)
        name = str(wanted["metadata"]["name"])
        await self._mark(rd, source, name)
        try:
            current = await self.target.get(rd, name, self.namespace)
        except NotFound:
            try:
                await self.target.create(rd, wanted, self.namespace)
            except AlreadyExists:
                raise Conflict(f"{kind} {self.namespace}/{name} appeared concurrently; retrying") from None
            return name
        if not owned_copy(current, md["namespace"], md["name"]):
            source_name = f"{md['namespace']}/{md['name']}"
            raise OwnershipError(f"{kind} {self.namespace}/{name} exists and is not a copy of {source_name}")
        if kind != "PersistentVolumeClaim" and _differs(kind, current, wanted):
            body = {**wanted, "metadata": {**current["metadata"], "labels": wanted["metadata"]["labels"]}}
            await self.target.update(rd, body)
        return name

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
                "annotations": {keys.PHYSICAL_NAME: name, keys.PHYSICAL_NAMESPACE: self.namespace},
            }
        }
        await self.source.patch(rd, md["name"], patch, md["namespace"])

    async def release(self, kind: str, namespace: str, name: str, source: JSON | None) -> None:
        """Delete the copy (if it is ours), then drop our label/finalizer from the source."""
        rd = KINDS[kind]
        copy_name = target_name(namespace, name)
        try:
            current = await self.target.get(rd, copy_name, self.namespace)
        except NotFound:
            pass
        else:
            if owned_copy(current, namespace, name):
                try:
                    await self.target.delete(rd, copy_name, self.namespace,
                                             preconditions={"uid": current["metadata"]["uid"]})
                except NotFound:
                    pass
        if source is not None:
            await self.unmark(kind, source)

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
            await self.source.patch(KINDS[kind], md["name"], patch, md["namespace"])
        except NotFound:
            pass
