"""JSON patch (RFC 6902).

All functions are pure: they return a new document and never mutate ``target``. They copy only
the containers along the paths a patch touches, so untouched subtrees stay shared with
``target`` (callers must treat both as immutable, as the watch cache does). Values taken from the
patch are copied before they are inserted, so the result never aliases the request body either.

Errors: a malformed patch is ``BadRequest`` (400); a well-formed JSON patch that cannot be applied
(missing path, failed ``test``) is ``Invalid`` (422), as with the real API server. A patch is
bounded: at most ``MAX_OPERATIONS`` operations (kube-apiserver's limit), and ``copy`` operations may
duplicate at most ``MAX_COPIED_BYTES`` in total (413 beyond), so a 1 KB patch cannot build a
gigabyte document; the patched object is then size-checked like any other write.
"""

from __future__ import annotations

from typing import Any

import orjson

from atoll.api.errors import BadRequest, Invalid, RequestEntityTooLarge
from atoll.apiserver.patch.merge import copy_json, json_equal

__all__ = ["MAX_COPIED_BYTES", "MAX_OPERATIONS", "json_patch"]
MAX_OPERATIONS = 10_000
MAX_COPIED_BYTES = 3 * 1024 * 1024


# --------------------------------------------------------------------------------------------------
# RFC 6902


def _pointer(path: Any, what: str) -> list[str]:
    if not isinstance(path, str):
        raise BadRequest(f"json patch: {what} must be a string JSON pointer, got {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise BadRequest(f"json patch: invalid JSON pointer {path!r}: must start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


class _Doc:
    """The document being patched, with copy-on-write along modified paths."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self._owned: dict[int, Any] = {}  # id -> container; keeps owned containers alive

    def _own(self, value: Any) -> Any:
        if isinstance(value, dict | list) and id(value) not in self._owned:
            value = dict(value) if isinstance(value, dict) else list(value)
            self._owned[id(value)] = value
        return value

    def fail(self, op: str, path: str, why: str) -> Invalid:
        return Invalid(
            f"the server rejected our request due to an error in our request: jsonpatch {op} operation "
            f"does not apply: {why}: {path}"
        )

    def parent(self, op: str, path: str, tokens: list[str]) -> Any:
        """The (owned, mutable) container holding the last token of ``tokens``."""
        self.root = self._own(self.root)
        cur = self.root
        for depth, tok in enumerate(tokens[:-1]):
            if isinstance(cur, dict):
                if tok not in cur:
                    raise self.fail(op, path, "doc is missing path")
                child = self._own(cur[tok])
                cur[tok] = child
            elif isinstance(cur, list):
                idx = self.index(op, path, tok, len(cur), allow_end=False)
                child = self._own(cur[idx])
                cur[idx] = child
            else:
                raise self.fail(op, path, f"{'/'.join(tokens[:depth])!r} is not an object or array")
            cur = child
        if not isinstance(cur, dict | list):
            raise self.fail(op, path, "doc is missing path")
        return cur

    def get(self, op: str, path: str, tokens: list[str]) -> Any:
        cur = self.root
        for tok in tokens:
            if isinstance(cur, dict):
                if tok not in cur:
                    raise self.fail(op, path, "doc is missing path")
                cur = cur[tok]
            elif isinstance(cur, list):
                cur = cur[self.index(op, path, tok, len(cur), allow_end=False)]
            else:
                raise self.fail(op, path, "doc is missing path")
        return cur

    def index(self, op: str, path: str, tok: str, length: int, *, allow_end: bool) -> int:
        if tok == "-" and allow_end:
            return length
        if not tok.isdigit() or (len(tok) > 1 and tok[0] == "0"):
            raise self.fail(op, path, f"invalid array index {tok!r}")
        idx = int(tok)
        if idx > length or (idx == length and not allow_end):
            raise self.fail(op, path, f"array index {idx} out of bounds (length {length})")
        return idx

    def add(self, op: str, path: str, tokens: list[str], value: Any) -> None:
        if not tokens:
            self.root = value
            return
        parent = self.parent(op, path, tokens)
        last = tokens[-1]
        if isinstance(parent, dict):
            parent[last] = value
        else:
            parent.insert(self.index(op, path, last, len(parent), allow_end=True), value)

    def existing(self, op: str, path: str, tokens: list[str]) -> tuple[Any, Any]:
        """The container of the member ``tokens`` names and its key or index; the member must exist."""
        parent = self.parent(op, path, tokens)
        last = tokens[-1]
        if isinstance(parent, dict):
            if last not in parent:
                raise self.fail(op, path, "doc is missing key")
            return parent, last
        return parent, self.index(op, path, last, len(parent), allow_end=False)

    def remove(self, op: str, path: str, tokens: list[str]) -> Any:
        if not tokens:
            raise self.fail(op, path, "cannot remove the document root")
        parent, key = self.existing(op, path, tokens)
        return parent.pop(key)

    def replace(self, op: str, path: str, tokens: list[str], value: Any) -> None:
        if not tokens:
            self.root = value
            return
        parent, key = self.existing(op, path, tokens)
        parent[key] = value


def json_patch(target: Any, ops: list[Any]) -> Any:
    """Apply an RFC 6902 JSON patch (``add remove replace move copy test``) to ``target``."""
    if not isinstance(ops, list):
        raise BadRequest("json patch: the patch must be a JSON array of operations")
    if len(ops) > MAX_OPERATIONS:
        raise RequestEntityTooLarge(
            f"json patch: {len(ops)} operations is more than the {MAX_OPERATIONS} allowed in one patch")
    copied = 0  # bytes duplicated by copy operations: 20 doubling copies must not take gigabytes
    doc = _Doc(target)
    for n, op in enumerate(ops):
        if not isinstance(op, dict):
            raise BadRequest(f"json patch: operation {n} must be an object, got {op!r}")
        name = op.get("op")
        if name not in ("add", "remove", "replace", "move", "copy", "test"):
            raise BadRequest(f"json patch: operation {n} has unsupported op {name!r}")
        if "path" not in op:
            raise BadRequest(f"json patch: operation {n} ({name}) is missing 'path'")
        path = op["path"]
        tokens = _pointer(path, "path")
        if name in ("add", "replace", "test") and "value" not in op:
            raise BadRequest(f"json patch: operation {n} ({name}) is missing 'value'")
        if name == "add":
            doc.add(name, path, tokens, copy_json(op["value"]))
        elif name == "remove":
            doc.remove(name, path, tokens)
        elif name == "replace":
            doc.replace(name, path, tokens, copy_json(op["value"]))
        elif name == "test":
            if not json_equal(doc.get(name, path, tokens), op["value"]):
                raise doc.fail(name, path, "testing value failed")
        else:
            if "from" not in op:
                raise BadRequest(f"json patch: operation {n} ({name}) is missing 'from'")
            src = op["from"]
            src_tokens = _pointer(src, "from")
            if name == "move":
                if src_tokens == tokens:
                    doc.get(name, src, src_tokens)
                    continue
                if tokens[: len(src_tokens)] == src_tokens:
                    raise doc.fail(name, path, f"cannot move {src!r} into its own child")
                value = doc.remove(name, src, src_tokens)
                doc.add(name, path, tokens, value)
            else:
                value = doc.get(name, src, src_tokens)
                copied += len(orjson.dumps(value))
                if copied > MAX_COPIED_BYTES:
                    raise RequestEntityTooLarge(
                        f"json patch: copy operations would duplicate more than {MAX_COPIED_BYTES} bytes")
                doc.add(name, path, tokens, copy_json(value))
    return doc.root
