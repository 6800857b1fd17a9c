"""Kubernetes strategic merge patch (``application/strategic-merge-patch+json``) for built-in kinds.

Lists tagged ``patchStrategy:"merge"`` in the Go types merge element-wise by their
``patchMergeKey`` (``containers`` by ``name``, container ``ports`` by ``containerPort``, …);
``metadata.finalizers`` and ``spec.podCIDRs`` merge as sets of primitives; every other list is
replaced. Directives: ``$patch: replace|delete|merge`` (maps and list elements),
``$setElementOrder/<list>``, ``$retainKeys``, ``$deleteFromPrimitiveList/<list>``. Server-only list
elements keep their relative order, interleaved as ``normalizeElementOrder`` does.

Kinds without a table here (CRDs) are patched as JSON merge patches, which is what kubectl needs
from a server that accepts strategic patches for custom resources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atoll.api.errors import BadRequest
from atoll.apiserver.patch.merge import merge_patch

__all__ = ["KNOWN_KINDS", "strategic_merge_patch"]


@dataclass(frozen=True, slots=True)
class F:
    """Patch metadata of one field: a struct (``sub``) or a merging list (``key``; "" = primitives)."""

    sub: dict[str, F] = field(default_factory=dict)
    merge_list: bool = False
    key: str = ""


def _lst(key: str, sub: dict[str, F] | None = None) -> F:
    return F(sub or {}, True, key)


_META = {"metadata": F({"finalizers": _lst(""), "ownerReferences": _lst("uid")})}
_CONDITIONS = {"conditions": _lst("type")}
_CONTAINER = {"ports": _lst("containerPort"), "env": _lst("name"), "volumeMounts": _lst("mountPath"),
              "volumeDevices": _lst("devicePath")}
_POD_SPEC = {
    "volumes": _lst("name"), "initContainers": _lst("name", _CONTAINER),
    "containers": _lst("name", _CONTAINER),
    "ephemeralContainers": _lst("name", _CONTAINER), "imagePullSecrets": _lst("name"),
    "hostAliases": _lst("ip"), "topologySpreadConstraints": _lst("topologyKey"),
    "schedulingGates": _lst("name"), "resourceClaims": _lst("name"),
}
_CONTAINER_STATUS = {"volumeMounts": _lst("mountPath"), "allocatedResourcesStatus": _lst("name")}
_POD_STATUS = {
    "conditions": _lst("type"), "podIPs": _lst("ip"), "hostIPs": _lst("ip"),
    "resourceClaimStatuses": _lst("name"),
    # containerStatuses are atomic lists; their elements' own merge lists matter only within them.
}
_TEMPLATE = F({**_META, "spec": F(_POD_SPEC)})
_WORKLOAD = {**_META, "spec": F({"template": _TEMPLATE}), "status": F(_CONDITIONS)}

_SCHEMAS: dict[str, dict[str, F]] = {
    "Pod": {**_META, "spec": F(_POD_SPEC), "status": F(_POD_STATUS)},
    "PodTemplate": {**_META, "template": _TEMPLATE},
    "Service": {**_META, "spec": F({"ports": _lst("port")}), "status": F(_CONDITIONS)},
    "ServiceAccount": {**_META, "secrets": _lst("name")},
    "Node": {**_META, "spec": F({"podCIDRs": _lst("")}),
             "status": F({"conditions": _lst("type"), "addresses": _lst("type")})},
    "Namespace": {**_META, "status": F(_CONDITIONS)},
    "ReplicationController": {**_META, "spec": F({"template": _TEMPLATE}), "status": F(_CONDITIONS)},
    "PersistentVolumeClaim": {**_META, "status": F(_CONDITIONS)},
    "Deployment": _WORKLOAD, "ReplicaSet": _WORKLOAD, "StatefulSet": _WORKLOAD, "DaemonSet": _WORKLOAD,
    "Job": _WORKLOAD,
    "CronJob": {**_META, "spec": F({"jobTemplate": F({**_META, "spec": F({"template": _TEMPLATE})})})},
}
for _kind in ("ConfigMap", "Secret", "Endpoints", "Event", "ResourceQuota", "LimitRange", "Lease",
              "CustomResourceDefinition", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
              "PersistentVolume", "PriorityClass", "StorageClass"):
    _SCHEMAS[_kind] = _META
KNOWN_KINDS = frozenset(_SCHEMAS)

_EMPTY: dict[str, F] = {}


def strategic_merge_patch(target: dict[str, Any], patch: dict[str, Any], kind: str) -> dict[str, Any]:
    """Apply a strategic merge patch for a built-in ``kind``; other kinds get RFC 7386 semantics."""
    if not isinstance(patch, dict):
        raise BadRequest("strategic merge patch: the patch must be a JSON object")
    schema = _SCHEMAS.get(kind)
    if schema is None:
        result = merge_patch(target, patch)
        return result if isinstance(result, dict) else {}
    merged: dict[str, Any] = _merge_map(target if isinstance(target, dict) else {}, patch, schema)
    return merged


def _is_directive(key: str) -> bool:
    return key.startswith("$")


def _merge_map(orig: dict[str, Any] | None, patch: dict[str, Any], schema: dict[str, F]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "delete":  # as handleDirectiveInMergeMap: the map becomes empty
        return {}
    if directive == "replace":
        return _merge_map(None, {k: v for k, v in patch.items() if k != "$patch"}, schema)
    if directive not in (None, "merge"):
        raise BadRequest(f"strategic merge patch: unknown patch type: {directive!r} in map")
    result: dict[str, Any] = dict(orig) if orig else {}
    retain = patch.get("$retainKeys")
    if retain is not None:
        if not isinstance(retain, list):
            raise BadRequest("strategic merge patch: $retainKeys must be a list of field names")
        keep = set(retain)
        for k, v in patch.items():
            if v is not None and not _is_directive(k) and k not in keep:
                raise BadRequest(f"strategic merge patch: {k!r} is in the patch but not in $retainKeys")
        result = {k: v for k, v in result.items() if k in keep}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if not _is_directive(key):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            fld = key[len("$deleteFromPrimitiveList/"):]
            if not isinstance(value, list):
                raise BadRequest(f"strategic merge patch: {key} must be a list")
            cur = result.get(fld)
            if isinstance(cur, list):
                result[fld] = [x for x in cur if x not in value]
        elif key.startswith("$setElementOrder/"):
            if not isinstance(value, list):
                raise BadRequest(f"strategic merge patch: {key} must be a list")
            orders[key[len("$setElementOrder/"):]] = value
    for key, pv in patch.items():
        if _is_directive(key):
            continue
        if pv is None:
            result.pop(key, None)
            continue
        meta = schema.get(key)
        ov = result.get(key)
        if isinstance(pv, dict):
            result[key] = _merge_map(ov if isinstance(ov, dict) else None, pv, meta.sub if meta else _EMPTY)
        elif isinstance(pv, list) and meta is not None and meta.merge_list:
            result[key] = _merge_list(ov if isinstance(ov, list) else [], pv, meta, orders.get(key), key)
        elif isinstance(pv, list):
            result[key] = _fresh_list(pv, meta.sub if meta else _EMPTY)
        else:
            result[key] = pv
    for fld, order in orders.items():
        meta = schema.get(fld)
        cur = result.get(fld)
        if fld not in patch and isinstance(cur, list) and meta is not None and meta.merge_list:
            result[fld] = _merge_list(cur, [], meta, order, fld)
    return result


def _fresh_list(values: list[Any], sub: dict[str, F]) -> list[Any]:
    """A replaced list: copied, with directives stripped from its maps."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, dict):
            out.append(_merge_map(None, v, sub))
        elif isinstance(v, list):
            out.append(_fresh_list(v, _EMPTY))
        else:
            out.append(v)
    return out


