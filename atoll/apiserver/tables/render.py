"""Server-side ``meta.k8s.io/v1`` Table rendering (what ``kubectl get`` prints).

Built-in kinds use the column sets of Kubernetes' ``printers.go`` (see ``printers``); CRDs
use their ``additionalPrinterColumns`` evaluated with Kubernetes JSONPath; anything else gets
``Name`` + ``Age``. Ages use apimachinery's ``HumanDuration``. The server always renders the
``-o wide`` (priority 1) columns too: kubectl hides them unless asked.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson

from atoll.api.errors import BadRequest
from atoll.api.jsonpath import JSONPath, compile_jsonpath, format_value
from atoll.api.registry import PrinterColumn, ResourceDef
from atoll.api.timestamps import try_parse_time
from atoll.apiserver.tables.columns import AGE_DESC, NAME_COL, CellsFn, age, col, human_duration
from atoll.apiserver.tables.printers import BUILTIN_PRINTERS

__all__ = ["column_definitions", "render_table", "render_table_bytes"]

JSON = dict[str, Any]


def _row_object(obj: JSON, include_object: str) -> JSON | None:
    if include_object == "Metadata":
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata") or {}}
    if include_object == "Object":
        return obj
    return None


# ----------------------------------------------------------------------------------------------------
# CRD printer columns


def _cr_cell(kind: str, path: JSONPath, obj: JSON, now: float) -> Any:
    found = path.find(obj)
    if not found:
        return None
    value = found[0]
    if value is None:
        return None
    if kind == "string":
        return format_value(value)
    if kind == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        return int(value) if isinstance(value, float) else None
    if kind == "number":
        if isinstance(value, bool):
            return None
        return float(value) if isinstance(value, int | float) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "date":
        if not isinstance(value, str):
            return None
        ts = try_parse_time(value)
        return "<invalid>" if ts is None else human_duration(now - ts)
    return None


def _crd_printer(columns: tuple[PrinterColumn, ...]) -> tuple[list[JSON], CellsFn]:
    defs = [NAME_COL]
    evals: list[tuple[str, JSONPath]] = []
    for pc in columns:
        desc = pc.description or f"Custom resource definition column (in JSONPath format): {pc.json_path}"
        defs.append(col(pc.name, pc.type, desc, priority=pc.priority, format_=pc.format))
        path = pc.json_path if pc.json_path.startswith("{") else "{" + pc.json_path + "}"
        evals.append((pc.type, compile_jsonpath(path)))

    def cells(obj: JSON, now: float) -> list[Any]:
        out: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
        for kind, path in evals:
            try:
                out.append(_cr_cell(kind, path, obj, now))
            except (TypeError, ValueError):
                out.append(None)
        return out

    return defs, cells


_DEFAULT_DEFS = [NAME_COL, col("Age", "date", AGE_DESC)]


def _default_cells(obj: JSON, now: float) -> list[Any]:
    meta = obj.get("metadata") or {}
    return [meta.get("name", ""), age(meta.get("creationTimestamp"), now)]


@lru_cache(maxsize=512)
def _printer_for(rd: ResourceDef) -> tuple[list[JSON], CellsFn]:
    if rd.printer_columns:
        return _crd_printer(rd.printer_columns)
    if rd.builtin and (rd.group, rd.kind) in BUILTIN_PRINTERS:
        return BUILTIN_PRINTERS[(rd.group, rd.kind)]
    return _DEFAULT_DEFS, _default_cells


def column_definitions(rd: ResourceDef) -> list[JSON]:
    """The ``columnDefinitions`` for ``rd`` (shared; do not mutate)."""
    return _printer_for(rd)[0]


_POD_SUCCEEDED = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}]
_POD_FAILED = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]


def _row(obj: JSON, cells: list[Any], is_pod: bool, include_object: str) -> JSON:
    row: JSON = {"cells": cells}
    if is_pod:
        phase = (obj.get("status") or {}).get("phase")
        if phase == "Succeeded":
            row["conditions"] = _POD_SUCCEEDED
        elif phase == "Failed":
            row["conditions"] = _POD_FAILED
    ro = _row_object(obj, include_object)
    if ro is not None:
        row["object"] = ro
    return row


def _list_meta(resource_version: str, continue_token: str, remaining: int | None) -> JSON:
    """A list's ``metadata``: only the fields that are set."""
    meta: JSON = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return meta


