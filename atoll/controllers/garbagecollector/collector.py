"""The garbage collector's reconciler: decide from live state, write with preconditions.

``attemptToDeleteItem`` and ``attemptToOrphan`` of kube-controller-manager, per work item:

``delete`` — is this object garbage?
    Every ownerReference is classified as *solid* (owner exists), *dangling* (owner gone: 404 or
    a different uid under that name) or *waiting* (owner in foreground deletion). No solid owner:
    delete the object (with a uid precondition) — Foreground if an owner waits for it and it has
    dependents itself, else by its own finalizers, else Background. Solid and dangling/waiting
    owners together: drop the dangling/waiting references and keep the object. An owner in
    foreground deletion whose blocking dependents are all gone loses ``foregroundDeletion``.

``orphan`` — an owner being deleted with the ``orphan`` finalizer: remove its ownerReference from
    every dependent, then remove the finalizer so the server deletes the owner.

The graph only says what to look at. The object itself is always re-read before writing;
owners are looked up in the graph when an informer has observed them (safe: any later change
to such an owner re-enqueues its dependents) and otherwise with a live GET, whose "absent"
answers are cached by uid (a uid never comes back).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from atoll.api.errors import Conflict, NotFound
from atoll.api.registry import ResourceDef
from atoll.client import Client
from atoll.controllers.garbagecollector.graph import FOREGROUND, ORPHAN, Graph, Node, ObjectRef, WorkItem
from atoll.runtime import Result, get_logger
from atoll.runtime.ratelimit import ExponentialFailureRateLimiter

JSON = dict[str, Any]
ABSENT_CACHE_SIZE = 1000
WRITE_RETRIES = 5
log = get_logger(__name__)


class UnknownKind(Exception):
    """An ownerReference names a kind discovery does not know (yet): retried with backoff."""


class _Absent(Exception):
    """The referenced object does not exist (404, or its name now belongs to another uid)."""


class Collector:
    """Reconciles ``WorkItem``s against the API server, guided by the graph."""

    def __init__(self, client: Client, graph: Graph) -> None:
        self.client = client
        self.graph = graph
        self._absent: OrderedDict[str, None] = OrderedDict()
        self._unobserved = ExponentialFailureRateLimiter(base_delay=0.5, max_delay=300.0)
        """Re-check delay for virtual nodes that exist but no informer has shown yet."""

    async def reconcile(self, key: WorkItem) -> Result:
        node = self.graph.get(key.uid)
        if node is None:
            self._unobserved.forget(key)
            return Result()
        if key.action == "orphan":
            await self._orphan(node)
            return Result()
        await self._attempt_delete(node)
        if node.observed or self.graph.get(key.uid) is not node:
            self._unobserved.forget(key)
            return Result()
        return Result(requeue_after=self._unobserved.when(key))

    # -- delete ------------------------------------------------------------------------------

    async def _attempt_delete(self, node: Node) -> None:
        if node.being_deleted and not node.deleting_dependents:
            return  # on its way out; its dependents are handled when the DELETED event arrives
        try:
            rd, latest = await self._get(node.ref)
        except _Absent:
            log.info("%s is gone; processing its dependents", node.ref)
            self._absent_add(node.ref.uid)
            self.graph.remove(node.ref.uid)
            return
        except UnknownKind:
            if node.observed:
                raise
            log.info("%s has an unknown kind; dropping the virtual node", node.ref)
            self.graph.remove(node.ref.uid)
            return
        meta = latest["metadata"]
        if meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or ()):
            await self._deleting_dependents(node, rd)
            return
        refs: list[JSON] = list(meta.get("ownerReferences") or ())
        if not refs:
            return
        solid, dangling, waiting = await self._classify(node, refs)
        if solid:
            if dangling or waiting:
                gone = {str(r["uid"]) for r in dangling + waiting}
                log.info("%s: removing references to owners %s", node.ref, sorted(gone))
                await self._rewrite_owner_refs(rd, node.ref, lambda r: None if r.get("uid") in gone else r)
            return
        if waiting and node.dependents:
            if any(dep.deleting_dependents for dep in self.graph.dependents(node)):
                # a dependent is itself waiting in foreground deletion: break a possible cycle
                await self._rewrite_owner_refs(rd, node.ref, lambda r: dict(r, blockOwnerDeletion=False))
            policy, why = "Foreground", "its owner waits in foreground deletion"
        else:
            finalizers = meta.get("finalizers") or ()
            policy = "Orphan" if ORPHAN in finalizers else "Foreground" if FOREGROUND in finalizers else "Background"
            why = "its owners wait in foreground deletion" if waiting else "no owner is left"
        log.info("deleting %s: %s (propagation %s)", node.ref, why, policy)
        await self._delete(rd, node.ref, policy)

    async def _classify(self, node: Node, refs: list[JSON]) -> tuple[list[JSON], list[JSON], list[JSON]]:
        solid: list[JSON] = []
        dangling: list[JSON] = []
        waiting: list[JSON] = []
        for ref in refs:
            owner_uid = str(ref.get("uid") or "")
            owner = self.graph.get(owner_uid)
            if owner is not None and owner.observed:
                deleting = owner.deleting_dependents
            elif owner_uid in self._absent:
                dangling.append(ref)
                continue
            else:
                owner_ref = ObjectRef(
                    str(ref.get("apiVersion", "")),
                    str(ref.get("kind", "")),
                    str(ref.get("name", "")),
                    owner_uid,
                    node.ref.namespace,
                )
                try:
                    _, live = await self._get(owner_ref)
                except _Absent:
                    self._absent_add(owner_uid)
                    dangling.append(ref)
                    continue
                live_meta = live["metadata"]
                deleting = bool(live_meta.get("deletionTimestamp")) and FOREGROUND in (
                    live_meta.get("finalizers") or ()
                )
            (waiting if deleting else solid).append(ref)
        return solid, dangling, waiting

    async def _deleting_dependents(self, node: Node, rd: ResourceDef) -> None:
        blocking = self.graph.blocking_dependents(node)
        if not blocking:
            log.info("%s: no blocking dependents left; removing %s", node.ref, FOREGROUND)
            await self._remove_finalizer(rd, node.ref, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.graph.enqueue(WorkItem("delete", dep.ref.uid))

    # -- orphan ------------------------------------------------------------------------------

    async def _orphan(self, owner: Node) -> None:
        if not (owner.being_deleted and ORPHAN in owner.finalizers):
            return  # a stale item: orphaning only ever starts from the owner's own finalizer
        owner_uid = owner.ref.uid
        for dep in self.graph.dependents(owner):
            try:
                dep_rd = await self._resource(dep.ref)
            except UnknownKind:
                continue  # its resource is no longer served; nothing to patch
            await self._rewrite_owner_refs(dep_rd, dep.ref, lambda r: None if r.get("uid") == owner_uid else r)
        try:
            rd = await self._resource(owner.ref)
        except UnknownKind:
            return
        log.info("%s: dependents orphaned; removing %s", owner.ref, ORPHAN)
        await self._remove_finalizer(rd, owner.ref, ORPHAN)

    # -- API helpers -------------------------------------------------------------------------

    async def _resource(self, ref: ObjectRef) -> ResourceDef:
        try:
            return await self.client.discover(ref.api_version, ref.kind)
        except NotFound:
            raise UnknownKind(f"{ref}: kind {ref.kind} in {ref.api_version} is not served") from None

    async def _get(self, ref: ObjectRef) -> tuple[ResourceDef, JSON]:
        """The live object behind ``ref``, or ``_Absent``."""
        rd = await self._resource(ref)
        if rd.namespaced and not ref.namespace:
            raise _Absent  # a cluster-scoped dependent cannot have a namespaced owner
        try:
            obj = await self.client.get(rd, ref.name, ref.namespace if rd.namespaced else None)
        except NotFound:
            raise _Absent from None
        if (obj.get("metadata") or {}).get("uid") != ref.uid:
            raise _Absent
        return rd, obj

    def _absent_add(self, uid: str) -> None:
        self._absent[uid] = None
        self._absent.move_to_end(uid)
        while len(self._absent) > ABSENT_CACHE_SIZE:
            self._absent.popitem(last=False)

    async def _delete(self, rd: ResourceDef, ref: ObjectRef, policy: str) -> None:
        try:
            await self.client.delete(
                rd,
                ref.name,
                ref.namespace if rd.namespaced else None,
                propagation_policy=policy,
                preconditions={"uid": ref.uid},
            )
        except (NotFound, Conflict):
            pass  # already gone, or the name now belongs to another object (uid precondition)

    async def _patch_meta(self, rd: ResourceDef, ref: ObjectRef, edit: Callable[[JSON], JSON | None]) -> None:
        """Read, ``edit(metadata) -> patch or None``, merge-patch pinned to the resourceVersion
        read; a conflict re-reads. A missing object or another uid ends quietly."""
        namespace = ref.namespace if rd.namespaced else None
        for _ in range(WRITE_RETRIES):
            try:
                obj = await self.client.get(rd, ref.name, namespace)
            except NotFound:
                return
            meta = obj.get("metadata") or {}
            if meta.get("uid") != ref.uid:
                return
            patch = edit(meta)
            if patch is None:
                return
            patch["resourceVersion"] = meta["resourceVersion"]
            try:
                await self.client.patch(rd, ref.name, {"metadata": patch}, namespace)
                return
            except NotFound:
                return
            except Conflict:
                continue
        raise Conflict(f"{ref}: gave up after {WRITE_RETRIES} conflicting writes")

    async def _remove_finalizer(self, rd: ResourceDef, ref: ObjectRef, finalizer: str) -> None:
        def edit(meta: JSON) -> JSON | None:
            finalizers = list(meta.get("finalizers") or ())
            if finalizer not in finalizers:
                return None
            kept = [f for f in finalizers if f != finalizer]
            return {"finalizers": kept or None}

        await self._patch_meta(rd, ref, edit)

    async def _rewrite_owner_refs(self, rd: ResourceDef, ref: ObjectRef, change: Callable[[JSON], JSON | None]) -> None:
        """Apply ``change(ownerReference) -> new reference or None (drop)`` to every reference."""

        def edit(meta: JSON) -> JSON | None:
            refs = list(meta.get("ownerReferences") or ())
            new = [r for r in (change(copy.deepcopy(r)) for r in refs) if r is not None]
            if new == refs:
                return None
            return {"ownerReferences": new or None}

        await self._patch_meta(rd, ref, edit)
