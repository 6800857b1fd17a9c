"""Server-side apply and ``metadata.managedFields`` bookkeeping.

``record_update`` runs on every non-apply write: the fields that changed move to the writer's
``Update`` entry (other managers lose them, removed fields leave every set). ``apply`` merges an
applied configuration into the live object by structured-merge-diff rules (maps merge, ``map``
lists merge by key, ``set`` lists union, everything else is replaced), drops fields the manager
applied before but no longer applies (unless someone else owns them), and refuses changes to
fields other managers own with a 409 ``FieldManagerConflict`` unless forced. As in the real
server, the ``kubectl`` manager may take over fields a client-side apply recorded in the
``last-applied-configuration`` annotation when they still match, and its applies keep that
annotation up to date.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson

from atoll.api import errors, timestamps
from atoll.api.registry import ResourceDef
from atoll.apiserver.patch.diff import changes
from atoll.apiserver.patch.fields_v1 import created_fields_v1, from_fields_v1, to_fields_v1, update_fields_v1
from atoll.apiserver.patch.fieldsets import (
    DOT,
    STRIPPED_META,
    FieldSet,
    FieldType,
    difference,
    index_items,
    intersection,
    item_key,
    members,
    path_string,
    root_type,
    strip,
    to_set,
    union,
)

JSON = dict[str, Any]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_MANAGER_LENGTH = 128
_SKIP: Any = object()


@dataclass(slots=True)
class Entry:
    """One ``managedFields`` entry, its field set in internal form."""

    manager: str
    operation: str
    api_version: str
    time: str
    fields: FieldSet
    subresource: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.manager, self.operation, "" if self.operation == "Apply" else self.api_version,
                self.subresource)

    def describe(self) -> str:
        """How conflicts name this manager: ``"kubectl-edit" using v1``."""
        text = orjson.dumps(self.manager).decode()
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        return f"{text} using {self.api_version}" if self.operation == "Update" else text

    def encode(self, wire: JSON | None = None) -> JSON:
        """The wire entry; ``wire``: its ``fieldsV1`` when already built (else from ``fields``)."""
        out: JSON = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version,
                     "time": self.time, "fieldsType": "FieldsV1",
                     "fieldsV1": to_fields_v1(self.fields) if wire is None else wire}
        if self.subresource:
            out["subresource"] = self.subresource
        return out


@functools.lru_cache(maxsize=256)  # a handful of clients send the same User-Agent on every write
def manager_from_user_agent(user_agent: str) -> str:
    """The real server's default manager: the User-Agent up to its first ``/``, printable only."""
    prefix = user_agent.split("/", 1)[0]
    return "".join(c for c in prefix if c.isprintable())[:MAX_MANAGER_LENGTH]


def validate_apply_query(field_manager: str, force: str | None) -> None:
    """422 like ``ValidatePatchOptions``: an apply patch needs ``fieldManager``."""
    causes = []
    if not field_manager:
        causes.append(errors.cause("FieldValueRequired", "fieldManager", "Required value: is required for apply patch"))
    elif len(field_manager) > MAX_MANAGER_LENGTH:
        causes.append(errors.cause("FieldValueTooLong", "fieldManager",
                                 f"Too long: may not be more than {MAX_MANAGER_LENGTH} bytes"))
    if force not in (None, "", "true", "false", "True", "False", "1", "0"):
        raise errors.BadRequest(f'invalid value for "force": {force!r}')
    if causes:
        raise errors.invalid("PatchOptions", "meta.k8s.io", "", causes)


def decode(managed: Any) -> list[Entry]:
    """Entries of a ``metadata.managedFields`` value (malformed entries are skipped)."""
    out = []
    for raw in managed if isinstance(managed, list) else []:
        if not isinstance(raw, dict) or not raw.get("manager") or raw.get("operation") not in ("Apply", "Update"):
            continue
        out.append(Entry(str(raw["manager"]), raw["operation"], str(raw.get("apiVersion") or ""),
                         str(raw.get("time") or ""), from_fields_v1(raw.get("fieldsV1")),
                         str(raw.get("subresource") or "")))
    return out


