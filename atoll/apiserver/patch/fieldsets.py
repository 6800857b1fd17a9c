"""Field sets for server-side apply: schema-derived list/map semantics, set algebra, FieldsV1.

A field set is a nested dict keyed by FieldsV1 path elements (``f:spec``, ``k:{"name":"main"}``,
``v:"x"``, ``i:0``). Internally every *member* node carries a ``"."`` key, leaves included
(``{"f:role": {".": {}}}``); ``fields_v1.to_fields_v1`` turns that into the wire form, where a leaf is
``{}`` and ``"."`` appears only on members that also have children. The shape of each path comes
from the schema: ``x-kubernetes-list-type`` (``map`` with ``x-kubernetes-list-map-keys``, ``set``,
``atomic``), or for built-in kinds ``x-kubernetes-patch-strategy: merge`` with a patch merge key;
``x-kubernetes-map-type: atomic`` makes a map a leaf. Fields without a schema are "deduced":
maps are granular, lists atomic, as in structured-merge-diff. The diff of two objects as field
sets is ``diff.changes``.
"""

from __future__ import annotations

from typing import Any

import orjson

from atoll.api import k8s_schemas
from atoll.api.registry import ResourceDef

JSON = dict[str, Any]
FieldSet = dict[str, Any]
DOT = "."
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_KEY_DEFAULTS = {"protocol": "TCP"}  # the one list-map key the Go types default (ports)


class FieldType:
    """The merge semantics of one schema node, resolved lazily."""

    __slots__ = ("_children", "_items", "atomic", "builtin", "key_prefix", "keys", "list_type", "raw")

    def __init__(self, raw: JSON | None, builtin: bool) -> None:
        self.raw = raw or {}
        self.builtin = builtin
        self._children: dict[str, FieldType] = {}
        self._items: FieldType | None = None
        ext = self.raw
        self.atomic = ext.get("x-kubernetes-map-type") == "atomic"
        list_type = ext.get("x-kubernetes-list-type")
        keys: tuple[str, ...] = tuple(ext.get("x-kubernetes-list-map-keys") or ())
        if list_type is None and "merge" in str(ext.get("x-kubernetes-patch-strategy") or "").split(","):
            merge_key = ext.get("x-kubernetes-patch-merge-key")
            list_type, keys = ("map", (merge_key,)) if merge_key else ("set", ())
        if list_type == "map" and not keys:
            list_type = "atomic"
        self.list_type: str = list_type or "atomic"
        self.keys = keys
        # a one-key map list's path element is this prefix, the key's encoding and "}"
        self.key_prefix = "k:{" + _dumps(keys[0]) + ":" if self.list_type == "map" and len(keys) == 1 else ""

    @property
    def struct(self) -> bool:
        """A typed struct (declared properties) rather than a free-form map."""
        return bool(self.raw.get("properties"))

    def child(self, name: str) -> FieldType:
        found = self._children.get(name)
        if found is None:
            props = self.raw.get("properties") or {}
            sub = props.get(name)
            if sub is None:
                extra = self.raw.get("additionalProperties")
                sub = extra if isinstance(extra, dict) else None
            found = self._children[name] = resolve(sub, self.builtin)
        return found

    def items(self) -> FieldType:
        if self._items is None:
            sub = self.raw.get("items")
            self._items = resolve(sub if isinstance(sub, dict) else None, self.builtin)
        return self._items


_UNTYPED = FieldType(None, False)
_RESOLVED: dict[int, tuple[JSON, FieldType]] = {}


def resolve(schema: JSON | None, builtin: bool) -> FieldType:
    """The ``FieldType`` of a schema node (``$ref`` and single ``allOf`` followed), cached."""
    if not schema:
        return _UNTYPED
    hit = _RESOLVED.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    node = schema
    target = node.get("$ref") or (node.get("allOf") or [{}])[0].get("$ref")
    if isinstance(target, str):
        ref = k8s_schemas.definitions().get(target.rsplit("/", 1)[-1]) or {}
        node = {**ref, **{k: v for k, v in node.items() if k.startswith("x-kubernetes-")}}
    result = FieldType(node, builtin)
    if len(_RESOLVED) > 4096:
        _RESOLVED.clear()
    _RESOLVED[id(schema)] = (schema, result)
    return result


_ROOTS: dict[tuple[str, str, str, int], tuple[Any, FieldType]] = {}


def root_type(rd: ResourceDef) -> FieldType:
    """The type of a whole object of ``rd``: k8s_schemas for built-ins, the CRD schema for CRs."""
    key = (rd.group, rd.version, rd.kind, id(rd.schema))
    hit = _ROOTS.get(key)
    if hit is not None and hit[0] is rd.schema:
        return hit[1]
    meta = k8s_schemas.definitions().get(_OBJECT_META)
    if rd.builtin:
        name = k8s_schemas.schema_name_for(rd.group, rd.version, rd.kind)
        raw = dict(k8s_schemas.definitions().get(name or "") or {})
    else:
        raw = dict(rd.schema or {})
    props = dict(raw.get("properties") or {})
    if meta:
        props["metadata"] = meta
    raw["properties"] = props
    result = FieldType(raw, rd.builtin)
    _ROOTS[key] = (rd.schema, result)
    return result


# ---- path elements -------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


_ENCODED: dict[str, str] = {}  # JSON form of the strings that key one-key map lists (bounded)


