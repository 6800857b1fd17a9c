"""Structured-merge-diff merge and prune, the value side of server-side apply.

``merge`` puts an applied configuration into the live object: maps merge, ``map`` lists merge by
key (live order, new items before the next shared one), ``set`` lists union, everything else
(scalars, atomic maps and lists) is replaced. ``prune`` then removes what the manager applied
last time, no longer applies, and nobody else owns. Both are pure and copy only along the paths
they change: untouched subtrees of ``live`` are shared, never mutated.
"""

from __future__ import annotations

from typing import Any

import orjson

from atoll.apiserver.patch.fieldsets import DOT, FieldSet, FieldType, index_items, item_key

JSON = dict[str, Any]
_SKIP: Any = object()


def merge(live: Any, config: Any, t: FieldType) -> Any:
    """``config`` merged into ``live``; new containers along merged paths, ``live`` untouched."""
    if isinstance(config, dict) and not t.atomic:
        out: JSON = dict(live) if isinstance(live, dict) else {}
        for key, value in config.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(out.get(key), value, t.child(key))
        return out
    if isinstance(config, list) and isinstance(live, list) and t.list_type != "atomic":
        return _merge_list(live, config, t)
    return orjson.loads(orjson.dumps(config)) if isinstance(config, dict | list) else config


def _merge_list(live: list[Any], config: list[Any], t: FieldType) -> list[Any]:
    """Keyed merge: live order, new configured items placed before the next shared item."""
    item_t = t.items()
    lkeys = [item_key(i, t) for i in live]
    cfg = index_items(config, t)
    lset = set(lkeys)
    out: list[Any] = []
    pending = [k for k in cfg if k not in lset]  # configured-only, in config order
    order = list(cfg)
    for key, item in zip(lkeys, live, strict=True):
        if key in cfg:
            pos = order.index(key)
            while pending and order.index(pending[0]) < pos:
                out.append(merge(None, cfg[pending.pop(0)], item_t))
            out.append(item if t.list_type == "set" else merge(item, cfg[key], item_t))
        else:
            out.append(item)
    out.extend(merge(None, cfg[k], item_t) for k in pending)
    return out


def prune(value: Any, last: FieldSet, owned: FieldSet | None, t: FieldType) -> Any:
    """Remove what ``last`` had and nobody owns now; ``_SKIP`` means drop ``value`` itself."""
    if owned is None and DOT in last:
        return _SKIP
    if isinstance(value, dict) and not t.atomic:
        out = value
        for pe, sub in last.items():
            if pe == DOT or not pe.startswith("f:") or pe[2:] not in value:
                continue
            name = pe[2:]
            got = prune(value[name], sub, (owned or {}).get(pe), t.child(name))
            if got is not value[name]:
                out = dict(out) if out is value else out
                if got is _SKIP:
                    del out[name]
                else:
                    out[name] = got
        return out
    if isinstance(value, list) and t.list_type != "atomic":
        item_t = t.items()
        result: list[Any] = []
        dirty = False
        for item in value:
            pe = item_key(item, t)
            sub = last.get(pe)
            got = item if sub is None else prune(item, sub, (owned or {}).get(pe), item_t)
            dirty = dirty or got is not item
            if got is not _SKIP:
                result.append(got)
        return result if dirty else value
    return value