def _store(obj: JSON, entries: list[Entry]) -> None:
    kept = [e for e in entries if e.fields]
    kept.sort(key=lambda e: (e.operation, e.time, e.manager, e.api_version, e.subresource))
    md = obj["metadata"]
    if kept:
        md["managedFields"] = [e.encode() for e in kept]
    else:
        md.pop("managedFields", None)


def _scope(rd: ResourceDef, subresource: str, s: FieldSet) -> FieldSet:
    """Drop what a write to this (sub)resource does not own: identity metadata, reset fields."""
    if subresource == "status":
        return strip(s, (), keep_only="f:status")
    return strip(s, ("f:apiVersion", "f:kind", "f:status") if rd.has_status else ("f:apiVersion", "f:kind"))


_UNTRACKED_META = frozenset(k.removeprefix("f:") for k in STRIPPED_META)


def _tracked(rd: ResourceDef, subresource: str, obj: JSON | None) -> JSON | None:
    """The part of ``obj`` whose changes a write by this (sub)resource can own (a shallow view):
    what ``_scope`` would strip from the diff is not compared at all, so the managedFields list
    itself, identity metadata and (for the main resource) status cost nothing."""
    if obj is None:
        return None
    if subresource == "status":
        return {"status": obj["status"]} if "status" in obj else {}
    drop = ("apiVersion", "kind", "status") if rd.has_status else ("apiVersion", "kind")
    view = {k: v for k, v in obj.items() if k not in drop}
    md = view.get("metadata")
    if isinstance(md, dict):
        view["metadata"] = {k: v for k, v in md.items() if k not in _UNTRACKED_META}
    return view


def record_update(rd: ResourceDef, old: JSON | None, new: JSON, manager: str, subresource: str = "") -> None:
    """Set ``new.metadata.managedFields`` after an ``Update`` (create, put, patch) by ``manager``.

    Incremental: when the writer sent no managedFields (or sent back the stored ones unchanged),
    entries of other managers whose fields the write does not touch keep their stored wire form
    (no decode/encode); only the writer's entry and the touched ones are rebuilt.
    """
    md = new["metadata"]
    sent = md.get("managedFields")
    if old is None and not sent and not subresource:  # a create: its set built in wire form, one walk
        wire = created_fields_v1(_tracked(rd, "", new) or {}, root_type(rd))
        if wire:
            md["managedFields"] = [Entry(manager or "unknown", "Update", rd.api_version, timestamps.now_time(),
                                         {}).encode(wire)]
        else:
            md.pop("managedFields", None)
        return
    stored = old["metadata"].get("managedFields") if old else None
    changed, removed = changes(_tracked(rd, subresource, old), _tracked(rd, subresource, new), root_type(rd))
    changed, removed = _scope(rd, subresource, changed), _scope(rd, subresource, removed)
    me = Entry(manager or "unknown", "Update", rd.api_version, "", {}, subresource)
    if (not sent or sent is stored or sent == stored) and isinstance(stored, list):
        _record_incremental(md, stored, me, changed, removed)
        return
    provided = decode(sent)
    entries = provided or decode(stored)
    out = []
    for entry in entries:
        if entry.key == me.key:
            me = entry
            continue
        entry.fields = difference(difference(entry.fields, changed), removed)
        out.append(entry)
    me.fields = union(difference(me.fields, removed), changed)
    if changed:
        me.time = timestamps.now_time()
    out.append(me)
    _store(new, out)