def item_key(item: Any, t: FieldType) -> str:
    """The path element of one element of a ``map`` or ``set`` list."""
    if t.list_type == "set" or not isinstance(item, dict):
        return "v:" + _dumps(item)
    if t.key_prefix:
        name = t.keys[0]
        if name in item:
            value = item[name]
            if type(value) is str:  # condition types, container names: a few, seen again and again
                encoded = _ENCODED.get(value)
                if encoded is None:
                    if len(_ENCODED) >= 4096:
                        _ENCODED.clear()
                    encoded = _ENCODED[value] = _dumps(value)
                return t.key_prefix + encoded + "}"
            return t.key_prefix + _dumps(value) + "}"
    key: JSON = {}
    for name in t.keys:
        if name in item:
            key[name] = item[name]
        elif name in _KEY_DEFAULTS:
            key[name] = _KEY_DEFAULTS[name]
    return "k:" + _dumps(key)


def index_items(items: list[Any], t: FieldType) -> dict[str, Any]:
    """Elements of a keyed list by path element (the last duplicate wins)."""
    return {item_key(item, t): item for item in items}


def path_string(path: list[str]) -> str:
    """``.spec.containers[name="main"].image`` from path elements, as structured-merge-diff prints."""
    out = []
    for pe in path:
        kind, text = pe[:2], pe[2:]
        if kind == "f:":
            out.append("." + text)
        elif kind == "k:":
            fields = orjson.loads(text)
            out.append("[" + ",".join(f"{k}={_go_value(v)}" for k, v in sorted(fields.items())) + "]")
        elif kind == "v:":
            out.append(f"[={_go_value(orjson.loads(text))}]")
        else:
            out.append(f"[{text}]")
    return "".join(out)


def _go_value(value: Any) -> str:
    return _dumps(value) if isinstance(value, str | dict | list) else str(value).lower() if isinstance(
        value, bool) else str(value)


# ---- set algebra (internal form: members carry ".") ----------------------------------------


def union(a: FieldSet, b: FieldSet) -> FieldSet:
    if not a:
        return b
    if not b:
        return a
    out = dict(a)
    for key, sub in b.items():
        mine = out.get(key)
        out[key] = sub if mine is None else (sub if key == DOT else union(mine, sub))
    return out


def difference(a: FieldSet, b: FieldSet) -> FieldSet:
    if not b:
        return a
    out: FieldSet = {}
    for key, sub in a.items():
        other = b.get(key)
        if other is None:
            out[key] = sub
        elif key != DOT:
            rest = difference(sub, other)
            if rest:
                out[key] = rest
    return out


def intersection(a: FieldSet, b: FieldSet) -> FieldSet:
    out: FieldSet = {}
    for key, sub in a.items():
        other = b.get(key)
        if other is None:
            continue
        if key == DOT:
            out[key] = sub
        else:
            both = intersection(sub, other)
            if both:
                out[key] = both
    return out


def members(s: FieldSet, prefix: list[str] | None = None) -> list[list[str]]:
    """Member paths, members of a level before its children, each level in sorted order."""
    prefix = prefix or []
    out = [[*prefix, k] for k in sorted(s, key=order_key) if k != DOT and DOT in s[k]]
    for key in sorted(s, key=order_key):
        if key != DOT:
            out.extend(members(s[key], [*prefix, key]))
    return out


def order_key(pe: str) -> tuple[int, str]:
    """FieldsV1 order: fields, then keys, values and indexes, each sorted."""
    return ("f:k:v:i:".find(pe[:2]), pe)


def strip(s: FieldSet, drop: tuple[str, ...], keep_only: str = "") -> FieldSet:
    """``s`` without server-owned paths: top-level ``drop`` keys, metadata identity fields."""
    if not s:
        return s
    kept = {k: v for k, v in s.items() if k not in drop and k != DOT and (not keep_only or k == keep_only)}
    return strip_identity(kept)


def strip_identity(s: FieldSet) -> FieldSet:
    """``s`` (changed in place) without the metadata identity fields no manager owns."""
    meta = s.get("f:metadata")
    if meta is not None:
        meta = {k: v for k, v in meta.items() if k not in STRIPPED_META}
        if meta:
            s["f:metadata"] = meta
        else:
            del s["f:metadata"]
    return s


STRIPPED_META = frozenset({DOT, "f:name", "f:namespace", "f:creationTimestamp", "f:selfLink", "f:uid",
                            "f:clusterName", "f:generation", "f:managedFields", "f:resourceVersion"})


# ---- sets from values --------------------------------------------------------------------


def to_set(value: Any, t: FieldType) -> FieldSet:
    """The fields an applied configuration sets (structured-merge-diff ``ToFieldSet``)."""
    out: FieldSet = {}
    if isinstance(value, dict):
        for key, sub in value.items():
            out["f:" + key] = _value_set(sub, t.child(key))
    return out


def _value_set(value: Any, t: FieldType) -> FieldSet:
    if isinstance(value, dict) and value and not t.atomic:
        return to_set(value, t)
    if isinstance(value, list) and value and t.list_type != "atomic":
        out: FieldSet = {}
        item_t = t.items()
        for key, item in index_items(value, t).items():
            out[key] = {DOT: {}, **to_set(item, item_t)} if t.list_type == "map" else {DOT: {}}
        return out
    return {DOT: {}}
