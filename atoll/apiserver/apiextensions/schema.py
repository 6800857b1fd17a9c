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

import base64
import binascii
import copy
import ipaddress
import json
import re
from typing import Any

JSON = dict[str, Any]
Path = list[str | int]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2})(\.\d+)?(z|[+-]\d{2}:\d{2})?$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_ROOT_META = ("apiVersion", "kind", "metadata")


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _enum_key(v: Any) -> Any:
    """Hashable identity for enum membership (``True`` != ``1``, ``1`` == ``1.0``)."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, int | float):
        return ("n", v)
    if isinstance(v, dict | list):
        return ("j", json.dumps(v, sort_keys=True))
    return ("s", v) if isinstance(v, str) else ("z", None)


def _go(v: Any) -> str:
    """A value as Go's ``field.Error`` prints it (``%q`` for strings, ``%v`` for scalars)."""
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        r = repr(v)
        return r[:-2] if r.endswith(".0") else r
    if isinstance(v, int):
        return str(v)
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def _num(v: float) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else _go(v)


def _date_ok(s: str) -> bool:
    m = _DATE.match(s)
    return bool(m) and "01" <= m.group(2) <= "12" and "01" <= m.group(3) <= "31"  # type: ignore[union-attr]


def _format_ok(fmt: str, s: str) -> bool:
    """strfmt-compatible (lenient) checks for the formats Kubernetes validates."""
    if fmt in ("date-time", "datetime"):
        parts = s.lower().split("t")
        if len(s) < 4 or len(parts) < 2 or not _date_ok(parts[0]):
            return False
        m = _TIME.match(parts[1])
        return bool(m) and m.group(1) <= "23" and m.group(2) <= "59" and m.group(3) <= "59"  # type: ignore[union-attr]
    if fmt == "date":
        return _date_ok(s)
    if fmt == "byte":
        try:
            base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError):
            return False
        return True
    if fmt == "uuid":
        return bool(_UUID.match(s))
    try:
        if fmt == "ipv4":
            ipaddress.IPv4Address(s)
        elif fmt == "ipv6":
            ipaddress.IPv6Address(s)
        elif fmt == "cidr":
            ipaddress.ip_network(s, strict=False)
    except ValueError:
        return False
    return True


_CHECKED_FORMATS = frozenset(("date-time", "datetime", "date", "byte", "uuid", "ipv4", "ipv6", "cidr"))


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
        self.enum_keys = frozenset(_enum_key(e) for e in self.enum) if self.enum is not None else frozenset()
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


def _path(path: Path) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out = f"{out}.{p}" if out else p
    return out


def _cause(reason: str, path: Path, message: str) -> JSON:
    return {"reason": reason, "message": message, "field": _path(path)}


def _invalid(path: Path, value: Any, detail: str) -> JSON:
    return _cause("FieldValueInvalid", path, f"Invalid value: {_go(value)}: {detail}")


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
        _validate(obj, self.root, [], errors)
        return errors

    def is_valid(self, obj: Any) -> bool:
        return not self.validate(obj)

    def admit(self, obj: JSON) -> tuple[list[str], list[JSON]]:
        """Prune, default and validate ``obj`` in place: ``(unknown field paths, causes)``."""
        unknown = self.prune(obj)
        self.default(obj)
        return unknown, self.validate(obj)


def _prune(x: Any, s: _Node | None, path: Path, pruned: list[str]) -> None:
    if isinstance(x, dict):
        if s is None:
            pruned.extend(_path([*path, k]) for k in x)
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
                pruned.append(_path([*path, k]))
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


