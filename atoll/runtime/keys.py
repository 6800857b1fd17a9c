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


def own_key(obj: JSON) -> Iterable[ObjectKey]:
    """The default mapper: reconcile the object itself (controller-runtime's ``For``)."""
    return (key_of(obj),)


def owner_mapper(
    kind: str, api_version: str | None = None, *, controller_only: bool = True, cluster_scoped: bool = False
) -> Mapper:
    """Map an owned object to its owner's key (controller-runtime's ``Owns``).

    The owner is looked up by ``kind`` (and ``apiVersion`` if given) in ``ownerReferences``; for a
    namespaced object the owner is assumed to be in the same namespace or cluster-scoped, and
    cluster-scoped owners get a ``None`` namespace when the owned object is cluster-scoped too.
    """

    def mapper(obj: JSON) -> Iterable[ObjectKey]:
        meta = obj.get("metadata") or {}
        namespace = None if cluster_scoped else meta.get("namespace") or None
        keys = []
        for ref in meta.get("ownerReferences") or ():
            if ref.get("kind") != kind or (api_version and ref.get("apiVersion") != api_version):
                continue
            if controller_only and not ref.get("controller"):
                continue
            keys.append(ObjectKey(namespace, str(ref.get("name", ""))))
        return keys

    return mapper
