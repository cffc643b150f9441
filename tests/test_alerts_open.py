"""Which alert conditions are open: fired in the last days of data, on since their run of back-to-back windows began."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from pipelines.alerts import OPEN_DAYS, open_conditions, open_from
from pipelines.errors import UsageError
from tests.fixtures.alerts import alert

UTC = timezone.utc
D1 = datetime(2026, 10, 1, tzinfo=UTC)


def day(n: int) -> datetime:
    return D1 + timedelta(days=n - 1)


def test_open_alerts_start_at_local_midnight_of_the_day_before_the_last_report_day():
    assert OPEN_DAYS == 2
    assert open_from(date(2026, 10, 10), "UTC") == datetime(2026, 10, 9, tzinfo=UTC)
    # Berlin's midnight of 2026-10-09 is 22:00 UTC the day before (summer time).
    assert open_from(date(2026, 10, 10), "Europe/Berlin") == datetime(2026, 10, 8, 22, tzinfo=UTC)
    with pytest.raises(UsageError, match="unknown time zone"):
        open_from(date(2026, 10, 10), "Mars/Olympus")


def test_a_condition_is_open_when_its_latest_window_ends_after_the_open_instant():
    after = day(9)
    alerts = [
        alert("d8", day(8)),  # ends exactly at the open instant: cleared before the last two days
        alert("gb9", day(9), country_code="GB"),  # the day before the last: open
        alert("burst10", day(10) + timedelta(hours=3), hours=1, rule="short_call_burst"),  # the last day: open
    ]

    opened = open_conditions(alerts, after)

    assert [run.latest.alert_key for run in opened] == ["burst10", "gb9"]


def test_since_is_the_start_of_the_run_of_back_to_back_windows_after_a_gap():
    # Days 2-3 fired, day 4 did not (cleared), days 5-9 fired again: on since day 5, five alerts.
    alerts = [alert(f"d{n}", day(n)) for n in (2, 3, 5, 6, 7, 8, 9)]

    (run,) = open_conditions(reversed(alerts), day(9))

    assert (run.latest.alert_key, run.since, run.alerts) == ("d9", day(5), 5)


def test_a_day_and_an_hour_of_one_condition_make_one_run_and_the_later_ending_window_is_the_latest():
    alerts = [alert("day9", day(9)), alert("hour9", day(9) + timedelta(hours=23), hours=1), alert("day8", day(8))]

    (run,) = open_conditions(alerts, day(9))

    assert (run.latest.alert_key, run.since, run.alerts) == ("day9", day(8), 3)


def test_open_conditions_list_the_worst_severity_first_then_the_newest():
    alerts = [
        alert("info", day(10), country_code="A", severity="info"),
        alert("warn-old", day(9), country_code="B", severity="warning"),
        alert("crit", day(9), country_code="C", severity="critical"),
        alert("warn-new", day(10), country_code="D", severity="warning"),
    ]

    assert [run.latest.alert_key for run in open_conditions(alerts, day(9))] == ["crit", "warn-new", "warn-old", "info"]
