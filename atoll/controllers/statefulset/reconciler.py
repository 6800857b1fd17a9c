"""Reconcile one StatefulSet (``pkg/controller/statefulset``): pods ``<name>-<ordinal>`` with stable
names and hostnames (``subdomain: serviceName``), ``OrderedReady`` (create 0, 1, … each after the
previous is Running and Ready; remove from the highest ordinal, one at a time) or ``Parallel``
management, failed pods replaced, and RollingUpdate from the highest ordinal down to
``partition``, one pod at a time, each waiting for the previous to be Ready. Every template is kept
as a ControllerRevision ``<name>-<hash>`` (``kubectl rollout history|undo sts``,
:mod:`atoll.runtime.history`); pods below the partition are recreated from the current revision's
template. ``volumeClaimTemplates`` give each ordinal its own claims (:mod:`.claims`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from atoll.api.errors import NotFound
from atoll.api.kinds import STATEFULSETS
from atoll.api.podtemplates import controller_of, is_ready, pod_from_template, safe_encode
from atoll.client import Client
from atoll.controllers.statefulset.claims import SetClaims, with_claims
from atoll.runtime import Cache, ObjectKey, Result, history
from atoll.runtime.podcontrol import PodControl

JSON = dict[str, Any]
HASH_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
INDEX_LABEL = "apps.kubernetes.io/pod-index"
CLAIM_RETRY = 0.5


def revision_name(sts: JSON) -> str:
    template = (sts.get("spec") or {}).get("template") or {}
    digest = hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).digest()
    return f"{sts['metadata']['name']}-{safe_encode(digest, 10)}"


def ordinal_of(sts: JSON, pod: JSON) -> int | None:
    prefix, name = f"{sts['metadata']['name']}-", str(pod["metadata"]["name"])
    tail = name[len(prefix):] if name.startswith(prefix) else ""
    return int(tail) if tail.isdigit() else None


class StatefulSetReconciler:
    def __init__(self, client: Client, *, statefulsets: Cache, pods: Cache, revisions: Cache,
                 control: PodControl, claims: Cache) -> None:
        self.client, self.statefulsets, self.pods = client, statefulsets, pods
        self.revisions, self.control = revisions, control
        self.claims = SetClaims(client, claims)

    async def reconcile(self, key: ObjectKey) -> Result:
        sts = self.statefulsets.get_key(key)
        if sts is None or key.namespace is None or sts["metadata"].get("deletionTimestamp"):
            self.control.expect.forget(key)
            return Result()
        status = sts.get("status") or {}
        update_rev = revision_name(sts)
        await history.ensure_revision(self.client, self.revisions, sts, update_rev, update_rev)
        current_rev = str(status.get("currentRevision") or update_rev)
        pods: dict[int, JSON] = {}
        uid = sts["metadata"]["uid"]
        for pod in self.pods.list(key.namespace):
            ordinal = ordinal_of(sts, pod)
            if ordinal is not None and (controller_of(pod) or {}).get("uid") == uid:
                pods[ordinal] = pod
        # claims get their owners before any pod is condemned (whenScaled: Delete follows the pod)
        claims_settled = await self.claims.retain(sts, pods)
        if claims_settled:
            await self._step(key, sts, pods, update_rev, current_rev)
        live = {update_rev, current_rev} | {str((p["metadata"].get("labels") or {}).get(HASH_LABEL))
                                            for p in pods.values()}
        limit = int((sts.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
        await history.truncate(self.client, self.revisions, sts, live, limit)
        await self._status(sts, pods, update_rev, current_rev)
        return Result() if claims_settled else Result(requeue_after=CLAIM_RETRY)

    async def _step(self, key: ObjectKey, sts: JSON, pods: dict[int, JSON], update_rev: str, current_rev: str) -> None:
        spec = sts.get("spec") or {}
        replicas, parallel = int(spec.get("replicas") or 0), spec.get("podManagementPolicy") == "Parallel"
        names = {p["metadata"]["name"] for p in self.pods.list(key.namespace)}
        if self.control.expect.pending_creates(key, names) or self.control.expect.pending_deletes(key, names):
            return  # wait for the cache to show our last writes
        failed = [p for p in pods.values() if (p.get("status") or {}).get("phase") == "Failed"
                  and not p["metadata"].get("deletionTimestamp")]
        if failed:
            await self.control.delete_many(key, sts, failed)
            return
        if any(p["metadata"].get("deletionTimestamp") for p in pods.values()) and not parallel:
            return  # OrderedReady: one change at a time
        partition = int(((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0)
        missing = []
        for i in range(replicas):
            pod = pods.get(i)
            if pod is None:
                missing.append(i)
                if not parallel:
                    break
            elif not parallel and not is_ready(pod):
                break
        if missing:
            ready = [i for i in missing if await self.claims.ensure(sts, i)]
            creates = [self._pod(sts, i, update_rev if i >= partition else current_rev) for i in ready]
            if creates:
                await self.control.create_many(key, sts, creates)
            return
        condemned = sorted((i for i in pods if i >= replicas), reverse=True)
        if condemned:
            if parallel:
                await self.control.delete_many(key, sts, [pods[i] for i in condemned])
            elif all(is_ready(pods[i]) for i in pods if i < replicas):
                await self.control.delete_many(key, sts, [pods[condemned[0]]])
            return
        if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
            return
        if not all(is_ready(p) for p in pods.values()):
            return
        for i in range(replicas - 1, partition - 1, -1):
            pod = pods.get(i)
            if pod is not None and (pod["metadata"].get("labels") or {}).get(HASH_LABEL) != update_rev:
                await self.control.delete_many(key, sts, [pod])
                return

    def _pod(self, sts: JSON, ordinal: int, revision: str) -> JSON:
        spec, name = sts.get("spec") or {}, f"{sts['metadata']['name']}-{ordinal}"
        template = spec.get("template") or {}
        stored = self.revisions.get(revision, sts["metadata"]["namespace"])
        if stored is not None and revision != revision_name(sts):
            template = ((stored.get("data") or {}).get("spec") or {}).get("template") or template
        labels = {POD_NAME_LABEL: name, INDEX_LABEL: str(ordinal), HASH_LABEL: revision}
        pod = pod_from_template(template, sts, name, extra_labels=labels)
        pod["spec"] = {**pod["spec"], "hostname": name}
        if spec.get("serviceName"):
            pod["spec"]["subdomain"] = spec["serviceName"]
        with_claims(sts, pod, ordinal)
        return pod

    async def _status(self, sts: JSON, pods: dict[int, JSON], update_rev: str, current_rev: str) -> None:
        spec = sts.get("spec") or {}
        live = [p for i, p in pods.items() if not p["metadata"].get("deletionTimestamp")]
        revs = [(p["metadata"].get("labels") or {}).get(HASH_LABEL) for p in live]
        updated = sum(1 for r in revs if r == update_rev)
        replicas = int(spec.get("replicas") or 0)
        if updated == replicas and len(live) == replicas:
            current_rev = update_rev
        ready = sum(1 for p in live if is_ready(p))
        status = {**(sts.get("status") or {}), "observedGeneration": int(sts["metadata"].get("generation") or 1),
                  "replicas": len(live), "readyReplicas": ready, "availableReplicas": ready,
                  "currentReplicas": sum(1 for r in revs if r == current_rev), "updatedReplicas": updated,
                  "currentRevision": current_rev, "updateRevision": update_rev, "collisionCount": 0}
        if status != (sts.get("status") or {}):
            md = sts["metadata"]
            try:
                await self.client.patch(STATEFULSETS, md["name"], {"status": status}, md["namespace"],
                                        subresource="status")
            except NotFound:
                pass
