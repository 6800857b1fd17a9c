"""Type checking of built-in objects against Kubernetes' published schemas (``k8s_schemas``).

kube-apiserver decodes built-in objects into Go structs, so a value of the wrong type never gets
stored (``spec.nodeName: {"a": 1}``, ``subjects: "abc"``, ``spec: [1]``). Atoll stores JSON, so
``check`` does the same check (used on create, update, patch and apply by the API server's
``BuiltinSchemaAdmission``), against the OpenAPI schemas Atoll already serves, with ``$ref``
resolution:

* type errors answer 422 naming the field (``spec.nodeName: Invalid value: "object": spec.nodeName
  in body must be of type string``); the schema's ``required`` lists are not enforced, since Go
  decoding does not enforce them either (kube-apiserver's per-kind validation does, field by field);
* unknown fields follow ``fieldValidation``: ``Strict`` (what kubectl sends) answers 400
  ``strict decoding error: unknown field "spec.foo"``; ``Warn`` drops them with a ``Warning``
  header; ``Ignore`` drops them silently — as kube-apiserver does;
* ``null`` is accepted anywhere (Go's zero value); ``format: byte`` must be base64 and
  ``format: date-time`` RFC 3339.

Each schema definition is compiled once (the built-in kinds' at the API server's start-up,
``compile_schemas``) into a ``_Node`` tree (``$ref`` resolved, allowed types,
properties and formats precomputed; recursive definitions share their node), so a check is one walk
with no dictionary look-ups into the schema; a scalar of an accepted type with no format to check
costs one set look-up (``_Node.plain``), and so does a date-time already seen valid (a bounded set:
the timestamps of one status, or of pods started in one second, repeat). On an update
``check(..., old=stored)`` skips every subtree equal to the stored object's, list items by index
included (that object passed the same check when it was written; ``jsonvalues.same``, so ``true``
replacing ``1`` is still checked), so a status update does not re-check an unchanged spec or the
unchanged conditions of a changed list.

Semantic rules beyond types (name formats, immutable fields) stay with their own checks.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

from atoll.api import errors
from atoll.api.jsonvalues import same
from atoll.api.k8s_schemas import definitions, schema_name_for

JSON = dict[str, Any]
Path = list[str | int]
_REF = "#/components/schemas/"
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_TYPE_NAMES: dict[type, str] = {
    bool: "boolean", int: "integer", float: "number", str: "string", dict: "object", list: "array"}
_MISSING = object()
_VALID_TIMES: set[str] = set()  # date-times that matched ``_DATE_TIME`` (timestamps repeat across writes)
_VALID_TIMES_MAX = 1024


def _path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _type_of(value: Any) -> str:
    name = _TYPE_NAMES.get(type(value))
    if name is not None:
        return name
    for typ, label in _TYPE_NAMES.items():  # subclasses (bool before int)
        if isinstance(value, typ):
            return label
    return type(value).__name__


def _resolve(schema: JSON) -> tuple[JSON, str]:
    ref, name = schema.get("$ref"), ""
    while isinstance(ref, str):
        name = ref.removeprefix(_REF)
        schema = definitions().get(name) or {}
        ref = schema.get("$ref")
    return schema, name


def _allowed_types(schema: JSON) -> frozenset[str] | None:
    if "type" in schema:
        return frozenset((str(schema["type"]),))
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        found = {str(t) for a in alternatives if (t := _resolve(a)[0].get("type"))}
        return frozenset(found) or None
    return None


class _Node:
    """One compiled schema: allowed types, properties, map values, items and string format."""

    __slots__ = ("allowed", "extra", "fmt", "free", "items", "label", "map_walk", "plain", "props")

    def __init__(self) -> None:
        self.allowed: frozenset[str] | None = None
        self.label = ""
        self.props: dict[str, _Node] | None = None
        self.extra: _Node | None = None
        self.items: _Node | None = None
        self.fmt = ""
        self.free = True  # an object with neither properties nor additionalProperties: not checked
        self.plain: frozenset[type] = frozenset()  # value types accepted with nothing more to check
        self.map_walk = False  # a map here is accepted and its members checked: ``_object`` directly

    def fill(self, schema: JSON) -> _Node:
        self.allowed = _allowed_types(schema)
        if self.allowed is not None:
            self.label = " or ".join(sorted(self.allowed))
            if "number" in self.allowed:
                self.allowed = self.allowed | {"integer"}
        props, extra, items = schema.get("properties"), schema.get("additionalProperties"), schema.get("items")
        self.props = {k: _compile(v) for k, v in props.items()} if isinstance(props, dict) else None
        self.extra = _compile(extra) if isinstance(extra, dict) else None
        self.items = _compile(items) if isinstance(items, dict) else None
        self.free = self.props is None and self.extra is None
        self.map_walk = not self.free and (self.allowed is None or "object" in self.allowed)
        fmt = schema.get("format")
        self.fmt = fmt if fmt in ("byte", "date-time") else ""
        plain = {py for py, name in _TYPE_NAMES.items()
                 if py is not dict and py is not list and (self.allowed is None or name in self.allowed)}
        if self.fmt:
            plain.discard(str)
        self.plain = frozenset(plain | {type(None)})
        return self


_compiled: dict[str, _Node] = {}


def _compile(schema: JSON) -> _Node:
    """The node of ``schema``; a ``$ref`` shares the named definition's node (compiled once)."""
    resolved, name = _resolve(schema)
    if not name:
        return _Node().fill(resolved)
    node = _compiled.get(name)
    if node is None:
        node = _compiled[name] = _Node()  # registered first: recursive definitions end here
        node.fill(resolved)
    return node


