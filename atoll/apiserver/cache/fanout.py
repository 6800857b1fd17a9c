"""Which watchers an event is offered to: kube-apiserver's "indexed triggers" for the watch cache.

The watchers of one resource are grouped by scope (all namespaces, or one namespace's key prefix)
and, when their field selector pins an indexed field (``TRIGGER_FIELDS``, e.g. ``spec.nodeName``
of the agents' pod watches) to a value with ``=``, by that value. An event is offered only to its
scopes' unindexed watchers and to the indexed ones whose value is the event object's current or
previous value of that field: every other watcher's filter rejects both states, so it would have
been sent nothing. The values are read with the selectors' own ``field_value``, so the index never
disagrees with the filter. A watcher without selector whose prefix is its scope's gets every event
of the scope unfiltered; one whose selector is that one indexed term and nothing else is not even
filtered: its bucket tells whether each state matches, and all of a bucket's watchers share one
event (an ADDED/DELETED for a pod entering/leaving the value included). Other watchers run their
filter in ``Watcher.offer``. Each watcher gets its events in the order they are applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from atoll.api.field_selectors import field_value
from atoll.apiserver.cache.watchers import Watcher, WatchEvent, as_seen

TRIGGER_FIELDS: tuple[str, ...] = ("spec.nodeName", "metadata.name")
"""Fields whose ``=`` selector value indexes a watcher (in this order of preference)."""
_PATHS = {name: tuple(name.split(".")) for name in TRIGGER_FIELDS}

Holding = set[Watcher]


@runtime_checkable
class Pinning(Protocol):
    """A filter that can tell the value its field selector pins ``field`` to (``=``)."""

    def exact(self, field: str) -> str | None:
        """The value, or None when ``field`` is not pinned."""

    def only(self, field: str) -> bool:
        """True when the selector is the pinning term alone (it selects nothing else)."""


def trigger_of(matches: Callable[..., bool] | None) -> tuple[str, str, bool] | None:
    """(field, value, whether that term is the whole filter) indexing a watcher with this filter,
    or None when the watcher must be offered every event."""
    if matches is None or not isinstance(matches, Pinning):
        return None
    for name in TRIGGER_FIELDS:
        value = matches.exact(name)
        if value is not None:
            return name, value, matches.only(name)
    return None


Index = dict[str, dict[str, set[Watcher]]]  # field -> value -> watchers


class _Scope:
    """The watchers of one key prefix: without selector, unindexed, indexed and filtered, indexed
    and not filtered."""

    __slots__ = ("everything", "filtered", "pinned", "unindexed")

    def __init__(self) -> None:
        self.everything: set[Watcher] = set()
        self.unindexed: set[Watcher] = set()
        self.filtered: Index = {}
        self.pinned: Index = {}

    def empty(self) -> bool:
        return not self.everything and not self.unindexed and not self.filtered and not self.pinned


class Fanout:
    """The live watchers of one resource (``rprefix``, e.g. ``/core/pods/``), indexed."""

    __slots__ = ("_scopes", "count", "rprefix")

    def __init__(self, rprefix: str) -> None:
        self.rprefix = rprefix
        self._scopes: dict[str, _Scope] = {}
        self.count = 0

    def _scope_of(self, watcher: Watcher) -> str:
        """The watcher's prefix when it is the resource's or one namespace's; otherwise the
        resource's (``Watcher.offer`` checks the prefix itself)."""
        prefix, rprefix = watcher.prefix, self.rprefix
        rest = prefix[len(rprefix):] if prefix.startswith(rprefix) else ""
        return prefix if rest and rest.find("/") == len(rest) - 1 else rprefix

    def _place(self, watcher: Watcher, create: bool) -> tuple[str, _Scope, set[Watcher]] | None:
        """(scope name, scope, the set holding ``watcher``), made when ``create``."""
        name = self._scope_of(watcher)
        scope = self._scopes.get(name)
        if scope is None:
            if not create:
                return None
            scope = self._scopes[name] = _Scope()
        trigger = trigger_of(watcher.matches)
        if trigger is None:
            plain = watcher.matches is None and name == watcher.prefix
            return name, scope, scope.everything if plain else scope.unindexed
        field, value, only = trigger
        index = scope.pinned if only and name == watcher.prefix else scope.filtered
        values = index.get(field)
        if values is None:
            if not create:
                return None
            values = index[field] = {}
        bucket = values.get(value)
        if bucket is None:
            if not create:
                return None
            bucket = values[value] = set()
        return name, scope, bucket

    def add(self, watcher: Watcher) -> None:
        placed = self._place(watcher, True)
        assert placed is not None
        placed[2].add(watcher)
        self.count += 1

    def discard(self, watcher: Watcher) -> None:
        """Forget ``watcher`` (no-op when it is not here)."""
        placed = self._place(watcher, False)
        if placed is None or watcher not in placed[2]:
            return
        name, scope, bucket = placed
        bucket.discard(watcher)
        self.count -= 1
        trigger = trigger_of(watcher.matches)
        if not bucket and trigger is not None:
            field, value, _ = trigger
            for index in (scope.filtered, scope.pinned):
                values = index.get(field)
                if values is not None and values.get(value) is bucket:
                    del values[value]
                    if not values:
                        del index[field]
        if scope.empty():
            del self._scopes[name]

    def offer(self, event: WatchEvent, holding: Holding) -> list[Watcher]:
        """Offer ``event`` to the watchers it may concern; return those that overflowed."""
        scopes = self._scopes
        key = event.key
        namespace = key[: key.rfind("/") + 1]
        overflowed: list[Watcher] = []
        for name in (self.rprefix, namespace) if namespace != self.rprefix else (self.rprefix,):
            scope = scopes.get(name)
            if scope is None:
                continue
            for w in scope.everything:
                if not w.deliver(event, holding):
                    overflowed.append(w)
            for w in scope.unindexed:
                if not w.offer(event, holding):
                    overflowed.append(w)
            if scope.filtered:
                for w in _indexed(scope.filtered, event):
                    if not w.offer(event, holding):
                        overflowed.append(w)
            if scope.pinned:
                _deliver_pinned(scope.pinned, event, holding, overflowed)
        return overflowed


def _values(event: WatchEvent, path: tuple[str, ...]) -> tuple[str, str | None]:
    """The event's current and previous (None: no previous state) value of the field at ``path``."""
    now = field_value(event.current.obj, path)
    return now, None if event.previous is None else field_value(event.previous.peek(), path)


def _indexed(index: Index, event: WatchEvent) -> list[Watcher]:
    """The watchers indexed under the event's current or previous value of their field."""
    out: list[Watcher] = []
    for field, values in index.items():
        now, before = _values(event, _PATHS[field])
        out.extend(values.get(now, ()))
        if before is not None and before != now:
            out.extend(values.get(before, ()))
    return out


def _deliver_pinned(index: Index, event: WatchEvent, holding: Holding, overflowed: list[Watcher]) -> None:
    """Deliver to the watchers whose whole selector is ``field=value``: those of the current value
    match the current object, those of the previous value the previous one."""
    for field, values in index.items():
        now, before = _values(event, _PATHS[field])
        watchers = values.get(now)
        if watchers:
            seen = as_seen(event, True, before == now)
            if seen is not None:
                overflowed.extend(w for w in watchers if not w.deliver(seen, holding))
        if before is not None and before != now:
            watchers = values.get(before)
            if watchers:
                seen = as_seen(event, False, True)
                if seen is not None:
                    overflowed.extend(w for w in watchers if not w.deliver(seen, holding))
