"""FieldsV1, the wire form of a field set in ``metadata.managedFields``: a leaf is ``{}``, and
``"."`` appears only on members that also have children (see ``fieldsets`` for the inner form).

Besides the conversions, the two hot cases are built in wire form directly: the set of a created
object (``created_fields_v1``, one walk of the object) and the writer's own entry after an update
(``update_fields_v1``, a walk of the touched parts only; none when the writer already owns every
changed field and lost none)."""

from __future__ import annotations

from typing import Any

from atoll.apiserver.patch.fieldsets import DOT, JSON, FieldSet, FieldType, index_items, strip_identity


def to_fields_v1(s: FieldSet) -> JSON:
    """Wire form: leaves as ``{}``, ``"."`` only where a member also has children."""
    return _fill({}, s)


def _fill(out: JSON, s: FieldSet) -> JSON:
    """``out`` (empty, or holding the ``"."`` of a member) with the wire form of ``s``'s children."""
    for key, sub in s.items():
        if key == DOT:
            continue
        if DOT not in sub:
            out[key] = _fill({}, sub)
        else:
            out[key] = {} if len(sub) == 1 else _fill({DOT: {}}, sub)
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


def update_fields_v1(wire: Any, changed: FieldSet, removed: FieldSet) -> JSON:
    """``to_fields_v1(union(difference(from_fields_v1(wire), removed), changed))``, walking only the
    parts ``removed`` and ``changed`` touch: untouched subtrees of ``wire`` are kept as they are (a
    stored entry is already in normal form)."""
    out = wire if isinstance(wire, dict) else {}
    if removed and overlaps_wire(out, removed):
        out = _difference(out, removed)
    if changed and not _covers(out, changed):
        out = _union(out, changed)
    return out


def overlaps_wire(wire: Any, s: FieldSet) -> bool:
    """Whether a FieldsV1 (wire form) set shares a member with an internal-form set (if not,
    ``_difference`` would rebuild ``wire`` as it is)."""
    if not isinstance(wire, dict) or not s:
        return False
    for key, sub in s.items():
        if key == DOT:
            continue
        w = wire.get(key)
        if not isinstance(w, dict):
            continue
        if DOT in sub and (not w or DOT in w):
            return True
        if w and overlaps_wire(w, sub):
            return True
    return False


def _covers(wire: JSON, s: FieldSet) -> bool:
    """Whether every member of the internal set ``s`` is already a member of the wire set (else
    ``_union`` would rebuild ``wire`` as it is): a writer changing only fields it owns, as a
    holder renewing its lease or a status writer updating the same conditions."""
    for key, sub in s.items():
        if key == DOT:
            continue
        w = wire.get(key)
        if not isinstance(w, dict):
            return False
        if w:
            if DOT in sub and DOT not in w:
                return False
            if not _covers(w, sub):
                return False
        elif len(sub) > 1 or DOT not in sub:  # a leaf in ``wire``, children in ``s``
            return False
    return True


def _render(member: bool, children: JSON) -> JSON | None:
    if children:
        return {DOT: {}, **children} if member else children
    return {} if member else None


def _difference(wire: JSON, s: FieldSet) -> JSON:
    out: JSON = {}
    for key, sub in wire.items():
        if key == DOT or not isinstance(sub, dict):
            continue
        other = s.get(key)
        if other is None:
            out[key] = sub
            continue
        kept = _render((not sub or DOT in sub) and DOT not in other, _difference(sub, other))
        if kept is not None:
            out[key] = kept
    return out


def _union(wire: JSON, s: FieldSet) -> JSON:
    """The children of ``wire`` (a stored entry's node, in normal form) united with ``s``'s: one
    C-level copy, then only the children ``s`` names are visited (kept in place; new ones last)."""
    out = dict(wire)
    out.pop(DOT, None)
    for key, sub in s.items():
        if key == DOT:
            continue
        have = out.get(key)
        if have is None:
            out[key] = _fill({}, sub) if DOT not in sub else {} if len(sub) == 1 else _fill({DOT: {}}, sub)
        elif have or len(sub) > 1 or DOT not in sub:  # else a leaf in both: stays ``{}``
            member = not have or DOT in have or DOT in sub
            children = _union(have, sub)
            out[key] = ({DOT: {}, **children} if member else children) if children else {}
    return out


def created_fields_v1(tracked: JSON, t: FieldType) -> JSON:
    """``to_fields_v1(scope(changes(None, tracked)))`` for the main resource in one walk: the
    fields of a created object (``tracked``: the part a write can own, ``managed_fields.tracked``)."""
    return strip_identity(_added_map(tracked, t))


def _added_map(value: JSON, t: FieldType) -> JSON:
    required = t.raw.get("required") or ()
    return {
        "f:" + key: {} if type(sub) in _SCALARS else _added(sub, t.child(key), key in required)
        for key, sub in value.items()
    }


_SCALARS = frozenset({str, int, float, bool, type(None)})  # a leaf whatever its schema type


def _added(value: Any, t: FieldType, zero: bool) -> JSON:
    """Wire form of ``diff._added``."""
    if isinstance(value, dict):
        if not value or t.atomic:
            return {}
        children = _added_map(value, t)
        return children if t.builtin and t.struct else {DOT: {}, **children}
    if isinstance(value, list) and value and t.list_type != "atomic":
        item_t, is_set = t.items(), t.list_type == "set"
        items: JSON = {}
        for key, item in index_items(value, t).items():
            items[key] = {} if is_set or not isinstance(item, dict) or not item else {
                DOT: {}, **_added_map(item, item_t)}
        return items if zero else {DOT: {}, **items}
    return {}
