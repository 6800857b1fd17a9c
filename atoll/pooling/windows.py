"""ResourceLeasingPolicy time windows, evaluated in a configured time zone (UTC by default).

A window is ``{start: "HH:MM", end: "HH:MM", days: [monday..sunday]}``: bounds inclusive at
minute granularity, ``end < start`` crosses midnight, empty ``days`` means every day (day names
compared case-insensitively, checked against the current day), an empty list of windows means
always active, and a window with an invalid time never matches (validation reports it, naming
the field). Kubeocean evaluates windows in the syncer host's local time zone; Atoll takes the
zone as configuration (``timeZone``, an IANA name) so the answer does not depend on where the
syncer happens to run.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

JSON = dict[str, Any]
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
UTC = ZoneInfo("UTC")


def time_zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (``ValueError`` naming it when unknown); empty → UTC."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timeZone: unknown time zone {name!r}") from None


def parse_hhmm(text: Any) -> int | None:
    """Minutes after midnight, or None for anything but a valid ``HH:MM``."""
    match = _HHMM.match(str(text or ""))
    return int(match.group(1)) * 60 + int(match.group(2)) if match else None


def windows_problem(windows: Any, path: str = "spec.timeWindows") -> str | None:
    if windows is None:
        return None
    if not isinstance(windows, list):
        return f"{path}: must be a list"
    for i, window in enumerate(windows):
        for key in ("start", "end"):
            if parse_hhmm((window or {}).get(key)) is None:
                return f"{path}[{i}].{key}: invalid time {(window or {}).get(key)!r}, expected HH:MM"
        for j, day in enumerate((window or {}).get("days") or ()):
            if str(day).lower() not in DAYS:
                return f"{path}[{i}].days[{j}]: invalid weekday {day!r}"
    return None


def _local(now: float, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(now, zone)


def window_active(window: JSON, now: float, zone: dt.tzinfo) -> bool:
    start, end = parse_hhmm(window.get("start")), parse_hhmm(window.get("end"))
    if start is None or end is None:
        return False
    local = _local(now, zone)
    days = [str(d).lower() for d in window.get("days") or ()]
    if days and DAYS[local.weekday()] not in days:
        return False
    minute = local.hour * 60 + local.minute
    if start <= end:
        return start <= minute <= end
    return minute >= start or minute <= end


def in_windows(windows: Sequence[JSON] | None, now: float, zone: dt.tzinfo) -> bool:
    return not windows or any(window_active(w, now, zone) for w in windows)


def seconds_to_next_change(windows: Sequence[JSON] | None, now: float, zone: dt.tzinfo) -> float | None:
    """Seconds until the next minute at which activity may change (a window bound or midnight)."""
    if not windows:
        return None
    local = _local(now, zone)
    marks = {0}
    for window in windows:
        start, end = parse_hhmm(window.get("start")), parse_hhmm(window.get("end"))
        if start is not None:
            marks.add(start)
        if end is not None:
            marks.add((end + 1) % 1440)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    best: float | None = None
    for mark in marks:
        for day in (0, 1):
            candidate = midnight + dt.timedelta(days=day, minutes=mark)
            delta = (candidate - local).total_seconds()
            if delta > 0:
                best = delta if best is None else min(best, delta)
                break
    return best
