"""Object limits, checked on the object about to be stored (after decoding, defaults and patches).

The request body limit bounds what a client sends, not what a patch or an apply produces from it:
every created or updated object must encode to at most ``MAX_OBJECT_BYTES`` (413 otherwise, as
kube-apiserver answers past etcd's limit) and nest at most ``MAX_DEPTH`` levels (422), so no stored
object can later fail to encode (orjson stops at 255 levels) and break every LIST that includes it.
The depth walk only runs when the encoding has more brackets than the limit, and on an update it
skips subtrees equal to the stored object's.
"""

from __future__ import annotations

import orjson

from atoll.api import errors
from atoll.apiserver.admission.chain import Attributes

MAX_OBJECT_BYTES = 3 * 1024 * 1024
MAX_DEPTH = 100


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

    async def admit(self, attrs: Attributes) -> None:
        obj = attrs.obj
        if obj is None or attrs.operation not in ("CREATE", "UPDATE"):
            return
        try:
            encoded = orjson.dumps(obj)
        except (TypeError, orjson.JSONEncodeError) as exc:
            if depth_exceeds(obj, MAX_DEPTH):  # orjson stops at 255 levels
                raise _too_deep(attrs) from None
            raise errors.BadRequest(f"the object cannot be encoded: {exc}") from None
        # Nesting needs one bracket per level: fewer brackets than the limit bound the depth for free.
        if encoded.count(b"{") + encoded.count(b"[") > MAX_DEPTH and depth_exceeds(
            obj, MAX_DEPTH, attrs.old if attrs.operation == "UPDATE" else None
        ):
            raise _too_deep(attrs)
        size = len(encoded)
        if size > MAX_OBJECT_BYTES:
            raise errors.RequestEntityTooLarge(
                f"Request entity too large: the {attrs.rd.kind} would be {size} bytes; the limit is "
                f"{MAX_OBJECT_BYTES} bytes")


def _too_deep(attrs: Attributes) -> errors.Invalid:
    return errors.invalid(attrs.rd.kind, attrs.rd.group, attrs.name, [{
        "reason": "FieldValueInvalid", "field": "<object>",
        "message": f"Invalid value: the object is nested more than {MAX_DEPTH} levels deep"}])
