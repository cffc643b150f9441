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
    valid_forms,
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
    assert format_utc(parse_datetime("2024-02-29T23:59:59.999Z")) == "2024-02-29T23:59:59.999Z"
    assert format_utc(parse_datetime("2024-03-01T01:00:00.123456+02:00")) == "2024-02-29T23:00:00.123Z"


def test_valid_forms_lists_the_contract_table_in_order() -> None:
    assert valid_forms() == LITERAL_FORMS == (
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