def _ident(value: Any, key: str) -> Any:
    if key:
        return value.get(key) if isinstance(value, dict) else None
    return value if not isinstance(value, dict | list) else repr(value)


def _merge_list(orig: list[Any], patch: list[Any], meta: F, order: list[Any] | None, name: str) -> list[Any]:
    key = meta.key
    if not key:  # a set of primitives
        merged: list[Any] = []
        seen: set[Any] = set()
        for v in [*orig, *patch]:
            ident = _ident(v, "")
            if ident not in seen:
                seen.add(ident)
                merged.append(v)
        patch_ids = {_ident(v, "") for v in patch}
        base = orig
    else:
        for pe in patch:
            if isinstance(pe, dict) and pe.get("$patch") == "replace":
                return _fresh_list([e for e in patch if not (isinstance(e, dict) and "$patch" in e
                                                             and e.get("$patch") == "replace")], meta.sub)
        deleted = set()
        rest: list[dict[str, Any]] = []
        for pe in patch:
            if not isinstance(pe, dict):
                raise BadRequest(f"strategic merge patch: {name}: expected a map in the list, got {pe!r}")
            d = pe.get("$patch")
            if d == "delete":
                if key not in pe:
                    raise BadRequest(
                        f"strategic merge patch: map: {pe} does not contain declared merge key: {key}"
                    )
                deleted.add(_ident(pe, key))
                continue
            if d is not None:
                raise BadRequest(f"strategic merge patch: {name}: unsupported list element directive {d!r}")
            if key not in pe:
                raise BadRequest(
                    f"strategic merge patch: map: {pe} does not contain declared merge key: {key}"
                )
            rest.append(pe)
        merged = [e for e in orig if _ident(e, key) not in deleted] if deleted else list(orig)
        base = list(merged)
        index: dict[Any, int] = {}
        for i, e in enumerate(merged):
            index.setdefault(_ident(e, key), i)
        for pe in rest:
            ident = pe[key]
            i = index.get(ident, -1)
            if i >= 0:
                m = _merge_map(merged[i] if isinstance(merged[i], dict) else None, pe, meta.sub)
                merged[i] = m
            else:
                m = _merge_map(None, pe, meta.sub)
                index[ident] = len(merged)
                merged.append(m)
        patch_ids = {_ident(pe, key) for pe in rest}
    if order is not None:  # with $setElementOrder, the listed elements are the "patch" side
        patch_ids = {_ident(v, key) for v in order}
    patch_items = [e for e in merged if _ident(e, key) in patch_ids]
    server_only = [e for e in merged if _ident(e, key) not in patch_ids]
    # The "server order" Go ends up using: the live list minus deletions for a plain merge (so new
    # elements come first, as with the real server), and - through slice aliasing in
    # mergePatchIntoOriginal - the merged list when $setElementOrder is given.
    if order is not None:
        return _normalize(patch_items, server_only, order, merged, key)
    return _normalize(patch_items, server_only, patch, base, key)


def _positions(values: list[Any], key: str) -> dict[Any, int]:
    pos: dict[Any, int] = {}
    for i, v in enumerate(values):
        pos.setdefault(_ident(v, key), i)
    return pos


def _normalize(patch_items: list[Any], server_only: list[Any], patch_order: list[Any],
               server_order: list[Any], key: str) -> list[Any]:
    """``normalizeElementOrder``: patch items in patch order, server-only items interleaved."""
    p_pos = _positions(patch_order, key)
    s_pos = _positions(server_order, key)
    big = len(patch_order) + len(server_order) + 1
    left = sorted(server_only, key=lambda e: s_pos.get(_ident(e, key), big))
    right = sorted(patch_items, key=lambda e: p_pos.get(_ident(e, key), big))
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = s_pos.get(_ident(left[i], key), -1)
            ri = s_pos.get(_ident(right[j], key), -1)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out
