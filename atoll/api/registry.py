"""The one registry of resource definitions.

A ``ResourceDef`` describes a served resource once (group, version, kind, plural, scope, short
names, subresources, printer columns, schema). Routing, discovery, OpenAPI, tables, storage keys,
RBAC and the CLI all read this registry, for built-in kinds and CRDs alike. The registry is
mutable only through ``register``/``unregister`` (CRDs come and go); readers get immutable
``ResourceDef`` values and a ``generation`` counter that changes on every registration, so
derived documents (discovery, OpenAPI) can be cached and invalidated cheaply.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

JSON = dict[str, Any]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


class WebhookConverter(Protocol):
    """What calls CRDs' conversion webhooks: the clients of the API server serving the CRD
    (``atoll.apiserver.apiextensions.webhook.WebhookClients``)."""

    async def convert(self, config: JSON, resource: str, objects: list[JSON], desired: str) -> list[JSON]: ...


@dataclass(frozen=True, slots=True)
class ResourceDef:
    """Everything the server needs to know about one served resource (one group-version)."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()  # e.g. ("status",), ("status", "binding", "log")
    printer_columns: tuple[PrinterColumn, ...] = ()
    schema: JSON | None = field(default=None, compare=False, hash=False)  # openAPIV3Schema (CRDs)
    builtin: bool = True
    list_kind: str = ""
    storage_version: str = ""
    """A CRD with several versions: the one objects are stored at (a write at any version is
    stored at it; a read converts what it finds to its own version, see
    ``atoll.apiserver.registry.conversion``). Empty for every other resource: nothing converts."""
    conversion_webhook: JSON | None = field(default=None, compare=False, hash=False)
    """With ``storage_version``: the ``clientConfig`` (``url``, ``caBundle``) of the CRD's conversion
    webhook; None: conversion strategy ``None`` (only ``apiVersion`` changes)."""
    webhook_clients: WebhookConverter | None = field(default=None, compare=False, hash=False, repr=False)
    """With ``conversion_webhook``: the clients that call it, set by the API server serving the CRD
    (they keep its connections open between calls)."""

    @property
    def storage_api_version(self) -> str:
        """``apiVersion`` of a stored object written now (this one's unless ``storage_version``)."""
        version = self.storage_version or self.version
        return f"{self.group}/{version}" if self.group else version

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``pods`` or ``domains.kuscia.secretflow`` as used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def key_prefix(self, namespace: str | None = None) -> str:
        """Storage key prefix: ``/<group or core>/<plural>/[<namespace>/]``."""
        base = f"/{self.group or 'core'}/{self.plural}/"
        return f"{base}{namespace}/" if self.namespaced and namespace else base

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"/{self.group or 'core'}/{self.plural}/{namespace}/{name}"
        return f"/{self.group or 'core'}/{self.plural}/{name}"

    def kind_list(self) -> str:
        return self.list_kind or f"{self.kind}List"


class Registry:
    """Resources by (group, version, plural); thread-unsafe, owned by one event loop."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceDef] = {}
        self._by_gk: dict[tuple[str, str], ResourceDef] = {}
        self.generation = 0

    def register(self, rd: ResourceDef) -> None:
        self._by_gvr[(rd.group, rd.version, rd.plural)] = rd
        self._by_gk[(rd.group, rd.kind)] = rd
        self.generation += 1

    def unregister(self, group: str, plural: str) -> None:
        for key in [k for k in self._by_gvr if k[0] == group and k[2] == plural]:
            rd = self._by_gvr.pop(key)
            self._by_gk.pop((rd.group, rd.kind), None)
        self.generation += 1

    def get(self, group: str, version: str, plural: str) -> ResourceDef | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, group: str, kind: str) -> ResourceDef | None:
        return self._by_gk.get((group, kind))

    def __iter__(self) -> Iterator[ResourceDef]:
        return iter(list(self._by_gvr.values()))

    def groups(self) -> dict[str, list[str]]:
        """group -> versions (preferred first)."""
        out: dict[str, list[str]] = {}
        for group, version, _ in self._by_gvr:
            versions = out.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceDef]:
        return [rd for (g, v, _), rd in self._by_gvr.items() if g == group and v == version]
