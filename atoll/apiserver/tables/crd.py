"""Tables for custom resources: a CRD's ``additionalPrinterColumns`` evaluated with Kubernetes
JSONPath and typed as the column says (``string``, ``integer``, ``number``, ``boolean``, ``date``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from atoll.api.jsonpath import JSONPath, compile_jsonpath, format_value
from atoll.api.registry import PrinterColumn
from atoll.api.timestamps import try_parse_time
from atoll.apiserver.tables.columns import NAME_COL, Printer, col, human_duration

JSON = dict[str, Any]


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


@lru_cache(maxsize=512)
def crd_printer(columns: tuple[PrinterColumn, ...]) -> Printer:
    """A printer for a CRD's ``additionalPrinterColumns`` (Name first, as the real server adds it)."""
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

    return Printer(defs, cells, time_dependent=any(pc.type == "date" for pc in columns))
