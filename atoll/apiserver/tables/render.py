"""Server-side ``meta.k8s.io/v1`` Table rendering (what ``kubectl get`` prints); a client asking for
``v1beta1`` gets the same Table, and its rows' ``PartialObjectMetadata``, as ``meta.k8s.io/v1beta1``
(``api_version``).

Built-in kinds use the printer their strategy names (the column sets of Kubernetes'
``printers.go``, see ``printers``); CRDs use their ``additionalPrinterColumns`` (see ``crd``);
anything else gets ``Name`` + ``Age``. Ages use apimachinery's ``HumanDuration``. The server
always renders the ``-o wide`` (priority 1) columns too: kubectl hides them unless asked.

A LIST rendered as a Table reuses rows encoded earlier: a stored object never changes under one
resourceVersion, so its encoded row does not either — except for time-derived cells. Rows are
kept encoded on the cached object itself (``Cached.derived``, dropped with it when the object
changes or goes away), with a marker in place of the Age cells, which are recomputed from
``creationTimestamp`` on every render. Printers with other time-derived cells and Pod rows with a
"(5m ago)" restart time are not kept. This keeps ``kubectl get`` of thousands of objects close to
the cost of a plain JSON LIST.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from atoll.api.errors import BadRequest
from atoll.api.registry import ResourceDef
from atoll.apiserver.tables.columns import AGE_DESC, NAME_COL, Printer, age, col
from atoll.apiserver.tables.crd import crd_printer

__all__ = ["printer_for", "render_table", "render_table_bytes"]

JSON = dict[str, Any]
log = logging.getLogger(__name__)
INCLUDE_OBJECT = ("Metadata", "Object", "None")
META_V1 = "meta.k8s.io/v1"


class Renderable(Protocol):
    """A cached object: the dict and a place for encodings derived from it."""

    @property
    def obj(self) -> JSON: ...

    derived: dict[Any, Any] | None


def _default_cells(obj: JSON, now: float) -> list[Any]:
    meta = obj.get("metadata") or {}
    return [meta.get("name", ""), age(meta.get("creationTimestamp"), now)]


DEFAULT_PRINTER = Printer([NAME_COL, col("Age", "date", AGE_DESC)], _default_cells)


def printer_for(rd: ResourceDef, printer: Printer | None) -> Printer:
    """The kind's own printer, else its CRD printer columns, else Name and Age."""
    if printer is not None:
        return printer
    if rd.printer_columns:
        return crd_printer(rd.printer_columns)
    return DEFAULT_PRINTER


def check_include(include_object: str) -> None:
    """400 for an ``includeObject`` a Table cannot have, in kube's words (``optionsForTransform``,
    checked before anything is read or streamed)."""
    if include_object not in INCLUDE_OBJECT:
        raise BadRequest(
            f'Unable to convert to Table as requested: includeObject: Unsupported value: "{include_object}": '
            'supported values: "Metadata", "Object", "None"'
        )


def _cells(printer: Printer, obj: JSON, now: float) -> list[Any]:
    """The row's cells; a malformed stored object (from before validation) gets its name and
    ``<invalid>`` instead of failing the whole table."""
    try:
        return printer.cells(obj, now)
    except (AttributeError, TypeError, KeyError, ValueError, IndexError):
        log.warning("cannot print %s: malformed object", (obj.get("metadata") or {}).get("name"))
        name = (obj.get("metadata") or {}).get("name", "") if isinstance(obj.get("metadata"), dict) else ""
        return [name] + ["<invalid>"] * (len(printer.columns) - 1)


