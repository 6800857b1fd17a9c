"""What an update stores: the client's object with the server-managed metadata kept from the stored
one (name, namespace, uid, timestamps, generation), finalizers frozen once deletion started, the
status kept unless the write is to ``/status``, the kind's own update rules (defaults; what may not change is checked by
``ResourceStorage`` after admission, so a field of the wrong type is named first), and ``generation``
bumped when the part it tracks changed.
"""

from __future__ import annotations

from typing import Any

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver.registry.strategies.base import KindStrategy

JSON = dict[str, Any]
SERVER_MANAGED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
"""Metadata a client cannot set: kept from the stored object on update, dropped on create."""


def merged_update(strategy: KindStrategy, rd: ResourceDef, old: JSON, wanted: JSON, subresource: str) -> JSON:
    """The object to store: ``wanted`` with server-managed fields and subresource rules applied."""
    if subresource:
        return strategy.subresource_update(subresource, old, wanted)
    new = dict(wanted)
    new["apiVersion"], new["kind"] = rd.api_version, rd.kind
    if not isinstance(new.get("metadata") or {}, dict):
        raise errors.BadRequest("metadata must be an object")
    md = dict(new.get("metadata") or {})
    old_md = old["metadata"]
    for fld in ("name", "namespace", *SERVER_MANAGED):
        if fld in old_md:
            md[fld] = old_md[fld]
        else:
            md.pop(fld, None)
    md["resourceVersion"] = old_md["resourceVersion"]
    if old_md.get("deletionTimestamp"):
        added = set(md.get("finalizers") or []) - set(old_md.get("finalizers") or [])
        if added:
            raise errors.invalid(
                rd.kind,
                rd.group,
                old_md["name"],
                [
                    errors.cause(
                        "FieldValueForbidden",
                        "metadata.finalizers",
                        "Forbidden: no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers {sorted(added)}",
                    )
                ],
            )
    drop_empty(md)
    new["metadata"] = md
    if rd.has_status:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    strategy.prepare_update(rd, new)
    if strategy.tracks_generation and strategy.generation_part(rd, new) != strategy.generation_part(rd, old):
        md["generation"] = int(old_md.get("generation") or 1) + 1
    return new


def drop_empty(md: JSON) -> None:
    """Empty label/annotation maps and finalizer/owner lists are absent, as Go's ``omitempty`` renders
    them (``kubectl annotate x k-`` removing the last annotation leaves no ``annotations: {}``)."""
    for fld in ("labels", "annotations", "finalizers", "ownerReferences"):
        if fld in md and (md[fld] == {} or md[fld] == [] or md[fld] is None):
            del md[fld]
