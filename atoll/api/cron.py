"""Cron schedules as the CronJob controller reads them (robfig/cron's standard parser): five
fields (minute hour day-of-month month day-of-week) with ``*``, ``a-b``, ``a,b``, ``*/n``,
``a-b/n``, month and weekday names, ``?`` for ``*``, and the ``@yearly``/``@annually``,
``@monthly``, ``@weekly``, ``@daily``/``@midnight``, ``@hourly`` descriptors. When both day fields
are restricted a day matching either runs (Vixie cron). Times are evaluated in an IANA time zone
(``spec.timeZone``; UTC when unset)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
           "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                       "dec"), start=1)}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_NONE: dict[str, int] = {}
_BOUNDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, _NONE), (0, 23, _NONE), (1, 31, _NONE), (1, 12, _MONTHS), (0, 6, _DAYS))
_SEARCH_DAYS = 366 * 5


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_star: bool
    weekdays_star: bool
    zone: ZoneInfo

    def _day_ok(self, dt: datetime) -> bool:
        dom, dow = dt.day in self.days, (dt.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def next_after(self, t: float) -> float | None:
        """The first scheduled time strictly after ``t`` (seconds since the epoch)."""
        dt = datetime.fromtimestamp(t, self.zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = dt + timedelta(days=_SEARCH_DAYS)
        while dt < limit:
            if dt.month not in self.months:
                dt = (dt.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_ok(dt):
                dt = dt.replace(hour=0, minute=0) + timedelta(days=1)
            elif dt.hour not in self.hours:
                dt = dt.replace(minute=0) + timedelta(hours=1)
            elif dt.minute not in self.minutes:
                dt += timedelta(minutes=1)
            else:
                return dt.timestamp()
        return None

    def last_due(self, after: float, now: float, most: int = 1000) -> tuple[float | None, int]:
        """The latest scheduled time in ``(after, now]`` and how many were due (capped at ``most``)."""
        last, count, t = None, 0, after
        while count < most:
            nxt = self.next_after(t)
            if nxt is None or nxt > now:
                break
            last, count, t = nxt, count + 1, nxt
        return last, count


def _field(text: str, index: int) -> tuple[frozenset[int], bool]:
    lo, hi, names = _BOUNDS[index]
    values: set[int] = set()
    star = text in ("*", "?")
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step <= 0:
            raise ScheduleError(f"step must be positive in {part!r}")
        if base in ("*", "?"):
            start, end = lo, hi
        else:
            first, _, last = base.partition("-")
            start = _value(first, names, lo, hi)
            end = _value(last, names, lo, hi) if last else (hi if step_text else start)
        if start > end:
            raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values), star


def _value(text: str, names: dict[str, int], lo: int, hi: int) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    try:
        value = int(text)
    except ValueError:
        raise ScheduleError(f"failed to parse int from {text}") from None
    top = 7 if names is _DAYS else hi
    if not lo <= value <= top:
        raise ScheduleError(f"end of range ({value}) above maximum ({hi}): {text}")
    return value


def parse(text: str, time_zone: str | None = None) -> Schedule:
    spec = _MACROS.get(text.strip(), text.strip())
    if spec.upper().startswith(("TZ=", "CRON_TZ=")):
        raise ScheduleError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    fields = spec.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: {text}")
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {time_zone}") from None
    parsed = [_field(f, i) for i, f in enumerate(fields)]
    return Schedule(parsed[0][0], parsed[1][0], parsed[2][0], parsed[3][0], parsed[4][0],
                    parsed[2][1], parsed[4][1], zone)
