"""Status conditions (``metav1.Condition``): set one, keeping ``lastTransitionTime`` unless the
status changes."""

from __future__ import annotations

import time
from typing import Any

from atoll.api.timestamps import format_time

JSON = dict[str, Any]


def set_condition(
    conditions: list[JSON] | None,
    type_: str,
    status: bool,
    reason: str,
    message: str = "",
    now: float | None = None,
    *,
    observed_generation: int | None = None,
) -> list[JSON]:
    """``observed_generation``: the object's generation the condition speaks for (kept if None)."""
    value = "True" if status else "False"
    stamp = format_time(time.time() if now is None else now)
    out: list[JSON] = []
    found = False
    for cond in conditions or ():
        if cond.get("type") != type_:
            out.append(cond)
            continue
        found = True
        changed = cond.get("status") != value
        entry = {
            "type": type_,
            "status": value,
            "reason": reason,
            "message": message,
            "lastTransitionTime": stamp if changed else cond.get("lastTransitionTime") or stamp,
        }
        generation = cond.get("observedGeneration") if observed_generation is None else observed_generation
        if generation is not None:
            entry["observedGeneration"] = generation
        out.append(entry)
    if not found:
        entry = {"type": type_, "status": value, "reason": reason, "message": message, "lastTransitionTime": stamp}
        if observed_generation is not None:
            entry["observedGeneration"] = observed_generation
        out.append(entry)
    return out


def is_true(obj: JSON, type_: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == "True" for c in (obj.get("status") or {}).get("conditions") or ()
    )
