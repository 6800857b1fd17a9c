"""Object limits, checked on the object about to be stored (after decoding, defaults and patches).

The request body limit bounds what a client sends, not what a patch or an apply produces from it:
every created or updated object must encode to at most ``MAX_OBJECT_BYTES`` (413 otherwise, as
kube-apiserver answers past etcd's limit) and nest at most ``MAX_DEPTH`` levels (422), so no stored
object can later fail to encode (orjson stops at 255 levels) and break every LIST that includes it.
The depth walk only runs when the encoding has more brackets than the limit, and on an update it
skips subtrees equal to the stored object's.

An update whose stored object's encoded size is known (``Attributes.old_size``) encodes only the
top-level values that differ from the stored ones (a status write: ``status``): the stored size plus
those bound the new size, their brackets bound the new depth. Only when a bound exceeds a limit is
the whole object encoded and checked as above, so refusals and their messages are unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson

from atoll.api import errors
from atoll.api.registry import ResourceDef
from atoll.apiserver.admission.chain import Attributes

MAX_OBJECT_BYTES = 3 * 1024 * 1024
MAX_DEPTH = 100
JSON = dict[str, Any]


def depth_exceeds(value: object, limit: int, old: object = None) -> bool:
    """Whether ``value`` nests deeper than ``limit``. Subtrees equal to the same place in ``old``
    (the stored object an update replaces, already within the limit there) are not walked."""
    stack: list[tuple[object, int, object]] = [(value, 0, old)]
    while stack:
        node, depth, before = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            prior = before if isinstance(before, dict) else _EMPTY
            for key, v in node.items():
                if isinstance(v, dict | list):
                    was = prior.get(key)
                    if was is not v and was != v:
                        stack.append((v, depth + 1, was))
        elif isinstance(node, list):
            stack.extend((v, depth + 1, None) for v in node if isinstance(v, dict | list))
    return False


_EMPTY: dict[str, object] = {}


class ObjectLimits:
    """First in the admission chain: every later plugin sees a bounded object."""

    @staticmethod
    def handles(rd: ResourceDef, operation: str, subresource: str) -> bool:
        return operation in ("CREATE", "UPDATE")

    async def admit(self, attrs: Attributes) -> None:
        obj = attrs.obj
        if obj is None or attrs.operation not in ("CREATE", "UPDATE"):
            return
        if attrs.operation == "UPDATE" and attrs.old is not None and attrs.old_size:
            if _update_within_limits(obj, attrs.old, attrs.old_size):
                return
        try:
            encoded = orjson.dumps(obj)
        except (TypeError, orjson.JSONEncodeError) as exc:
            if depth_exceeds(obj, MAX_DEPTH):  # orjson stops at 255 levels
                raise _too_deep(attrs) from None
            raise errors.BadRequest(f"the object cannot be encoded: {exc}") from None
        # Nesting needs one bracket per level: fewer brackets than the limit bound the depth for free.
        if _brackets(encoded) > MAX_DEPTH and depth_exceeds(
            obj, MAX_DEPTH, attrs.old if attrs.operation == "UPDATE" else None
        ):
            raise _too_deep(attrs)
        size = len(encoded)
        if size > MAX_OBJECT_BYTES:
            raise errors.RequestEntityTooLarge(
                f"Request entity too large: the {attrs.rd.kind} would be {size} bytes; the limit is "
                f"{MAX_OBJECT_BYTES} bytes")


def _update_within_limits(obj: JSON, old: JSON, old_size: int) -> bool:
    """Whether ``obj``, replacing ``old`` (which encodes to ``old_size`` bytes), certainly stays within
    both limits; encodes only the top-level values that are not ``old``'s (or a copy of its map).

    Each unchanged member encodes as long as the stored one, and each other member adds at most its
    key, value, colon and comma to the stored size. A container inside a changed member lies under
    the root and the brackets of that member's encoding; unchanged members were within the depth
    limit when stored. False means "not proven": the caller checks the whole object."""
    size = old_size
    for key, value in obj.items():
        if type(key) is not str:  # not encodable: the whole-object check answers
            return False
        before = old.get(key, _MISSING)
        if before is value or _shallow_copy(before, value):
            continue
        try:
            part = orjson.dumps(value)
            size += len(part) + len(orjson.dumps(key)) + 2
        except (TypeError, orjson.JSONEncodeError):
            return False
        if size > MAX_OBJECT_BYTES or 1 + _brackets(part) > MAX_DEPTH:
            return False
    return True


def _brackets(encoded: bytes) -> int:
    """How many ``{`` and ``[`` bytes ``encoded`` has (one pass deleting them: twice as fast as two
    ``count`` calls; a large encoding is counted in place rather than copied)."""
    if len(encoded) > _COPY_LIMIT:
        return encoded.count(b"{") + encoded.count(b"[")
    return len(encoded) - len(encoded.translate(None, b"{["))


_COPY_LIMIT = 64 * 1024


def _shallow_copy(a: object, b: object) -> bool:
    """Whether ``b`` is a map with exactly ``a``'s keys and the very same values (``dict(a)``)."""
    if type(a) is not dict or type(b) is not dict or len(a) != len(b):
        return False
    for key, value in b.items():
        if a.get(key, _MISSING) is not value:
            return False
    return True


_MISSING = object()


def _too_deep(attrs: Attributes) -> errors.Invalid:
    return errors.invalid(attrs.rd.kind, attrs.rd.group, attrs.name, [{
        "reason": "FieldValueInvalid", "field": "<object>",
        "message": f"Invalid value: the object is nested more than {MAX_DEPTH} levels deep"}])
