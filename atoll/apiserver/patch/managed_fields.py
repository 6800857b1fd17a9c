"""``metadata.managedFields`` bookkeeping: the entries, and who owns what after an ``Update``.

Each entry names a manager, its operation (``Apply`` or ``Update``), API version, time, optional
subresource and the set of fields it owns (FieldsV1 on the wire, :mod:`fieldsets` inside).
``record_update`` runs on every non-apply write: the fields that changed move to the writer's
``Update`` entry (other managers lose them, removed fields leave every set). It is incremental:
entries the write does not touch keep their stored wire form, and the writer's own entry is
updated in wire form, so a typical write decodes and re-encodes nothing. Server-side apply
(:mod:`apply`) builds on the same entries, scope and storage order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson

from atoll.api import timestamps
from atoll.api.registry import ResourceDef
from atoll.apiserver.patch.diff import changes
from atoll.apiserver.patch.fields_v1 import (
    created_fields_v1,
    from_fields_v1,
    overlaps_wire,
    to_fields_v1,
    update_fields_v1,
)
from atoll.apiserver.patch.fieldsets import (
    DOT,
    STRIPPED_META,
    FieldSet,
    difference,
    root_type,
    strip,
    union,
)

JSON = dict[str, Any]
MAX_MANAGER_LENGTH = 128


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
        return (self.manager, self.operation, "" if self.operation == "Apply" else self.api_version, self.subresource)

    def describe(self) -> str:
        """How conflicts name this manager: ``"kubectl-edit" using v1``."""
        text = orjson.dumps(self.manager).decode()
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        return f"{text} using {self.api_version}" if self.operation == "Update" else text

    def encode(self, wire: JSON | None = None) -> JSON:
        """The wire entry; ``wire``: its ``fieldsV1`` when already built (else from ``fields``)."""
        out: JSON = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields) if wire is None else wire,
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


@functools.lru_cache(maxsize=256)  # a handful of clients send the same User-Agent on every write
def manager_from_user_agent(user_agent: str) -> str:
    """The real server's default manager: the User-Agent up to its first ``/``, printable only."""
    prefix = user_agent.split("/", 1)[0]
    return "".join(c for c in prefix if c.isprintable())[:MAX_MANAGER_LENGTH]


def decode(managed: Any) -> list[Entry]:
    """Entries of a ``metadata.managedFields`` value (malformed entries are skipped)."""
    out = []
    for raw in managed if isinstance(managed, list) else []:
        if not isinstance(raw, dict) or not raw.get("manager") or raw.get("operation") not in ("Apply", "Update"):
            continue
        out.append(
            Entry(
                str(raw["manager"]),
                raw["operation"],
                str(raw.get("apiVersion") or ""),
                str(raw.get("time") or ""),
                from_fields_v1(raw.get("fieldsV1")),
                str(raw.get("subresource") or ""),
            )
        )
    return out


def store_entries(obj: JSON, entries: list[Entry]) -> None:
    """Set ``obj.metadata.managedFields`` to the entries that own something, in stored order."""
    kept = [e for e in entries if e.fields]
    kept.sort(key=lambda e: (e.operation, e.time, e.manager, e.api_version, e.subresource))
    md = obj["metadata"]
    if kept:
        md["managedFields"] = [e.encode() for e in kept]
    else:
        md.pop("managedFields", None)


def scope(rd: ResourceDef, subresource: str, s: FieldSet) -> FieldSet:
    """Drop what a write to this (sub)resource does not own: identity metadata, reset fields."""
    if subresource == "status":
        return strip(s, (), keep_only="f:status")
    return strip(s, ("f:apiVersion", "f:kind", "f:status") if rd.has_status else ("f:apiVersion", "f:kind"))


_UNTRACKED_META = frozenset(k.removeprefix("f:") for k in STRIPPED_META)


def tracked(rd: ResourceDef, subresource: str, obj: JSON | None) -> JSON | None:
    """The part of ``obj`` whose changes a write by this (sub)resource can own (a shallow view):
    what ``scope`` would strip from the diff is not compared at all, so the managedFields list
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
        wire = created_fields_v1(tracked(rd, "", new) or {}, root_type(rd))
        if wire:
            md["managedFields"] = [
                Entry(manager or "unknown", "Update", rd.api_version, timestamps.now_time(), {}).encode(wire)
            ]
        else:
            md.pop("managedFields", None)
        return
    stored = old["metadata"].get("managedFields") if old else None
    changed, removed = changes(tracked(rd, subresource, old), tracked(rd, subresource, new), root_type(rd))
    changed, removed = scope(rd, subresource, changed), scope(rd, subresource, removed)
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
    store_entries(new, out)


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
        elif overlaps_wire(raw.get("fieldsV1"), changed) or overlaps_wire(raw.get("fieldsV1"), removed):
            entry = decode([raw])[0]
            entry.fields = difference(difference(entry.fields, changed), removed)
            if entry.fields:
                out.append(entry.encode())
        else:
            out.append(raw)
    if mine is not None:
        me = Entry(
            str(mine["manager"]),
            mine["operation"],
            str(mine.get("apiVersion") or ""),
            str(mine.get("time") or ""),
            {},
            str(mine.get("subresource") or ""),
        )
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
    return [
        raw
        for raw in managed
        if isinstance(raw, dict)
        and raw.get("manager")
        and raw.get("operation") in ("Apply", "Update")
        and _nonempty_wire(raw.get("fieldsV1"))
    ]


def _nonempty_wire(fields: Any) -> bool:
    """Whether ``from_fields_v1(fields)`` is non-empty, without building it."""
    return isinstance(fields, dict) and any(k != DOT and isinstance(v, dict) for k, v in fields.items())


def _wire_order(raw: JSON) -> tuple[str, str, str, str, str]:
    return (
        raw["operation"],
        str(raw.get("time") or ""),
        str(raw["manager"]),
        str(raw.get("apiVersion") or ""),
        str(raw.get("subresource") or ""),
    )