def _record_incremental(md: JSON, stored: list[Any], me: Entry, changed: FieldSet, removed: FieldSet) -> None:
    """``record_update`` over stored (already normalised) entries, rebuilding only touched ones:
    the writer's own entry is updated in its wire form (``update_fields_v1``), other managers'
    entries are decoded only when the write takes or removes some of their fields."""
    live = decode_raw(stored)
    if not changed and not removed:
        if live:
            md["managedFields"] = live  # nothing moved: the stored entries stand as they are
        else:
            md.pop("managedFields", None)
        return
    out: list[JSON] = []
    mine: JSON | None = None
    for raw in live:
        version = "" if raw["operation"] == "Apply" else str(raw.get("apiVersion") or "")
        key = (str(raw["manager"]), raw["operation"], version, str(raw.get("subresource") or ""))
        if key == me.key:
            mine = raw
        elif _overlaps_wire(raw.get("fieldsV1"), changed) or _overlaps_wire(raw.get("fieldsV1"), removed):
            entry = decode([raw])[0]
            entry.fields = difference(difference(entry.fields, changed), removed)
            if entry.fields:
                out.append(entry.encode())
        else:
            out.append(raw)
    if mine is not None:
        me = Entry(str(mine["manager"]), mine["operation"], str(mine.get("apiVersion") or ""),
                   str(mine.get("time") or ""), {}, str(mine.get("subresource") or ""))
        wire = update_fields_v1(mine.get("fieldsV1"), changed, removed)
    else:
        wire = to_fields_v1(changed)
    if changed:
        me.time = timestamps.now_time()
    if wire:
        out.append(me.encode(wire))
    out.sort(key=_wire_order)
    if out:
        md["managedFields"] = out
    else:
        md.pop("managedFields", None)


def decode_raw(managed: list[Any]) -> list[JSON]:
    """The well-formed, non-empty stored entries (the ones ``decode`` + ``_store`` would keep)."""
    return [raw for raw in managed
            if isinstance(raw, dict) and raw.get("manager") and raw.get("operation") in ("Apply", "Update")
            and _nonempty_wire(raw.get("fieldsV1"))]


def _nonempty_wire(fields: Any) -> bool:
    """Whether ``from_fields_v1(fields)`` is non-empty, without building it."""
    return isinstance(fields, dict) and any(k != DOT and isinstance(v, dict) for k, v in fields.items())


def _wire_order(raw: JSON) -> tuple[str, str, str, str, str]:
    return (raw["operation"], str(raw.get("time") or ""), str(raw["manager"]), str(raw.get("apiVersion") or ""),
            str(raw.get("subresource") or ""))


def _overlaps_wire(wire: Any, s: FieldSet) -> bool:
    """Whether a FieldsV1 (wire form) set shares a member with an internal-form set."""
    if not isinstance(wire, dict) or not s:
        return False
    for key, sub in s.items():
        if key == DOT:
            continue
        w = wire.get(key)
        if not isinstance(w, dict):
            continue
        if DOT in sub and (not w or DOT in w):
            return True
        if w and _overlaps_wire(w, sub):
            return True
    return False


# ---- apply --------------------------------------------------------------------------------


def apply(rd: ResourceDef, live: JSON | None, config: JSON, manager: str, *, force: bool,
          subresource: str = "") -> JSON:
    """The object after ``manager`` applies ``config`` to ``live`` (None: create), with managedFields."""
    md = config.get("metadata")
    if not isinstance(md, dict):
        md = {}
    if md.get("managedFields") is not None:
        raise errors.BadRequest("metadata.managedFields must be nil")
    t = root_type(rd)
    applied = _scope(rd, subresource, to_set(config, t))
    me = Entry(manager, "Apply", rd.api_version, timestamps.now_time(), applied, subresource)
    if live is None:
        new: JSON = _merge(None, config, t)
        new.setdefault("metadata", {})
        _store(new, [me])
        return new
    entries = decode(live["metadata"].get("managedFields"))
    last = next((e for e in entries if e.key == me.key), None)
    others = [e for e in entries if e.key != me.key]
    merged: JSON = _merge(live, config, t)
    if last is not None:
        owned = applied
        for entry in others:
            owned = union(owned, entry.fields)
        pruned = _prune(merged, last.fields, owned, t)
        merged = pruned if isinstance(pruned, dict) else merged
    merged["metadata"] = {**merged.get("metadata", {})}
    changed, removed = changes(live, merged, t)
    changed, removed = _scope(rd, subresource, changed), _scope(rd, subresource, removed)
    conflicts = [(e, intersection(e.fields, changed)) for e in others]
    conflicts = [(e, c) for e, c in conflicts if c]
    if conflicts and not force and not _allowed_by_last_applied(live, manager, conflicts, t):
        raise conflict_error(conflicts)
    for entry in others:
        entry.fields = difference(difference(entry.fields, changed), removed)
    if last is not None and not changed and not removed and last.fields == applied:
        me.time = last.time
    _store(merged, [*others, me])
    if manager == "kubectl" and LAST_APPLIED in (live["metadata"].get("annotations") or {}):
        annotations = dict(merged["metadata"].get("annotations") or {})
        annotations[LAST_APPLIED] = build_last_applied(config)
        merged["metadata"]["annotations"] = annotations
    return merged


