"""The PATCH types a client may send (by media type) and applying one of them to an object."""

from __future__ import annotations

from typing import Any

from atoll.api import errors
from atoll.apiserver.patch.jsonpatch import json_patch
from atoll.apiserver.patch.merge import merge_patch
from atoll.apiserver.patch.strategic import strategic_merge_patch

JSON = dict[str, Any]

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "unsupported",
}


def apply_patch(ptype: str, current: JSON, document: Any, kind: str) -> Any:
    """Apply a patch document of type merge | json | strategic (strategic = merge for custom kinds:
    ``kind`` is empty for them)."""
    if ptype == "json":
        if not isinstance(document, list):
            raise errors.BadRequest("a JSON patch must be a list of operations")
        return json_patch(current, document)
    if not isinstance(document, dict):
        raise errors.BadRequest("a merge patch must be a JSON object")
    if ptype == "strategic" and kind:
        return strategic_merge_patch(current, document, kind)
    return merge_patch(current, document)
