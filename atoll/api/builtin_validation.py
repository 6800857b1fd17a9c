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

Semantic rules beyond types (name formats, immutable fields) stay with their own checks.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from atoll.api import errors
from atoll.api.k8s_schemas import definitions, schema_name_for

JSON = dict[str, Any]
Path = list[str | int]
_REF = "#/components/schemas/"
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    for name in ("integer", "number", "string", "object", "array"):
        if isinstance(value, _TYPES[name]):
            return name
    return type(value).__name__


def _resolve(schema: JSON) -> JSON:
    ref = schema.get("$ref")
    while isinstance(ref, str):
        schema = definitions().get(ref.removeprefix(_REF)) or {}
        ref = schema.get("$ref")
    return schema


def _allowed_types(schema: JSON) -> set[str] | None:
    if "type" in schema:
        return {str(schema["type"])}
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        return {str(_resolve(a).get("type")) for a in alternatives if _resolve(a).get("type")} or None
    return None


class _Walk:
    """One validation pass: type and format errors in ``causes``, unknown field paths in ``unknown``."""

    def __init__(self, prune: bool) -> None:
        self.prune = prune
        self.causes: list[JSON] = []
        self.unknown: list[str] = []

    def value(self, value: Any, schema: JSON, path: Path) -> None:
        if value is None:
            return
        schema = _resolve(schema)
        allowed = _allowed_types(schema)
        actual = _type_of(value)
        if allowed is not None and actual not in allowed and not (actual == "integer" and "number" in allowed):
            field = _path(path)
            self.causes.append({
                "reason": "FieldValueTypeInvalid",
                "field": field,
                "message": f'Invalid value: "{actual}": {field} in body must be of type {" or ".join(sorted(allowed))}',
            })
            return
        if isinstance(value, dict):
            self._object(value, schema, path)
        elif isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, dict):
                for i, item in enumerate(value):
                    self.value(item, items, [*path, i])
        elif isinstance(value, str):
            self._string(value, schema, path)

    def _object(self, value: JSON, schema: JSON, path: Path) -> None:
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is None and not isinstance(extra, dict):
            return  # free-form (RawExtension, JSON)
        for key in list(value):
            if props is not None and key in props:
                self.value(value[key], props[key], [*path, key])
            elif isinstance(extra, dict):
                self.value(value[key], extra, [*path, key])
            elif not path and key in ("apiVersion", "kind"):
                continue
            else:
                self.unknown.append(_path([*path, key]))
                if self.prune:
                    del value[key]

    def _string(self, value: str, schema: JSON, path: Path) -> None:
        fmt = schema.get("format")
        problem = ""
        if fmt == "byte":
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                problem = "illegal base64 data"
        elif fmt == "date-time" and not _DATE_TIME.match(value):
            problem = "must be an RFC 3339 date-time"
        if problem:
            field = _path(path)
            self.causes.append({"reason": "FieldValueInvalid", "field": field,
                                "message": f'Invalid value: "{value[:64]}": {problem}'})


def check(obj: JSON, group: str, version: str, kind: str, *, prune: bool = True) -> tuple[list[str], list[JSON]]:
    """(unknown field paths, causes) of ``obj`` against the published schema of ``group/version/kind``."""
    name = schema_name_for(group, version, kind)
    if name is None:
        return [], []
    walk = _Walk(prune)
    walk.value(obj, definitions()[name], [])
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
