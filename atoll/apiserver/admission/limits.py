"""Object limits, checked on the object about to be stored (after decoding, defaults and patches).

The request body limit bounds what a client sends, not what a patch or an apply produces from it:
every created or updated object must encode to at most ``MAX_OBJECT_BYTES`` (413 otherwise, as
kube-apiserver answers past etcd's limit) and nest at most ``MAX_DEPTH`` levels (422), so no stored
object can later fail to encode (orjson stops at 255 levels) and break every LIST that includes it.
"""

from __future__ import annotations

import orjson

from atoll.api import errors
from atoll.apiserver.admission.chain import Attributes

MAX_OBJECT_BYTES = 3 * 1024 * 1024
MAX_DEPTH = 100


def depth_exceeds(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False


class ObjectLimits:
    """First in the admission chain: every later plugin sees a bounded object."""

    async def admit(self, attrs: Attributes) -> None:
        obj = attrs.obj
        if obj is None or attrs.operation not in ("CREATE", "UPDATE"):
            return
        if depth_exceeds(obj, MAX_DEPTH):
            raise errors.invalid(attrs.rd.kind, attrs.rd.group, attrs.name, [{
                "reason": "FieldValueInvalid", "field": "<object>",
                "message": f"Invalid value: the object is nested more than {MAX_DEPTH} levels deep"}])
        try:
            size = len(orjson.dumps(obj))
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise errors.BadRequest(f"the object cannot be encoded: {exc}") from None
        if size > MAX_OBJECT_BYTES:
            raise errors.RequestEntityTooLarge(
                f"Request entity too large: the {attrs.rd.kind} would be {size} bytes; the limit is "
                f"{MAX_OBJECT_BYTES} bytes")
