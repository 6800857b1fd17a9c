"""The informer's store: objects by ``ObjectKey`` plus secondary indexes.

Controllers answer "which pods run on node n?", "which objects does uid u own?", "which
objects carry label k=v?" many times per second; scanning the store each time is what indexes
avoid. An index function maps an object to zero or more string values; the cache keeps
``index → value → keys`` and the values each object contributed, so an update only touches the
buckets that changed. Built-in indexes: ``namespace``, ``label`` (``k=v``), ``owner`` (owner uid)
and ``node`` (``spec.nodeName``); pod-owning controllers add ``orphan`` (the namespace of objects
without a controller reference, :func:`by_orphan_namespace`) with :meth:`Cache.ensure_index`.
Objects are stored as received — never copied — so callers must treat them as read-only and copy
before mutating (``copy.deepcopy`` only where needed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from atoll.runtime.keys import ObjectKey, key_of

JSON = dict[str, Any]
IndexFunc = Callable[[JSON], Iterable[str]]
Objects = list[JSON]
Keys = list[ObjectKey]


def by_namespace(obj: JSON) -> Iterable[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return (namespace,) if namespace else ()


def by_label(obj: JSON) -> Iterable[str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return [f"{k}={v}" for k, v in labels.items()]


def by_owner(obj: JSON) -> Iterable[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or ()
    return [str(ref["uid"]) for ref in refs if ref.get("uid")]


def by_node(obj: JSON) -> Iterable[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return (node,) if node else ()


def by_orphan_namespace(obj: JSON) -> Iterable[str]:
    """The namespace of an object no controller owns (adoption candidates), else nothing."""
    md = obj.get("metadata") or {}
    namespace = md.get("namespace")
    if not namespace or any(ref.get("controller") for ref in md.get("ownerReferences") or ()):
        return ()
    return (namespace,)


ORPHAN_INDEX = "orphan"

DEFAULT_INDEXES: dict[str, IndexFunc] = {
    "namespace": by_namespace,
    "label": by_label,
    "owner": by_owner,
    "node": by_node,
}


class Cache:
    """A keyed object store with secondary indexes; owned by one event loop."""

    def __init__(self, indexes: dict[str, IndexFunc] | None = None, *, defaults: bool = True) -> None:
        self._objects: dict[ObjectKey, JSON] = {}
        self._funcs: dict[str, IndexFunc] = dict(DEFAULT_INDEXES) if defaults else {}
        self._funcs.update(indexes or {})
        self._index: dict[str, dict[str, set[ObjectKey]]] = {name: {} for name in self._funcs}
        self._values: dict[ObjectKey, dict[str, tuple[str, ...]]] = {}
        self._tracked: set[str] = set()
        self._generations: dict[tuple[str, str], int] = {}

    # -- reads -------------------------------------------------------------------------------

    def get(self, name: str, namespace: str | None = None) -> JSON | None:
        return self._objects.get(ObjectKey(namespace or None, name))

    def get_key(self, key: ObjectKey) -> JSON | None:
        return self._objects.get(key)

    def list(self, namespace: str | None = None) -> Objects:
        if namespace is None:
            return list(self._objects.values())
        return self.by_index("namespace", namespace)

    def any_in(self, namespace: str | None) -> bool:
        """Whether any object of ``namespace`` is cached (one look-up; no list is built)."""
        return namespace is not None and bool(self._index["namespace"].get(namespace))

    def keys(self) -> Keys:
        return list(self._objects)

    def by_index(self, index: str, value: str) -> Objects:
        keys = self._index[index].get(value, ())
        return [self._objects[k] for k in keys]

    def by_label(self, key: str, value: str) -> Objects:
        return self.by_index("label", f"{key}={value}")

    def by_owner(self, uid: str) -> Objects:
        return self.by_index("owner", uid)

    def by_node(self, node_name: str) -> Objects:
        return self.by_index("node", node_name)

    def generation(self, index: str, value: str) -> int:
        """A counter that moves whenever an object indexed under ``value`` is stored or removed
        (for indexes named in :meth:`track_changes`), so a reader can tell "nothing here
        changed" without comparing the objects."""
        return self._generations.get((index, value), 0)

    def index_values(self, index: str) -> tuple[str, ...]:
        return tuple(self._index[index])

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, key: object) -> bool:
        return key in self._objects

    def __iter__(self) -> Iterator[JSON]:
        return iter(list(self._objects.values()))

    # -- writes (the informer's) --------------------------------------------------------------

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Add a custom index; existing objects are indexed at once."""
        if name in self._funcs:
            raise ValueError(f"index {name!r} already exists")
        self._funcs[name] = func
        self._index[name] = {}
        for key, obj in self._objects.items():
            values = tuple(func(obj))
            self._values[key][name] = values
            for value in values:
                self._index[name].setdefault(value, set()).add(key)

    def ensure_index(self, name: str, func: IndexFunc) -> None:
        """:meth:`add_index` unless an index of that name exists (controllers sharing one
        informer each ask for the index they read)."""
        if name not in self._funcs:
            self.add_index(name, func)

    def track_changes(self, index: str) -> None:
        """Keep :meth:`generation` counters for ``index`` from now on."""
        if index not in self._funcs:
            raise ValueError(f"no index {index!r}")
        self._tracked.add(index)

    def _bump(self, name: str, values: tuple[str, ...]) -> None:
        for value in values:
            self._generations[(name, value)] = self._generations.get((name, value), 0) + 1

    def upsert(self, obj: JSON, key: ObjectKey | None = None) -> JSON | None:
        """Store ``obj`` (under ``key``, its :func:`key_of` if the caller has it); returns the
        previous object with the same key, if any."""
        if key is None:
            key = key_of(obj)
        new_values = {name: tuple(func(obj)) for name, func in self._funcs.items()}  # may raise: nothing changed yet
        old = self._objects.get(key)
        self._objects[key] = obj
        old_values = self._values.get(key, {})
        for name in self._tracked:
            self._bump(name, old_values.get(name, ()))
            self._bump(name, new_values[name])
        for name, values in new_values.items():
            previous = old_values.get(name, ())
            if previous == values:
                continue
            bucket = self._index[name]
            for value in previous:
                self._discard(bucket, value, key)
            for value in values:
                bucket.setdefault(value, set()).add(key)
        self._values[key] = new_values
        return old

    def remove(self, key: ObjectKey) -> JSON | None:
        old = self._objects.pop(key, None)
        for name, values in self._values.pop(key, {}).items():
            if name in self._tracked:
                self._bump(name, values)
            for value in values:
                self._discard(self._index[name], value, key)
        return old

    @staticmethod
    def _discard(bucket: dict[str, set[ObjectKey]], value: str, key: ObjectKey) -> None:
        keys = bucket.get(value)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del bucket[value]


class CachedNames:
    """``name in CachedNames(cache, namespace)``: whether the cache holds that object — a
    container for :class:`~atoll.runtime.expectations.Expectations` that looks up only the names
    it asks about instead of building the namespace's name set."""

    __slots__ = ("cache", "namespace")

    def __init__(self, cache: Cache, namespace: str | None) -> None:
        self.cache = cache
        self.namespace = namespace

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.cache.get(name, self.namespace) is not None
