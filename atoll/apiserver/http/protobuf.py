"""Decode ``application/vnd.kubernetes.protobuf`` request bodies into the JSON kubectl would send.

Typed kubectl commands (``create deployment|job|cronjob|ns|configmap|secret|…``, ``drain``'s
evictions and deletes, ``debug``, ``auth can-i|whoami``) POST protobuf. The body is the magic
``k8s\\0`` followed by a ``runtime.Unknown`` (1 typeMeta {1 apiVersion, 2 kind}, 2 raw,
3 contentEncoding, 4 contentType) whose ``raw`` is the object's message. Every built-in kind is
decoded from the wire schema generated out of Kubernetes' published ``generated.proto`` files and
Go struct tags (:mod:`atoll.api.k8sproto`): field numbers, JSON names, maps, and which fields are
pointers. Zero values are dropped as Go's ``omitempty`` would, except for pointer fields
(``replicas``, ``immutable``, ``expirationSeconds``, …) whose presence is meaningful. Unknown fields
are skipped; an unknown kind is ``UnsupportedMediaType``.
"""

from __future__ import annotations

import base64
import functools
import importlib.resources
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from atoll.api.errors import BadRequest, UnsupportedMediaType

__all__ = ["MAGIC", "decode_k8s_protobuf", "message_for"]

MAGIC = b"k8s\x00"
JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Fld:
    name: str
    kind: str  # string bytes int bool msg time quantity map_ss map_sb map_sq
    sub: Msg | None = None
    repeated: bool = False
    keep_zero: bool = False  # pointer fields: present means set, even to a zero value


Msg = dict[int, Fld]


_META_V1 = "k8s.io.apimachinery.pkg.apis.meta.v1"
_SPECIAL = {f"{_META_V1}.Time": "time", f"{_META_V1}.MicroTime": "time", f"{_META_V1}.Duration": "duration",
            "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "intorstr",
            "k8s.io.apimachinery.pkg.api.resource.Quantity": "quantity",
            "k8s.io.apimachinery.pkg.runtime.RawExtension": "raw", f"{_META_V1}.FieldsV1": "raw"}
_INTS = {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"}
_BUILT: dict[str, Msg] = {}


@functools.cache
def _schema() -> dict[str, dict[str, list[Any]]]:
    """Kubernetes' wire schema, generated from the published ``.proto`` files (:mod:`atoll.api.k8sproto`)."""
    raw = importlib.resources.files("atoll.api.k8sproto").joinpath("messages.json").read_bytes()
    return dict(orjson.loads(raw))


def _list_wrapper(name: str) -> bool:
    """``ExtraValue``-style messages (one repeated ``items``) are plain lists in JSON."""
    fields = _schema().get(name) or {}
    return list(fields.values())[:1] == [["items", "string", "", True, False]] and len(fields) == 1


def _generated(name: str) -> Msg | None:
    if name in _BUILT:
        return _BUILT[name]
    fields = _schema().get(name)
    if fields is None:
        return None
    msg: Msg = {}
    _BUILT[name] = msg  # before the fields: recursive types refer to it
    for number, (json_name, ptype, ref, repeated, pointer) in fields.items():
        fld = _generated_field(json_name, ptype, ref, repeated, pointer)
        if fld is not None:
            msg[int(number)] = fld
    return msg


def _generated_field(name: str, ptype: str, ref: str, repeated: bool, pointer: bool) -> Fld | None:
    if ptype == "map":
        if ref in ("string", "bytes"):
            return Fld(name, "map_ss" if ref == "string" else "map_sb")
        if ref.endswith(".Quantity"):
            return Fld(name, "map_sq")
        return Fld(name, "map_list" if _list_wrapper(ref) else "map_msg", _generated(ref))
    if ptype == "msg":
        if ref in _SPECIAL:
            return Fld(name, _SPECIAL[ref], repeated=repeated, keep_zero=pointer)
        if _list_wrapper(ref):
            return Fld(name, "string", repeated=True)
        return Fld(name, "msg", _generated(ref), repeated, keep_zero=pointer)
    if ptype in _INTS:
        return Fld(name, "int", repeated=repeated, keep_zero=pointer)
    if ptype in ("string", "bytes", "bool"):
        return Fld(name, ptype, repeated=repeated, keep_zero=pointer)
    return None  # float/double: not used by any built-in kind's request body


def message_for(api_version: str, kind: str) -> Msg | None:
    """The wire schema of ``kind`` in ``api_version`` (generated), or of a meta/v1 kind (DeleteOptions)."""
    group, _, version = api_version.rpartition("/")
    package = (group.split(".")[0] or "core") if group else "core"
    return (_generated(f"k8s.io.api.{package}.{version}.{kind}") or _generated(f"{_META_V1}.{kind}")
            or _generated(f"k8s.io.api.{package}.v1.{kind}"))  # a beta version: its v1 successor's fields


class _Truncated(Exception):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _Truncated
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise BadRequest("invalid protobuf body: varint too long")


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """``(field number, wire type, value)``: ints for varint/fixed, ``bytes`` for length-delimited."""
    out: list[tuple[int, int, Any]] = []
    pos, n = 0, len(buf)
    while pos < n:
        tag, pos = _varint(buf, pos)
        num, wire = tag >> 3, tag & 7
        if num == 0:
            raise BadRequest("invalid protobuf body: field number 0")
        if wire == 0:
            val, pos = _varint(buf, pos)
            out.append((num, 0, val))
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > n:
                raise _Truncated
            out.append((num, 2, buf[pos:pos + size]))
            pos += size
        elif wire == 1:
            if pos + 8 > n:
                raise _Truncated
            out.append((num, 1, int.from_bytes(buf[pos:pos + 8], "little")))
            pos += 8
        elif wire == 5:
            if pos + 4 > n:
                raise _Truncated
            out.append((num, 5, int.from_bytes(buf[pos:pos + 4], "little")))
            pos += 4
        else:
            raise BadRequest(f"invalid protobuf body: unsupported wire type {wire}")
    return out


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _text(raw: Any, what: str) -> str:
    if not isinstance(raw, bytes):
        raise BadRequest(f"invalid protobuf body: {what} must be length-delimited")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"invalid protobuf body: {what} is not valid UTF-8") from None


