"""The execution and work-status controllers: the control plane's for Push clusters, and the same
code in a Pull cluster's agent (``pull=True``) for its own cluster.

Per Work in ``karmada-es-<cluster>``: ensure ``karmada.io/execution-controller`` (the binding
controller creates Works with it); apply each manifest
to the member (create, or update keeping the member's status), labelled with the Work's
``work.karmada.io/namespace``/``name`` so the member's copy can be told apart from an object the
member already had (``conflictResolution`` ``Abort``: refused, ``Overwrite``: taken over); then
``Applied`` and ``manifestStatuses`` (the member object's status and health, as the resource
interpreter reflects and judges them). A watch on the
member's applied objects re-queues the Work when their status changes, so status flows back
without polling. A deleted Work deletes the member copies (unless ``preserveResourcesOnDeletion``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from atoll.api.errors import AlreadyExists, APIError, Conflict, NotFound
from atoll.api.registry import ResourceDef
from atoll.client import Client, ClientError
from atoll.fleet import constants as c
from atoll.fleet.karmada.conditions import set_condition
from atoll.fleet.karmada.dynamic import DynamicInformers
from atoll.fleet.karmada.interpreter import Interpreter
from atoll.fleet.karmada.members import MemberError
from atoll.fleet.karmada.names import cluster_of
from atoll.fleet.kinds import WORKS
from atoll.runtime import Cache, Informer, ObjectKey, Result

JSON = dict[str, Any]
log = logging.getLogger(__name__)
MANIFEST_HASH = "work.karmada.io/manifest-hash"


class MemberSource(Protocol):
    """Where the executor reaches a Work's cluster: the Push clients, or the agent's own member."""

    async def get(self, cluster: JSON) -> Client: ...


class ExecutionReconciler:
    def __init__(
        self,
        client: Client,
        works: Cache,
        clusters: Cache,
        members: MemberSource,
        enqueue: Callable[[ObjectKey], None],
        *,
        pull: bool = False,
        interpreter: Interpreter | None = None,
    ) -> None:
        self.interpreter = interpreter or Interpreter()
        self.pull = pull
        """True in a Pull cluster's agent (it applies its own cluster's Works); the control plane's
        executor (False) leaves the Works of ``syncMode: Pull`` clusters to their agents."""
        self.client = client
        self.works = works
        self.clusters = clusters
        self.members = members
        self.enqueue = enqueue
        self.watches = DynamicInformers()

    async def reconcile(self, key: ObjectKey) -> Result:
        work = self.works.get(key.name, key.namespace)
        if work is None:
            return Result()
        cluster = self.clusters.get(cluster_of(key.namespace or ""))
        md = work["metadata"]
        finalizers = list(md.get("finalizers") or ())
        if not self.pull and is_pull(cluster):
            if md.get("deletionTimestamp") and (cluster or {}).get("metadata", {}).get("deletionTimestamp"):
                return await self._remove(work, None, finalizers)  # the cluster goes: its agent may be gone
            return Result()
        if md.get("deletionTimestamp"):
            return await self._remove(work, cluster, finalizers)
        if c.EXECUTION_FINALIZER not in finalizers:
            await self.client.patch(
                WORKS,
                key.name,
                {
                    "metadata": {
                        "finalizers": [*finalizers, c.EXECUTION_FINALIZER],
                        "resourceVersion": md["resourceVersion"],
                    }
                },
                key.namespace,
            )
            return Result()
        if cluster is None:
            await self._applied(
                work, False, "ClusterNotFound", f"cluster {cluster_of(key.namespace or '')!r} not found"
            )
            return Result(requeue_after=5.0)
        try:
            member = await self.members.get(cluster)
            statuses = [
                await self._apply(member, cluster, work, i, m)
                for i, m in enumerate(((work.get("spec") or {}).get("workload") or {}).get("manifests") or ())
            ]
        except (MemberError, ClientError) as exc:
            await self._applied(work, False, "AppliedFailed", f"Failed to apply all manifests: {exc}")
            return Result(requeue_after=5.0)
        except _Conflict as exc:
            await self._applied(work, False, "AppliedFailed", str(exc))
            return Result()
        except APIError as exc:
            await self._applied(work, False, "AppliedFailed", f"Failed to apply all manifests: {exc}")
            return Result(requeue_after=5.0)
        await self._applied(work, True, "AppliedSuccessful", "Manifest has been successfully applied", statuses)
        return Result()

    async def _apply(self, member: Client, cluster: JSON, work: JSON, ordinal: int, manifest: JSON) -> JSON:
        rd = await _discover(member, manifest["apiVersion"], manifest["kind"])
        manifest = labelled(work, manifest)
        md = manifest["metadata"]
        namespace = md.get("namespace") if rd.namespaced else None
        informer = self._watch(member, cluster["metadata"]["name"], rd)
        cached = informer.cache.get(md["name"], namespace) if informer.has_synced else None
        if cached is not None and (cached["metadata"].get("labels") or {}).get(c.WORK_NAME) == work["metadata"]["name"]:
            current = cached  # ours, as the member watch last saw it: no round trip unless it changed
        else:
            current = await self._create_or_get(member, rd, manifest, namespace)
            labels = current["metadata"].get("labels") or {}
            ours = labels.get(c.WORK_NAME) == work["metadata"]["name"]
            overwrite = (work["metadata"].get("annotations") or {}).get(c.CONFLICT_RESOLUTION) == "overwrite"
            if not ours and not overwrite:
                raise _Conflict(
                    f"{rd.kind} {namespace + '/' if namespace else ''}{md['name']} already exists in "
                    f"cluster {cluster['metadata']['name']} (conflictResolution: Abort)"
                )
        if (current["metadata"].get("annotations") or {}).get(MANIFEST_HASH) != md["annotations"][MANIFEST_HASH]:
            current = await self._update(member, rd, manifest, current, namespace)
        identifier = {
            "ordinal": ordinal,
            "group": rd.group,
            "version": rd.version,
            "kind": rd.kind,
            "resource": rd.plural,
            "namespace": namespace or "",
            "name": md["name"],
        }
        status = self.interpreter.reflect_status(current)
        return {"identifier": identifier, "status": status, "health": self.interpreter.health(current)}

    @staticmethod
    async def _create_or_get(member: Client, rd: ResourceDef, manifest: JSON, namespace: str | None) -> JSON:
        md = manifest["metadata"]
        try:
            return await member.create(rd, manifest, namespace)
        except NotFound:  # the namespace is missing on the member
            if not namespace:
                raise
            await _ensure_namespace(member, namespace)
            return await member.create(rd, manifest, namespace)
        except AlreadyExists:
            return await member.get(rd, md["name"], namespace)

    @staticmethod
    async def _update(member: Client, rd: ResourceDef, manifest: JSON, current: JSON, namespace: str | None) -> JSON:
        """PUT the manifest keeping the member's status (once more on a stale resourceVersion)."""
        for attempt in (1, 2):
            desired = {
                **manifest,
                "metadata": {**manifest["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]},
            }
            if "status" in current:
                desired["status"] = current["status"]
            try:
                return await member.update(rd, desired)
            except Conflict:
                if attempt == 2:
                    raise
                current = await member.get(rd, manifest["metadata"]["name"], namespace)
        raise AssertionError("unreachable")

    def _watch(self, member: Client, cluster: str, rd: ResourceDef) -> Informer:
        def on_event(obj: JSON) -> None:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if labels.get(c.WORK_NAME) and labels.get(c.WORK_NAMESPACE):
                self.enqueue(ObjectKey(labels[c.WORK_NAMESPACE], labels[c.WORK_NAME]))

        return self.watches.ensure(
            (cluster, rd.group, rd.version, rd.plural), member, rd, on_event, label_selector=c.WORK_NAME
        )

    async def _remove(self, work: JSON, cluster: JSON | None, finalizers: list[str]) -> Result:
        md = work["metadata"]
        if c.EXECUTION_FINALIZER not in finalizers:
            return Result()
        if cluster is not None and not (work.get("spec") or {}).get("preserveResourcesOnDeletion"):
            try:
                member = await self.members.get(cluster)
                for manifest in ((work.get("spec") or {}).get("workload") or {}).get("manifests") or ():
                    rd = await member.discover(manifest["apiVersion"], manifest["kind"])
                    mmd = manifest.get("metadata") or {}
                    with contextlib.suppress(NotFound):
                        current = await member.get(rd, mmd["name"], mmd.get("namespace") if rd.namespaced else None)
                        if (current["metadata"].get("labels") or {}).get(c.WORK_NAME) == md["name"]:
                            await member.delete(rd, mmd["name"], mmd.get("namespace") if rd.namespaced else None)
            except (MemberError, ClientError, APIError) as exc:
                if (cluster.get("metadata") or {}).get("deletionTimestamp") is None:
                    log.warning("work %s/%s: cannot delete member copies yet: %s", md["namespace"], md["name"], exc)
                    return Result(requeue_after=5.0)
        remaining = [f for f in finalizers if f != c.EXECUTION_FINALIZER]
        with contextlib.suppress(NotFound):
            await self.client.patch(WORKS, md["name"], {"metadata": {"finalizers": remaining or None}}, md["namespace"])
        return Result()

    async def _applied(
        self, work: JSON, ok: bool, reason: str, message: str, statuses: list[JSON] | None = None
    ) -> None:
        status = dict(work.get("status") or {})
        generation = work["metadata"].get("generation")
        status["conditions"] = set_condition(
            status.get("conditions"), "Applied", ok, reason, message, observed_generation=generation
        )
        if statuses is not None:
            status["manifestStatuses"] = statuses
        if status == work.get("status"):
            return
        md = work["metadata"]
        with contextlib.suppress(NotFound):
            await self.client.patch(WORKS, md["name"], {"status": status}, md["namespace"], subresource="status")


def labelled(work: JSON, manifest: JSON) -> JSON:
    """The manifest as applied to the member: the Work's labels and the manifest hash added — a new
    dict (the Work is the informer cache's, shared with the binding controller: never mutated)."""
    source = manifest.get("metadata") or {}
    wmd = work["metadata"]
    md = {
        **source,
        "labels": {**(source.get("labels") or {}), c.WORK_NAMESPACE: wmd["namespace"], c.WORK_NAME: wmd["name"]},
    }
    applied = {**manifest, "metadata": md}
    md["annotations"] = {**(source.get("annotations") or {}), MANIFEST_HASH: manifest_hash(applied)}
    return applied


def is_pull(cluster: JSON | None) -> bool:
    return bool(cluster and (cluster.get("spec") or {}).get("syncMode") == "Pull")


def work_changed(old: JSON, new: JSON) -> bool:
    """What the executor acts on (not its own status writes)."""
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return bool(
        old.get("spec") != new.get("spec")
        or om.get("deletionTimestamp") != nm.get("deletionTimestamp")
        or om.get("finalizers") != nm.get("finalizers")
    )


class _Conflict(Exception):
    """The member already has the object and the policy says Abort."""


def manifest_hash(manifest: JSON) -> str:
    """What was last applied (the member's server defaults fields, so objects are not compared)."""
    body = {k: v for k, v in manifest.items() if k != "metadata"}
    md = manifest.get("metadata") or {}
    body["metadata"] = {
        "labels": md.get("labels"),
        "annotations": {k: v for k, v in (md.get("annotations") or {}).items() if k != MANIFEST_HASH},
    }
    return hashlib.blake2b(orjson.dumps(body, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


async def _discover(member: Client, api_version: str, kind: str) -> ResourceDef:
    """The member's resource for a kind, with fresh discovery if the cached one lacks it (a CRD
    installed on the member after its client was made)."""
    try:
        return await member.discover(api_version, kind)
    except NotFound:
        member.invalidate_discovery()
        return await member.discover(api_version, kind)


async def _ensure_namespace(member: Client, namespace: str) -> None:
    from atoll.api import kinds

    with contextlib.suppress(AlreadyExists):
        await member.create(kinds.NAMESPACES, {"metadata": {"name": namespace}})
