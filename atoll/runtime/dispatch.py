"""One informer handler for every controller that watches that informer.

``Controller.watch(informer, mapper, update_predicate=...)`` used to register three closures of
its own on the informer, so for every event the informer called, per controller, its guarded
``_call``, the controller's closure and an ``enqueue`` closure per mapped object — a pod event on
the master ran that chain for ten controllers. Now each informer has one :class:`SourceDispatch`
(created by the first ``watch`` of it, in that handler slot) that loops over its controllers'
sources in the order they were added and, for each one, does exactly what the closures did: on an
add or delete it enqueues ``mapper(obj)``; on an update, if the source has no predicate or the
predicate accepts ``(old, new)``, it enqueues ``mapper(old)`` then ``mapper(new)``. Every source
still sees every event of the informer and puts the same keys into the same queue; a source whose
predicate or mapper raises is logged and skipped, the others still run (as a failing handler was).

A source whose mapper has a gate (:class:`~atoll.runtime.keys.Gated`, or an
:class:`~atoll.runtime.keys.OwnerMapper`, gated on having ``ownerReferences``) is skipped for an
object its gate rejects — the gate only rejects objects the mapper maps to no key — and on an
update that both sides' gates reject, its predicate is not asked either: nothing would be enqueued
whatever it answered. On the master a pod without owners, in a namespace without Services,
ResourceQuotas, PodDisruptionBudgets or ReplicaSets, costs the controllers that map pods to those
one dictionary look-up each instead of their mappers and predicates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from atoll.runtime.informer import Informer
from atoll.runtime.keys import Gated, OwnerMapper

JSON = dict[str, Any]
log = logging.getLogger(__name__)


class _Queue(Protocol):
    def add(self, key: Any) -> None: ...


class Enqueuer(Protocol):
    """What a source feeds: read ``queue`` per event (a stopped controller gets a new queue)."""

    name: str

    @property
    def queue(self) -> _Queue: ...


@dataclass(frozen=True, slots=True)
class Source:
    target: Enqueuer
    mapper: Callable[[JSON], Iterable[Hashable]]
    predicate: Callable[[JSON, JSON], bool] | None
    gate: Callable[[JSON], bool] | None
    """False only for objects ``mapper`` maps to no key."""


class SourceDispatch:
    """The controller sources of one informer, called from one handler."""

    def __init__(self, informer: Informer) -> None:
        self._what = informer.rd.group_resource
        self._sources: list[Source] = []
        self._informer = informer
        informer.add_handler(on_add=self.on_add, on_update=self.on_update, on_delete=self.on_add)

    @staticmethod
    def of(informer: Informer) -> SourceDispatch:
        """The informer's dispatcher, created (and registered as a handler) on first use."""
        dispatch = informer.dispatch
        if not isinstance(dispatch, SourceDispatch):
            dispatch = informer.dispatch = SourceDispatch(informer)
        return dispatch

    def add(
        self,
        target: Enqueuer,
        mapper: Callable[[JSON], Iterable[Hashable]],
        predicate: Callable[[JSON, JSON], bool] | None = None,
    ) -> None:
        """Add a source; if the informer's cache is already filled, its objects are enqueued now
        (as a newly added handler's ``on_add`` sees every cached object)."""
        gate = mapper.gate if isinstance(mapper, (Gated, OwnerMapper)) else None
        source = Source(target, mapper, predicate, gate)
        self._sources.append(source)
        for obj in self._informer.cache:
            self._one(source, obj)

    def _one(self, source: Source, obj: JSON) -> None:
        try:
            if source.gate is not None and not source.gate(obj):
                return
            add = source.target.queue.add
            for key in source.mapper(obj):
                add(key)
        except Exception:  # a mapper bug must not stop the informer or the other controllers
            log.exception("event handler for %s failed (controller %s)", self._what, source.target.name)

    def on_add(self, obj: JSON) -> None:
        """An added or deleted object: every source maps it."""
        for source in self._sources:
            self._one(source, obj)

    def on_update(self, old: JSON, new: JSON) -> None:
        """Every source whose predicate accepts the change maps the old and then the new object."""
        for source in self._sources:
            try:
                old_in = new_in = True
                if source.gate is not None:
                    old_in, new_in = source.gate(old), source.gate(new)
                    if not (old_in or new_in):
                        continue
                if source.predicate is not None and not source.predicate(old, new):
                    continue
                add = source.target.queue.add
                if old_in:
                    for key in source.mapper(old):
                        add(key)
                if new_in:
                    for key in source.mapper(new):
                        add(key)
            except Exception:  # as in _one
                log.exception("event handler for %s failed (controller %s)", self._what, source.target.name)
