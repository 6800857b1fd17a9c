"""A fast, conservative equality test for decoded JSON values, used to skip unchanged subtrees.

Python's ``==`` is close to JSON equality but not equal to it (``True == 1``), so a C-level compare
alone could hide a value that changed type. ``same`` answers ``True`` only when the values are equal
as JSON: identical objects, equal scalars of one type, or containers that compare equal *and*
encode to the same bytes. ``False`` means "walk it": the values may still be equal (``1`` and
``1.0``, or maps with their keys in another order).
"""

from __future__ import annotations

from typing import Any

import orjson

_SCALARS = frozenset({str, int, float, bool, type(None)})
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
    if kind is dict and all(b.get(k, _MISSING) is v for k, v in a.items()):
        return True  # equal length (a == b) and every value identical: a copy of the same map
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except (orjson.JSONEncodeError, TypeError):
        return False