class _Walk:
    """One validation pass: type and format errors in ``causes``, unknown field paths in ``unknown``."""

    __slots__ = ("causes", "path", "prune", "unknown")

    def __init__(self, prune: bool) -> None:
        self.prune = prune
        self.causes: list[JSON] = []
        self.unknown: list[str] = []
        self.path: Path = []

    def value(self, value: Any, node: _Node, old: Any) -> None:
        if value is None:
            return
        actual = _TYPE_NAMES.get(type(value)) or _type_of(value)
        allowed = node.allowed
        if allowed is not None and actual not in allowed:
            field = _path(self.path)
            self.causes.append({
                "reason": "FieldValueTypeInvalid",
                "field": field,
                "message": f'Invalid value: "{actual}": {field} in body must be of type {node.label}',
            })
        elif actual == "object":
            if not node.free:
                self._object(value, node, old if type(old) is dict else None)
        elif actual == "array":
            if node.items is not None:
                self._array(value, node.items, old if type(old) is list else None)
        elif actual == "string" and node.fmt:
            self._string(value, node.fmt)

    def _array(self, value: list[Any], items: _Node, old: list[Any] | None) -> None:
        """Each item; an item equal to the stored list's at the same index was checked when stored."""
        path, plain, n_old = self.path, items.plain, len(old) if old is not None else 0
        for i, item in enumerate(value):
            if type(item) in plain:
                continue
            before = old[i] if old is not None and i < n_old else None
            if before is not None and same(before, item):
                continue
            path.append(i)
            if type(item) is dict and items.map_walk:  # ``value`` inlined for the common case
                self._object(item, items, before if type(before) is dict else None)
            else:
                self.value(item, items, before)
            path.pop()

    def _object(self, value: JSON, node: _Node, old: JSON | None) -> None:
        props, extra, path = node.props, node.extra, self.path
        unknown: list[str] = []
        for key, item in value.items():
            sub = props.get(key) if props is not None else None
            if sub is None:
                sub = extra
            if sub is not None:
                kind = type(item)
                if kind in sub.plain or (kind is str and sub.fmt == "date-time" and item in _VALID_TIMES):
                    continue
            before = old.get(key, _MISSING) if old is not None else _MISSING
            if before is not _MISSING:  # equal to the stored value: checked when that was written
                if type(item) is str:  # a string with a format (others are plain): ``same`` inlined
                    if type(before) is str and before == item:
                        continue
                elif same(before, item):
                    continue
            if sub is not None:
                path.append(key)
                if type(item) is dict and sub.map_walk:  # ``value`` inlined for the common case
                    self._object(item, sub, before if type(before) is dict else None)
                else:
                    self.value(item, sub, None if before is _MISSING else before)
                path.pop()
            elif not path and key in ("apiVersion", "kind"):
                continue
            else:
                self.unknown.append(_path([*path, key]))
                unknown.append(key)
        if self.prune:
            for key in unknown:
                del value[key]

    def _string(self, value: str, fmt: str) -> None:
        problem = ""
        if fmt == "byte":
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                problem = "illegal base64 data"
        elif value in _VALID_TIMES:
            pass
        elif _DATE_TIME.match(value):
            if len(_VALID_TIMES) >= _VALID_TIMES_MAX:
                _VALID_TIMES.clear()
            _VALID_TIMES.add(value)
        else:
            problem = "must be an RFC 3339 date-time"
        if problem:
            field = _path(self.path)
            self.causes.append({"reason": "FieldValueInvalid", "field": field,
                                "message": f'Invalid value: "{value[:64]}": {problem}'})


_roots: dict[tuple[str, str, str], _Node | None] = {}


def _root(group: str, version: str, kind: str) -> _Node | None:
    gvk = (group, version, kind)
    if gvk not in _roots:
        name = schema_name_for(group, version, kind)
        _roots[gvk] = _compile({"$ref": _REF + name}) if name is not None and name in definitions() else None
    return _roots[gvk]


def compile_schemas(kinds: Iterable[tuple[str, str, str]]) -> None:
    """Compile the schemas of these (group, version, kind)s now, at start-up, rather than at the
    first write of each (a Pod's is ~600 nodes: 3 ms of the first pod create on a fresh master)."""
    for group, version, kind in kinds:
        _root(group, version, kind)


def check(
    obj: JSON, group: str, version: str, kind: str, *, prune: bool = True, old: JSON | None = None
) -> tuple[list[str], list[JSON]]:
    """(unknown field paths, causes) of ``obj`` against the published schema of ``group/version/kind``.
    With ``old`` (the stored object an update replaces), subtrees equal to ``old``'s are not walked."""
    root = _root(group, version, kind)
    if root is None:
        return [], []
    walk = _Walk(prune)
    walk.value(obj, root, old)
    return walk.unknown, walk.causes


def is_valid(obj: Any, group: str, version: str, kind: str) -> bool:
    """Whether a stored object would be accepted today (no type errors; unknown fields allowed)."""
    if not isinstance(obj, dict):
        return False
    return not check(obj, group, version, kind, prune=False)[1]


def require_valid(obj: Any, group: str, version: str, kind: str, name: str = "") -> None:
    """422 naming every field of ``obj`` whose type the published schema of ``kind`` refuses."""
    if not isinstance(obj, dict):
        raise errors.BadRequest(f"the body of the request must be a {kind} object")
    causes = check(obj, group, version, kind, prune=False)[1]
    if causes:
        raise errors.invalid(kind, group, name, causes)
