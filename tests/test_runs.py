"""Sync arguments are checked before anything starts: one clear line, exit 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest

from pipelines.dates import Window
from pipelines.errors import UsageError
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.lake import Lake
from pipelines.runs import check_sync, parse_types
from pipelines.settings import Settings
from pipelines.state import begin_run
from pipelines.summary import sync_lines, sync_markdown
from pipelines.sync import DayReport, KindReport, SliceFailure, SyncReport, sync_windows
from tests.fixtures.cli import run_cdr

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


@pytest.mark.parametrize(
    ("arguments", "days"),
    [
        ({"start": "0001-01-01", "end": "9999-12-31"}, "739,"),
        ({"date_range": "last_100000_days"}, "100,000 days"),
        ({"date_range": "last_1097_days"}, "1,097 days"),
        ({"start": "1990-01-01", "end": "1995-01-01"}, "1,826 days"),
    ],
)
def test_a_window_longer_than_one_sync_may_cover_is_refused_naming_its_length_and_the_limit(tmp_path, arguments, days):
    with pytest.raises(UsageError) as refused:
        check_sync(settings=_settings(tmp_path), **{"now": "2026-03-10T12:00:00Z", **arguments})
    message = str(refused.value)
    assert days in message and "1,096 days" in message and "CDR_MAX_SYNC_DAYS" in message
    assert "several shorter windows" in message and "\n" not in message
    assert not (tmp_path / "d").exists()


def test_the_limit_counts_only_the_part_up_to_now_and_follows_cdr_max_sync_days(tmp_path):
    longest = check_sync(date_range="last_1096_days", now="2026-03-10T12:00:00Z", settings=_settings(tmp_path))
    assert longest.window.end - longest.window.start == timedelta(days=1096)
    # A far end is not read (the sync stops at now), so it costs nothing and is not refused.
    check_sync(start="2026-03-01", end="9999-12-31", now="2026-03-10T12:00:00Z", settings=_settings(tmp_path))
    narrow = _settings(tmp_path, CDR_MAX_SYNC_DAYS=7)
    check_sync(date_range="last_7_days", now="2026-03-10T12:00:00Z", settings=narrow)
    with pytest.raises(UsageError, match="8 days.*7 days, CDR_MAX_SYNC_DAYS"):
        check_sync(date_range="last_8_days", now="2026-03-10T12:00:00Z", settings=narrow)


def _synced_up_to(settings: Settings, mark: datetime) -> None:
    """A data dir whose record types were last synced up to `mark`."""
    for kind in ("cdrs", "mdrs"):
        begin_run(Lake(settings.data_dir).for_account(DEFAULT_ACCOUNT), kind, Window(mark - timedelta(days=1), mark), [], "earlier").complete(mark)


def test_an_incremental_sync_from_a_mark_too_long_ago_is_refused_naming_the_mark(tmp_path):
    settings = _settings(tmp_path)
    _synced_up_to(settings, datetime(2020, 1, 2, tzinfo=UTC))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UsageError) as refused:
        check_sync(now="2026-03-10T12:00:00Z", settings=settings)
    message = str(refused.value)
    assert "cdrs was last synced up to 2020-01-02T00:00:00.000Z" in message
    assert "2019-12-30T00:00:00.000Z .. 2026-03-10T12:00:00.000Z, 2,263 days" in message and "CDR_MAX_SYNC_DAYS" in message and "--start/--end" in message
    # The flow's own path (the sync plans its incremental windows itself) refuses the same way.
    with pytest.raises(UsageError, match="last synced up to 2020-01-02"):
        sync_windows(["mdrs"], None, Lake(settings.data_dir).for_account(DEFAULT_ACCOUNT), settings, datetime(2026, 3, 10, 12, tzinfo=UTC))
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    # A recent mark is fine.
    _synced_up_to(settings, datetime(2026, 3, 1, tzinfo=UTC))
    assert check_sync(now="2026-03-10T12:00:00Z", settings=settings).windows["cdrs"].start == datetime(2026, 2, 26, tzinfo=UTC)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"date_range": "today", "now": "0001-01-01"}, "bad --now: '0001-01-01' is outside"),
        ({"date_range": "today", "now": "0001-01-01T00:00:00Z"}, "bad --now"),
        ({"date_range": "yesterday", "now": "9999-12-31T23:59:59Z"}, "bad --now"),
        ({"start": "2026-01-01", "end": "2026-01-02", "now": "1969-12-31T23:59:59Z"}, "bad --now"),
        ({"start": "0001-01-01", "end": "0001-01-05"}, "starts at 0001-01-01T00:00:00.000Z, before 1970"),
        ({"start": "9999-12-30", "end": "10000-01-01"}, "bad --end: "),
        ({"start": "0001-01-01", "end": "0001-01-05", "tz": "Asia/Tokyo"}, "bad --start: "),
    ],
)
def test_extreme_years_are_usage_errors_before_anything_starts(tmp_path, arguments, message):
    with pytest.raises(UsageError, match=message):
        check_sync(settings=_settings(tmp_path), **{"now": "2026-03-10T12:00:00Z", **arguments})
    assert not (tmp_path / "d").exists()


def test_cdr_sync_over_every_year_is_one_line_and_exit_2_with_nothing_written(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENTACT_API_KEY", "k")
    code, out, err = run_cdr(
        capsys, monkeypatch, "sync", "--start", "0001-01-01", "--end", "9999-12-31", "--data-dir", str(tmp_path / "d")
    )
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: the window to sync (0001-01-01T00:00:00.000Z .. ")
    assert "CDR_MAX_SYNC_DAYS" in err
    assert not (tmp_path / "d").exists()


def test_types_are_deduplicated_in_order():
    assert parse_types("mdrs, cdrs,mdrs") == ["mdrs", "cdrs"]


def test_cdr_sync_with_a_bad_literal_prints_one_line_and_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "from cdr_app.cli import main; main()", "sync", "--range", "last_x_days",
         "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, check=False, env={"OPENTACT_API_KEY": "k", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "last_x_days" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "d").exists()


def _failed_once(kind: KindReport, slice: Window, cause: str) -> SyncReport:
    """A run of one record type, one of whose slices failed with `cause`."""
    return SyncReport(
        run_id="r1", now=kind.window.end, kinds=(kind,), duration_secs=2.0,
        failures=(SliceFailure(kind=kind.kind, slice=slice, cause=cause),),
    )


def test_the_markdown_summary_has_a_row_per_day_and_names_failed_slices():
    window = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC))
    day2 = Window(datetime(2026, 10, 2, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC))
    kind = KindReport(
        kind="cdrs", window=window, slices=2, skipped=0, landed=1, failed=1, records=10, quarantined=1,
        usage_rows=0, completed=False,
        days=(DayReport(day=date(2026, 10, 1), new=7, updated=2, unchanged=1, quarantined=1),),
    )
    report = _failed_once(kind, day2, "HTTP 503 | after 5 attempts")
    text = sync_markdown(report)
    assert "| 2026-10-01 | 7 | 2 | 1 | 0 | 1 |" in text
    assert "INCOMPLETE: 1 slice failed" in text
    assert "HTTP 503 \\| after 5 attempts" in text
    assert sync_lines(report)[-1].startswith("FAILED cdrs [2026-10-02T00:00:00.000Z")


def test_the_markdown_summary_shows_names_from_the_api_as_typed():
    """A field name or cause quoting the API must not turn into an image, a link or HTML in the Prefect UI."""
    window = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC))
    hostile = ("![](https://t.example/p.png)", "<img src=x>", "[here](https://evil)", "call_id")
    kind = KindReport(
        kind="cdrs", window=window, slices=1, skipped=0, landed=0, failed=1, records=0, quarantined=0,
        usage_rows=0, completed=False, extra_fields=hostile,
    )
    text = sync_markdown(_failed_once(kind, window, "HTTP 500: <script>x</script> *bold*"))
    assert "\\!\\[\\](https://t.example/p.png), \\<img src=x\\>, \\[here\\](https://evil), call\\_id" in text
    assert "HTTP 500: \\<script\\>x\\</script\\> \\*bold\\*" in text
    assert "![" not in text.replace("\\![", "") and "<img" not in text.replace("\\<img", "")
