"""A StatefulSet's ``volumeClaimTemplates``: one claim per template and ordinal, kept for the ordinal.

Pod ``<set>-<i>`` mounts claim ``<template>-<set>-<i>`` (a volume of the template's name replaces
one of the same name in the pod template). The claim is created before its pod, from the template
plus the set's ``matchLabels``, and outlives pod restarts: a recreated pod finds its data again.
``persistentVolumeClaimRetentionPolicy`` decides who owns the claims (upstream's table):

========================  ================================================================
whenDeleted / whenScaled  claim owner references
========================  ================================================================
Retain / Retain           none: claims stay until deleted by hand (the default)
Delete / Retain           the set: claims go with the set (garbage collector)
Retain / Delete           the pod, for ordinals ≥ ``replicas``: scaled-away claims go with their pod
Delete / Delete           the pod for condemned ordinals, the set for the others
========================  ================================================================

A pod is not created while one of its claims is being deleted (it would bind to a dying claim).
"""

from __future__ import annotations

from typing import Any

from atoll.api.errors import AlreadyExists, Conflict, NotFound
from atoll.api.kinds import kind
from atoll.client import Client
from atoll.runtime import Cache

JSON = dict[str, Any]
PVCS = kind("", "persistentvolumeclaims")


def templates(sts: JSON) -> list[JSON]:
    return [t for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or [] if isinstance(t, dict)]


def claim_name(template: JSON, sts: JSON, ordinal: int) -> str:
    return f"{(template.get('metadata') or {}).get('name')}-{sts['metadata']['name']}-{ordinal}"


def with_claims(sts: JSON, pod: JSON, ordinal: int) -> None:
    """Point the pod's volumes at its ordinal's claims (mutates ``pod['spec']``)."""
    tpls = templates(sts)
    if not tpls:
        return
    names = {str((t.get("metadata") or {}).get("name")) for t in tpls}
    volumes = [v for v in pod["spec"].get("volumes") or [] if v.get("name") not in names]
    for t in tpls:
        volumes.append({"name": str((t.get("metadata") or {}).get("name")),
                        "persistentVolumeClaim": {"claimName": claim_name(t, sts, ordinal)}})
    pod["spec"] = {**pod["spec"], "volumes": volumes}


def _ref(obj: JSON, kind_: str, api_version: str) -> JSON:
    md = obj["metadata"]
    return {"apiVersion": api_version, "kind": kind_, "name": md["name"], "uid": md["uid"],
            "controller": False, "blockOwnerDeletion": True}


class SetClaims:
    def __init__(self, client: Client, claims: Cache) -> None:
        self.client, self.claims = client, claims

    async def ensure(self, sts: JSON, ordinal: int) -> bool:
        """Create the ordinal's missing claims; False while one of them is being deleted."""
        namespace = sts["metadata"]["namespace"]
        selector = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        ready = True
        for t in templates(sts):
            name = claim_name(t, sts, ordinal)
            existing = self.claims.get(name, namespace)
            if existing is not None:
                ready = ready and not existing["metadata"].get("deletionTimestamp")
                continue
            tmd = t.get("metadata") or {}
            body: JSON = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": name, "namespace": namespace,
                                 "labels": {**(tmd.get("labels") or {}), **selector},
                                 **({"annotations": tmd["annotations"]} if tmd.get("annotations") else {})},
                    "spec": dict(t.get("spec") or {})}
            if _policy(sts)[0] == "Delete":
                body["metadata"]["ownerReferences"] = [_ref(sts, "StatefulSet", "apps/v1")]
            try:
                await self.client.create(PVCS, body, namespace)
            except AlreadyExists:
                ready = False
        return ready

    async def retain(self, sts: JSON, pods: dict[int, JSON]) -> bool:
        """Owner references of every existing claim per the retention policy; False when a claim
        changed under us (try again soon: its change may not map back to this set)."""
        tpls = templates(sts)
        if not tpls:
            return True
        done = True
        namespace, uid = sts["metadata"]["namespace"], sts["metadata"]["uid"]
        when_deleted, when_scaled = _policy(sts)
        replicas = int((sts.get("spec") or {}).get("replicas") or 0)
        ordinals = set(pods) | set(range(replicas))
        for ordinal in sorted(ordinals):
            condemned = ordinal >= replicas
            pod = pods.get(ordinal)
            for t in tpls:
                claim = self.claims.get(claim_name(t, sts, ordinal), namespace)
                if claim is None or claim["metadata"].get("deletionTimestamp"):
                    continue
                pod_name = f"{sts['metadata']['name']}-{ordinal}"
                refs = [r for r in claim["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                        and not (r.get("kind") == "Pod" and r.get("name") == pod_name)]
                pod_owned = condemned and when_scaled == "Delete" and pod is not None
                if pod_owned:
                    assert pod is not None
                    refs.append(_ref(pod, "Pod", "v1"))
                elif when_deleted == "Delete" and not (condemned and when_scaled == "Delete"):
                    refs.append(_ref(sts, "StatefulSet", "apps/v1"))
                done = await self._set_refs(claim, refs) and done
        return done

    async def _set_refs(self, claim: JSON, refs: list[JSON]) -> bool:
        md = claim["metadata"]
        current = md.get("ownerReferences") or []
        if sorted(r.get("uid", "") for r in current) == sorted(r.get("uid", "") for r in refs):
            return True
        patch = {"metadata": {"ownerReferences": refs or None, "resourceVersion": md.get("resourceVersion")}}
        try:
            await self.client.patch(PVCS, md["name"], patch, md["namespace"])
        except Conflict:
            return False
        except NotFound:
            pass
        return True


def _policy(sts: JSON) -> tuple[str, str]:
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return str(policy.get("whenDeleted") or "Retain"), str(policy.get("whenScaled") or "Retain")
