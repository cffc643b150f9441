"""`cdr dates`: one JSON object on success; one stderr line and exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdr_app.cli import app
from pipelines.dates import LITERAL_FORMS
from tests.fixtures.cli import run_cdr

runner = CliRunner()
CDR = Path(sys.executable).with_name("cdr")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["dates", "this_week", "--now", "2024-03-10T12:00:00-04:00", "--tz", "America/New_York",
             "--week-start", "sunday"],
            '{"literal": "this_week", "timezone": "America/New_York", "week_start": "sunday", '
            '"start": "2024-03-10T05:00:00.000Z", "end": "2024-03-17T04:00:00.000Z"}',
        ),
        (
            ["dates", "last_month", "--now", "2024-03-31T23:59:59.999Z"],
            '{"literal": "last_month", "timezone": "UTC", "week_start": "monday", '
            '"start": "2024-02-01T00:00:00.000Z", "end": "2024-03-01T00:00:00.000Z"}',
        ),
        (
            ["dates", "last_2_hours", "--now", "2024-10-27T01:30-00:00", "--tz", "Europe/London"],
            '{"literal": "last_2_hours", "timezone": "Europe/London", "week_start": "monday", '
            '"start": "2024-10-26T23:00:00.000Z", "end": "2024-10-27T01:00:00.000Z"}',
        ),
        (
            ["dates", "today", "--now", "2024-05-15T20:00:00Z", "--tz", "Asia/Kolkata", "--week-start", "Sunday"],
            '{"literal": "today", "timezone": "Asia/Kolkata", "week_start": "sunday", '
            '"start": "2024-05-15T18:30:00.000Z", "end": "2024-05-16T18:30:00.000Z"}',
        ),
        # A bare-date --now is local midnight in --tz, here the first instant of New York's 23-hour day.
        (
            ["dates", "today", "--now", "2024-03-10", "--tz", "America/New_York"],
            '{"literal": "today", "timezone": "America/New_York", "week_start": "monday", '
            '"start": "2024-03-10T05:00:00.000Z", "end": "2024-03-11T04:00:00.000Z"}',
        ),
        (
            ["dates", "next_1_weeks", "--now", "2024-12-31T23:59:59.999+00:00", "--tz", "utc"],
            '{"literal": "next_1_weeks", "timezone": "UTC", "week_start": "monday", '
            '"start": "2025-01-06T00:00:00.000Z", "end": "2025-01-13T00:00:00.000Z"}',
        ),
    ],
)
def test_dates_prints_one_json_object_with_keys_in_order(args: list[str], expected: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == expected + "\n"
    assert list(json.loads(result.stdout)) == ["literal", "timezone", "week_start", "start", "end"]


def test_zone_and_week_start_default_to_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDR_TIMEZONE", "Australia/Adelaide")
    monkeypatch.setenv("CDR_WEEK_START", "sunday")
    result = runner.invoke(app, ["dates", "this_week", "--now", "2024-10-06T12:00:00+10:30"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "literal": "this_week", "timezone": "Australia/Adelaide", "week_start": "sunday",
        "start": "2024-10-05T14:30:00.000Z", "end": "2024-10-12T13:30:00.000Z",
    }


def test_options_override_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDR_TIMEZONE", "Australia/Adelaide")
    monkeypatch.setenv("CDR_WEEK_START", "sunday")
    result = runner.invoke(
        app, ["dates", "this_week", "--now", "2024-05-15T10:00Z", "--tz", "UTC", "--week-start", "monday"]
    )
    assert json.loads(result.stdout)["start"] == "2024-05-13T00:00:00.000Z"


def test_now_defaults_to_the_current_time() -> None:
    before = datetime.now(timezone.utc)
    result = runner.invoke(app, ["dates", "next_1_days"])
    after = datetime.now(timezone.utc)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    # next_1_days is today (UTC here): its start is the midnight of the day the call ran on.
    starts = {f"{moment:%Y-%m-%d}T00:00:00.000Z" for moment in (before, after)}
    assert printed["start"] in starts


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["dates", "last_0_days", "--now", "2024-05-15T10:00Z"], "bad LITERAL: date literal 'last_0_days': N must be at least 1"),
        (["dates", "last_-1_days", "--now", "2024-05-15T10:00Z"], "bad LITERAL: date literal 'last_-1_days': N must be a"),
        (["dates", "last_x_days", "--now", "2024-05-15T10:00Z"], "bad LITERAL: date literal 'last_x_days': N must be a"),
        (["dates", "last_01_days", "--now", "2024-05-15T10:00Z"], "bad LITERAL: date literal 'last_01_days': N must not"),
        (["dates", "someday", "--now", "2024-05-15T10:00Z"], "bad LITERAL: unknown date literal 'someday'"),
        (["dates", "last_3_fortnights"], "bad LITERAL: unknown date literal 'last_3_fortnights'"),
        (["dates", "last_9999999999999_hours", "--now", "2024-05-15T10:00Z"],
         "bad LITERAL: date literal 'last_9999999999999_hours' reaches outside the years 1-9999"),
        (["dates", "next_99999999_weeks", "--now", "2024-05-15T10:00Z"],
         "bad LITERAL: date literal 'next_99999999_weeks' at 2024-05-15T10:00:00+00:00 reaches outside the years 1-9999"),
        (["dates", "today", "--now", "2024-05-15T10:00Z", "--tz", "Mars/Olympus_Mons"],
         "bad --tz: Mars/Olympus_Mons is not allowed: an IANA time zone name such as UTC, Europe/London"),
        (["dates", "today", "--now", "2024-05-15T10:00Z", "--week-start", "tuesday"],
         "bad --week-start: tuesday is not allowed: monday or sunday"),
        (["dates", "today", "--now", "2024-05-15T10:00:00"], "bad --now: date-time '2024-05-15T10:00:00' has no Z"),
        (["dates", "today", "--now", "yesterday"], "bad --now: date-time 'yesterday' is not in an accepted form"),
        (["dates", "today", "--now", "2024-02-30T10:00Z"], "bad --now: date-time '2024-02-30T10:00Z' is out of range"),
        # the argument is named as the help and the README write it
        (["dates"], "Missing argument 'LITERAL'"),
    ],
)
def test_bad_input_is_one_stderr_line_and_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], complaint: str
) -> None:
    code, out, err = run_cdr(capsys, monkeypatch, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1
    assert complaint in err
    if "--now" in complaint:
        assert "YYYY-MM-DDThh:mm:ss.fffZ" in err
    elif "bad LITERAL" in complaint:
        for form in LITERAL_FORMS:
            assert form in err


def test_the_help_names_the_argument_as_its_errors_do() -> None:
    usage = runner.invoke(app, ["dates", "--help"]).output
    assert "cdr dates [OPTIONS] {LITERAL}" in usage and "\n  LITERAL " in usage


def test_the_installed_console_script_fails_cleanly() -> None:
    proc = subprocess.run(
        [str(CDR), "dates", "last_0_days", "--now", "2024-05-15T10:00Z"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: bad LITERAL: date literal 'last_0_days': N must be at least 1; valid date literals: ")
    assert proc.stderr.count("\n") == 1


def test_the_installed_console_script_prints_the_window() -> None:
    proc = subprocess.run(
        [str(CDR), "dates", "today", "--now", "2024-11-03T00:30:00-05:00", "--tz", "America/Havana"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "literal": "today", "timezone": "America/Havana", "week_start": "monday",
        "start": "2024-11-03T04:00:00.000Z", "end": "2024-11-04T05:00:00.000Z",
    }


@pytest.mark.parametrize("now", ["1969-12-31T00:00:00Z", "1900-01-01", "0001-01-02", "9999-01-01T00:00:00Z"])
def test_a_now_a_sync_cannot_run_at_is_refused_as_sync_refuses_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, now: str
) -> None:
    monkeypatch.setenv("OPENTACT_API_KEY", "key")
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9")
    told = run_cdr(capsys, monkeypatch, "dates", "today", "--now", now)
    assert told == run_cdr(capsys, monkeypatch, "sync", "--range", "today", "--now", now, "--data-dir", str(tmp_path))
    assert told == (2, "", f"error: bad --now: {now!r} is outside the instants a sync can run at "
                           "(1970-01-01T00:00:00.000Z to before 9999-01-01T00:00:00.000Z)\n")
    assert list(tmp_path.iterdir()) == []
