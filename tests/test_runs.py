"""Sync arguments are checked before anything starts: one clear line, exit 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timezone

import pytest

from pipelines.dates import Window
from pipelines.errors import UsageError
from pipelines.runs import check_sync, parse_types
from pipelines.settings import Settings
from pipelines.summary import sync_lines, sync_markdown
from pipelines.sync import DayReport, KindReport, SliceFailure, SyncReport

UTC = timezone.utc


def _settings(tmp_path, **extra):
    values = {"OPENTACT_API_KEY": "k", "OPENTACT_BASE_URL": "http://127.0.0.1:9", "CDR_DATA_DIR": tmp_path / "d"}
    return Settings(**{**values, **extra})


def test_a_literal_resolves_in_the_configured_zone(tmp_path):
    request = check_sync(date_range="yesterday", now="2026-03-10T12:00:00Z", tz="Europe/London", settings=_settings(tmp_path))
    assert request.window == Window(datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC))
    assert request.kinds == ["cdrs", "mdrs"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"date_range": "last_0_days"}, "last_0_days"),
        ({"date_range": "yesterday", "types": "cdrs,calls"}, "--types"),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "start"),
        ({"date_range": "today", "tz": "Mars/Olympus"}, "Mars/Olympus"),
        ({"date_range": "today", "now": "2026-03-10T12:00:00"}, "--now"),
        ({}, "no earlier sync"),
    ],
)
def test_bad_arguments_are_usage_errors_naming_the_problem(tmp_path, arguments, message):
    with pytest.raises(UsageError, match=message):
        check_sync(settings=_settings(tmp_path), **{"now": "2026-03-10T12:00:00Z", **arguments})
    assert not (tmp_path / "d").exists()


def test_a_missing_key_or_plain_http_to_a_remote_host_is_refused_before_any_request(tmp_path):
    with pytest.raises(UsageError, match="OPENTACT_API_KEY"):
        check_sync(date_range="today", settings=Settings(CDR_DATA_DIR=tmp_path))
    with pytest.raises(UsageError, match="http://"):
        check_sync(date_range="today", settings=_settings(tmp_path, OPENTACT_BASE_URL="http://api.opentact.org"))


def test_types_are_deduplicated_in_order():
    assert parse_types("mdrs, cdrs,mdrs") == ["mdrs", "cdrs"]


def test_cdr_sync_with_a_bad_literal_prints_one_line_and_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "from pipelines.cli import main; main()", "sync", "--range", "last_x_days",
         "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, check=False, env={"OPENTACT_API_KEY": "k", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "last_x_days" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "d").exists()


def test_the_markdown_summary_has_a_row_per_day_and_names_failed_slices():
    window = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC))
    day2 = Window(datetime(2026, 10, 2, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC))
    kind = KindReport(
        kind="cdrs", window=window, slices=2, skipped=0, landed=1, failed=1, records=10, quarantined=1,
        usage_rows=0, completed=False,
        days=(DayReport(kind="cdrs", day=date(2026, 10, 1), new=7, updated=2, unchanged=1, quarantined=1),),
    )
    report = SyncReport(
        run_id="r1", now=window.end, kinds=(kind,), duration_secs=2.0,
        failures=(SliceFailure(kind="cdrs", slice=day2, cause="HTTP 503 | after 5 attempts"),),
    )
    text = sync_markdown(report)
    assert "| 2026-10-01 | 7 | 2 | 1 | 0 | 1 |" in text
    assert "INCOMPLETE: 1 slice(s) failed" in text
    assert "HTTP 503 \\| after 5 attempts" in text
    assert sync_lines(report)[-1].startswith("FAILED cdrs [2026-10-02T00:00:00.000Z")
