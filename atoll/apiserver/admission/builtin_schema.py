"""Schema admission for built-in kinds: every write is checked against Kubernetes' published schema.

Type errors answer 422 naming the field; unknown fields follow ``fieldValidation`` (``Strict``:
400 ``strict decoding error``, ``Warn``: dropped with a ``Warning`` header, ``Ignore``: dropped), as
kube-apiserver does. The checker itself is ``atoll.api.builtin_validation``; on an update it skips
the subtrees equal to the stored object's.
"""

from __future__ import annotations

from collections.abc import Iterable

from atoll.api import errors
from atoll.api.builtin_validation import check, compile_schemas
from atoll.api.registry import ResourceDef
from atoll.apiserver.admission.chain import Attributes


class BuiltinSchemaAdmission:
    """Validates built-in kinds against their published schema, honouring ``fieldValidation``.
    The schemas of ``kinds`` are compiled at construction (start-up), not at their first write."""

    def __init__(self, kinds: Iterable[ResourceDef] = ()) -> None:
        compile_schemas((rd.group, rd.version, rd.kind) for rd in kinds if rd.builtin)

    @staticmethod
    def handles(rd: ResourceDef, operation: str, subresource: str) -> bool:
        return rd.builtin and operation in ("CREATE", "UPDATE")

    async def admit(self, attrs: Attributes) -> None:
        rd = attrs.rd
        if not rd.builtin or attrs.obj is None or attrs.operation not in ("CREATE", "UPDATE"):
            return
        old = attrs.old if attrs.operation == "UPDATE" else None  # unchanged subtrees were checked when stored
        unknown, causes = check(attrs.obj, rd.group, rd.version, rd.kind, old=old)
        if unknown and attrs.field_validation == "Strict":
            detail = ", ".join(f'unknown field "{f}"' for f in unknown)
            raise errors.BadRequest(f"strict decoding error: {detail}")
        if unknown and attrs.field_validation == "Warn":
            attrs.warnings.extend(f'unknown field "{f}"' for f in unknown)
        if causes:
            raise errors.invalid(rd.kind, rd.group, attrs.name, causes)
