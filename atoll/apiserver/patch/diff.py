"""The managedFields diff: which fields a write added or modified, and which it removed.

``changes(old, new, t)`` gives both as field sets (see ``fieldsets``), with the list and map
semantics of the schema type ``t``. Only the parts that differ cost a walk in Python: subtrees
equal to the old ones are skipped by identity or by one C-level compare confirmed by their
encodings (``jsonvalues.same``: ``true`` replacing ``1`` is still a change), same-type scalars are
compared in place, and a value added under an existing object takes a one-sided walk
(``_new_value``). A create (``old is None``) takes ``_added_map``, whose members follow Go's zero
values (a built-in struct or a required list is not itself a member).
"""

from __future__ import annotations

from typing import Any

from atoll.api.jsonvalues import same
from atoll.apiserver.patch.fieldsets import DOT, JSON, FieldSet, FieldType, index_items
from atoll.apiserver.patch.merge import json_equal

_MISSING: Any = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})  # a leaf whatever its schema type


def changes(old: Any, new: Any, t: FieldType) -> tuple[FieldSet, FieldSet]:
    """(added or modified, removed) paths from ``old`` to ``new`` (``None`` = no object yet)."""
    if old is None:
        return _added_map(new, t), {}
    changed: FieldSet = {}
    removed: FieldSet = {}
    _compare_map(old, new, t, changed, removed)
    return changed, removed


def _added_map(value: JSON, t: FieldType) -> FieldSet:
    """Everything in a new object (the fast path of ``changes`` for creates)."""
    required = t.raw.get("required") or ()
    return {
        "f:" + key: {DOT: {}} if type(sub) in _SCALARS else _added(sub, t.child(key), key in required)
        for key, sub in value.items()
    }


def _added(value: Any, t: FieldType, zero: bool) -> FieldSet:
    if isinstance(value, dict):
        if not value or t.atomic:
            return {DOT: {}}
        out = _added_map(value, t)
        if not (t.builtin and t.struct):
            out[DOT] = {}
        return out
    if isinstance(value, list) and value and t.list_type != "atomic":
        item_t = t.items()
        out = {}
        for key, item in index_items(value, t).items():
            out[key] = (
                {DOT: {}}
                if t.list_type == "set" or not isinstance(item, dict)
                else {**_added_map(item, item_t), DOT: {}}
            )
        if not zero:
            out[DOT] = {}
        return out
    return {DOT: {}}



def _compare_map(old: JSON, new: JSON, t: FieldType, changed: FieldSet, removed: FieldSet) -> None:
    for key, nv in new.items():
        ov = old.get(key, _MISSING)
        if ov is nv:
            continue
        if ov is _MISSING:
            changed["f:" + key] = {DOT: {}} if type(nv) in _SCALARS else _new_value(nv, t.child(key))
            continue
        kind = type(nv)
        if kind is type(ov) and kind in _SCALARS:
            if ov != nv:
                changed["f:" + key] = {DOT: {}}
            continue
        if same(ov, nv):
            continue
        c, r = _compare(ov, nv, t.child(key))
        if c:
            changed["f:" + key] = c
        if r:
            removed["f:" + key] = r
    for key, ov in old.items():
        if key not in new:
            removed["f:" + key] = _compare(ov, _MISSING, t.child(key))[1]


def _new_value(value: Any, t: FieldType) -> FieldSet:
    """The changed set of a value added under an existing object (``_compare`` from nothing)."""
    if isinstance(value, dict):
        if not value or t.atomic:
            return {DOT: {}}
        out: FieldSet = {
            "f:" + key: {DOT: {}} if type(sub) in _SCALARS else _new_value(sub, t.child(key))
            for key, sub in value.items()
        }
        out[DOT] = {}
        return out
    if isinstance(value, list) and value and t.list_type != "atomic":
        item_t = t.items()
        out = {}
        for key, item in index_items(value, t).items():
            if t.list_type == "set":
                out[key] = {DOT: {}}
            else:
                c = _new_value(item, item_t)
                c[DOT] = {}
                out[key] = c
        out[DOT] = {}
        return out
    return {DOT: {}}


def _compare(old: Any, new: Any, t: FieldType) -> tuple[FieldSet, FieldSet]:
    """Changed and removed sets below one node (``_MISSING`` when absent)."""
    changed: FieldSet = {}
    removed: FieldSet = {}
    if old is _MISSING and new is not _MISSING:
        return _new_value(new, t), removed
    o_map = isinstance(old, dict) or old is _MISSING
    n_map = isinstance(new, dict) or new is _MISSING
    if o_map and n_map and not t.atomic and (old or new) and not (old is _MISSING and new is _MISSING):
        o = old if old is not _MISSING else {}
        n = new if new is not _MISSING else {}
        if o or n:
            _compare_map(o, n, t, changed, removed)
            if new is _MISSING:
                removed[DOT] = {}
            return changed, removed
    o_list = isinstance(old, list) or old is _MISSING
    n_list = isinstance(new, list) or new is _MISSING
    o_items = index_items(old, t) if o_list and old is not _MISSING and t.list_type != "atomic" else {}
    n_items = index_items(new, t) if n_list and new is not _MISSING and t.list_type != "atomic" else {}
    if o_list and n_list and (o_items or n_items) and old is not new:
        _compare_items(o_items, n_items, t, changed, removed)
        if new is _MISSING:
            removed[DOT] = {}
        return changed, removed
    if new is _MISSING:
        removed[DOT] = {}
    elif not _equal(old, new):
        changed[DOT] = {}
    return changed, removed


def _compare_items(
    o_items: dict[str, Any], n_items: dict[str, Any], t: FieldType, changed: FieldSet, removed: FieldSet
) -> None:
    """The elements of a ``map`` or ``set`` list, by path element."""
    item_t = t.items()
    is_set = t.list_type == "set"
    for key, item in n_items.items():
        prev = o_items.get(key, _MISSING)
        if prev is _MISSING:
            if is_set:
                changed[key] = {DOT: {}}
            else:
                c = _new_value(item, item_t)
                c[DOT] = {}
                changed[key] = c
            continue
        if is_set or prev is item or same(prev, item):
            continue
        c, r = _compare(prev, item, item_t)
        if c:
            changed[key] = c
        if r:
            removed[key] = r
    for key, prev in o_items.items():
        if key not in n_items:
            removed[key] = {DOT: {}} if is_set else _compare(prev, _MISSING, item_t)[1]
            removed[key][DOT] = {}


def _equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    kind = type(a)
    if kind is type(b) and kind in _SCALARS:
        return bool(a == b)
    return a == b and json_equal(a, b)  # JSON equality implies Python's: most differences end in C
