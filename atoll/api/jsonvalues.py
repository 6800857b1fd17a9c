"""A fast, conservative equality test for decoded JSON values, used to skip unchanged subtrees.

Python's ``==`` is close to JSON equality but not equal to it (``True == 1``), so a C-level compare
alone could hide a value that changed type. ``same`` answers ``True`` only when the values are equal
as JSON: identical objects, equal scalars of one type, equal maps whose values are pairwise
identical or equal strings, integers, booleans or nulls of one type (no encoding: the items of a
status's conditions list), or containers that compare equal *and* encode to the same bytes.
``False`` means "walk it": the values may still be equal (``1`` and ``1.0``, or nested maps with
their keys in another order).
"""

from __future__ import annotations

from typing import Any

import orjson

_SCALARS = frozenset({str, int, float, bool, type(None)})
_EXACT = frozenset({str, int, bool, type(None)})  # equal values of one of these types encode alike (not -0.0)
_MISSING = object()


def same(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are certainly equal as JSON (see the module docstring)."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b) or a != b:
        return False
    if kind in _SCALARS:
        return True
    if kind is dict:  # equal maps (a == b): certain when each value pair is one object or equal exact scalars
        for key, v in a.items():
            w = b.get(key, _MISSING)
            if v is not w and (type(v) is not type(w) or type(v) not in _EXACT):
                break
        else:
            return True
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except (orjson.JSONEncodeError, TypeError):
        return False
