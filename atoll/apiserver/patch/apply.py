"""Server-side apply: an applied configuration merged into the live object, with ownership.

``apply`` merges an applied configuration into the live object by structured-merge-diff rules
(:mod:`apply_merge`), drops fields the manager applied before but no longer applies (unless
someone else owns them), and refuses changes to fields other managers own with a 409
``FieldManagerConflict`` unless forced. As in the real server, the ``kubectl`` manager may take
over fields a client-side apply recorded in the ``last-applied-configuration`` annotation when
they still match, and its applies keep that annotation up to date. The managedFields entries
themselves, and ``record_update`` for every other write, live in :mod:`managed_fields`.
"""

from __future__ import annotations

from typing import Any

import orjson

from atoll.api import errors, timestamps
from atoll.api.registry import ResourceDef
from atoll.apiserver.patch.apply_merge import merge, prune
from atoll.apiserver.patch.diff import changes
from atoll.apiserver.patch.fieldsets import (
    FieldSet,
    FieldType,
    difference,
    intersection,
    members,
    path_string,
    root_type,
    to_set,
    union,
)
from atoll.apiserver.patch.managed_fields import (
    MAX_MANAGER_LENGTH,
    Entry,
    decode,
    scope,
    store_entries,
)
from atoll.apiserver.patch.managed_fields import (
    record_update as record_update,  # re-exported: registry/storage.py calls ``ssa.record_update``
)

JSON = dict[str, Any]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def validate_apply_query(field_manager: str, force: str | None) -> None:
    """422 like ``ValidatePatchOptions``: an apply patch needs ``fieldManager``."""
    causes = []
    if not field_manager:
        causes.append(errors.cause("FieldValueRequired", "fieldManager", "Required value: is required for apply patch"))
    elif len(field_manager) > MAX_MANAGER_LENGTH:
        causes.append(
            errors.cause(
                "FieldValueTooLong", "fieldManager", f"Too long: may not be more than {MAX_MANAGER_LENGTH} bytes"
            )
        )
    if force not in (None, "", "true", "false", "True", "False", "1", "0"):
        raise errors.BadRequest(f'invalid value for "force": {force!r}')
    if causes:
        raise errors.invalid("PatchOptions", "meta.k8s.io", "", causes)


def apply(
    rd: ResourceDef, live: JSON | None, config: JSON, manager: str, *, force: bool, subresource: str = ""
) -> JSON:
    """The object after ``manager`` applies ``config`` to ``live`` (None: create), with managedFields."""
    md = config.get("metadata")
    if not isinstance(md, dict):
        md = {}
    if md.get("managedFields") is not None:
        raise errors.BadRequest("metadata.managedFields must be nil")
    t = root_type(rd)
    applied = scope(rd, subresource, to_set(config, t))
    me = Entry(manager, "Apply", rd.api_version, timestamps.now_time(), applied, subresource)
    if live is None:
        new: JSON = merge(None, config, t)
        new.setdefault("metadata", {})
        store_entries(new, [me])
        return new
    entries = decode(live["metadata"].get("managedFields"))
    last = next((e for e in entries if e.key == me.key), None)
    others = [e for e in entries if e.key != me.key]
    merged: JSON = merge(live, config, t)
    if last is not None:
        owned = applied
        for entry in others:
            owned = union(owned, entry.fields)
        pruned = prune(merged, last.fields, owned, t)
        merged = pruned if isinstance(pruned, dict) else merged
    merged["metadata"] = {**merged.get("metadata", {})}
    changed, removed = changes(live, merged, t)
    changed, removed = scope(rd, subresource, changed), scope(rd, subresource, removed)
    conflicts = [(e, intersection(e.fields, changed)) for e in others]
    conflicts = [(e, c) for e, c in conflicts if c]
    if conflicts and not force and not _allowed_by_last_applied(live, manager, conflicts, t):
        raise conflict_error(conflicts)
    for entry in others:
        entry.fields = difference(difference(entry.fields, changed), removed)
    if last is not None and not changed and not removed and last.fields == applied:
        me.time = last.time
    store_entries(merged, [*others, me])
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
    flat = [(entry, path_string(p)) for entry, s in sorted(conflicts, key=lambda c: c[0].manager) for p in members(s)]
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {e.describe()}", "field": p} for e, p in flat
    ]
    if len(flat) == 1:
        message = f"Apply failed with 1 conflict: conflict with {flat[0][0].describe()}: {flat[0][1]}"
    else:
        lines: list[str] = []
        for entry, s in sorted(conflicts, key=lambda c: c[0].manager):
            lines.append(f"conflicts with {entry.describe()}:")
            lines.extend(f"- {path_string(p)}" for p in members(s))
        message = f"Apply failed with {len(flat)} conflicts: " + "\n".join(lines)
    return errors.Conflict(message, details={"causes": causes})


def _allowed_by_last_applied(live: JSON, manager: str, conflicts: list[tuple[Entry, FieldSet]], t: FieldType) -> bool:
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
