"""``metav1.Condition`` lists: set one condition, keeping ``lastTransitionTime`` when the status holds."""

from __future__ import annotations

from typing import Any

from atoll.api.timestamps import format_time

JSON = dict[str, Any]


def set_condition(conditions: list[JSON], type_: str, status: bool, reason: str, message: str, now: float,
                  generation: int = 0) -> list[JSON]:
    value = "True" if status else "False"
    out = []
    found = False
    for cond in conditions:
        if cond.get("type") != type_:
            out.append(cond)
            continue
        found = True
        changed = cond.get("status") != value
        out.append({
            "type": type_, "status": value, "reason": reason, "message": message,
            "lastTransitionTime": format_time(now) if changed else cond.get("lastTransitionTime") or format_time(now),
            "observedGeneration": generation,
        })
    if not found:
        out.append({"type": type_, "status": value, "reason": reason, "message": message,
                    "lastTransitionTime": format_time(now), "observedGeneration": generation})
    return out


def same_conditions(a: list[JSON], b: list[JSON]) -> bool:
    def key(conds: list[JSON]) -> list[tuple[Any, ...]]:
        return sorted((c.get("type"), c.get("status"), c.get("reason"), c.get("message")) for c in conds)

    return key(a) == key(b)
