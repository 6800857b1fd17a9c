"""Decode ``application/vnd.kubernetes.protobuf`` request bodies into the JSON kubectl would send.

Typed kubectl commands (``create ns|configmap|secret|quota|sa|role|rolebinding|token|service``,
``auth can-i|whoami``) POST protobuf. The body is the magic ``k8s\\0`` followed by a ``runtime.Unknown``
(1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType) whose ``raw`` is the
object's message. Field numbers follow the ``generated.proto`` files of k8s.io/api and
k8s.io/apimachinery. Zero values are dropped as Go's ``omitempty`` would, except for pointer
fields (``immutable``, ``automountServiceAccountToken``, ``expirationSeconds``, …) whose presence
is meaningful. Unknown fields are skipped; an unknown kind is ``UnsupportedMediaType``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from atoll.api.errors import BadRequest, UnsupportedMediaType

__all__ = ["MAGIC", "SUPPORTED_KINDS", "decode_k8s_protobuf"]

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


def _s(name: str) -> Fld:
    return Fld(name, "string")


def _rs(name: str) -> Fld:
    return Fld(name, "string", repeated=True)


def _m(name: str, sub: Msg, *, repeated: bool = False) -> Fld:
    return Fld(name, "msg", sub, repeated)


def _rm(name: str, sub: Msg) -> Fld:
    return Fld(name, "msg", sub, True)


def _opt(name: str, kind: str) -> Fld:
    """A pointer field (``*bool``, ``*int64``): kept even when zero."""
    return Fld(name, kind, keep_zero=True)


_OWNER: Msg = {1: _s("kind"), 5: _s("apiVersion"), 3: _s("name"), 4: _s("uid"),
               6: _opt("controller", "bool"), 7: _opt("blockOwnerDeletion", "bool")}
_META: Msg = {
    1: _s("name"), 2: _s("generateName"), 3: _s("namespace"), 4: _s("selfLink"), 5: _s("uid"),
    6: _s("resourceVersion"), 7: Fld("generation", "int"), 8: Fld("creationTimestamp", "time"),
    9: Fld("deletionTimestamp", "time"), 10: _opt("deletionGracePeriodSeconds", "int"),
    11: Fld("labels", "map_ss"), 12: Fld("annotations", "map_ss"),
    13: _m("ownerReferences", _OWNER, repeated=True), 14: _rs("finalizers"),
}
_OBJREF: Msg = {1: _s("kind"), 2: _s("namespace"), 3: _s("name"), 4: _s("uid"), 5: _s("apiVersion"),
                6: _s("resourceVersion"), 7: _s("fieldPath")}
_SELECTOR_REQ: Msg = {1: _s("key"), 2: _s("operator"), 3: _rs("values")}
_LABEL_SELECTOR: Msg = {1: Fld("matchLabels", "map_ss"), 2: _rm("matchExpressions", _SELECTOR_REQ)}
_POLICY_RULE: Msg = {1: _rs("verbs"), 2: _rs("apiGroups"), 3: _rs("resources"), 4: _rs("resourceNames"),
                     5: _rs("nonResourceURLs")}
_SUBJECT: Msg = {1: _s("kind"), 2: _s("apiGroup"), 3: _s("name"), 4: _s("namespace")}
_ROLE_REF: Msg = {1: _s("apiGroup"), 2: _s("kind"), 3: _s("name")}
_BINDING: Msg = {1: _m("metadata", _META), 2: _rm("subjects", _SUBJECT), 3: _m("roleRef", _ROLE_REF)}
_ATTR_SELECTOR: Msg = {1: _s("rawSelector"), 2: _m("requirements", _SELECTOR_REQ, repeated=True)}
_RESOURCE_ATTRS: Msg = {1: _s("namespace"), 2: _s("verb"), 3: _s("group"), 4: _s("version"),
                        5: _s("resource"), 6: _s("subresource"), 7: _s("name"),
                        8: _m("fieldSelector", _ATTR_SELECTOR), 9: _m("labelSelector", _ATTR_SELECTOR)}
_QUOTA_SPEC: Msg = {
    1: Fld("hard", "map_sq"), 2: _rs("scopes"),
    3: _m("scopeSelector", {1: _rm("matchExpressions", {1: _s("scopeName"), 2: _s("operator"),
                                                         3: _rs("values")})}),
}
_SERVICE_PORT: Msg = {1: _s("name"), 2: _s("protocol"), 6: _opt("appProtocol", "string"), 3: Fld("port", "int"),
                      4: Fld("targetPort", "intorstr"), 5: Fld("nodePort", "int")}
_SERVICE_SPEC: Msg = {  # ``kubectl create service clusterip|nodeport|loadbalancer|externalname``
    4: _s("type"), 1: _rm("ports", _SERVICE_PORT), 2: Fld("selector", "map_ss"), 3: _s("clusterIP"),
    18: _rs("clusterIPs"), 5: _rs("externalIPs"), 7: _s("sessionAffinity"), 8: _s("loadBalancerIP"),
    9: _rs("loadBalancerSourceRanges"), 10: _s("externalName"), 11: _s("externalTrafficPolicy"),
    12: Fld("healthCheckNodePort", "int"), 13: Fld("publishNotReadyAddresses", "bool"), 17: _rs("ipFamilies"),
    19: _opt("ipFamilyPolicy", "string"), 20: _opt("allocateLoadBalancerNodePorts", "bool"),
    21: _opt("loadBalancerClass", "string"), 22: _opt("internalTrafficPolicy", "string"),
}

_DELETE_OPTIONS: Msg = {  # ``kubectl drain`` (evictions, deletes)
    1: _opt("gracePeriodSeconds", "int"), 2: _m("preconditions", {1: _opt("uid", "string"),
                                                                   2: _opt("resourceVersion", "string")}),
    3: _opt("orphanDependents", "bool"), 4: _opt("propagationPolicy", "string"), 5: _rs("dryRun"),
    6: _opt("ignoreStoreReadErrorWithClusterBreakingPotential", "bool"),
}

_KINDS: dict[str, Msg] = {
    "DeleteOptions": _DELETE_OPTIONS,
    "Eviction": {1: _m("metadata", _META), 2: _m("deleteOptions", _DELETE_OPTIONS)},
    "Namespace": {
        1: _m("metadata", _META), 2: _m("spec", {1: _rs("finalizers")}),
        3: _m("status", {1: _s("phase"), 2: _m("conditions", {
            1: _s("type"), 2: _s("status"), 4: Fld("lastTransitionTime", "time"), 5: _s("reason"),
            6: _s("message")}, repeated=True)}),
    },
    "ConfigMap": {1: _m("metadata", _META), 2: Fld("data", "map_ss"), 3: Fld("binaryData", "map_sb"),
                  4: _opt("immutable", "bool")},
    "Secret": {1: _m("metadata", _META), 2: Fld("data", "map_sb"), 4: Fld("stringData", "map_ss"),
               3: _s("type"), 5: _opt("immutable", "bool")},
    "ServiceAccount": {1: _m("metadata", _META), 2: _m("secrets", _OBJREF, repeated=True),
                       3: _m("imagePullSecrets", {1: _s("name")}, repeated=True),
                       4: _opt("automountServiceAccountToken", "bool")},
    "ResourceQuota": {1: _m("metadata", _META), 2: _m("spec", _QUOTA_SPEC),
                      3: _m("status", {1: Fld("hard", "map_sq"), 2: Fld("used", "map_sq")})},
    "Service": {1: _m("metadata", _META), 2: _m("spec", _SERVICE_SPEC)},
    "Role": {1: _m("metadata", _META), 2: _m("rules", _POLICY_RULE, repeated=True)},
    "ClusterRole": {1: _m("metadata", _META), 2: _m("rules", _POLICY_RULE, repeated=True),
                    3: _m("aggregationRule", {1: _rm("clusterRoleSelectors", _LABEL_SELECTOR)})},
    "RoleBinding": _BINDING,
    "ClusterRoleBinding": _BINDING,
    "SelfSubjectAccessReview": {
        1: _m("metadata", _META),
        2: _m("spec", {1: _m("resourceAttributes", _RESOURCE_ATTRS),
                       2: _m("nonResourceAttributes", {1: _s("path"), 2: _s("verb")})}),
    },
    "SelfSubjectRulesReview": {1: _m("metadata", _META), 2: _m("spec", {1: _s("namespace")})},
    "SelfSubjectReview": {1: _m("metadata", _META)},  # kubectl auth whoami (1.32): no spec
    "TokenRequest": {
        1: _m("metadata", _META),
        2: _m("spec", {1: _rs("audiences"), 4: _opt("expirationSeconds", "int"),
                       3: _m("boundObjectRef", {1: _s("kind"), 2: _s("apiVersion"), 3: _s("name"),
                                                4: _s("uid")})}),
    },
}
SUPPORTED_KINDS = frozenset(_KINDS)


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
        msg = _KINDS.get(kind)
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
