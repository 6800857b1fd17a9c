"""Leasing time windows in a configured zone (UTC by default), crossing midnight, weekdays."""

from __future__ import annotations

import datetime as dt

import pytest

from atoll.pooling.windows import UTC, in_windows, seconds_to_next_change, time_zone, windows_problem


def at(text: str, zone: dt.tzinfo = UTC) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


NIGHTS = [{"start": "18:00", "end": "08:00", "days": ["Monday", "tuesday", "wednesday", "thursday", "friday"]},
          {"start": "00:00", "end": "23:59", "days": ["saturday", "sunday"]}]


@pytest.mark.parametrize(
    ("when", "active"),
    [
        ("2026-01-05T17:59:00", False),  # Monday
        ("2026-01-05T18:00:00", True),   # bounds are inclusive
        ("2026-01-06T08:00:59", True),
        ("2026-01-06T08:01:00", False),
        ("2026-01-10T12:00:00", True),   # Saturday
    ],
)
def test_weekday_nights_and_weekends(when: str, active: bool) -> None:
    assert in_windows(NIGHTS, at(when), UTC) is active


def test_no_windows_means_always_and_invalid_times_never_match() -> None:
    assert in_windows([], at("2026-01-05T03:00:00"), UTC)
    assert not in_windows([{"start": "25:00", "end": "08:00"}], at("2026-01-05T03:00:00"), UTC)


def test_the_zone_is_configuration_not_the_host() -> None:
    window = [{"start": "09:00", "end": "17:00"}]
    paris = time_zone("Europe/Paris")
    instant = at("2026-01-05T08:30:00")  # 09:30 in Paris (UTC+1 in January)
    assert not in_windows(window, instant, UTC)
    assert in_windows(window, instant, paris)
    with pytest.raises(ValueError, match="timeZone"):
        time_zone("Mars/Olympus")


def test_next_change_is_the_next_bound() -> None:
    window = [{"start": "09:00", "end": "17:00"}]
    assert seconds_to_next_change(window, at("2026-01-05T08:30:00"), UTC) == 30 * 60
    assert seconds_to_next_change(window, at("2026-01-05T16:59:30"), UTC) == 90  # 17:01 (end inclusive)


def test_problems_name_the_field() -> None:
    assert windows_problem([{"start": "8:00", "end": "09:00"}]) == (
        "spec.timeWindows[0].start: invalid time '8:00', expected HH:MM")
    assert windows_problem([{"start": "08:00", "end": "09:00", "days": ["someday"]}]) == (
        "spec.timeWindows[0].days[0]: invalid weekday 'someday'")
