"""Admission: the chain of checks and mutations every write passes before it is stored.

An ``AdmissionPlugin`` sees an ``Attributes`` record (operation, resource, old and new object,
user) and may mutate ``attrs.obj`` or raise an ``APIError``. Plugins run in registration order;
the first refusal wins. Built-in plugins: namespace lifecycle (namespace must exist and not be
terminating), custom-resource schemas (prune, default, validate), resource quota (``quota``) and
Kuscia kinds (``kuscia``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver.auth.user import UserInfo

JSON = dict[str, Any]


@dataclass(slots=True)
class Attributes:
    operation: str  # CREATE | UPDATE | DELETE | CONNECT
    rd: ResourceDef
    namespace: str | None
    name: str
    obj: JSON | None
    old: JSON | None
    subresource: str = ""
    dry_run: bool = False
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    user: UserInfo | None = None
    warnings: list[str] = field(default_factory=list)
    on_abort: list[Callable[[], None]] = field(default_factory=list)  # undo reservations if not stored
    old_size: int = 0  # length of ``old``'s JSON encoding when known (the cached bytes), else 0

    def abort(self) -> None:
        """The write was refused later or was a dry run: release what plugins reserved."""
        callbacks, self.on_abort = self.on_abort, []
        for callback in callbacks:
            callback()


class AdmissionPlugin(Protocol):
    """May also define ``applies_to(rd) -> bool``: False for resources its ``admit`` never acts
    on (decided by the resource alone), so the chain does not call it for them; and
    ``handles(rd, operation, subresource) -> bool``: False for requests its ``admit`` returns from
    at once (decided by those three alone: a pod status write skips the create-time plugins)."""

    async def admit(self, attrs: Attributes) -> None:
        """Mutate ``attrs.obj`` and/or raise an ``APIError`` to refuse the write."""


class AdmissionChain:
    def __init__(self) -> None:
        self._plugins: list[AdmissionPlugin] = []
        self._by_request: dict[tuple[str, str, str, bool, bool, str, str], list[AdmissionPlugin]] = {}

    def add(self, plugin: AdmissionPlugin) -> None:
        self._plugins.append(plugin)
        self._by_request.clear()

    def _for(self, rd: ResourceDef, operation: str = "CREATE", subresource: str = "") -> list[AdmissionPlugin]:
        """The plugins that can act on such a request (in registration order), decided once per
        resource, operation and subresource."""
        # everything an ``applies_to`` or a ``handles`` may look at (a CRD recreated with another
        # scope keeps its group, plural and kind: ``namespaced`` is part of the key)
        key = (rd.group, rd.plural, rd.kind, rd.builtin, rd.namespaced, operation, subresource)
        plugins = self._by_request.get(key)
        if plugins is None:
            plugins = self._by_request[key] = [p for p in self._plugins if _applies(p, rd, operation, subresource)]
        return plugins

    async def admit(self, attrs: Attributes) -> None:
        for plugin in self._for(attrs.rd, attrs.operation, attrs.subresource):
            await plugin.admit(attrs)


def _applies(plugin: AdmissionPlugin, rd: ResourceDef, operation: str, subresource: str) -> bool:
    applies_to = getattr(plugin, "applies_to", None)
    if applies_to is not None and not applies_to(rd):
        return False
    handles = getattr(plugin, "handles", None)
    return handles is None or bool(handles(rd, operation, subresource))


class NamespaceLifecycle:
    """Namespaced objects may only be created in a namespace that exists and is not terminating."""

    def __init__(self, namespace_exists: NamespaceLookup) -> None:
        self._lookup = namespace_exists

    @staticmethod
    def handles(rd: ResourceDef, operation: str, subresource: str) -> bool:
        return operation == "CREATE" and rd.namespaced

    async def admit(self, attrs: Attributes) -> None:
        if attrs.operation != "CREATE" or not attrs.rd.namespaced or attrs.namespace is None:
            return
        namespace = self._lookup(attrs.namespace)
        if namespace is None:
            raise errors.not_found("namespaces", "", attrs.namespace)
        if (namespace.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.Forbidden(
                f'{attrs.rd.group_resource} "{attrs.name}" is forbidden: unable to create new content in '
                f"namespace {attrs.namespace} because it is being terminated"
            )


class NamespaceLookup(Protocol):
    def __call__(self, name: str) -> JSON | None: ...
