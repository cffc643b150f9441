"""Date literals and date-time parsing: every expected value below is written by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pipelines.dates import (
    DATETIME_FORMS,
    LITERAL_FORMS,
    Window,
    format_utc,
    parse_datetime,
    resolve_literal,
    resolve_range,
)
from pipelines.errors import UsageError

UTC = timezone.utc


def utc(text: str) -> datetime:
    """'2024-05-15T10:20:30.456' -> that instant in UTC (test helper, independent of the module)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(literal: str, now: str, tz: str = "UTC", week_start: str = "monday") -> tuple[str, str]:
    """Resolve a literal at an ISO instant and return its bounds as API strings."""
    resolved = resolve_literal(literal, now=datetime.fromisoformat(now), tz=tz, week_start=week_start)
    return format_utc(resolved.start), format_utc(resolved.end)


# --------------------------------------------------------------------------- parse_datetime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-29T23:59:59.999Z", utc("2024-02-29T23:59:59.999")),
        ("2024-02-29T23:59:59Z", utc("2024-02-29T23:59:59")),
        ("2024-02-29T23:59Z", utc("2024-02-29T23:59:00")),
        ("2024-02-29T23:59:59.999-00", utc("2024-02-29T23:59:59.999")),
        ("2024-02-29T23:59:59.999-0000", utc("2024-02-29T23:59:59.999")),
        ("2024-02-29T23:59:59.999-00:00", utc("2024-02-29T23:59:59.999")),
        ("2024-02-29T23:59:59-00", utc("2024-02-29T23:59:59")),
        ("2024-02-29T23:59:59-0000", utc("2024-02-29T23:59:59")),
        ("2024-02-29T23:59:59-00:00", utc("2024-02-29T23:59:59")),
        ("2024-02-29T23:59-00", utc("2024-02-29T23:59:00")),
        ("2024-02-29T23:59-0000", utc("2024-02-29T23:59:00")),
        ("2024-02-29T23:59-00:00", utc("2024-02-29T23:59:00")),
        ("2024-02-29T23:59+00:00", utc("2024-02-29T23:59:00")),
        ("2024-02-29", utc("2024-02-29T00:00:00")),
        ("0001-01-01", utc("0001-01-01T00:00:00")),
        ("9999-12-31T23:59:59.999Z", utc("9999-12-31T23:59:59.999")),
        # Other offsets are unambiguous: accepted and converted to UTC.
        ("2024-03-01T01:00:00+02:00", utc("2024-02-29T23:00:00")),
        ("2024-03-01T01:00:00+0200", utc("2024-02-29T23:00:00")),
        ("2024-03-01T01:00+02", utc("2024-02-29T23:00:00")),
        ("2024-12-31T20:00:00.5-05:00", utc("2025-01-01T01:00:00.5")),
        ("2024-05-16T01:30:00+05:30", utc("2024-05-15T20:00:00")),
        # More than milliseconds: truncated to microseconds, never rounded up.
        ("2024-03-01T01:00:00.123456789Z", utc("2024-03-01T01:00:00.123456")),
        ("2024-03-01T01:00:00.999999999Z", utc("2024-03-01T01:00:00.999999")),
        ("2024-03-01T01:00:00.1Z", utc("2024-03-01T01:00:00.100")),
    ],
)
def test_parse_datetime_accepts_every_documented_form(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2024-02-29T23:59:59.999", "has no Z or UTC offset"),
        ("2024-02-29T23:59:59", "has no Z or UTC offset"),
        ("2024-02-29T23:59", "has no Z or UTC offset"),
        ("2024-02-29 23:59:59", "has no Z or UTC offset"),
        ("2024-02-30", "out of range"),
        ("2023-02-29T00:00Z", "out of range"),
        ("2024-13-01T00:00Z", "out of range"),
        ("2024-01-01T24:00Z", "out of range"),
        ("2024-01-01T23:60Z", "out of range"),
        ("2024-01-01T23:59:60Z", "out of range"),
        ("2024-01-01T00:00+24:00", "out of range"),
        ("2024-01-01T00:00+05:60", "out of range"),
        ("0000-01-01", "out of range"),
        ("0001-01-01T00:00+01:00", "out of range"),
        ("9999-12-31T23:00-02:00", "out of range"),
        ("", "is not in an accepted form"),
        ("today", "is not in an accepted form"),
        ("2024-1-01", "is not in an accepted form"),
        ("20240101T000000Z", "is not in an accepted form"),
        ("2024-01-01T00:00:00.Z", "is not in an accepted form"),
        ("2024-01-01T00:00:00.1234567890Z", "is not in an accepted form"),
        ("2024-01-01T00:00:00z", "is not in an accepted form"),
        ("2024-01-01T00:00:00 Z", "is not in an accepted form"),
        (" 2024-01-01", "is not in an accepted form"),
        ("2024-01-01\n", "is not in an accepted form"),
        ("2024-01-01T00:00:00+5:30", "is not in an accepted form"),
        ("2024-01-01T00:00:00+05:3", "is not in an accepted form"),
        ("\u0662\u0660\u0662\u0664-01-01", "is not in an accepted form"),  # Arabic-Indic digits
    ],
)
def test_parse_datetime_rejects_with_the_accepted_forms(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_datetime(text)
    message = str(caught.value)
    assert reason in message
    assert repr(text) in message
    for form in ("YYYY-MM-DDThh:mm:ss.fffZ", "YYYY-MM-DDThh:mm:ssZ", "YYYY-MM-DDThh:mmZ", "-00:00", "YYYY-MM-DD"):
        assert form in message


def test_parse_datetime_round_trips_through_format_utc() -> None:
    assert format_utc(parse_datetime("0099-01-02T03:04:05.006Z")) == "0099-01-02T03:04:05.006Z"
    assert format_utc(parse_datetime("2024-02-29T23:59:59.999Z")) == "2024-02-29T23:59:59.999Z"
    assert format_utc(parse_datetime("2024-03-01T01:00:00.123456+02:00")) == "2024-02-29T23:00:00.123Z"


def test_literal_forms_list_the_contract_table_in_order() -> None:
    assert LITERAL_FORMS == (
        "today", "yesterday", "tomorrow",
        "this_week", "last_week", "next_week",
        "this_month", "last_month", "next_month",
        "last_N_hours", "next_N_hours",
        "last_N_days", "next_N_days",
        "last_N_weeks", "next_N_weeks",
    )
    assert DATETIME_FORMS[0] == "YYYY-MM-DDThh:mm:ss.fffZ"


# --------------------------------------------------------------------------- UTC, ordinary time

# Wednesday 2024-05-15 10:20:30.456 UTC.
ORDINARY = "2024-05-15T10:20:30.456+00:00"


@pytest.mark.parametrize(
    ("literal", "start", "end"),
    [
        ("today", "2024-05-15T00:00:00.000Z", "2024-05-16T00:00:00.000Z"),
        ("yesterday", "2024-05-14T00:00:00.000Z", "2024-05-15T00:00:00.000Z"),
        ("tomorrow", "2024-05-16T00:00:00.000Z", "2024-05-17T00:00:00.000Z"),
        ("this_week", "2024-05-13T00:00:00.000Z", "2024-05-20T00:00:00.000Z"),
        ("last_week", "2024-05-06T00:00:00.000Z", "2024-05-13T00:00:00.000Z"),
        ("next_week", "2024-05-20T00:00:00.000Z", "2024-05-27T00:00:00.000Z"),
        ("this_month", "2024-05-01T00:00:00.000Z", "2024-06-01T00:00:00.000Z"),
        ("last_month", "2024-04-01T00:00:00.000Z", "2024-05-01T00:00:00.000Z"),
        ("next_month", "2024-06-01T00:00:00.000Z", "2024-07-01T00:00:00.000Z"),
        ("last_3_hours", "2024-05-15T07:00:00.000Z", "2024-05-15T10:00:00.000Z"),
        ("next_3_hours", "2024-05-15T11:00:00.000Z", "2024-05-15T14:00:00.000Z"),
        ("last_3_days", "2024-05-12T00:00:00.000Z", "2024-05-15T00:00:00.000Z"),
        ("next_3_days", "2024-05-15T00:00:00.000Z", "2024-05-18T00:00:00.000Z"),
        ("last_2_weeks", "2024-04-29T00:00:00.000Z", "2024-05-13T00:00:00.000Z"),
        ("next_2_weeks", "2024-05-20T00:00:00.000Z", "2024-06-03T00:00:00.000Z"),
        ("last_48_hours", "2024-05-13T10:00:00.000Z", "2024-05-15T10:00:00.000Z"),
        ("last_31_days", "2024-04-14T00:00:00.000Z", "2024-05-15T00:00:00.000Z"),
        ("next_10_weeks", "2024-05-20T00:00:00.000Z", "2024-07-29T00:00:00.000Z"),
        ("last_1000_days", "2021-08-19T00:00:00.000Z", "2024-05-15T00:00:00.000Z"),
    ],
)
def test_every_literal_in_utc_on_an_ordinary_wednesday(literal: str, start: str, end: str) -> None:
    assert window(literal, ORDINARY) == (start, end)


def test_the_result_is_a_utc_window_of_stdlib_datetimes() -> None:
    resolved = resolve_literal("today", now=datetime.fromisoformat(ORDINARY))
    assert resolved == Window(utc("2024-05-15T00:00:00"), utc("2024-05-16T00:00:00"))
    assert resolved.start.utcoffset() == timedelta(0)
    assert type(resolved.start) is datetime


# --------------------------------------------------------------------------- first and last instants


@pytest.mark.parametrize(
    ("literal", "now", "start", "end"),
    [
        # A day's first and last instant, and the instant after.
        ("today", "2024-05-15T00:00:00.000+00:00", "2024-05-15T00:00:00.000Z", "2024-05-16T00:00:00.000Z"),
        ("today", "2024-05-15T23:59:59.999+00:00", "2024-05-15T00:00:00.000Z", "2024-05-16T00:00:00.000Z"),
        ("today", "2024-05-16T00:00:00.000+00:00", "2024-05-16T00:00:00.000Z", "2024-05-17T00:00:00.000Z"),
        ("yesterday", "2024-05-15T23:59:59.999+00:00", "2024-05-14T00:00:00.000Z", "2024-05-15T00:00:00.000Z"),
        # An hour's first and last instant.
        ("last_1_hours", "2024-05-15T10:00:00.000+00:00", "2024-05-15T09:00:00.000Z", "2024-05-15T10:00:00.000Z"),
        ("last_1_hours", "2024-05-15T10:59:59.999+00:00", "2024-05-15T09:00:00.000Z", "2024-05-15T10:00:00.000Z"),
        ("next_1_hours", "2024-05-15T10:00:00.000+00:00", "2024-05-15T11:00:00.000Z", "2024-05-15T12:00:00.000Z"),
        ("next_1_hours", "2024-05-15T10:59:59.999+00:00", "2024-05-15T11:00:00.000Z", "2024-05-15T12:00:00.000Z"),
        # A (Monday) week's first and last instant, and the instant after.
        ("this_week", "2024-05-13T00:00:00.000+00:00", "2024-05-13T00:00:00.000Z", "2024-05-20T00:00:00.000Z"),
        ("last_week", "2024-05-13T00:00:00.000+00:00", "2024-05-06T00:00:00.000Z", "2024-05-13T00:00:00.000Z"),
        ("this_week", "2024-05-19T23:59:59.999+00:00", "2024-05-13T00:00:00.000Z", "2024-05-20T00:00:00.000Z"),
        ("next_week", "2024-05-19T23:59:59.999+00:00", "2024-05-20T00:00:00.000Z", "2024-05-27T00:00:00.000Z"),
        ("this_week", "2024-05-20T00:00:00.000+00:00", "2024-05-20T00:00:00.000Z", "2024-05-27T00:00:00.000Z"),
        # A month's last and first instant.
        ("this_month", "2024-04-30T23:59:59.999+00:00", "2024-04-01T00:00:00.000Z", "2024-05-01T00:00:00.000Z"),
        ("next_month", "2024-04-30T23:59:59.999+00:00", "2024-05-01T00:00:00.000Z", "2024-06-01T00:00:00.000Z"),
        ("this_month", "2024-05-01T00:00:00.000+00:00", "2024-05-01T00:00:00.000Z", "2024-06-01T00:00:00.000Z"),
        ("last_month", "2024-05-01T00:00:00.000+00:00", "2024-04-01T00:00:00.000Z", "2024-05-01T00:00:00.000Z"),
        # A year's last instant (a Tuesday) ...
        ("today", "2024-12-31T23:59:59.999+00:00", "2024-12-31T00:00:00.000Z", "2025-01-01T00:00:00.000Z"),
        ("tomorrow", "2024-12-31T23:59:59.999+00:00", "2025-01-01T00:00:00.000Z", "2025-01-02T00:00:00.000Z"),
        ("this_week", "2024-12-31T23:59:59.999+00:00", "2024-12-30T00:00:00.000Z", "2025-01-06T00:00:00.000Z"),
        ("this_month", "2024-12-31T23:59:59.999+00:00", "2024-12-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"),
        ("next_month", "2024-12-31T23:59:59.999+00:00", "2025-01-01T00:00:00.000Z", "2025-02-01T00:00:00.000Z"),
        ("last_1_hours", "2024-12-31T23:59:59.999+00:00", "2024-12-31T22:00:00.000Z", "2024-12-31T23:00:00.000Z"),
        ("next_1_hours", "2024-12-31T23:59:59.999+00:00", "2025-01-01T00:00:00.000Z", "2025-01-01T01:00:00.000Z"),
        ("next_2_days", "2024-12-31T23:59:59.999+00:00", "2024-12-31T00:00:00.000Z", "2025-01-02T00:00:00.000Z"),
        # ... and the next year's first instant (a Wednesday).
        ("today", "2025-01-01T00:00:00.000+00:00", "2025-01-01T00:00:00.000Z", "2025-01-02T00:00:00.000Z"),
        ("yesterday", "2025-01-01T00:00:00.000+00:00", "2024-12-31T00:00:00.000Z", "2025-01-01T00:00:00.000Z"),
        ("this_month", "2025-01-01T00:00:00.000+00:00", "2025-01-01T00:00:00.000Z", "2025-02-01T00:00:00.000Z"),
        ("last_month", "2025-01-01T00:00:00.000+00:00", "2024-12-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"),
        ("this_week", "2025-01-01T00:00:00.000+00:00", "2024-12-30T00:00:00.000Z", "2025-01-06T00:00:00.000Z"),
        ("last_week", "2025-01-01T00:00:00.000+00:00", "2024-12-23T00:00:00.000Z", "2024-12-30T00:00:00.000Z"),
        ("last_1_hours", "2025-01-01T00:00:00.000+00:00", "2024-12-31T23:00:00.000Z", "2025-01-01T00:00:00.000Z"),
        ("last_3_days", "2025-01-01T00:00:00.000+00:00", "2024-12-29T00:00:00.000Z", "2025-01-01T00:00:00.000Z"),
    ],
)
def test_first_and_last_instants_of_day_hour_week_month_year(literal: str, now: str, start: str, end: str) -> None:
    assert window(literal, now) == (start, end)


@pytest.mark.parametrize(
    ("literal", "now", "start", "end"),
    [
        ("today", "2024-02-29T12:00:00+00:00", "2024-02-29T00:00:00.000Z", "2024-03-01T00:00:00.000Z"),
        ("tomorrow", "2024-02-29T12:00:00+00:00", "2024-03-01T00:00:00.000Z", "2024-03-02T00:00:00.000Z"),
        ("this_week", "2024-02-29T12:00:00+00:00", "2024-02-26T00:00:00.000Z", "2024-03-04T00:00:00.000Z"),
        ("this_month", "2024-02-29T12:00:00+00:00", "2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"),
        ("last_month", "2024-02-29T12:00:00+00:00", "2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z"),
        ("next_month", "2024-02-29T12:00:00+00:00", "2024-03-01T00:00:00.000Z", "2024-04-01T00:00:00.000Z"),
        ("next_month", "2024-01-31T12:00:00+00:00", "2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"),
        ("last_month", "2024-03-15T12:00:00+00:00", "2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"),
        ("last_month", "2024-03-31T23:59:59.999+00:00", "2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"),
        ("last_month", "2025-03-15T12:00:00+00:00", "2025-02-01T00:00:00.000Z", "2025-03-01T00:00:00.000Z"),
        ("yesterday", "2024-03-01T00:00:00+00:00", "2024-02-29T00:00:00.000Z", "2024-03-01T00:00:00.000Z"),
        ("last_2_days", "2024-03-01T00:00:00+00:00", "2024-02-28T00:00:00.000Z", "2024-03-01T00:00:00.000Z"),
        ("last_366_days", "2025-03-01T06:00:00+00:00", "2024-02-29T00:00:00.000Z", "2025-03-01T00:00:00.000Z"),
        ("last_24_hours", "2024-03-01T00:30:00+00:00", "2024-02-29T00:00:00.000Z", "2024-03-01T00:00:00.000Z"),
    ],
)
def test_leap_days(literal: str, now: str, start: str, end: str) -> None:
    assert window(literal, now) == (start, end)


# --------------------------------------------------------------------------- Sunday weeks


@pytest.mark.parametrize(
    ("literal", "now", "start", "end"),
    [
        ("this_week", ORDINARY, "2024-05-12T00:00:00.000Z", "2024-05-19T00:00:00.000Z"),
        ("last_week", ORDINARY, "2024-05-05T00:00:00.000Z", "2024-05-12T00:00:00.000Z"),
        ("next_week", ORDINARY, "2024-05-19T00:00:00.000Z", "2024-05-26T00:00:00.000Z"),
        ("last_2_weeks", ORDINARY, "2024-04-28T00:00:00.000Z", "2024-05-12T00:00:00.000Z"),
        ("next_2_weeks", ORDINARY, "2024-05-19T00:00:00.000Z", "2024-06-02T00:00:00.000Z"),
        # A Sunday's first instant starts a Sunday week ...
        ("this_week", "2024-05-12T00:00:00+00:00", "2024-05-12T00:00:00.000Z", "2024-05-19T00:00:00.000Z"),
        # ... a Saturday's last instant ends it.
        ("this_week", "2024-05-18T23:59:59.999+00:00", "2024-05-12T00:00:00.000Z", "2024-05-19T00:00:00.000Z"),
        ("this_week", "2024-05-19T00:00:00+00:00", "2024-05-19T00:00:00.000Z", "2024-05-26T00:00:00.000Z"),
        ("last_week", "2024-05-19T00:00:00+00:00", "2024-05-12T00:00:00.000Z", "2024-05-19T00:00:00.000Z"),
        # Across a year end: Sunday 2024-12-29.
        ("this_week", "2025-01-01T00:00:00+00:00", "2024-12-29T00:00:00.000Z", "2025-01-05T00:00:00.000Z"),
        # Days and months do not depend on the week start.
        ("today", ORDINARY, "2024-05-15T00:00:00.000Z", "2024-05-16T00:00:00.000Z"),
        ("this_month", ORDINARY, "2024-05-01T00:00:00.000Z", "2024-06-01T00:00:00.000Z"),
    ],
)
def test_sunday_weeks(literal: str, now: str, start: str, end: str) -> None:
    assert window(literal, now, week_start="sunday") == (start, end)


def test_the_same_sunday_is_the_last_day_of_a_monday_week() -> None:
    assert window("this_week", "2024-05-12T00:00:00+00:00") == (
        "2024-05-06T00:00:00.000Z", "2024-05-13T00:00:00.000Z"
    )


def test_week_start_is_case_insensitive() -> None:
    assert window("this_week", ORDINARY, week_start="Sunday") == (
        "2024-05-12T00:00:00.000Z", "2024-05-19T00:00:00.000Z"
    )
    assert window("this_week", ORDINARY, week_start="MONDAY") == (
        "2024-05-13T00:00:00.000Z", "2024-05-20T00:00:00.000Z"
    )


# --------------------------------------------------------------------------- DST, odd offsets

# Each row: (zone, literal, now, start, end). `now` carries its local offset for readability.
ZONED = [
    # America/New_York spring forward: Sun 2024-03-10 02:00 EST -> 03:00 EDT (a 23-hour day).
    ("America/New_York", "today", "2024-03-10T12:00:00-04:00", "2024-03-10T05:00:00.000Z", "2024-03-11T04:00:00.000Z"),
    ("America/New_York", "yesterday", "2024-03-10T12:00:00-04:00", "2024-03-09T05:00:00.000Z", "2024-03-10T05:00:00.000Z"),
    ("America/New_York", "tomorrow", "2024-03-10T12:00:00-04:00", "2024-03-11T04:00:00.000Z", "2024-03-12T04:00:00.000Z"),
    ("America/New_York", "this_week", "2024-03-10T12:00:00-04:00", "2024-03-04T05:00:00.000Z", "2024-03-11T04:00:00.000Z"),
    ("America/New_York", "this_month", "2024-03-10T12:00:00-04:00", "2024-03-01T05:00:00.000Z", "2024-04-01T04:00:00.000Z"),
    ("America/New_York", "last_month", "2024-04-15T12:00:00-04:00", "2024-03-01T05:00:00.000Z", "2024-04-01T04:00:00.000Z"),
    ("America/New_York", "last_3_hours", "2024-03-10T12:00:00-04:00", "2024-03-10T13:00:00.000Z", "2024-03-10T16:00:00.000Z"),
    # 03:30 EDT: the last 2 real hours began at 00:00 EST (three wall-clock hours earlier).
    ("America/New_York", "last_2_hours", "2024-03-10T03:30:00-04:00", "2024-03-10T05:00:00.000Z", "2024-03-10T07:00:00.000Z"),
    ("America/New_York", "next_2_hours", "2024-03-10T01:30:00-05:00", "2024-03-10T07:00:00.000Z", "2024-03-10T09:00:00.000Z"),
    # Fall back: Sun 2024-11-03 02:00 EDT -> 01:00 EST (a 25-hour day).
    ("America/New_York", "today", "2024-11-03T12:00:00-05:00", "2024-11-03T04:00:00.000Z", "2024-11-04T05:00:00.000Z"),
    ("America/New_York", "yesterday", "2024-11-03T12:00:00-05:00", "2024-11-02T04:00:00.000Z", "2024-11-03T04:00:00.000Z"),
    ("America/New_York", "this_month", "2024-11-03T12:00:00-05:00", "2024-11-01T04:00:00.000Z", "2024-12-01T05:00:00.000Z"),
    ("America/New_York", "last_month", "2024-11-03T12:00:00-05:00", "2024-10-01T04:00:00.000Z", "2024-11-01T04:00:00.000Z"),
    ("America/New_York", "last_24_hours", "2024-11-03T12:00:00-05:00", "2024-11-02T17:00:00.000Z", "2024-11-03T17:00:00.000Z"),
    ("America/New_York", "last_7_days", "2024-11-05T12:00:00-05:00", "2024-10-29T04:00:00.000Z", "2024-11-05T05:00:00.000Z"),
    # 01:30 happens twice; the current hour began on the pass `now` is in.
    ("America/New_York", "last_1_hours", "2024-11-03T01:30:00-04:00", "2024-11-03T04:00:00.000Z", "2024-11-03T05:00:00.000Z"),
    ("America/New_York", "next_1_hours", "2024-11-03T01:30:00-04:00", "2024-11-03T06:00:00.000Z", "2024-11-03T07:00:00.000Z"),
    ("America/New_York", "last_2_hours", "2024-11-03T01:30:00-05:00", "2024-11-03T04:00:00.000Z", "2024-11-03T06:00:00.000Z"),
    # The last instant of a local day (23:59:59.999 EDT) and the first of the next.
    ("America/New_York", "today", "2024-05-15T23:59:59.999-04:00", "2024-05-15T04:00:00.000Z", "2024-05-16T04:00:00.000Z"),
    ("America/New_York", "today", "2024-05-16T00:00:00.000-04:00", "2024-05-16T04:00:00.000Z", "2024-05-17T04:00:00.000Z"),
    # Europe/London spring forward: Sun 2024-03-31 01:00 GMT -> 02:00 BST.
    ("Europe/London", "today", "2024-03-31T12:00:00+01:00", "2024-03-31T00:00:00.000Z", "2024-03-31T23:00:00.000Z"),
    ("Europe/London", "tomorrow", "2024-03-31T12:00:00+01:00", "2024-03-31T23:00:00.000Z", "2024-04-01T23:00:00.000Z"),
    ("Europe/London", "this_week", "2024-03-31T12:00:00+01:00", "2024-03-25T00:00:00.000Z", "2024-03-31T23:00:00.000Z"),
    ("Europe/London", "next_week", "2024-03-31T12:00:00+01:00", "2024-03-31T23:00:00.000Z", "2024-04-07T23:00:00.000Z"),
    ("Europe/London", "this_month", "2024-03-31T12:00:00+01:00", "2024-03-01T00:00:00.000Z", "2024-03-31T23:00:00.000Z"),
    ("Europe/London", "next_month", "2024-03-31T12:00:00+01:00", "2024-03-31T23:00:00.000Z", "2024-04-30T23:00:00.000Z"),
    ("Europe/London", "last_3_hours", "2024-03-31T12:00:00+01:00", "2024-03-31T08:00:00.000Z", "2024-03-31T11:00:00.000Z"),
    ("Europe/London", "last_2_hours", "2024-03-31T02:30:00+01:00", "2024-03-30T23:00:00.000Z", "2024-03-31T01:00:00.000Z"),
    # Fall back: Sun 2024-10-27 02:00 BST -> 01:00 GMT.
    ("Europe/London", "today", "2024-10-27T12:00:00+00:00", "2024-10-26T23:00:00.000Z", "2024-10-28T00:00:00.000Z"),
    ("Europe/London", "yesterday", "2024-10-27T12:00:00+00:00", "2024-10-25T23:00:00.000Z", "2024-10-26T23:00:00.000Z"),
    ("Europe/London", "this_month", "2024-10-27T12:00:00+00:00", "2024-09-30T23:00:00.000Z", "2024-11-01T00:00:00.000Z"),
    ("Europe/London", "last_3_hours", "2024-10-27T01:30:00+00:00", "2024-10-26T22:00:00.000Z", "2024-10-27T01:00:00.000Z"),
    ("Europe/London", "next_1_hours", "2024-10-27T01:30:00+01:00", "2024-10-27T01:00:00.000Z", "2024-10-27T02:00:00.000Z"),
    # Asia/Kolkata, +05:30 all year: local days and hours start at :30 UTC.
    ("Asia/Kolkata", "today", "2024-05-16T01:30:00+05:30", "2024-05-15T18:30:00.000Z", "2024-05-16T18:30:00.000Z"),
    ("Asia/Kolkata", "yesterday", "2024-05-16T01:30:00+05:30", "2024-05-14T18:30:00.000Z", "2024-05-15T18:30:00.000Z"),
    ("Asia/Kolkata", "this_week", "2024-05-16T01:30:00+05:30", "2024-05-12T18:30:00.000Z", "2024-05-19T18:30:00.000Z"),
    ("Asia/Kolkata", "this_month", "2024-05-16T01:30:00+05:30", "2024-04-30T18:30:00.000Z", "2024-05-31T18:30:00.000Z"),
    ("Asia/Kolkata", "last_2_hours", "2024-05-16T01:30:00+05:30", "2024-05-15T17:30:00.000Z", "2024-05-15T19:30:00.000Z"),
    ("Asia/Kolkata", "next_1_hours", "2024-05-16T01:30:00+05:30", "2024-05-15T20:30:00.000Z", "2024-05-15T21:30:00.000Z"),
    ("Asia/Kolkata", "this_month", "2024-06-01T01:30:00+05:30", "2024-05-31T18:30:00.000Z", "2024-06-30T18:30:00.000Z"),
    ("Asia/Kolkata", "last_month", "2024-06-01T01:30:00+05:30", "2024-04-30T18:30:00.000Z", "2024-05-31T18:30:00.000Z"),
    # Australia/Adelaide, +09:30 / +10:30. DST ends Sun 2024-04-07 03:00 ACDT -> 02:00 ACST.
    ("Australia/Adelaide", "today", "2024-04-07T12:00:00+09:30", "2024-04-06T13:30:00.000Z", "2024-04-07T14:30:00.000Z"),
    ("Australia/Adelaide", "yesterday", "2024-04-07T12:00:00+09:30", "2024-04-05T13:30:00.000Z", "2024-04-06T13:30:00.000Z"),
    ("Australia/Adelaide", "this_month", "2024-04-07T12:00:00+09:30", "2024-03-31T13:30:00.000Z", "2024-04-30T14:30:00.000Z"),
    ("Australia/Adelaide", "last_3_hours", "2024-04-07T12:00:00+09:30", "2024-04-06T23:30:00.000Z", "2024-04-07T02:30:00.000Z"),
    ("Australia/Adelaide", "last_3_hours", "2024-04-07T03:10:00+09:30", "2024-04-06T14:30:00.000Z", "2024-04-06T17:30:00.000Z"),
    # DST starts Sun 2024-10-06 02:00 ACST -> 03:00 ACDT.
    ("Australia/Adelaide", "today", "2024-10-06T12:00:00+10:30", "2024-10-05T14:30:00.000Z", "2024-10-06T13:30:00.000Z"),
    ("Australia/Adelaide", "this_month", "2024-10-06T12:00:00+10:30", "2024-09-30T14:30:00.000Z", "2024-10-31T13:30:00.000Z"),
    ("Australia/Adelaide", "this_week", "2024-10-06T12:00:00+10:30", "2024-09-29T14:30:00.000Z", "2024-10-06T13:30:00.000Z"),
    ("Australia/Adelaide", "last_2_hours", "2024-10-06T12:00:00+10:30", "2024-10-05T23:30:00.000Z", "2024-10-06T01:30:00.000Z"),
    # America/Havana changes clocks AT midnight. Sun 2024-03-10 00:00 CST -> 01:00 CDT: the
    # day has no midnight and starts at 01:00 CDT ...
    ("America/Havana", "today", "2024-03-10T12:00:00-04:00", "2024-03-10T05:00:00.000Z", "2024-03-11T04:00:00.000Z"),
    ("America/Havana", "yesterday", "2024-03-10T12:00:00-04:00", "2024-03-09T05:00:00.000Z", "2024-03-10T05:00:00.000Z"),
    ("America/Havana", "tomorrow", "2024-03-09T12:00:00-05:00", "2024-03-10T05:00:00.000Z", "2024-03-11T04:00:00.000Z"),
    ("America/Havana", "last_1_hours", "2024-03-10T01:30:00-04:00", "2024-03-10T04:00:00.000Z", "2024-03-10T05:00:00.000Z"),
    # ... Sun 2024-11-03 01:00 CDT -> 00:00 CST: midnight happens twice, the day starts at the first.
    ("America/Havana", "today", "2024-11-03T12:00:00-05:00", "2024-11-03T04:00:00.000Z", "2024-11-04T05:00:00.000Z"),
    ("America/Havana", "yesterday", "2024-11-03T12:00:00-05:00", "2024-11-02T04:00:00.000Z", "2024-11-03T04:00:00.000Z"),
    ("America/Havana", "today", "2024-11-03T00:30:00-05:00", "2024-11-03T04:00:00.000Z", "2024-11-04T05:00:00.000Z"),
    ("America/Havana", "last_1_hours", "2024-11-03T00:30:00-04:00", "2024-11-03T03:00:00.000Z", "2024-11-03T04:00:00.000Z"),
    ("America/Havana", "next_1_hours", "2024-11-03T00:30:00-04:00", "2024-11-03T05:00:00.000Z", "2024-11-03T06:00:00.000Z"),
    ("America/Havana", "last_1_hours", "2024-11-03T00:30:00-05:00", "2024-11-03T04:00:00.000Z", "2024-11-03T05:00:00.000Z"),
    # Midnight inside a gap, not at its start: Toronto went 1919-03-30 23:30 EST -> 00:30 EDT,
    # so 03-31 starts at the transition (00:30 EDT), not at 01:00 EDT or 23:00 EST.
    ("America/Toronto", "today", "1919-03-31T12:00:00-04:00", "1919-03-31T04:30:00.000Z", "1919-04-01T04:00:00.000Z"),
    ("America/Toronto", "yesterday", "1919-03-31T12:00:00-04:00", "1919-03-30T05:00:00.000Z", "1919-03-31T04:30:00.000Z"),
    # An hour start inside a gap: Goose Bay went 1988-04-03 00:01 AST (-4) -> 02:01 ADDT (-2);
    # at 02:30 the current hour began at 02:01, the transition.
    ("America/Goose_Bay", "last_1_hours", "1988-04-03T02:30:00-02:00", "1988-04-03T03:01:00.000Z", "1988-04-03T04:01:00.000Z"),
    ("America/Goose_Bay", "next_1_hours", "1988-04-03T02:30:00-02:00", "1988-04-03T05:01:00.000Z", "1988-04-03T06:01:00.000Z"),
]


@pytest.mark.parametrize(("tz", "literal", "now", "start", "end"), ZONED)
def test_calendar_units_in_a_zone_are_local_and_hours_are_real(
    tz: str, literal: str, now: str, start: str, end: str
) -> None:
    assert window(literal, now, tz=tz) == (start, end)


def test_sunday_weeks_in_a_zone() -> None:
    # Sunday 2024-10-06 in Adelaide starts its own Sunday week, and that week gains the DST hour back.
    assert window("this_week", "2024-10-06T12:00:00+10:30", tz="Australia/Adelaide", week_start="sunday") == (
        "2024-10-05T14:30:00.000Z", "2024-10-12T13:30:00.000Z"
    )
    assert window("this_week", "2024-03-10T12:00:00-04:00", tz="America/New_York", week_start="sunday") == (
        "2024-03-10T05:00:00.000Z", "2024-03-17T04:00:00.000Z"
    )


def test_the_same_instant_is_a_different_day_in_another_zone() -> None:
    assert window("today", "2024-05-15T20:00:00+00:00") == ("2024-05-15T00:00:00.000Z", "2024-05-16T00:00:00.000Z")
    assert window("today", "2024-05-15T20:00:00+00:00", tz="Asia/Kolkata") == (
        "2024-05-15T18:30:00.000Z", "2024-05-16T18:30:00.000Z"
    )


def test_zone_names_are_iana_and_print_canonically() -> None:
    assert window("today", ORDINARY, tz="utc") == ("2024-05-15T00:00:00.000Z", "2024-05-16T00:00:00.000Z")
    assert window("today", ORDINARY, tz="Etc/GMT+5") == ("2024-05-15T05:00:00.000Z", "2024-05-16T05:00:00.000Z")


# --------------------------------------------------------------------------- N=1 equivalences

EQUIVALENCE_CASES = [
    (ORDINARY, "UTC", "monday"),
    ("2024-12-31T23:59:59.999+00:00", "UTC", "sunday"),
    ("2024-03-10T12:00:00-04:00", "America/New_York", "monday"),
    ("2024-11-03T01:30:00-05:00", "America/New_York", "sunday"),
    ("2024-10-27T01:30:00+00:00", "Europe/London", "monday"),
    ("2024-05-16T01:30:00+05:30", "Asia/Kolkata", "sunday"),
    ("2024-04-07T12:00:00+09:30", "Australia/Adelaide", "monday"),
    ("2024-11-03T00:30:00-05:00", "America/Havana", "monday"),
]


@pytest.mark.parametrize(("now", "tz", "week_start"), EQUIVALENCE_CASES)
@pytest.mark.parametrize(
    ("counted", "named"),
    [("last_1_days", "yesterday"), ("next_1_days", "today"), ("last_1_weeks", "last_week"), ("next_1_weeks", "next_week")],
)
def test_n_equals_1_equivalences(counted: str, named: str, now: str, tz: str, week_start: str) -> None:
    assert window(counted, now, tz, week_start) == window(named, now, tz, week_start)


@pytest.mark.parametrize(("now", "tz", "week_start"), EQUIVALENCE_CASES)
def test_hour_windows_are_whole_real_hours(now: str, tz: str, week_start: str) -> None:
    for n in (1, 2, 5, 48):
        last = resolve_literal(f"last_{n}_hours", now=datetime.fromisoformat(now), tz=tz, week_start=week_start)
        nxt = resolve_literal(f"next_{n}_hours", now=datetime.fromisoformat(now), tz=tz, week_start=week_start)
        assert last.end - last.start == timedelta(hours=n)
        assert nxt.end - nxt.start == timedelta(hours=n)
        assert nxt.start - last.end == timedelta(hours=1)  # the current hour, excluded from both
        assert last.end <= datetime.fromisoformat(now) < nxt.start


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("literal", "meant"),
    [
        ("Today", "today"),
        ("LAST_7_DAYS", "last_7_days"),
        ("yesterdy", "yesterday"),
        ("this_mnth", "this_month"),
        ("lastweek", "last_week"),
        ("last7days", "last_7_days"),
        ("last_7_dayz", "last_7_days"),
        ("last_1_day", "last_1_days"),
        ("past_3_days", "last_3_days"),
        ("last_3_months", None),
        ("last_3_years", None),
        ("this_year", None),
        ("", None),
    ],
)
def test_a_mistyped_literal_gets_the_one_it_is_closest_to(literal: str, meant: str | None) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_literal(literal, now=datetime.fromisoformat(ORDINARY))
    hint = f"(did you mean {meant!r}?)" if meant else "did you mean"
    assert (hint in str(caught.value)) == (meant is not None)


