"""Table building blocks shared by every printer: column definitions, ``Name``/``Age`` cells and
apimachinery's ``HumanDuration``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from atoll.api.timestamps import try_parse_time

JSON = dict[str, Any]

NAME_DESC = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It "
    "is not guaranteed to be set in happens-before order across separate operations. Clients may not "
    "set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. "
    "Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def col(name: str, type_: str = "string", description: str = "", *, priority: int = 0,
        format_: str = "") -> JSON:
    """One ``TableColumnDefinition``."""
    return {"name": name, "type": type_, "format": format_, "description": description,
            "priority": priority}


NAME_COL = col("Name", "string", NAME_DESC, format_="name")
AGE_COL = col("Age", "string", AGE_DESC)


def human_duration(seconds: float) -> str:
    """apimachinery ``duration.HumanDuration`` for a duration given in seconds."""
    secs = int(seconds)  # truncates toward zero like Go's int(d.Seconds())
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def age(value: Any, now: float) -> str:
    """``translateTimestampSince``: ``<unknown>`` for a missing timestamp."""
    if not isinstance(value, str) or not value:
        return "<unknown>"
    ts = try_parse_time(value)
    if ts is None:
        return "<unknown>"
    return human_duration(now - ts)


def sub(obj: JSON, key: str) -> JSON:
    """``obj[key]`` when it is an object, else an empty one (printers never fail on odd bodies)."""
    v = obj.get(key)
    return v if isinstance(v, dict) else {}


def name_of(obj: JSON) -> str:
    return str(sub(obj, "metadata").get("name", ""))


def created_age(obj: JSON, now: float) -> str:
    return age(sub(obj, "metadata").get("creationTimestamp"), now)


# A printer returns the column definitions and a function producing the cells (and optional
# row conditions) of one object.
CellsFn = Callable[[JSON, float], list[Any]]


@dataclass(frozen=True, slots=True, eq=False)
class Printer:
    """How ``kubectl get`` shows a kind: column definitions, the cells of one object at a time
    ``now``, and optional row conditions (a finished Pod's ``Completed``)."""

    columns: list[JSON]
    cells: CellsFn
    row_conditions: Callable[[JSON], list[JSON] | None] | None = None
    time_dependent: bool = False
    """Cells other than ``Age`` depend on the current time (``Last Seen``, a CRD ``date`` column),
    so encoded rows must not be reused."""
