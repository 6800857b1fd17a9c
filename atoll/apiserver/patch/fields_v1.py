"""FieldsV1, the wire form of a field set in ``metadata.managedFields``: a leaf is ``{}``, and
``"."`` appears only on members that also have children (see ``fieldsets`` for the inner form)."""

from __future__ import annotations

from typing import Any

from atoll.apiserver.patch.fieldsets import DOT, JSON, FieldSet


def to_fields_v1(s: FieldSet) -> JSON:
    """Wire form: leaves as ``{}``, ``"."`` only where a member also has children."""
    out: JSON = {}
    for key, sub in s.items():
        if key == DOT:
            continue
        if len(sub) == 1 and DOT in sub:
            out[key] = {}
        else:
            child = to_fields_v1(sub)
            out[key] = {DOT: {}, **child} if DOT in sub else child
    return out


def from_fields_v1(fields: Any) -> FieldSet:
    """Internal form of a ``fieldsV1`` document (malformed parts are dropped)."""
    if not isinstance(fields, dict):
        return {}
    out: FieldSet = {}
    for key, sub in fields.items():
        if key == DOT or not isinstance(sub, dict):
            continue
        out[key] = from_fields_v1(sub) if sub else {DOT: {}}
        if DOT in sub:
            out[key][DOT] = {}
    return out