def _row(printer: Printer, obj: JSON, cells: list[Any], include_object: str, api_version: str) -> JSON:
    row: JSON = {"cells": cells}
    if printer.row_conditions is not None:
        try:
            conditions = printer.row_conditions(obj)
        except (AttributeError, TypeError, KeyError, ValueError, IndexError):
            conditions = None
        if conditions:
            row["conditions"] = conditions
    if include_object == "Metadata":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": api_version,
                         "metadata": obj.get("metadata") or {}}
    elif include_object == "Object":
        row["object"] = obj
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
    printer: Printer | None = None,
    include_object: str = "Metadata",
    now: float | None = None,
    with_columns: bool = True,
    resource_version: str = "",
    continue_token: str = "",
    remaining: int | None = None,
    api_version: str = META_V1,
) -> JSON:
    """A Table of ``objects`` (list or get-one) as the real server renders it, at ``api_version``."""
    check_include(include_object)
    now = time.time() if now is None else now
    chosen = printer_for(rd, printer)
    rows = [_row(chosen, obj, _cells(chosen, obj, now), include_object, api_version) for obj in objects]
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": _list_meta(resource_version, continue_token, remaining),
        "columnDefinitions": chosen.columns if with_columns else None,
        "rows": rows,
    }


_AGE_MARK = "\x00atoll-age\x00"
_AGE_MARK_JSON = orjson.dumps(_AGE_MARK)


def _age_indexes(printer: Printer) -> tuple[int, ...] | None:
    """Indexes of the plain ``Age`` cells; None when rows depend on the time otherwise."""
    if printer.time_dependent:
        return None
    return tuple(i for i, column in enumerate(printer.columns) if column["name"] == "Age")


def _segments(
    printer: Printer, obj: JSON, cells: list[Any], ages: tuple[int, ...], include: str, api_version: str
) -> list[bytes] | None:
    """The encoded row split at its Age cells; None when the row cannot be reused."""
    if any(isinstance(c, str) and c.endswith(" ago)") for c in cells):
        return None
    marked = list(cells)
    for i in ages:
        marked[i] = _AGE_MARK
    segments = orjson.dumps(_row(printer, obj, marked, include, api_version)).split(_AGE_MARK_JSON)
    return segments if len(segments) == len(ages) + 1 else None  # None: the marker occurs in the object


def render_table_bytes(
    rd: ResourceDef,
    items: Sequence[Renderable],
    *,
    printer: Printer | None = None,
    include_object: str = "Metadata",
    now: float | None = None,
    resource_version: str = "",
    continue_token: str = "",
    remaining: int | None = None,
    api_version: str = META_V1,
) -> bytes:
    """The encoding of ``render_table(...)`` of cached objects (LIST), reusing their encoded rows."""
    check_include(include_object)
    now = time.time() if now is None else now
    chosen = printer_for(rd, printer)
    ages = _age_indexes(chosen) if include_object != "Object" else None  # full objects: not worth keeping
    key = (chosen, include_object, api_version)
    rows: list[bytes] = []
    age_memo: dict[Any, bytes] = {}  # creationTimestamp -> encoded Age: objects made in one second share it
    for item in items:
        obj = item.obj
        derived = item.derived
        segments = derived.get(key) if derived is not None and ages is not None else None
        if segments is None:
            cells = _cells(chosen, obj, now)
            segments = _segments(chosen, obj, cells, ages, include_object, api_version) if ages is not None else None
            if segments is None:
                rows.append(orjson.dumps(_row(chosen, obj, cells, include_object, api_version)))
                continue
            if derived is None:
                derived = item.derived = {}
            derived[key] = segments
        if len(segments) == 1:
            rows.append(segments[0])
            continue
        created = (obj.get("metadata") or {}).get("creationTimestamp")
        encoded = age_memo.get(created)
        if encoded is None:
            encoded = age_memo[created] = orjson.dumps(age(created, now))
        rows.append(encoded.join(segments))
    head = orjson.dumps({"kind": "Table", "apiVersion": api_version,
                         "metadata": _list_meta(resource_version, continue_token, remaining),
                         "columnDefinitions": chosen.columns})
    return head[:-1] + b',"rows":[' + b",".join(rows) + b"]}"
