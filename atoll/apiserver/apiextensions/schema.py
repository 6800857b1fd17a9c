"""Structural-schema admission for custom resources: pruning, defaulting and validation.

A ``StructuralSchema`` is compiled once per CRD version from its ``openAPIV3Schema`` into a tree of
``_Node`` objects with everything precomputed (type sets, enum keys, compiled patterns, which
subtrees carry defaults), then applied to each request in the order kube-apiserver uses:

1. ``prune(obj)`` drops fields the schema does not know (unless ``x-kubernetes-preserve-unknown-fields``
   applies at that level) and returns their paths (``spec.foo``, ``spec.parties[0].bar``) for
   ``fieldValidation=Strict|Warn``; it also drops non-nullable ``null`` values that have no default.
   ``apiVersion``, ``kind`` and ``metadata`` of the object (and of embedded resources) are kept.
2. ``default(obj)`` fills in ``default`` values for missing (or non-nullable ``null``) properties,
   recursively, also inside array items and ``additionalProperties`` maps.
3. ``validate(obj)`` returns every violation as a ``StatusCause`` dict worded like kube-apiserver
   (kube-openapi messages mapped through apiextensions' field errors), e.g.
   ``{"reason": "FieldValueNotSupported", "field": "spec.role",
   "message": 'Unsupported value: "wrong": supported values: "", "partner"'}``.

The validator is a hand-written walker (no per-request allocation beyond the error list), so error
paths come out in Kubernetes form directly; it handles ``nullable``, ``x-kubernetes-int-or-string``,
``x-kubernetes-preserve-unknown-fields``, ``x-kubernetes-embedded-resource``, enum, required,
min/max (exclusive too), multipleOf, lengths, patterns, item/property counts, uniqueItems,
anyOf/allOf/oneOf/not, and the formats int32/int64/date-time/date/byte/uuid/ipv4/ipv6/cidr.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from atoll.apiserver.apiextensions.validation import validate_value
from atoll.apiserver.apiextensions.values import JSON, Path, enum_key, field_path

_ROOT_META = ("apiVersion", "kind", "metadata")


class _Node:
    """One compiled schema node."""

    __slots__ = (
        "additional",
        "all_of",
        "any_of",
        "default",
        "embedded",
        "enum",
        "enum_keys",
        "excl_max",
        "excl_min",
        "fmt",
        "has_default",
        "has_defaults_below",
        "items",
        "max_items",
        "max_len",
        "max_props",
        "maximum",
        "min_items",
        "min_len",
        "min_props",
        "minimum",
        "multiple_of",
        "not_",
        "nullable",
        "one_of",
        "pattern",
        "pattern_src",
        "preserve",
        "props",
        "required",
        "type_label",
        "types",
        "unique",
    )

    def __init__(self, s: JSON) -> None:
        int_or_string = s.get("x-kubernetes-int-or-string") is True
        typ = s.get("type")
        self.types: frozenset[str] | None = (
            frozenset(("integer", "string"))
            if int_or_string
            else frozenset((typ,))
            if isinstance(typ, str) and typ
            else frozenset(typ)
            if isinstance(typ, list) and typ
            else None
        )
        self.type_label = (
            "integer,string" if int_or_string else (",".join(typ) if isinstance(typ, list) else str(typ or ""))
        )
        self.nullable = s.get("nullable") is True
        self.preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
        self.embedded = s.get("x-kubernetes-embedded-resource") is True
        self.props: dict[str, _Node] = {k: _Node(v) for k, v in (s.get("properties") or {}).items()}
        ap = s.get("additionalProperties")
        self.additional: _Node | None = (
            _Node(ap)
            if isinstance(ap, dict)
            else _Node({"x-kubernetes-preserve-unknown-fields": True})
            if ap is True
            else None
        )
        if ap is True and not self.props:
            self.preserve = True
        self.items: _Node | None = _Node(s["items"]) if isinstance(s.get("items"), dict) else None
        self.required: tuple[str, ...] = tuple(s.get("required") or ())
        self.has_default = "default" in s
        self.default: Any = s.get("default")
        enum = s.get("enum")
        self.enum: tuple[Any, ...] | None = tuple(enum) if isinstance(enum, list) else None
        self.enum_keys = frozenset(enum_key(e) for e in self.enum) if self.enum is not None else frozenset()
        self.minimum: float | None = s.get("minimum")
        self.maximum: float | None = s.get("maximum")
        self.excl_min = s.get("exclusiveMinimum") is True
        self.excl_max = s.get("exclusiveMaximum") is True
        self.multiple_of: float | None = s.get("multipleOf")
        self.min_len: int | None = s.get("minLength")
        self.max_len: int | None = s.get("maxLength")
        self.min_items: int | None = s.get("minItems")
        self.max_items: int | None = s.get("maxItems")
        self.min_props: int | None = s.get("minProperties")
        self.max_props: int | None = s.get("maxProperties")
        self.unique = s.get("uniqueItems") is True
        self.fmt: str = str(s.get("format") or "")
        self.pattern_src: str = str(s.get("pattern") or "")
        self.pattern: re.Pattern[str] | None = None
        if self.pattern_src:
            try:
                self.pattern = re.compile(self.pattern_src)
            except re.error:  # RE2-only syntax (\p{L}, ...): accept rather than reject users' data
                self.pattern = None
        self.any_of = tuple(_Node(x) for x in s.get("anyOf") or ())
        self.all_of = tuple(_Node(x) for x in s.get("allOf") or ())
        self.one_of = tuple(_Node(x) for x in s.get("oneOf") or ())
        self.not_: _Node | None = _Node(s["not"]) if isinstance(s.get("not"), dict) else None
        children = [*self.props.values(), *(n for n in (self.additional, self.items) if n)]
        self.has_defaults_below: bool = any(c.has_default or c.has_defaults_below for c in children)


class StructuralSchema:
    """A CRD version's ``openAPIV3Schema``, compiled once; apply per request with
    ``prune`` -> ``default`` -> ``validate`` (or ``admit`` for all three)."""

    __slots__ = ("root", "source")

    def __init__(self, openapi_v3_schema: JSON) -> None:
        self.source = openapi_v3_schema
        self.root = _Node(openapi_v3_schema)
        self.root.embedded = True  # the object itself: apiVersion/kind/metadata are always kept

    # ------------------------------------------------------------------------------ pruning
    def prune(self, obj: JSON) -> list[str]:
        """Drop unknown fields (returned as paths) and non-nullable nulls without defaults, in place."""
        pruned: list[str] = []
        _prune(obj, self.root, [], pruned)
        return pruned

    # ---------------------------------------------------------------------------- defaulting
    def default(self, obj: JSON) -> None:
        """Apply schema defaults in place (missing or non-nullable-null properties, items, map values)."""
        _default(obj, self.root)

    # ---------------------------------------------------------------------------- validation
    def validate(self, obj: Any) -> list[JSON]:
        """All schema violations as Kubernetes ``StatusCause`` dicts (empty list when valid)."""
        errors: list[JSON] = []
        validate_value(obj, self.root, [], errors)
        return errors

    def admit(self, obj: JSON) -> tuple[list[str], list[JSON]]:
        """Prune, default and validate ``obj`` in place: ``(unknown field paths, causes)``."""
        unknown = self.prune(obj)
        self.default(obj)
        return unknown, self.validate(obj)


def _prune(x: Any, s: _Node | None, path: Path, pruned: list[str]) -> None:
    if isinstance(x, dict):
        if s is None:
            pruned.extend(field_path([*path, k]) for k in x)
            x.clear()
            return
        for k in list(x):
            v = x[k]
            if s.embedded and k in _ROOT_META and isinstance(v, dict if k == "metadata" else str):
                continue
            sub = s.props.get(k) or s.additional
            if sub is not None:
                if v is None and not sub.nullable and not sub.has_default:
                    del x[k]
                    continue
                if sub.preserve or sub.props or sub.additional or sub.items or isinstance(v, dict | list):
                    path.append(k)
                    _prune(v, sub, path, pruned)
                    path.pop()
            elif not s.preserve:
                pruned.append(field_path([*path, k]))
                del x[k]
    elif isinstance(x, list):
        items = s.items if s is not None else None
        if items is None and s is not None and s.preserve:
            return
        for i, v in enumerate(x):
            if isinstance(v, dict | list):
                path.append(i)
                _prune(v, items, path, pruned)
                path.pop()


def _copy(v: Any) -> Any:
    return copy.deepcopy(v) if isinstance(v, dict | list) else v


def _default(x: Any, s: _Node) -> None:
    if isinstance(x, dict):
        for k, prop in s.props.items():
            if prop.has_default:
                cur = x.get(k, x)
                if cur is x or (cur is None and not prop.nullable):
                    x[k] = _copy(prop.default)
        if not s.has_defaults_below:
            return
        ap = s.additional
        for k, v in x.items():
            sub = s.props.get(k) or ap
            if sub is None:
                continue
            if v is None and sub is ap and sub.has_default and not sub.nullable:
                x[k] = v = _copy(sub.default)
            if sub.has_defaults_below:
                _default(v, sub)
    elif isinstance(x, list) and s.items is not None:
        items = s.items
        for i, v in enumerate(x):
            if v is None and items.has_default and not items.nullable:
                x[i] = v = _copy(items.default)
            if items.has_defaults_below:
                _default(v, items)


