"""Freezing a window and cutting it into UTC days and hours."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pipelines.dates import Window
from pipelines.opentact.slices import floor_ms, freeze, utc_days, utc_hours

UTC = timezone.utc


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, second, micro, tzinfo=UTC)


def test_floor_ms_truncates_microseconds() -> None:
    assert floor_ms(at(1, micro=123999)) == at(1, micro=123000)


def test_freeze_keeps_a_window_that_has_settled() -> None:
    window = Window(at(1), at(2))
    assert freeze(window, at(5), timedelta(minutes=2)) == window


def test_freeze_ends_at_now_minus_the_settle_lag_in_whole_milliseconds() -> None:
    window = Window(at(1), at(3))
    assert freeze(window, at(2, 12, 0, 0, 456789), timedelta(minutes=2)) == Window(at(1), at(2, 11, 58, 0, 456000))


def test_freeze_of_a_window_not_yet_begun_is_empty() -> None:
    frozen = freeze(Window(at(3), at(4)), at(3, 0, 1), timedelta(minutes=2))
    assert frozen == Window(at(3), at(3))
    assert utc_days(frozen) == []


def test_freeze_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        freeze(Window(at(1), at(2)), datetime(2026, 10, 5), timedelta(0))


def test_days_of_a_window_cut_at_utc_midnights() -> None:
    window = Window(at(1, 5, 30), at(3, 2, 15))
    assert utc_days(window) == [
        Window(at(1, 5, 30), at(2)),
        Window(at(2), at(3)),
        Window(at(3), at(3, 2, 15)),
    ]


def test_days_of_whole_days_are_those_days() -> None:
    assert utc_days(Window(at(1), at(3))) == [Window(at(1), at(2)), Window(at(2), at(3))]


def test_days_of_a_window_given_in_another_zone_are_still_utc_days() -> None:
    london = ZoneInfo("Europe/London")  # BST: 01:00 local is 00:00 UTC
    window = Window(datetime(2026, 10, 2, 1, tzinfo=london), datetime(2026, 10, 3, 13, tzinfo=london))
    assert utc_days(window) == [Window(at(2), at(3)), Window(at(3), at(3, 12))]


def test_hours_of_a_window_cut_at_utc_hours() -> None:
    assert utc_hours(Window(at(1, 22, 30), at(2, 1))) == [
        Window(at(1, 22, 30), at(1, 23)),
        Window(at(1, 23), at(2)),
        Window(at(2), at(2, 1)),
    ]


def test_hours_of_one_day_are_24() -> None:
    hours = utc_hours(Window(at(1), at(2)))
    assert len(hours) == 24 and hours[0] == Window(at(1), at(1, 1)) and hours[-1] == Window(at(1, 23), at(2))
