"""Namespaces: phase and the ``kubernetes`` finalizer on create, the name label, DNS-label names,
deletion held by ``spec.finalizers`` (phase ``Terminating`` meanwhile) and ``…/finalize``.

The namespace controller empties a terminating namespace and then ``PUT …/finalize`` with the
remaining ``spec.finalizers``; once none are left the storage removes the namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from atoll.api.builtin_validation import require_valid
from atoll.api.registry import ResourceDef
from atoll.apiserver.registry.strategies.base import KindStrategy
from atoll.apiserver.registry.subresources import (
    SAME_KIND,
    ObjectReply,
    Reply,
    Subresource,
    SubresourceCall,
    method_not_allowed,
    require_body,
)
from atoll.apiserver.tables import printers
from atoll.apiserver.tables.columns import Printer

if TYPE_CHECKING:
    from atoll.apiserver.registry.storage import ResourceStorage

JSON = dict[str, Any]

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class FinalizeSubresource:
    """``PUT namespaces/NAME/finalize``: replace ``spec.finalizers`` (nothing else)."""

    verbs: tuple[str, ...] = ("update",)
    response_kind: tuple[str, str, str] | None = SAME_KIND
    generic_methods: frozenset[str] = frozenset({"GET"})

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        if call.method != "PUT":
            raise method_not_allowed(call)
        require_valid(require_body(call), "", "v1", "Namespace", call.name)
        finalizers = list((require_body(call).get("spec") or {}).get("finalizers") or [])

        def mutate(current: JSON) -> JSON:
            return dict(current, spec=dict(current.get("spec") or {}, finalizers=finalizers))

        return ObjectReply(await storage.modify(call.rd, None, call.name, mutate, call.opts))


def _finalize() -> dict[str, Subresource]:
    return {"finalize": FinalizeSubresource()}


@dataclass(frozen=True)
class NamespaceStrategy(KindStrategy):
    printer: Printer | None = printers.NAMESPACE
    name_rule: str = "label"
    subresources: dict[str, Subresource] = field(default_factory=_finalize)  # type: ignore[assignment]

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
        self.defaults_on_update(rd, obj)

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        obj["metadata"].setdefault("labels", {})[NAMESPACE_NAME_LABEL] = obj["metadata"]["name"]

    def deletion_held(self, obj: JSON) -> bool:
        return bool((obj.get("spec") or {}).get("finalizers"))

    def mark_deleting(self, obj: JSON) -> None:
        obj["status"] = dict(obj.get("status") or {}, phase="Terminating")
