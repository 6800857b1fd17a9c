"""Validation of a value against a compiled structural schema, with kube-apiserver's wording.

The walker visits each value once, collecting every violation as a ``StatusCause`` whose
``field`` is already in Kubernetes form (``spec.parties[0].role``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from atoll.apiserver.apiextensions.values import (
    CHECKED_FORMATS,
    INT32,
    INT64,
    JSON,
    Path,
    cause,
    enum_key,
    field_path,
    format_ok,
    go_number,
    go_value,
    invalid,
    type_name,
)

if TYPE_CHECKING:
    from atoll.apiserver.apiextensions.schema import _Node


def validate_value(v: Any, s: _Node, path: Path, errs: list[JSON]) -> None:
    if v is None:
        if s.nullable:
            return
        if s.types is not None and "null" not in s.types:
            p = field_path(path)
            errs.append(
                cause(
                    "FieldValueTypeInvalid",
                    path,
                    f'Invalid value: "null": {p} in body must be of type {s.type_label}: "null"',
                )
            )
        if s.enum is not None and ("z", None) not in s.enum_keys:
            errs.append(_not_supported(path, v, s))
        return
    tn = type_name(v)
    types = s.types
    if types is not None and tn not in types:
        ok = (tn == "integer" and "number" in types) or (tn == "number" and "integer" in types and v.is_integer())
        if not ok:
            p = field_path(path)
            errs.append(
                cause(
                    "FieldValueTypeInvalid",
                    path,
                    f'Invalid value: "{tn}": {p} in body must be of type {s.type_label}: "{tn}"',
                )
            )
            if s.enum is not None and enum_key(v) not in s.enum_keys:
                errs.append(_not_supported(path, v, s))
            return
    if s.enum is not None and enum_key(v) not in s.enum_keys:
        errs.append(_not_supported(path, v, s))
    if tn == "object":
        if s.embedded and path:
            for key in ("kind", "apiVersion"):
                if not v.get(key):
                    errs.append(cause("FieldValueRequired", [*path, key], "Required value: must not be empty"))
        props = s.props
        ap = s.additional
        for k, child in v.items():
            sub = props.get(k) or ap
            if sub is not None:
                path.append(k)
                validate_value(child, sub, path, errs)
                path.pop()
        for k in s.required:
            if k not in v:
                errs.append(cause("FieldValueRequired", [*path, k], "Required value"))
        n = len(v)
        if s.max_props is not None and n > s.max_props:
            errs.append(cause("FieldValueTooMany", path, f"Too many: {n}: must have at most {s.max_props} items"))
        if s.min_props is not None and n < s.min_props:
            errs.append(invalid(path, n, f"{field_path(path)} in body should have at least {s.min_props} properties"))
    elif tn == "array":
        n = len(v)
        if s.items is not None:
            items = s.items
            for i, child in enumerate(v):
                path.append(i)
                validate_value(child, items, path, errs)
                path.pop()
        if s.min_items is not None and n < s.min_items:
            errs.append(invalid(path, n, f"{field_path(path)} in body should have at least {s.min_items} items"))
        if s.max_items is not None and n > s.max_items:
            errs.append(cause("FieldValueTooMany", path, f"Too many: {n}: must have at most {s.max_items} items"))
        if s.unique and len({enum_key(e) for e in v}) != n:
            errs.append(cause("FieldValueDuplicate", path, f"Duplicate value: {go_value(v)}"))
    elif tn == "string":
        if s.max_len is not None and len(v) > s.max_len:
            errs.append(cause("FieldValueTooLong", path, f"Too long: may not be longer than {s.max_len}"))
        elif s.min_len is not None and len(v) < s.min_len:
            errs.append(invalid(path, v, f"{field_path(path)} in body should be at least {s.min_len} chars long"))
        elif s.pattern is not None and s.pattern.search(v) is None:
            errs.append(invalid(path, v, f"{field_path(path)} in body should match '{s.pattern_src}'"))
        if s.fmt in CHECKED_FORMATS and not format_ok(s.fmt, v):
            p = field_path(path)
            errs.append(
                cause(
                    "FieldValueTypeInvalid",
                    path,
                    f"Invalid value: {go_value(v)}: {p} in body must be of type {s.fmt}: {go_value(v)}",
                )
            )
    elif tn in ("integer", "number"):
        _validate_number(v, s, path, errs)
    if s.any_of or s.all_of or s.one_of or s.not_ is not None:
        _validate_combinators(v, s, path, errs)


def _not_supported(path: Path, v: Any, s: _Node) -> JSON:
    values = ", ".join(json.dumps(e if isinstance(e, str) else go_value(e), ensure_ascii=False) for e in s.enum or ())
    return cause("FieldValueNotSupported", path, f"Unsupported value: {go_value(v)}: supported values: {values}")


def _validate_number(v: float, s: _Node, path: Path, errs: list[JSON]) -> None:
    if s.fmt in ("int32", "int64") and isinstance(v, int):
        lo, hi = INT32 if s.fmt == "int32" else INT64
        if not lo <= v <= hi:
            errs.append(
                invalid(path, v, f"Checked value must be of type integer with format {s.fmt} in {field_path(path)}")
            )
    if s.multiple_of and (v / s.multiple_of) % 1 != 0:
        errs.append(invalid(path, v, f"{field_path(path)} in body should be a multiple of {go_number(s.multiple_of)}"))
    if s.minimum is not None and (v <= s.minimum if s.excl_min else v < s.minimum):
        word = "greater than" if s.excl_min else "greater than or equal to"
        errs.append(invalid(path, v, f"{field_path(path)} in body should be {word} {go_number(s.minimum)}"))
    if s.maximum is not None and (v >= s.maximum if s.excl_max else v > s.maximum):
        word = "less than" if s.excl_max else "less than or equal to"
        errs.append(invalid(path, v, f"{field_path(path)} in body should be {word} {go_number(s.maximum)}"))


def _validate_combinators(v: Any, s: _Node, path: Path, errs: list[JSON]) -> None:
    for sub in s.all_of:
        validate_value(v, sub, path, errs)
    p = field_path(path) or "."
    if s.any_of:
        branch_errs: list[JSON] = []
        for sub in s.any_of:
            trial: list[JSON] = []
            validate_value(v, sub, path, trial)
            if not trial:
                break
            branch_errs = branch_errs or trial
        else:
            errs.append(invalid(path, v, f'"{p}" must validate at least one schema (anyOf)'))
            errs.extend(branch_errs)
    if s.one_of:
        passing = 0
        for sub in s.one_of:
            trial = []
            validate_value(v, sub, path, trial)
            passing += not trial
        if passing != 1:
            detail = "at least one" if passing == 0 else "one and only one"
            errs.append(invalid(path, v, f'"{p}" must validate {detail} schema (oneOf)'))
    if s.not_ is not None:
        trial = []
        validate_value(v, s.not_, path, trial)
        if not trial:
            errs.append(invalid(path, v, f'"{p}" must not validate the schema (not)'))
