"""Expectations of a controller that creates and deletes pods (kube-controller-manager's
``ControllerExpectations``, by name): pods it created that its cache has not shown yet count as
existing, pods it deleted that the cache still shows count as gone. Without this, a reconcile
running on a stale cache creates or deletes twice. Entries expire after ``ttl`` seconds of the
injected clock, so a lost watch event never blocks a controller for good."""

from __future__ import annotations

from collections.abc import Container, Hashable, Iterable

from atoll.api.clock import SYSTEM_CLOCK, Clock


class Expectations:
    def __init__(self, *, ttl: float = 60.0, clock: Clock = SYSTEM_CLOCK) -> None:
        self.ttl = ttl
        self.clock = clock
        self._created: dict[Hashable, dict[str, float]] = {}
        self._deleted: dict[Hashable, dict[str, float]] = {}

    def created(self, owner: Hashable, name: str) -> None:
        self._created.setdefault(owner, {})[name] = self.clock.now()

    def deleted(self, owner: Hashable, name: str) -> None:
        self._deleted.setdefault(owner, {})[name] = self.clock.now()

    def pending_creates(self, owner: Hashable, seen: Iterable[str] | Container[str]) -> set[str]:
        """Names created for ``owner`` not yet among ``seen`` (names seen are forgotten). ``seen``
        may be any container (a cache lookup): only the pending names are looked up in it."""
        return self._pending(self._created, owner, seen, present=True)

    def pending_deletes(self, owner: Hashable, seen: Iterable[str] | Container[str]) -> set[str]:
        """Names deleted for ``owner`` that are still among ``seen`` (names gone are forgotten)."""
        return self._pending(self._deleted, owner, seen, present=False)

    def observed(self, owner: Hashable, name: str) -> None:
        """The informer showed a pod created for ``owner`` (kube's ``CreationObserved``): it stops
        counting as pending even if it is deleted before the next reconcile reads the cache."""
        entries = self._created.get(owner)
        if entries is not None and entries.pop(name, None) is not None and not entries:
            del self._created[owner]

    def creating(self, owner: Hashable) -> bool:
        """Whether pods created for ``owner`` may still be unobserved (as of the last
        :meth:`pending_creates`; entries expire after ``ttl``)."""
        return bool(self._created.get(owner))

    def forget(self, owner: Hashable) -> None:
        self._created.pop(owner, None)
        self._deleted.pop(owner, None)

    def _pending(self, table: dict[Hashable, dict[str, float]], owner: Hashable,
                 seen: Iterable[str] | Container[str], *, present: bool) -> set[str]:
        entries = table.get(owner)
        if not entries:
            return set()
        if not isinstance(seen, Container):
            seen = set(seen)
        now = self.clock.now()
        for name in list(entries):
            settled = (name in seen) if present else (name not in seen)
            if settled or now - entries[name] > self.ttl:
                del entries[name]
        if not entries:
            table.pop(owner, None)
        return set(entries)