def _validate(v: Any, s: _Node, path: Path, errs: list[JSON]) -> None:
    if v is None:
        if s.nullable:
            return
        if s.types is not None and "null" not in s.types:
            p = _path(path)
            errs.append(
                _cause(
                    "FieldValueTypeInvalid",
                    path,
                    f'Invalid value: "null": {p} in body must be of type {s.type_label}: "null"',
                )
            )
        if s.enum is not None and ("z", None) not in s.enum_keys:
            errs.append(_not_supported(path, v, s))
        return
    tn = _type_name(v)
    types = s.types
    if types is not None and tn not in types:
        ok = (tn == "integer" and "number" in types) or (tn == "number" and "integer" in types and v.is_integer())
        if not ok:
            p = _path(path)
            errs.append(
                _cause(
                    "FieldValueTypeInvalid",
                    path,
                    f'Invalid value: "{tn}": {p} in body must be of type {s.type_label}: "{tn}"',
                )
            )
            if s.enum is not None and _enum_key(v) not in s.enum_keys:
                errs.append(_not_supported(path, v, s))
            return
    if s.enum is not None and _enum_key(v) not in s.enum_keys:
        errs.append(_not_supported(path, v, s))
    if tn == "object":
        if s.embedded and path:
            for key in ("kind", "apiVersion"):
                if not v.get(key):
                    errs.append(_cause("FieldValueRequired", [*path, key], "Required value: must not be empty"))
        props = s.props
        ap = s.additional
        for k, child in v.items():
            sub = props.get(k) or ap
            if sub is not None:
                path.append(k)
                _validate(child, sub, path, errs)
                path.pop()
        for k in s.required:
            if k not in v:
                errs.append(_cause("FieldValueRequired", [*path, k], "Required value"))
        n = len(v)
        if s.max_props is not None and n > s.max_props:
            errs.append(_cause("FieldValueTooMany", path, f"Too many: {n}: must have at most {s.max_props} items"))
        if s.min_props is not None and n < s.min_props:
            errs.append(_invalid(path, n, f"{_path(path)} in body should have at least {s.min_props} properties"))
    elif tn == "array":
        n = len(v)
        if s.items is not None:
            items = s.items
            for i, child in enumerate(v):
                path.append(i)
                _validate(child, items, path, errs)
                path.pop()
        if s.min_items is not None and n < s.min_items:
            errs.append(_invalid(path, n, f"{_path(path)} in body should have at least {s.min_items} items"))
        if s.max_items is not None and n > s.max_items:
            errs.append(_cause("FieldValueTooMany", path, f"Too many: {n}: must have at most {s.max_items} items"))
        if s.unique and len({_enum_key(e) for e in v}) != n:
            errs.append(_cause("FieldValueDuplicate", path, f"Duplicate value: {_go(v)}"))
    elif tn == "string":
        if s.max_len is not None and len(v) > s.max_len:
            errs.append(_cause("FieldValueTooLong", path, f"Too long: may not be longer than {s.max_len}"))
        elif s.min_len is not None and len(v) < s.min_len:
            errs.append(_invalid(path, v, f"{_path(path)} in body should be at least {s.min_len} chars long"))
        elif s.pattern is not None and s.pattern.search(v) is None:
            errs.append(_invalid(path, v, f"{_path(path)} in body should match '{s.pattern_src}'"))
        if s.fmt in _CHECKED_FORMATS and not _format_ok(s.fmt, v):
            p = _path(path)
            errs.append(
                _cause(
                    "FieldValueTypeInvalid",
                    path,
                    f"Invalid value: {_go(v)}: {p} in body must be of type {s.fmt}: {_go(v)}",
                )
            )
    elif tn in ("integer", "number"):
        _validate_number(v, s, path, errs)
    if s.any_of or s.all_of or s.one_of or s.not_ is not None:
        _validate_combinators(v, s, path, errs)


def _not_supported(path: Path, v: Any, s: _Node) -> JSON:
    values = ", ".join(json.dumps(e if isinstance(e, str) else _go(e), ensure_ascii=False) for e in s.enum or ())
    return _cause("FieldValueNotSupported", path, f"Unsupported value: {_go(v)}: supported values: {values}")


def _validate_number(v: float, s: _Node, path: Path, errs: list[JSON]) -> None:
    if s.fmt in ("int32", "int64") and isinstance(v, int):
        lo, hi = _INT32 if s.fmt == "int32" else _INT64
        if not lo <= v <= hi:
            errs.append(
                _invalid(path, v, f"Checked value must be of type integer with format {s.fmt} in {_path(path)}")
            )
    if s.multiple_of and (v / s.multiple_of) % 1 != 0:
        errs.append(_invalid(path, v, f"{_path(path)} in body should be a multiple of {_num(s.multiple_of)}"))
    if s.minimum is not None and (v <= s.minimum if s.excl_min else v < s.minimum):
        word = "greater than" if s.excl_min else "greater than or equal to"
        errs.append(_invalid(path, v, f"{_path(path)} in body should be {word} {_num(s.minimum)}"))
    if s.maximum is not None and (v >= s.maximum if s.excl_max else v > s.maximum):
        word = "less than" if s.excl_max else "less than or equal to"
        errs.append(_invalid(path, v, f"{_path(path)} in body should be {word} {_num(s.maximum)}"))


def _validate_combinators(v: Any, s: _Node, path: Path, errs: list[JSON]) -> None:
    for sub in s.all_of:
        _validate(v, sub, path, errs)
    p = _path(path) or "."
    if s.any_of:
        branch_errs: list[JSON] = []
        for sub in s.any_of:
            trial: list[JSON] = []
            _validate(v, sub, path, trial)
            if not trial:
                break
            branch_errs = branch_errs or trial
        else:
            errs.append(_invalid(path, v, f'"{p}" must validate at least one schema (anyOf)'))
            errs.extend(branch_errs)
    if s.one_of:
        passing = 0
        for sub in s.one_of:
            trial = []
            _validate(v, sub, path, trial)
            passing += not trial
        if passing != 1:
            detail = "at least one" if passing == 0 else "one and only one"
            errs.append(_invalid(path, v, f'"{p}" must validate {detail} schema (oneOf)'))
    if s.not_ is not None:
        trial = []
        _validate(v, s.not_, path, trial)
        if not trial:
            errs.append(_invalid(path, v, f'"{p}" must not validate the schema (not)'))