def render_table(
    rd: ResourceDef,
    objects: Sequence[JSON],
    *,
    include_object: str = "Metadata",
    now: float | None = None,
    with_columns: bool = True,
    resource_version: str = "",
    continue_token: str = "",
    remaining: int | None = None,
) -> JSON:
    """A ``meta.k8s.io/v1`` Table of ``objects`` (list or get-one) as the real server renders it."""
    if include_object not in ("Metadata", "Object", "None"):
        raise BadRequest(
            f'includeObject: Unsupported value: "{include_object}": supported values: "Metadata", '
            '"Object", "None"'
        )
    if now is None:
        now = time.time()
    defs, cells = _printer_for(rd)
    is_pod = rd.builtin and rd.group == "" and rd.kind == "Pod"
    rows = [_row(obj, cells(obj, now), is_pod, include_object) for obj in objects]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": _list_meta(resource_version, continue_token, remaining),
        "columnDefinitions": defs if with_columns else None,
        "rows": rows,
    }


# ----------------------------------------------------------------------------------------------------
# Encoded LIST tables with a row cache
#
# A stored object never changes under the same (uid, resourceVersion), so its encoded row does not
# either -- except for time-derived cells. Rows are cached encoded with a marker in place of the Age
# cells (recomputed from creationTimestamp on every render); printers with other time-derived cells
# (Event ``Last Seen``, CRD ``date`` columns) and Pod rows with a "(5m ago)" restart time are not
# cached. This keeps ``kubectl get`` of thousands of objects close to the cost of a plain JSON LIST,
# which is assembled from the watch cache's encodings.

_AGE_MARK = "\x00atoll-age\x00"
_AGE_MARK_JSON = orjson.dumps(_AGE_MARK)
_ROWS: dict[tuple[Any, ...], list[bytes]] = {}
_ROWS_MAX = 100_000


@lru_cache(maxsize=512)
def _age_indexes(rd: ResourceDef) -> tuple[int, ...] | None:
    """Indexes of the plain ``Age`` cells of ``rd``'s rows; ``None`` when rows must not be cached."""
    if any(pc.type == "date" for pc in rd.printer_columns):
        return None
    names = [d["name"] for d in _printer_for(rd)[0]]
    if "Last Seen" in names or "First Seen" in names:
        return None
    return tuple(i for i, n in enumerate(names) if n == "Age")


def render_table_bytes(
    rd: ResourceDef,
    objects: Sequence[JSON],
    *,
    include_object: str = "Metadata",
    now: float | None = None,
    resource_version: str = "",
    continue_token: str = "",
    remaining: int | None = None,
) -> bytes:
    """The encoding of ``render_table(...)`` for stored objects (LIST), from cached rows when possible."""
    if include_object not in ("Metadata", "Object", "None"):
        render_table(rd, [], include_object=include_object)  # raises the 400
    if now is None:
        now = time.time()
    defs, cells_fn = _printer_for(rd)
    is_pod = rd.builtin and rd.group == "" and rd.kind == "Pod"
    ages = _age_indexes(rd) if include_object != "Object" else None  # full objects: not worth caching
    rows: list[bytes] = []
    age_memo: dict[Any, bytes] = {}  # creationTimestamp -> encoded Age: objects made in one second share it
    for obj in objects:
        md = obj.get("metadata") or {}
        key = (rd.group, rd.plural, md.get("uid"), md.get("resourceVersion"), include_object)
        segments = _ROWS.get(key) if ages is not None else None
        if segments is None:
            cells = cells_fn(obj, now)
            cacheable = (
                ages is not None
                and bool(key[2] and key[3])
                and not any(isinstance(c, str) and c.endswith(" ago)") for c in cells)
            )
            if not cacheable:
                rows.append(orjson.dumps(_row(obj, cells, is_pod, include_object)))
                continue
            assert ages is not None
            marked = list(cells)
            for i in ages:
                marked[i] = _AGE_MARK
            segments = orjson.dumps(_row(obj, marked, is_pod, include_object)).split(_AGE_MARK_JSON)
            if len(segments) != len(ages) + 1:  # the marker text occurs in the object itself
                rows.append(orjson.dumps(_row(obj, cells, is_pod, include_object)))
                continue
            if len(_ROWS) >= _ROWS_MAX:
                _ROWS.clear()
            _ROWS[key] = segments
        if len(segments) == 1:
            rows.append(segments[0])
        else:
            created = md.get("creationTimestamp")
            encoded = age_memo.get(created)
            if encoded is None:
                encoded = age_memo[created] = orjson.dumps(age(created, now))
            rows.append(encoded.join(segments))
    meta = _list_meta(resource_version, continue_token, remaining)
    head = orjson.dumps({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                         "columnDefinitions": defs})
    return head[:-1] + b',"rows":[' + b",".join(rows) + b"]}"
