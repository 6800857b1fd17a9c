"""``ObjectKey``: what a reconcile request is — a namespace and a name, never the event.

Reconciliation is level-based (controller-runtime's rule): a controller that hears "Pod deleted"
gets only the key and finds out what happened by reading the cache. A ``NamedTuple`` hashes and
compares at C speed, which matters for a queue and a cache that handle every key many times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

JSON = dict[str, Any]


class ObjectKey(NamedTuple):
    namespace: str | None
    """``None`` for cluster-scoped objects."""
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


Mapper = Callable[[JSON], Iterable[ObjectKey]]
"""Maps an object seen by an informer to the keys a controller should reconcile."""


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return ObjectKey(meta.get("namespace") or None, str(meta.get("name", "")))


def namespace_of(obj: Mapping[str, Any]) -> str | None:
    """The object's namespace, ``None`` for a cluster-scoped one (``key_of(obj).namespace``)."""
    return (obj.get("metadata") or {}).get("namespace") or None


def own_key(obj: JSON) -> Iterable[ObjectKey]:
    """The default mapper: reconcile the object itself (controller-runtime's ``For``)."""
    return (key_of(obj),)


def has_owners(obj: JSON) -> bool:
    """Whether ``obj`` has any ``ownerReferences`` (the gate of owner-based mappers)."""
    meta = obj.get("metadata")
    return bool(meta.get("ownerReferences")) if isinstance(meta, dict) else False


class Gated:
    """A mapper with a cheap ``gate``: ``gate(obj)`` is False only when ``mapper(obj)`` returns no
    key, so the informer's dispatcher (:mod:`atoll.runtime.dispatch`) skips objects the gate
    rejects — and, on an update both sides reject, the update predicate too. A gate must never
    reject an object the mapper would map to a key (``tests/unit/test_dispatch.py`` checks the
    controllers' gates against their mappers)."""

    __slots__ = ("gate", "mapper")

    def __init__(self, mapper: Mapper, gate: Callable[[JSON], bool]) -> None:
        self.mapper = mapper
        self.gate = gate

    def __call__(self, obj: JSON) -> Iterable[ObjectKey]:
        return self.mapper(obj)


class OwnerMapper:
    """Map an owned object to its owner's key (controller-runtime's ``Owns``); see :func:`owner_mapper`.
    Its gate is :func:`has_owners`: an object without ``ownerReferences`` maps to no key."""

    __slots__ = ("api_version", "cluster_scoped", "controller_only", "kind")
    gate = staticmethod(has_owners)

    def __init__(self, kind: str, api_version: str | None, controller_only: bool, cluster_scoped: bool) -> None:
        self.kind = kind
        self.api_version = api_version
        self.controller_only = controller_only
        self.cluster_scoped = cluster_scoped

    def __call__(self, obj: JSON) -> list[ObjectKey]:
        meta = obj.get("metadata") or {}
        namespace = None if self.cluster_scoped else meta.get("namespace") or None
        keys = []
        for ref in meta.get("ownerReferences") or ():
            if ref.get("kind") != self.kind or (self.api_version and ref.get("apiVersion") != self.api_version):
                continue
            if self.controller_only and not ref.get("controller"):
                continue
            keys.append(ObjectKey(namespace, str(ref.get("name", ""))))
        return keys


def owner_mapper(
    kind: str, api_version: str | None = None, *, controller_only: bool = True, cluster_scoped: bool = False
) -> Mapper:
    """Map an owned object to its owner's key (controller-runtime's ``Owns``).

    The owner is looked up by ``kind`` (and ``apiVersion`` if given) in ``ownerReferences``; for a
    namespaced object the owner is assumed to be in the same namespace or cluster-scoped, and
    cluster-scoped owners get a ``None`` namespace when the owned object is cluster-scoped too.
    """
    return OwnerMapper(kind, api_version, controller_only, cluster_scoped)