def build_last_applied(config: JSON) -> str:
    """The annotation kubectl would write for ``config``: sorted compact JSON plus a newline."""
    copy = dict(config)
    md = dict(copy.get("metadata") or {})
    annotations = {k: v for k, v in (md.get("annotations") or {}).items() if k != LAST_APPLIED}
    if annotations:
        md["annotations"] = annotations
    else:
        md.pop("annotations", None)
    copy["metadata"] = md
    return orjson.dumps(copy, option=orjson.OPT_SORT_KEYS).decode() + "\n"


def conflict_error(conflicts: list[tuple[Entry, FieldSet]]) -> errors.Conflict:
    """409 naming every conflicting manager and path, worded as kube-apiserver words it."""
    flat = [(entry, path_string(p)) for entry, s in sorted(conflicts, key=lambda c: c[0].manager)
            for p in members(s)]
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {e.describe()}", "field": p}
              for e, p in flat]
    if len(flat) == 1:
        message = f"Apply failed with 1 conflict: conflict with {flat[0][0].describe()}: {flat[0][1]}"
    else:
        lines: list[str] = []
        for entry, s in sorted(conflicts, key=lambda c: c[0].manager):
            lines.append(f"conflicts with {entry.describe()}:")
            lines.extend(f"- {path_string(p)}" for p in members(s))
        message = f"Apply failed with {len(flat)} conflicts: " + "\n".join(lines)
    return errors.Conflict(message, details={"causes": causes})


def _allowed_by_last_applied(live: JSON, manager: str, conflicts: list[tuple[Entry, FieldSet]],
                             t: FieldType) -> bool:
    """kubectl may take over fields its client-side apply set, while live still matches them."""
    if manager != "kubectl":
        return False
    raw = (live["metadata"].get("annotations") or {}).get(LAST_APPLIED)
    try:
        last = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return False
    if not isinstance(last, dict):
        return False
    drifted, _ = changes(last, live, t)
    allowed = difference(to_set(last, t), drifted)
    return all(not difference(c, allowed) for _, c in conflicts)


# ---- merge and prune ----------------------------------------------------------------------


def _merge(live: Any, config: Any, t: FieldType) -> Any:
    """``config`` merged into ``live``; new containers along merged paths, ``live`` untouched."""
    if isinstance(config, dict) and not t.atomic:
        out: JSON = dict(live) if isinstance(live, dict) else {}
        for key, value in config.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _merge(out.get(key), value, t.child(key))
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
                out.append(_merge(None, cfg[pending.pop(0)], item_t))
            out.append(item if t.list_type == "set" else _merge(item, cfg[key], item_t))
        else:
            out.append(item)
    out.extend(_merge(None, cfg[k], item_t) for k in pending)
    return out


def _prune(value: Any, last: FieldSet, owned: FieldSet | None, t: FieldType) -> Any:
    """Remove what ``last`` had and nobody owns now; ``_SKIP`` means drop ``value`` itself."""
    if owned is None and DOT in last:
        return _SKIP
    if isinstance(value, dict) and not t.atomic:
        out = value
        for pe, sub in last.items():
            if pe == DOT or not pe.startswith("f:") or pe[2:] not in value:
                continue
            name = pe[2:]
            got = _prune(value[name], sub, (owned or {}).get(pe), t.child(name))
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
            got = item if sub is None else _prune(item, sub, (owned or {}).get(pe), item_t)
            dirty = dirty or got is not item
            if got is not _SKIP:
                result.append(got)
        return result if dirty else value
    return value