def _time(raw: bytes) -> str | None:
    secs = nanos = 0
    present = False
    for num, wire, val in _fields(raw):
        if wire != 0:
            continue
        if num == 1:
            secs, present = _signed64(val), True
        elif num == 2:
            nanos, present = val, True
    if not present:
        return None
    stamp = datetime.fromtimestamp(secs, UTC)
    if nanos:
        return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _map_entry(raw: bytes, value_kind: str, what: str) -> tuple[str, str]:
    key, value = "", ""
    for num, _wire, val in _fields(raw):
        if num == 1:
            key = _text(val, what)
        elif num == 2:
            if value_kind == "map_ss":
                value = _text(val, what)
            elif value_kind == "map_sb":
                value = base64.b64encode(val).decode("ascii") if isinstance(val, bytes) else ""
            else:  # Quantity {1 string}
                for qn, _qw, qv in _fields(val) if isinstance(val, bytes) else ():
                    if qn == 1:
                        value = _text(qv, what)
    return key, value


def _special(kind: str, val: Any, what: str) -> Any:
    """Quantity (``{1 string}``), Duration (``{1 int64 ns}`` as Go prints it), RawExtension/FieldsV1 (JSON)."""
    if not isinstance(val, bytes):
        raise BadRequest(f"invalid protobuf body: {what} must be a message")
    inner = {n: x for n, _w, x in _fields(val)}
    if kind == "quantity":
        return _text(inner.get(1, b""), what)
    if kind == "duration":
        return _go_duration(_signed64(int(inner.get(1, 0))))
    raw = inner.get(1, b"")
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise BadRequest(f"invalid protobuf body: {what} is not JSON") from None


