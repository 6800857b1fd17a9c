"""Values as the structural schema sees them: JSON type names, enum identity, Go's rendering of
values in error messages, the string formats Kubernetes checks, and field paths and causes."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from typing import Any

JSON = dict[str, Any]
Path = list[str | int]

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2})(\.\d+)?(z|[+-]\d{2}:\d{2})?$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def type_name(v: Any) -> str:
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


def enum_key(v: Any) -> Any:
    """Hashable identity for enum membership (``True`` != ``1``, ``1`` == ``1.0``)."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, int | float):
        return ("n", v)
    if isinstance(v, dict | list):
        return ("j", json.dumps(v, sort_keys=True))
    return ("s", v) if isinstance(v, str) else ("z", None)


def go_value(v: Any) -> str:
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


def go_number(v: float) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else go_value(v)


def date_ok(s: str) -> bool:
    m = DATE.match(s)
    return bool(m) and "01" <= m.group(2) <= "12" and "01" <= m.group(3) <= "31"  # type: ignore[union-attr]


def format_ok(fmt: str, s: str) -> bool:
    """strfmt-compatible (lenient) checks for the formats Kubernetes validates."""
    if fmt in ("date-time", "datetime"):
        parts = s.lower().split("t")
        if len(s) < 4 or len(parts) < 2 or not date_ok(parts[0]):
            return False
        m = TIME.match(parts[1])
        return bool(m) and m.group(1) <= "23" and m.group(2) <= "59" and m.group(3) <= "59"  # type: ignore[union-attr]
    if fmt == "date":
        return date_ok(s)
    if fmt == "byte":
        try:
            base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError):
            return False
        return True
    if fmt == "uuid":
        return bool(UUID.match(s))
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


CHECKED_FORMATS = frozenset(("date-time", "datetime", "date", "byte", "uuid", "ipv4", "ipv6", "cidr"))


def field_path(path: Path) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out = f"{out}.{p}" if out else p
    return out


def cause(reason: str, path: Path, message: str) -> JSON:
    return {"reason": reason, "message": message, "field": field_path(path)}


def invalid(path: Path, value: Any, detail: str) -> JSON:
    return cause("FieldValueInvalid", path, f"Invalid value: {go_value(value)}: {detail}")
