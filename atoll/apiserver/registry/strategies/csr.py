"""CertificateSigningRequests (``certificates.k8s.io/v1``): a client never sets ``status`` on
create, ``spec`` is immutable, ``/approval`` changes only ``status.conditions`` and ``/status``
only ``status`` (the certificate). The requester's identity and the signing are admission's
(:mod:`atoll.apiserver.admission.csr`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver.registry.strategies.base import KindStrategy
from atoll.apiserver.registry.subresources import SAME_KIND, Reply, Subresource, SubresourceCall, method_not_allowed

if TYPE_CHECKING:
    from atoll.apiserver.registry.storage import ResourceStorage

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ApprovalSubresource:
    """``…/approval`` (``kubectl certificate approve|deny``): GET, PUT and PATCH of the object."""

    verbs: tuple[str, ...] = ("get", "patch", "update")
    response_kind: tuple[str, str, str] | None = SAME_KIND
    generic_methods: frozenset[str] = frozenset({"GET", "PUT", "PATCH"})

    async def serve(self, storage: ResourceStorage, call: SubresourceCall) -> Reply:
        raise method_not_allowed(call)


def _approval() -> dict[str, Subresource]:
    return {"approval": ApprovalSubresource()}


@dataclass(frozen=True)
class CSRStrategy(KindStrategy):
    subresources: Any = field(default_factory=_approval)

    def defaults_on_create(self, rd: ResourceDef, obj: JSON) -> None:
        obj.pop("status", None)
        spec = obj.setdefault("spec", {})
        for fld in ("username", "uid", "groups", "extra"):  # set from the requester in admission
            spec.pop(fld, None)

    def subresource_update(self, subresource: str, old: JSON, wanted: JSON) -> JSON:
        if subresource == "status":
            return super().subresource_update(subresource, old, wanted)
        if subresource != "approval":
            raise errors.MethodNotAllowed(f"updates through the {subresource} subresource are not supported")
        new = dict(old)
        status = dict(old.get("status") or {})
        status["conditions"] = (wanted.get("status") or {}).get("conditions") or []
        new["status"] = status
        new["metadata"] = dict(old["metadata"])
        return new

    def defaults_on_update(self, rd: ResourceDef, obj: JSON) -> None:
        """Nothing here: admission keeps ``spec`` as it was (immutable)."""