def _go_duration(ns: int) -> str:
    """``time.Duration.String()`` for whole-second-or-coarser values (what API objects hold)."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = f"{rest / 1e9:.9f}".rstrip("0").rstrip(".")
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def _map_msg_entry(raw: bytes, fld: Fld, what: str) -> tuple[str, Any]:
    key, value = "", None  # type: tuple[str, Any]
    for num, _wire, val in _fields(raw):
        if num == 1:
            key = _text(val, what)
        elif num == 2 and isinstance(val, bytes):
            if fld.kind == "map_list":
                value = [_text(x, what) for n, _w, x in _fields(val) if n == 1]
            elif fld.sub is not None:
                value = _decode(val, fld.sub)
    return key, value if value is not None else ([] if fld.kind == "map_list" else {})


def _is_zero(v: Any) -> bool:
    if isinstance(v, bool):
        return not v
    if isinstance(v, str | int | dict | list):
        return not v
    return False


def _decode(raw: bytes, msg: Msg) -> JSON:
    found: dict[int, Any] = {}
    for num, wire, val in _fields(raw):
        fld = msg.get(num)
        if fld is None:
            continue
        kind = fld.kind
        if kind == "string":
            v: Any = _text(val, fld.name)
        elif kind == "bytes":
            v = base64.b64encode(val).decode("ascii") if isinstance(val, bytes) else ""
        elif kind == "int":
            if wire != 0:
                raise BadRequest(f"invalid protobuf body: {fld.name} must be a varint")
            v = _signed64(val)
        elif kind == "bool":
            if wire != 0:
                raise BadRequest(f"invalid protobuf body: {fld.name} must be a varint")
            v = bool(val)
        elif kind == "time":
            v = _time(val) if isinstance(val, bytes) else None
        elif kind == "intorstr":  # intstr.IntOrString {1 type (0 int, 1 string), 2 intVal, 3 strVal}
            if not isinstance(val, bytes):
                raise BadRequest(f"invalid protobuf body: {fld.name} must be a message")
            ios = {n: x for n, _w, x in _fields(val)}
            v = _text(ios.get(3, b""), fld.name) if ios.get(1) == 1 else _signed64(ios.get(2, 0))
        elif kind in ("quantity", "duration", "raw"):
            v = _special(kind, val, fld.name)
        elif kind in ("map_msg", "map_list"):
            if not isinstance(val, bytes):
                raise BadRequest(f"invalid protobuf body: {fld.name} entries must be length-delimited")
            k, mv = _map_msg_entry(val, fld, fld.name)
            found.setdefault(num, {})[k] = mv
            continue
        elif kind in ("map_ss", "map_sb", "map_sq"):
            if not isinstance(val, bytes):
                raise BadRequest(f"invalid protobuf body: {fld.name} entries must be length-delimited")
            k, mv = _map_entry(val, kind, fld.name)
            found.setdefault(num, {})[k] = mv
            continue
        else:
            if not isinstance(val, bytes) or fld.sub is None:
                raise BadRequest(f"invalid protobuf body: {fld.name} must be a message")
            v = _decode(val, fld.sub)
        if fld.repeated:
            found.setdefault(num, []).append(v)
        else:
            found[num] = v
    out: JSON = {}
    for num, fld in msg.items():  # declaration order, zero values dropped like omitempty
        if num not in found:
            continue
        v = found[num]
        if v is None or (not fld.keep_zero and _is_zero(v)):
            continue
        out[fld.name] = v
    return out


def decode_k8s_protobuf(body: bytes) -> JSON:
    """The JSON object for a ``k8s\\0``-enveloped protobuf body (``apiVersion``/``kind`` first)."""
    if not body.startswith(MAGIC):
        raise BadRequest("invalid protobuf body: missing the 'k8s\\x00' envelope prefix")
    try:
        api_version = kind = ""
        raw = b""
        encoding = ""
        for num, _wire, val in _fields(body[len(MAGIC):]):
            if num == 1 and isinstance(val, bytes):
                for tn, _tw, tv in _fields(val):
                    if tn == 1:
                        api_version = _text(tv, "apiVersion")
                    elif tn == 2:
                        kind = _text(tv, "kind")
            elif num == 2 and isinstance(val, bytes):
                raw = val
            elif num == 3 and isinstance(val, bytes):
                encoding = _text(val, "contentEncoding")
        if encoding:
            raise UnsupportedMediaType(f"protobuf body with contentEncoding {encoding!r} is not supported")
        msg = message_for(api_version, kind)
        if msg is None:
            raise UnsupportedMediaType(
                f"the body of the request was in an unknown format: protobuf is not supported for kind "
                f"{kind or '<empty>'!r} ({api_version or '<no apiVersion>'}) - accepted media types include: "
                "application/json, application/yaml"
            )
        obj = _decode(raw, msg)
    except _Truncated:
        raise BadRequest("invalid protobuf body: unexpected end of data") from None
    return {"apiVersion": api_version, "kind": kind, "metadata": obj.pop("metadata", {}), **obj}
