"""The dependency graph: every watched object as a node, owner → dependents edges by uid.

Kubernetes' ``GraphBuilder`` in Python. Informer events update the graph *incrementally* — one
object's node and the edges of its own ``ownerReferences``, never a relist — and enqueue the
work items the change makes necessary:

* a node whose owner is not in the graph gets a *virtual* owner node, enqueued for
  ``delete`` so the collector checks with the API server whether that owner exists at all;
* a removed node (DELETED event, or a virtual delete after the collector found the object gone)
  enqueues its dependents — they may now be garbage — and owners waiting in foreground deletion;
* an object that starts being deleted with the ``orphan`` finalizer enqueues ``orphan``; with
  ``foregroundDeletion`` it enqueues itself and all its dependents for ``delete``;
* an ownerReference removed from, or unblocked in, a dependent enqueues a foreground-deleting
  owner, which may now be free to go.

Handlers run on the event loop that runs everything else and do no I/O, so the graph needs no
lock and no second queue (upstream needs its ``graphChanges`` queue only for goroutine safety).
The graph only decides *what to look at*; the collector re-reads the API before any write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

JSON = dict[str, Any]
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"


class WorkItem(NamedTuple):
    """A reconcile request of the garbage collector: what to do with which uid."""

    action: Literal["delete", "orphan"]
    uid: str

    def __str__(self) -> str:
        return f"{self.action}:{self.uid}"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Enough to GET an object: apiVersion/kind are resolved to a resource by discovery."""

    api_version: str
    kind: str
    name: str
    uid: str
    namespace: str | None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name} ({self.uid})"


@dataclass(slots=True)
class Node:
    ref: ObjectRef
    owners: tuple[JSON, ...] = ()
    """The object's ownerReferences as last observed."""
    dependents: set[str] = field(default_factory=set)
    """uids of nodes listing this one as an owner."""
    observed: bool = True
    """False for a virtual node: known only from someone's ownerReference."""
    being_deleted: bool = False
    finalizers: frozenset[str] = frozenset()

    @property
    def deleting_dependents(self) -> bool:
        """In foreground deletion: the owner waits for its blocking dependents."""
        return self.being_deleted and FOREGROUND in self.finalizers

    def owner_ref(self, owner_uid: str) -> JSON | None:
        return next((ref for ref in self.owners if ref.get("uid") == owner_uid), None)


def ref_of(obj: JSON) -> ObjectRef:
    meta = obj.get("metadata") or {}
    return ObjectRef(
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        str(meta.get("name", "")),
        str(meta.get("uid", "")),
        meta.get("namespace") or None,
    )


def _blocks(ref: JSON | None) -> bool:
    return bool(ref and ref.get("blockOwnerDeletion"))


class Graph:
    """uid → Node; mutated only by informer events and the collector's virtual deletes."""

    def __init__(self, enqueue: Callable[[WorkItem], None]) -> None:
        self.nodes: dict[str, Node] = {}
        self._enqueue = enqueue

    def enqueue(self, item: WorkItem) -> None:
        self._enqueue(item)

    def clear(self) -> None:
        self.nodes.clear()

    def get(self, uid: str) -> Node | None:
        return self.nodes.get(uid)

    def dependents(self, node: Node) -> list[Node]:
        return [dep for uid in node.dependents if (dep := self.nodes.get(uid)) is not None]

    def blocking_dependents(self, node: Node) -> list[Node]:
        """Dependents whose reference to ``node`` says ``blockOwnerDeletion: true``."""
        return [dep for dep in self.dependents(node) if _blocks(dep.owner_ref(node.ref.uid))]

    # -- informer events ---------------------------------------------------------------------

    def observe(self, obj: JSON) -> None:
        """An ADDED or MODIFIED object."""
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid:
            return
        owners = tuple(r for r in meta.get("ownerReferences") or () if isinstance(r, dict) and r.get("uid"))
        node = self.nodes.get(uid)
        was_deleting, old_finalizers = False, frozenset[str]()
        if node is None:
            node = self.nodes[uid] = Node(ref_of(obj))
            self._link(node, owners)
        else:
            was_deleting, old_finalizers = node.being_deleted, node.finalizers
            if not node.observed:
                node.observed, node.ref = True, ref_of(obj)
            self._relink(node, owners)
        node.owners = owners
        node.being_deleted = bool(meta.get("deletionTimestamp"))
        node.finalizers = frozenset(str(f) for f in meta.get("finalizers") or ())
        self._transitions(node, was_deleting, old_finalizers)

    def forget(self, obj: JSON) -> None:
        """A DELETED object."""
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        if uid:
            self.remove(uid)

    def remove(self, uid: str) -> None:
        """Drop a node (deleted, or found absent by the collector: a virtual delete event)."""
        node = self.nodes.pop(uid, None)
        if node is None:
            return
        for ref in node.owners:
            owner = self.nodes.get(str(ref["uid"]))
            if owner is None:
                continue
            owner.dependents.discard(uid)
            if owner.deleting_dependents:
                self._enqueue(WorkItem("delete", owner.ref.uid))
            elif not owner.observed and not owner.dependents:
                self.nodes.pop(owner.ref.uid, None)  # a virtual node nobody refers to any more
        for dep in node.dependents:
            if dep in self.nodes:
                self._enqueue(WorkItem("delete", dep))

    # -- internals ---------------------------------------------------------------------------

    def _link(self, node: Node, owners: Iterable[JSON]) -> None:
        for ref in owners:
            owner_uid = str(ref["uid"])
            owner = self.nodes.get(owner_uid)
            if owner is None:
                virtual = ObjectRef(
                    str(ref.get("apiVersion", "")),
                    str(ref.get("kind", "")),
                    str(ref.get("name", "")),
                    owner_uid,
                    node.ref.namespace,
                )
                owner = self.nodes[owner_uid] = Node(virtual, observed=False)
                self._enqueue(WorkItem("delete", owner_uid))
            elif owner.being_deleted:
                # an owner already going away: let the collector classify this new dependent
                self._enqueue(WorkItem("delete", node.ref.uid))
            owner.dependents.add(node.ref.uid)

    def _relink(self, node: Node, owners: tuple[JSON, ...]) -> None:
        old = {str(r["uid"]): r for r in node.owners}
        new = {str(r["uid"]): r for r in owners}
        if old == new:
            return
        for uid, ref in old.items():
            owner = self.nodes.get(uid)
            if owner is None:
                continue
            if uid not in new:
                owner.dependents.discard(node.ref.uid)
            # a removed or unblocked reference may let a foreground-deleting owner go
            if owner.deleting_dependents and _blocks(ref) and not _blocks(new.get(uid)):
                self._enqueue(WorkItem("delete", uid))
        self._link(node, [ref for uid, ref in new.items() if uid not in old])

    def _transitions(self, node: Node, was_deleting: bool, old_finalizers: frozenset[str]) -> None:
        if not node.being_deleted:
            return
        uid = node.ref.uid
        if ORPHAN in node.finalizers and not (was_deleting and ORPHAN in old_finalizers):
            self._enqueue(WorkItem("orphan", uid))
        if FOREGROUND in node.finalizers and not (was_deleting and FOREGROUND in old_finalizers):
            for dep in node.dependents:
                self._enqueue(WorkItem("delete", dep))
            self._enqueue(WorkItem("delete", uid))