@pytest.mark.parametrize(
    ("literal", "complaint"),
    [
        ("last_0_days", "N must be at least 1"),
        ("next_00_hours", "N must be at least 1"),
        ("last_01_days", "N must not have leading zeros"),
        ("last_-1_days", "N must be a positive decimal integer"),
        ("last_+1_days", "N must be a positive decimal integer"),
        ("last_x_days", "N must be a positive decimal integer"),
        ("last_N_days", "N must be a positive decimal integer"),
        ("last_1.5_days", "N must be a positive decimal integer"),
        ("last_1e3_days", "N must be a positive decimal integer"),
        ("last_ 1_days", "N must be a positive decimal integer"),
        ("last_1_2_days", "N must be a positive decimal integer"),
        ("last_\u0663_days", "N must be a positive decimal integer"),  # Arabic-Indic three
        ("last__days", "N is missing"),
        ("last_1_day", "unknown date literal"),
        ("last_3_months", "unknown date literal"),
        ("last_3_years", "unknown date literal"),
        ("past_3_days", "unknown date literal"),
        ("this_year", "unknown date literal"),
        ("lastweek", "unknown date literal"),
        ("", "unknown date literal"),
        (" today", "unknown date literal"),
        ("today\n", "unknown date literal"),
        ("Today", "did you mean 'today'?"),
        ("LAST_7_DAYS", "did you mean 'last_7_days'?"),
        ("last_99999999999_hours", "reaches outside the years 1-9999: use a smaller N"),
        ("last_9999999999999_days", "reaches outside the years 1-9999: use a smaller N"),
        ("next_1000000_weeks", "reaches outside the years 1-9999: use a smaller N"),
        ("last_" + "9" * 5000 + "_days", "reaches outside the years 1-9999: use a smaller N"),
    ],
)
def test_bad_literals_say_what_is_wrong_and_list_the_valid_forms(literal: str, complaint: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_literal(literal, now=datetime.fromisoformat(ORDINARY))
    message = str(caught.value)
    assert complaint in message
    assert "\n" not in message.replace(repr(literal), "")
    for form in LITERAL_FORMS:
        assert form in message


@pytest.mark.parametrize(
    ("literal", "now", "tz"),
    [
        ("today", "9999-12-31T12:00:00+00:00", "UTC"),
        ("next_2_hours", "9999-12-31T22:30:00+00:00", "UTC"),
        ("today", "9999-12-31T12:00:00+00:00", "America/New_York"),
        ("today", "0001-01-01T00:00:00+00:00", "Asia/Kolkata"),
        ("last_1_days", "0001-01-01T12:00:00+00:00", "UTC"),
    ],
)
def test_windows_beyond_the_calendar_are_usage_errors(literal: str, now: str, tz: str) -> None:
    with pytest.raises(UsageError, match="reaches outside the years 1-9999"):
        resolve_literal(literal, now=datetime.fromisoformat(now), tz=tz)


def test_the_calendar_edges_themselves_still_resolve() -> None:
    assert window("yesterday", "9999-12-31T12:00:00+00:00") == ("9999-12-30T00:00:00.000Z", "9999-12-31T00:00:00.000Z")
    assert window("today", "0001-01-01T12:00:00+00:00") == ("0001-01-01T00:00:00.000Z", "0001-01-02T00:00:00.000Z")


def test_a_day_at_the_calendar_edge_does_not_depend_on_its_week() -> None:
    # Monday 0001-01-01's Sunday week began before year 1; its day is still a valid window.
    assert window("today", "0001-01-01T12:00:00+00:00", week_start="sunday") == (
        "0001-01-01T00:00:00.000Z", "0001-01-02T00:00:00.000Z"
    )
    with pytest.raises(UsageError, match="reaches outside the years 1-9999"):
        resolve_literal("this_week", now=datetime.fromisoformat("0001-01-01T12:00:00+00:00"), week_start="sunday")


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "../../etc/passwd", "europe/london", "Europe/London ", "+02:00", "local"])
def test_bad_time_zones_are_usage_errors(tz: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_literal("today", now=datetime.fromisoformat(ORDINARY), tz=tz)
    message = str(caught.value)
    assert f"unknown time zone {tz!r}" in message
    assert "IANA" in message and "Europe/London" in message


@pytest.mark.parametrize("week_start", ["tuesday", "", "mon", "sun", "7"])
def test_bad_week_starts_are_usage_errors(week_start: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_literal("this_week", now=datetime.fromisoformat(ORDINARY), week_start=week_start)
    assert str(caught.value) == f"unknown week start {week_start!r}: valid week starts are monday, sunday"


@pytest.mark.parametrize(
    ("literal", "complaint"),
    [
        ("fortnight", "bad LITERAL: unknown date literal 'fortnight'; valid date literals: "),
        ("last_0_days", "bad LITERAL: date literal 'last_0_days': N must be at least 1; valid date literals: "),
        ("next_99999999_weeks", "bad LITERAL: date literal 'next_99999999_weeks' at 2024-05-15T10:20:30.456000+00:00 reaches outside"),
    ],
)
def test_a_bad_literal_names_where_it_came_from(literal: str, complaint: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_literal(literal, now=datetime.fromisoformat(ORDINARY), name="LITERAL")
    assert str(caught.value).startswith(complaint)


@pytest.mark.parametrize(("kwargs", "complaint"), [({"tz": "Moon/Base"}, "unknown time zone 'Moon/Base'"),
                                                   ({"week_start": "friday"}, "unknown week start 'friday'")])
def test_a_bad_zone_or_week_start_is_not_blamed_on_the_literal(kwargs: dict[str, str], complaint: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_literal("today", now=datetime.fromisoformat(ORDINARY), name="LITERAL", **kwargs)
    assert str(caught.value).startswith(complaint)


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        resolve_literal("today", now=datetime(2024, 5, 15, 10, 20))


# --------------------------------------------------------------------------- explicit ranges


@pytest.mark.parametrize(
    ("start", "end", "tz", "expected"),
    [
        ("2024-03-01T00:00Z", "2024-03-02T00:00:00.000-00:00", "UTC",
         ("2024-03-01T00:00:00.000Z", "2024-03-02T00:00:00.000Z")),
        ("2024-02-29", "2024-03-01", "UTC", ("2024-02-29T00:00:00.000Z", "2024-03-01T00:00:00.000Z")),
        # A bare date is local midnight in the zone; a full date-time keeps its own offset.
        ("2024-03-10", "2024-03-11", "America/New_York", ("2024-03-10T05:00:00.000Z", "2024-03-11T04:00:00.000Z")),
        ("2024-03-10", "2024-03-10T12:00:00Z", "America/New_York",
         ("2024-03-10T05:00:00.000Z", "2024-03-10T12:00:00.000Z")),
        ("2024-03-01", "2024-04-01", "Europe/London", ("2024-03-01T00:00:00.000Z", "2024-03-31T23:00:00.000Z")),
        ("2024-05-16", "2024-05-17", "Asia/Kolkata", ("2024-05-15T18:30:00.000Z", "2024-05-16T18:30:00.000Z")),
        ("2024-11-03", "2024-11-04", "America/Havana", ("2024-11-03T04:00:00.000Z", "2024-11-04T05:00:00.000Z")),
        ("2024-05-15T10:20:30.456+02:00", "2024-05-15T10:20:30.457+02:00", "Asia/Kolkata",
         ("2024-05-15T08:20:30.456Z", "2024-05-15T08:20:30.457Z")),
    ],
)
def test_explicit_ranges(start: str, end: str, tz: str, expected: tuple[str, str]) -> None:
    resolved = resolve_range(start=start, end=end, now=datetime.fromisoformat(ORDINARY), tz=tz)
    assert (format_utc(resolved.start), format_utc(resolved.end)) == expected


def test_a_range_by_literal_is_the_literal() -> None:
    now = datetime.fromisoformat("2024-03-10T12:00:00-04:00")
    assert resolve_range(literal="this_week", now=now, tz="America/New_York", week_start="sunday") == Window(
        utc("2024-03-10T05:00:00"), utc("2024-03-17T04:00:00")
    )


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"literal": "today", "start": "2024-03-01"}, "give either --range or --start/--end, not both"),
        ({"literal": "today", "end": "2024-03-01"}, "give either --range or --start/--end, not both"),
        ({}, "give --range LITERAL, or both --start and --end"),
        ({"start": "2024-03-01"}, "give --range LITERAL, or both --start and --end"),
        ({"end": "2024-03-01"}, "give --range LITERAL, or both --start and --end"),
        ({"start": "2024-03-01", "end": "2024-03-01"}, "the range is empty: --start 2024-03-01 (2024-03-01T00:00:00.000Z) is not before"),
        ({"start": "2024-03-02", "end": "2024-03-01T23:59Z"}, "is not before --end 2024-03-01T23:59Z (2024-03-01T23:59:00.000Z)"),
        ({"start": "2024-03-01T00:00", "end": "2024-03-02"}, "bad --start: date-time '2024-03-01T00:00' has no Z"),
        ({"start": "2024-03-01", "end": "March 2"}, "bad --end: date-time 'March 2' is not in an accepted form"),
        ({"start": "2024-02-30", "end": "2024-03-02"}, "bad --start: date-time '2024-02-30' is out of range"),
        ({"start": "0001-01-01", "end": "0001-01-02", "tz": "Asia/Kolkata"}, "bad --start: '0001-01-01' is out of range"),
        ({"start": "2024-03-01", "end": "2024-03-02", "tz": "Nowhere/Land"}, "unknown time zone 'Nowhere/Land'"),
        ({"start": "2024-03-01", "end": "2024-03-02", "week_start": "friday"}, "unknown week start 'friday'"),
        ({"literal": "last_0_days"}, "bad --range: date literal 'last_0_days': N must be at least 1"),
    ],
)
def test_bad_ranges_are_usage_errors(kwargs: dict[str, str], complaint: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_range(now=datetime.fromisoformat(ORDINARY), **kwargs)
    assert complaint in str(caught.value)


@pytest.mark.parametrize(
    ("tz", "wall", "expected"),
    [
        # Inside a gap (not at its start): the first instant at or after that wall time is the transition.
        ("America/New_York", datetime(2024, 3, 10, 2, 30), utc("2024-03-10T07:00:00")),
        ("America/New_York", datetime(2024, 3, 10, 2, 59, 59), utc("2024-03-10T07:00:00")),
        ("Australia/Adelaide", datetime(2024, 10, 6, 2, 45), utc("2024-10-05T16:30:00")),
        ("Europe/London", datetime(2024, 3, 31, 1, 0, 1), utc("2024-03-31T01:00:00")),
        # Outside gaps the wall time maps as it is.
        ("America/New_York", datetime(2024, 3, 10, 3, 0), utc("2024-03-10T07:00:00")),
        ("America/New_York", datetime(2024, 3, 10, 1, 59, 59), utc("2024-03-10T06:59:59")),
    ],
)
def test_wall_times_skipped_by_dst_map_to_the_end_of_the_gap(tz: str, wall: datetime, expected: datetime) -> None:
    from zoneinfo import ZoneInfo

    from pipelines.dates import _wall_to_utc

    assert _wall_to_utc(wall, ZoneInfo(tz), fold=0) == expected


def test_parse_bound_reads_a_bare_date_as_local_midnight() -> None:
    from pipelines.dates import parse_bound

    assert parse_bound("2024-03-10", tz="America/New_York") == utc("2024-03-10T05:00:00")
    assert parse_bound("2024-03-10") == utc("2024-03-10T00:00:00")
    assert parse_bound("2024-03-10T12:00:00+01:00", tz="America/New_York") == utc("2024-03-10T11:00:00")
    with pytest.raises(UsageError, match=r"^bad --now: date-time '2024-03-10T12:00' has no Z or UTC offset"):
        parse_bound("2024-03-10T12:00", name="--now")
    with pytest.raises(UsageError, match="unknown time zone 'Moon/Base'"):
        parse_bound("2024-03-10", tz="Moon/Base")


def test_zone_name_is_the_canonical_iana_spelling() -> None:
    from pipelines.dates import zone_name

    assert zone_name("utc") == "UTC"
    assert zone_name("Asia/Kolkata") == "Asia/Kolkata"
    with pytest.raises(UsageError, match="unknown time zone 'asia/kolkata'"):
        zone_name("asia/kolkata")
