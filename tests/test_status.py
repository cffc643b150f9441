"""`cdr status`: what each stage left in the data dir, read back exactly; bad state is one line, never a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pytest
from pydantic import SecretStr

from dashboards.render import render_site
from pipelines.dates import Window, format_utc
from pipelines.land import quarantine
from pipelines.accounts import DEFAULT_ACCOUNT, Account
from pipelines.lake import Lake
from pipelines.models.publish import FailedBuild, new_warehouse, warehouse_path
from pipelines.opentact import api
from pipelines.opentact.records import Rejected
from pipelines.opentact.client import ClientConfig, OpentactClient
from pipelines.runs import SYNC_LOG, read_sync_runs, recorded_sync
from pipelines.settings import Settings
from pipelines.state import begin_run, landed_path, read_state
from pipelines.status import read_status, status_lines, synced_at
from pipelines.sync import sync, sync_accounts
from sandbox.testing import TEST_API_KEY, running_sandbox
from tests.dashboards.dashboard_fixtures import build_warehouse
from tests.fixtures.cli import CDR_ARGV, run_cdr
from tests.fixtures.lake import call, read_quarantine, usage, write_lake
from tests.fixtures.landed import land
from tests.test_sync import FakeClient, RECORDS, at, day_window

UTC = timezone.utc
KIND_KEYS = ["first_day", "last_day", "high_water_mark", "gaps", "records", "quarantined"]
TOP_KEYS = ["data_dir", "synced", "cdrs", "mdrs", "last_sync", "last_build", "dashboards"]
NOW = datetime(2026, 10, 8, 6, 0, tzinfo=UTC)
SYNCED = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 6, tzinfo=UTC))
WORLD = {"seed": 7, "calls_per_day": 60, "messages_per_day": 30, "malformed_rate": 0.05}


def status_json(capsys, monkeypatch, data_dir: Path) -> dict:
    code, out, err = run_cdr(capsys, monkeypatch, "status", "--json", "--data-dir", str(data_dir))
    assert (code, err) == (0, ""), err
    return json.loads(out)


# -- a data dir synced from the sandbox, once -----------------------------------------------------


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five UTC days of both record types synced from the sandbox (some records malformed), as run `run-a`."""
    data_dir = tmp_path_factory.mktemp("synced") / "data"
    _sync_from_sandbox(data_dir, "run-a")
    return data_dir


def _sync_from_sandbox(data_dir: Path, run_id: str) -> None:
    """SYNCED of both record types, from a sandbox serving WORLD, into the data dir as run `run_id`."""
    config = dict(base_url="", api_key=SecretStr(TEST_API_KEY), page_size=100, backoff_base_secs=0.02, settle_lag=timedelta(minutes=2))

    async def run(url: str) -> None:
        async with OpentactClient(ClientConfig(**{**config, "base_url": url})) as client:
            report = await sync(list(api.RECORD_TYPES), SYNCED, Settings(data_dir=data_dir), client, NOW, run_id)
        assert report.ok

    with running_sandbox(start="2026-10-01", now=format_utc(NOW), **WORLD) as url:
        asyncio.run(run(url))


@pytest.fixture
def data_dir(synced: Path, tmp_path: Path) -> Path:
    """A copy of the synced data dir, this test's own."""
    return Path(shutil.copytree(synced, tmp_path / "data"))


def test_a_data_dir_never_synced_says_so_and_exits_0(tmp_path, capsys, monkeypatch):
    folder = tmp_path
    code, out, err = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(folder))
    assert (code, err) == (0, "")
    assert out.startswith(f"data dir    {folder}: never synced (`cdr sync --range last_7_days`")
    assert "cdrs        never synced\nmdrs        never synced\nlast sync   none logged\n" in out
    document = status_json(capsys, monkeypatch, folder)
    assert list(document) == TOP_KEYS and document["synced"] is False
    empty = dict.fromkeys(KIND_KEYS) | {"gaps": [], "records": 0, "quarantined": 0}
    assert document["cdrs"] == document["mdrs"] == empty
    assert document["last_sync"] == {
        "run_id": None, "types": [], "started_at": None, "finished_at": None, "status": None, "failed_slices": [],
        "error": None, "changed_days": {},
    }
    assert document["last_build"] == {"built_at": None, "status": None, "sync_run_id": None, "how": None}
    assert document["dashboards"] == {"made_at": None, "site": f"{folder}/site"}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("as_json", [(), ("--json",)], ids=["text", "json"])
def test_a_data_dir_that_does_not_exist_is_refused_in_one_line_not_called_never_synced(
    tmp_path, capsys, monkeypatch, as_json
):
    # As `cdr build` and `cdr report` refuse it: a mistyped --data-dir must not read as an empty one.
    absent = tmp_path / "absent"
    code, out, err = run_cdr(capsys, monkeypatch, "status", *as_json, "--data-dir", str(absent))
    assert (code, out, err) == (2, "", f"error: data dir {absent} does not exist: sync first (`cdr sync`) or pass --data-dir\n")
    assert list(tmp_path.iterdir()) == []


def test_a_synced_lake_reports_its_days_mark_records_quarantine_and_a_deleted_partition_as_a_gap(
    data_dir, capsys, monkeypatch
):
    lake = Lake(data_dir).for_account(DEFAULT_ACCOUNT)
    (data_dir / "lake/cdrs/account=default/date=2026-10-03/data.parquet").unlink()
    document = status_json(capsys, monkeypatch, data_dir)
    assert list(document) == TOP_KEYS and document["synced"] is True
    for kind in api.RECORD_TYPES:
        rows = sum(pl.read_parquet(path).height for path in (data_dir / "lake" / kind).glob("account=*/date=*/data.parquet"))
        rejected = read_quarantine(lake, kind).height
        assert rows > 0 and rejected > 0
        assert document[kind] == {
            "first_day": "2026-10-01",
            "last_day": "2026-10-05",
            "high_water_mark": format_utc(read_state(lake, kind).high_water_mark),
            # the API's usage counted records for the day the lake no longer has
            "gaps": ["2026-10-03"] if kind == "cdrs" else [],
            "records": rows,
            "quarantined": rejected,
        }
    assert document["cdrs"]["high_water_mark"] == "2026-10-06T00:00:00.000Z"
    run = document["last_sync"]
    assert (run["run_id"], run["types"], run["status"], run["failed_slices"], run["error"]) == (
        "run-a", ["cdrs", "mdrs"], "completed", [], None
    )
    assert run["started_at"] <= run["finished_at"]

    code, out, err = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(data_dir))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"data dir    {data_dir}"
    assert lines[1] == "cdrs        2026-10-01 to 2026-10-05 (5 days), synced up to 2026-10-06 00:00:00 UTC"
    assert lines[2] == f"            {document['cdrs']['records']:,} records, {document['cdrs']['quarantined']:,} quarantined"
    assert lines[3] == "            missing 1 day: 2026-10-03"
    assert lines[6].startswith("last sync   completed: run run-a (cdrs,mdrs), started ")
    assert lines[-2:] == ["last build  none (`cdr build` makes the warehouse)", f"dashboards  none in {data_dir}/site (`cdr dashboards`)"]


def test_after_a_build_and_the_dashboards_status_says_when_from_which_sync_and_the_pages_show_the_run(
    data_dir, capsys, monkeypatch
):
    assert run_cdr(capsys, monkeypatch, "build", "--data-dir", str(data_dir))[0] == 0
    assert run_cdr(capsys, monkeypatch, "dashboards", "--data-dir", str(data_dir))[0] == 0
    document = status_json(capsys, monkeypatch, data_dir)
    build, made = document["last_build"], document["dashboards"]["made_at"]
    assert (build["status"], build["sync_run_id"], build["how"]) == ("passed", "run-a", "full build: first build")
    finished = document["last_sync"]["finished_at"]
    assert finished <= build["built_at"] <= made
    ran = datetime.fromisoformat(finished.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M UTC")
    index = (data_dir / "site/index.html").read_text("utf-8")
    assert f"2026-10-06 00:00 UTC (last sync finished {ran})" in index
    out = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(data_dir))[1]
    assert out.splitlines()[-2].endswith(", from sync run-a (completed): data tests passed; full build: first build")
    # the next build, on the same lake, is an incremental one with nothing to redo
    assert run_cdr(capsys, monkeypatch, "build", "--data-dir", str(data_dir))[0] == 0
    assert status_json(capsys, monkeypatch, data_dir)["last_build"]["how"] == "incremental build: 0 changed day(s) rebuilt"
    code, built = run_cdr(capsys, monkeypatch, "build", "--full", "--data-dir", str(data_dir))[:2]
    assert code == 0 and "(full build: asked for (--full); report time zone" in built
    assert out.splitlines()[-1].startswith("dashboards  made 20") and out.endswith(f" in {data_dir}/site\n")


def test_a_window_synced_again_counts_each_quarantined_record_once_as_the_warehouse_does(data_dir, capsys, monkeypatch):
    before = status_json(capsys, monkeypatch, data_dir)
    files = sorted(data_dir.glob("quarantine/*/account=*/date=*/*.jsonl"))
    _sync_from_sandbox(data_dir, "run-b")  # the same window again: its malformed records are set aside again
    assert len(sorted(data_dir.glob("quarantine/*/account=*/date=*/*.jsonl"))) > len(files)
    after = status_json(capsys, monkeypatch, data_dir)
    for kind in api.RECORD_TYPES:
        assert after[kind]["quarantined"] == before[kind]["quarantined"] > 0
        assert read_quarantine(Lake(data_dir).for_account(DEFAULT_ACCOUNT), kind).height > after[kind]["quarantined"]
    assert run_cdr(capsys, monkeypatch, "build", "--data-dir", str(data_dir))[0] == 0
    assert _warehouse_quarantined(data_dir) == {(DEFAULT_ACCOUNT, k): after[k]["quarantined"] for k in api.RECORD_TYPES}


def _warehouse_quarantined(data_dir: Path) -> dict[tuple[str, str], int]:
    """A built data dir -> the warehouse's quarantined records per (account, record type)."""
    with duckdb.connect(str(warehouse_path(data_dir)), read_only=True) as con:
        rows = con.execute("select account, kind, count(*) from stg_quarantine group by all").fetchall()
    return {(account, kind): count for account, kind, count in rows}


# -- without a server ------------------------------------------------------------------------------


def test_a_landed_day_without_records_is_no_gap_but_a_day_never_landed_or_counted_by_usage_is(tmp_path):
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    write_lake(tmp_path, calls=[
        call(f"c{day}", f"2026-10-0{day}T10:00:00Z", f"2026-10-0{day}T10:01:00Z") for day in (1, 2, 5, 7)
    ])
    # Days 1-3 and 5-7 landed; 3 and 6 with no records; 4 never landed.
    for first, last in ((1, 3), (5, 7)):
        window = day_window(first, last)
        begin_run(lake, "cdrs", window, [window], "run-1").complete(at(8))
    assert read_status(tmp_path).kinds[0].gaps == (date(2026, 10, 4),)
    # The API's usage counted records on day 6: the lake lacks them.
    write_lake(tmp_path, usage_rows=[usage("2026-10-06", "calls", "USD", 3, "0.03", billed_duration_secs=180)])
    status = read_status(tmp_path)
    assert status.kinds[0].gaps == (date(2026, 10, 4), date(2026, 10, 6))
    assert (status.kinds[0].first_day, status.kinds[0].last_day, status.kinds[0].records) == (
        date(2026, 10, 1), date(2026, 10, 7), 4
    )
    # The terminal shows missing days as ranges.
    for first, last in ((8, 10), (14, 14)):
        window = day_window(first, last)
        begin_run(lake, "cdrs", window, [window], "run-1").complete(at(15))
    assert "            missing 5 days: 2026-10-04, 2026-10-06, 2026-10-11..2026-10-13" in status_lines(read_status(tmp_path))


def test_a_build_whose_data_tests_failed_is_recorded_as_failed(tmp_path, capsys, monkeypatch):
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    with recorded_sync(lake, "run-9", ["cdrs", "mdrs"]) as logged:
        logged.finish([])
    with pytest.raises(FailedBuild), new_warehouse(tmp_path) as temp:
        temp.write_bytes(b"a build")
        raise FailedBuild("1 data test failed")
    build = status_json(capsys, monkeypatch, tmp_path)["last_build"]
    assert (build["status"], build["sync_run_id"]) == ("failed", "run-9")
    out = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(tmp_path))[1]
    assert "from sync run-9 (completed): data tests FAILED (kept as warehouse.failed.duckdb)" in out


def test_the_dashboards_show_the_mark_and_when_the_last_sync_finished(tmp_path):
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    warehouse = build_warehouse(tmp_path / "warehouse.duckdb")
    window = Window(datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 1, 2, 0, tzinfo=UTC))
    for kind in api.RECORD_TYPES:
        begin_run(lake, kind, window, [window], "run-1").complete(window.end)
    assert synced_at(tmp_path).ran_at is None
    clock = iter([datetime(2026, 11, 1, 2, 1, tzinfo=UTC), datetime(2026, 11, 1, 2, 7, 30, tzinfo=UTC)])
    with recorded_sync(lake, "run-1", ["cdrs", "mdrs"], clock=lambda: next(clock)) as logged:
        logged.finish([])
    before = datetime.now(UTC).replace(microsecond=0)
    render_site(warehouse, tmp_path / "site", synced_at=synced_at(tmp_path), now=datetime(2026, 11, 1, 3, tzinfo=UTC))
    index = (tmp_path / "site/index.html").read_text("utf-8")
    assert "Data synced: 2026-11-01 02:00 UTC (last sync finished 2026-11-01 02:07 UTC)" in index
    # made by the real clock, as the sync and build record theirs, whatever instant the pages judge the data at
    made = read_status(tmp_path).dashboards_made_at
    assert made is not None and before <= made <= datetime.now(UTC)
    assert f"Pages made</dt><dd>{made:%Y-%m-%d %H:%M} UTC" in index


# -- bad input: one line, no traceback ------------------------------------------------------------


@pytest.mark.parametrize(
    ("plant", "code", "message"),
    [
        (lambda d: d.write_text("not a folder"), 2, "the data dir {d} is a file, not a folder: give --data-dir (CDR_DATA_DIR) a folder"),
        (lambda d: _write(d / landed_path(DEFAULT_ACCOUNT, "cdrs"), b"{garbled"), 1,
         "sync state file {d}/state/account=default/cdrs/landed.json is corrupt"),
        (lambda d: _write(d / SYNC_LOG, b"[]"), 1, "the log of sync runs {d}/state/syncs.json is corrupt"),
        (lambda d: _write(d / "last_build.json", b'{"version": 1, "status": "passed"}'), 1, "{d}/last_build.json is corrupt (it has no 'built_at')"),
        (lambda d: _write(d / "site/site.json", b"\xff"), 1, "{d}/site/site.json is corrupt"),
        (lambda d: _write(d / "lake/cdrs/account=default/date=2026-10-02/data.parquet", b"junk"), 1,
         "{d}/lake/cdrs/account=default/date=2026-10-02/data.parquet is not a readable Parquet file"),
        (lambda d: _write(d / "quarantine/cdrs/account=default/date=2026-10-02/run-1-a.jsonl", b'{"kind": "cdrs"}\n{"kind'), 1,
         "{d}/quarantine/cdrs/account=default/date=2026-10-02/run-1-a.jsonl is not readable quarantine JSON lines "
         "(Invalid Input Error: a quarantined line is not JSON): move it out of the data dir"),
    ],
)
def test_a_file_status_cannot_read_is_one_line(tmp_path, capsys, monkeypatch, plant, code, message):
    data = tmp_path / "data"
    plant(data)
    for args in ((), ("--json",)):
        exit_code, out, err = run_cdr(capsys, monkeypatch, "status", *args, "--data-dir", str(data))
        assert (exit_code, out) == (code, "")
        assert err.startswith("error: " + message.format(d=data)) and err.count("\n") == 1, err


def test_a_data_dir_that_is_a_file_gets_one_answer_from_every_command(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    data.write_text("not a folder")
    monkeypatch.setenv("OPENTACT_API_KEY", "test-key")
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9")  # refused before any request
    commands = (["sync", "--range", "today"], ["build"], ["dashboards"], ["sql", "select 1"], ["alerts"],
                ["report", "finance", "--month", "2026-10"])
    for command in commands:
        exit_code, out, err = run_cdr(capsys, monkeypatch, *command, "--data-dir", str(data))
        assert (exit_code, out, err) == (
            2, "", f"error: the data dir {data} is a file, not a folder: give --data-dir (CDR_DATA_DIR) a folder\n"
        ), command


def test_the_console_script_prints_status_without_a_traceback(tmp_path):
    _write(tmp_path / SYNC_LOG, b"{")
    result = subprocess.run([*CDR_ARGV, "status", "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# -- several accounts ------------------------------------------------------------------------------


def _account_lake(data_dir: Path, account: str, calls=(), usage_rows=(), quarantined: dict[str, int] | None = None) -> None:
    """An account's cdrs partitions, calls usage and quarantined cdrs, written where its sync writes them."""
    lake = Lake(data_dir).for_account(account)
    days = sorted({c["created_at"].date() for c in calls})
    for day in days:
        rows = [c for c in calls if c["created_at"].date() == day]
        lake.write_partition("cdrs", day, pl.DataFrame(rows, schema=api.CDR_SCHEMA, orient="row"))
    for row in usage_rows:
        lake.write_partition("usage_cdrs", row["date"], pl.DataFrame([row], schema=api.USAGE_SCHEMA, orient="row"))
    for day, count in (quarantined or {}).items():
        raws = [orjson.dumps({"id": f"{account}-{day}-{n}", "cost": "lots"}).decode() for n in range(count)]
        _quarantine(lake, "cdrs", "run-1", date.fromisoformat(day), raws)


def _quarantine(lake, kind: str, run_id: str, day: date, raws: list[str], now: datetime = NOW) -> None:
    """Records (their raw text) set aside as malformed by a sync of one UTC day, as it sets them aside."""
    start = datetime.combine(day, datetime.min.time(), UTC)
    window = Window(start, start + timedelta(days=1))
    assert quarantine(lake, kind, run_id, [Rejected("malformed", raw, kind, window, 1) for raw in raws], now)


@pytest.fixture
def two_accounts(tmp_path: Path) -> Path:
    """acme synced cdrs and mdrs up to 2026-10-06; globex only cdrs, up to 2026-10-04, and a day past it.

    Each account's usage counts a day the other landed without records: a gap only by the other's count.
    """
    acme = [call(f"a{n}", f"2026-10-0{day}T10:0{n}:00Z", f"2026-10-0{day}T10:0{n}:30Z") for n, day in enumerate((1, 2, 2, 3, 5))]
    globex = [call(f"g{n}", f"2026-10-0{day}T11:0{n}:00Z", f"2026-10-0{day}T11:0{n}:30Z") for n, day in enumerate((1, 1, 3, 5))]
    _account_lake(tmp_path, "acme", acme, [usage("2026-10-02", "calls", "USD", 2, "0.02")], {"2026-10-02": 2})
    _account_lake(tmp_path, "globex", globex, [usage("2026-10-04", "calls", "EUR", 1, "0.01")], {"2026-10-03": 1})
    land(tmp_path, "2026-10-01T00:00:00Z", "2026-10-06T00:00:00Z", account="acme")
    land(tmp_path, "2026-10-01T00:00:00Z", "2026-10-04T00:00:00Z", kinds=("cdrs",), account="globex")
    clock = iter([datetime(2026, 10, 6, 0, 5, tzinfo=UTC), datetime(2026, 10, 6, 0, 9, tzinfo=UTC)])
    with recorded_sync(Lake(tmp_path), "run-2", ["cdrs", "mdrs"], clock=lambda: next(clock)) as logged:
        logged.account("acme", "completed")
        logged.account("globex", "failed", "the API rejected the key")
        logged.finish([])
    return tmp_path


def _kind(first, last, mark, gaps, records, quarantined) -> dict:
    return dict(zip(KIND_KEYS, (first, last, mark, gaps, records, quarantined), strict=True))


def test_several_accounts_each_show_their_own_days_marks_gaps_records_and_the_run_outcomes(two_accounts, capsys, monkeypatch):
    document = status_json(capsys, monkeypatch, two_accounts)
    acme = {
        "cdrs": _kind("2026-10-01", "2026-10-05", "2026-10-06T00:00:00.000Z", [], 5, 2),
        "mdrs": _kind("2026-10-01", "2026-10-05", "2026-10-06T00:00:00.000Z", [], 0, 0),
    }
    globex = {
        # day 2 landed without records (acme's usage counted it: not globex's), day 4 never landed
        "cdrs": _kind("2026-10-01", "2026-10-05", "2026-10-04T00:00:00.000Z", ["2026-10-04"], 4, 1),
        "mdrs": _kind(None, None, None, [], 0, 0),
    }
    assert list(document) == [*TOP_KEYS, "accounts"] and document["synced"] is True
    assert document["accounts"] == {"acme": acme, "globex": globex}
    # the data dir as a whole: every account's days, the least advanced mark, the gaps of any, sums
    assert document["cdrs"] == _kind("2026-10-01", "2026-10-05", "2026-10-04T00:00:00.000Z", ["2026-10-04"], 9, 3)
    assert document["mdrs"] == acme["mdrs"]
    run = document["last_sync"]
    assert (run["run_id"], run["status"], run["error"]) == ("run-2", "incomplete", "account globex: the API rejected the key")
    assert run["accounts"] == [
        {"account": "acme", "status": "completed", "error": None},
        {"account": "globex", "status": "failed", "error": "the API rejected the key"},
    ]

    code, out, err = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(two_accounts))
    assert (code, err) == (0, "")
    assert out.splitlines()[:16] == [
        f"data dir    {two_accounts}",
        "account     acme",
        "cdrs        2026-10-01 to 2026-10-05 (5 days), synced up to 2026-10-06 00:00:00 UTC",
        "            5 records, 2 quarantined",
        "mdrs        2026-10-01 to 2026-10-05 (5 days), synced up to 2026-10-06 00:00:00 UTC",
        "            0 records, 0 quarantined",
        "account     globex",
        "cdrs        2026-10-01 to 2026-10-05 (5 days), synced up to 2026-10-04 00:00:00 UTC",
        "            4 records, 1 quarantined",
        "            missing 1 day: 2026-10-04",
        "mdrs        never synced",
        "last sync   incomplete: run run-2 (cdrs,mdrs), started 2026-10-06 00:05:00 UTC, finished 2026-10-06 00:09:00 UTC",
        "            account acme: completed",
        "            account globex: failed (the API rejected the key)",
        "last build  none (`cdr build` makes the warehouse)",
        f"dashboards  none in {two_accounts}/site (`cdr dashboards`)",
    ]


def test_many_accounts_status_sorts_the_lake_by_account_once(tmp_path, monkeypatch):
    """A reseller's hundreds of accounts: each lake file is placed in its account once, not once per account
    (which grew with the square of the accounts), and each account still gets exactly its own figures."""
    names = [f"a{n:02d}" for n in range(30)]
    for n, name in enumerate(names):
        calls = [call(f"{name}-{i}", f"2026-10-0{day}T10:0{i}:00Z", f"2026-10-0{day}T10:0{i}:30Z")
                 for i, day in enumerate((1, 2, 2)[: 1 + n % 3])]
        _account_lake(tmp_path, name, calls, [usage("2026-10-03", "calls", "USD", 1, "0.01")])
        land(tmp_path, "2026-10-01T00:00:00Z", "2026-10-04T00:00:00Z", account=name)
    files = len(list(tmp_path.glob("lake/*/account=*/date=*/data.parquet")))
    asked = []
    placed = Lake.partition_account
    monkeypatch.setattr(Lake, "partition_account", staticmethod(lambda relative: asked.append(relative) or placed(relative)))
    status = read_status(tmp_path)
    assert len(asked) <= files
    cdrs = {a.account: a.kinds[0] for a in status.accounts}
    assert list(cdrs) == names
    for n, name in enumerate(names):
        # day 3's calls the usage counted are gone: the one missing day of each account
        assert (cdrs[name].records, cdrs[name].gaps) == (1 + n % 3, (date(2026, 10, 3),)), name


def _reseller(data_dir: Path, count: int, failed: dict[str, str]) -> list[str]:
    """`count` accounts of one call a day synced up to 2026-10-04 (the last sync failed `failed`'s accounts) -> names."""
    names = [f"a{n:02d}" for n in range(count)]
    for name in names:
        calls = [call(f"{name}-{day}", f"2026-10-0{day}T10:00:00Z", f"2026-10-0{day}T10:00:30Z") for day in (1, 2, 3)]
        _account_lake(data_dir, name, calls)
        land(data_dir, "2026-10-01T00:00:00Z", "2026-10-04T00:00:00Z", account=name)
    clock = iter([datetime(2026, 10, 4, 0, 5, tzinfo=UTC), datetime(2026, 10, 4, 0, 9, tzinfo=UTC)])
    with recorded_sync(Lake(data_dir), "run-9", ["cdrs", "mdrs"], clock=lambda: next(clock)) as logged:
        for name in names:
            logged.account(name, "failed" if name in failed else "completed", failed.get(name))
        logged.finish([])
    return names


def test_many_accounts_show_their_records_together_and_only_the_accounts_needing_a_look(tmp_path, capsys, monkeypatch):
    _reseller(tmp_path, 14, {"a05": "the API rejected the key"})
    (tmp_path / "lake/cdrs/account=a03/date=2026-10-02/data.parquet").unlink()  # lost, as its usage counted it
    _account_lake(tmp_path, "a03", usage_rows=[usage("2026-10-02", "calls", "USD", 1, "0.01")])
    shutil.rmtree(tmp_path / "state/account=a11/mdrs")  # a11's messages never synced
    land(tmp_path, "2026-10-04T00:00:00Z", "2026-10-05T00:00:00Z", account="a09")  # a09 synced further by hand
    for name in ("a12", "a13"):  # a12 and a13 synced less far than most
        shutil.rmtree(tmp_path / f"state/account={name}")
        land(tmp_path, "2026-10-01T00:00:00Z", "2026-10-03T00:00:00Z", account=name)

    code, out, err = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(tmp_path))
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        "accounts    14, their records together below; 4 accounts with missing days, a record type never synced, "
        "or synced less far than most, each below",
        "cdrs        2026-10-01 to 2026-10-04 (4 days), synced up to 2026-10-03 00:00:00 UTC",
        "            41 records, 0 quarantined",
        "            missing 1 day: 2026-10-02",
        "mdrs        2026-10-01 to 2026-10-04 (4 days), synced up to 2026-10-03 00:00:00 UTC",
        "            0 records, 0 quarantined",
        "account     a03",
        "cdrs        2026-10-01 to 2026-10-03 (3 days), synced up to 2026-10-04 00:00:00 UTC",
        "            2 records, 0 quarantined",
        "            missing 1 day: 2026-10-02",
        "mdrs        2026-10-01 to 2026-10-03 (3 days), synced up to 2026-10-04 00:00:00 UTC",
        "            0 records, 0 quarantined",
        "account     a11",
        "cdrs        2026-10-01 to 2026-10-03 (3 days), synced up to 2026-10-04 00:00:00 UTC",
        "            3 records, 0 quarantined",
        "mdrs        never synced",
        "account     a12",
        "cdrs        2026-10-01 to 2026-10-03 (3 days), synced up to 2026-10-03 00:00:00 UTC",
        "            3 records, 0 quarantined",
        "mdrs        2026-10-01 to 2026-10-02 (2 days), synced up to 2026-10-03 00:00:00 UTC",
        "            0 records, 0 quarantined",
        "account     a13",
        "cdrs        2026-10-01 to 2026-10-03 (3 days), synced up to 2026-10-03 00:00:00 UTC",
        "            3 records, 0 quarantined",
        "mdrs        2026-10-01 to 2026-10-02 (2 days), synced up to 2026-10-03 00:00:00 UTC",
        "            0 records, 0 quarantined",
        "last sync   incomplete: run run-9 (cdrs,mdrs), started 2026-10-04 00:05:00 UTC, finished 2026-10-04 00:09:00 UTC",
        "            13 accounts completed",
        "            account a05: failed (the API rejected the key)",
        "last build  none (`cdr build` makes the warehouse)",
        f"dashboards  none in {tmp_path}/site (`cdr dashboards`)",
    ]


def test_many_accounts_show_at_most_ten_accounts_blocks_and_outcomes(tmp_path, capsys, monkeypatch):
    # eleven causes, each its own line: ten of them shown
    names = _reseller(tmp_path, 12, {f"a{n:02d}": f"the lake of a{n:02d} is broken" for n in range(11)})
    for name in names:
        shutil.rmtree(tmp_path / f"state/account={name}/mdrs")
    code, out, _ = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(tmp_path))
    lines = out.splitlines()
    assert [line.removeprefix("account     ") for line in lines if line.startswith("account     ")] == names[:10]
    assert "            and 2 more accounts so (`cdr status --json` has each account's figures)" in lines
    outcomes = [line.strip() for line in lines if line.startswith("            account ")]
    assert outcomes == [f"account {name}: failed (the lake of {name} is broken)" for name in names[:10]]
    assert "            1 account completed" in lines
    assert "            and 1 more account (`cdr status --json` lists each one's outcome)" in lines

    in_step = tmp_path / "in-step"
    _reseller(in_step, 11, {})
    code, out, _ = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(in_step))
    assert out.splitlines()[1] == ("accounts    11, their records together below; none with missing days, a record type "
                                   "never synced, or synced less far than most")
    assert "account     " not in out and "            11 accounts completed" in out.splitlines()


def test_many_accounts_outcomes_give_each_cause_once_with_a_few_of_its_accounts(tmp_path, capsys, monkeypatch):
    # A reseller's lapsed keys (each cause naming its own variable) and slices failed in an outage: a line each with a
    # few of their accounts, as the sync's error line gives them, not a line per account up to ten.
    data = tmp_path / "data"
    names = _reseller(data, 30, {})
    _listing(monkeypatch, tmp_path, names)  # each key in a variable of its own, as the causes name them
    outcomes = {
        name: ("failed", f"API key rejected (401) by http://127.0.0.1:9: check {name.upper()}_KEY (and that it belongs "
                         "to this environment)")
        for name in names[:8]
    }
    outcomes |= {name: ("incomplete", None) for name in names[8:12]}
    outcomes[names[12]] = ("failed", "the lake is broken")
    with recorded_sync(Lake(data), "run-10", ["cdrs", "mdrs"]) as logged:
        for name in names:
            logged.account(name, *outcomes.get(name, ("completed", None)))
        logged.finish([])
    code, out, err = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(data))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("last sync "))
    assert lines[start + 1:start + 5] == [
        "            17 accounts completed",
        "            accounts a00, a01, a02, ... (8 accounts): failed (API key rejected (401) by http://127.0.0.1:9: "
        "check each one's api_key_env variable (and that it belongs to this environment))",
        "            accounts a08, a09, a10, ... (4 accounts): incomplete",
        "            account a12: failed (the lake is broken)",
    ]
    assert lines[start + 5].startswith("last build ")
    # the JSON has each one's outcome
    assert [a["account"] for a in status_json(capsys, monkeypatch, data)["last_sync"]["accounts"]] == names


def test_the_data_of_several_accounts_is_as_fresh_as_the_least_recently_synced_one(two_accounts):
    assert synced_at(two_accounts).up_to == datetime(2026, 10, 4, tzinfo=UTC)
    land(two_accounts, "2026-10-04T00:00:00Z", "2026-10-07T00:00:00Z", account="globex")
    assert synced_at(two_accounts).up_to == datetime(2026, 10, 6, tzinfo=UTC)  # now acme is behind


def test_one_account_of_an_accounts_file_shows_as_the_one_account_of_no_file(tmp_path, capsys, monkeypatch):
    for account, folder in ((DEFAULT_ACCOUNT, tmp_path / "default"), ("acme", tmp_path / "acme")):
        _account_lake(folder, account, [call("c1", "2026-10-02T10:00:00Z", "2026-10-02T10:01:00Z")], quarantined={"2026-10-02": 1})
        land(folder, "2026-10-01T00:00:00Z", "2026-10-04T00:00:00Z", account=account)
    default, acme = (status_json(capsys, monkeypatch, tmp_path / name) for name in ("default", "acme"))
    assert list(acme) == TOP_KEYS and acme["cdrs"] == _kind("2026-10-01", "2026-10-03", "2026-10-04T00:00:00.000Z", [], 1, 1)
    assert json.dumps(acme).replace(str(tmp_path / "acme"), "D") == json.dumps(default).replace(str(tmp_path / "default"), "D")
    texts = [run_cdr(capsys, monkeypatch, "status", "--data-dir", str(tmp_path / name))[1] for name in ("default", "acme")]
    assert texts[0].replace(str(tmp_path / "default"), "D") == texts[1].replace(str(tmp_path / "acme"), "D")


def test_re_synced_quarantine_counts_each_record_once_per_account_and_kind_by_id_else_raw_text(
    tmp_path, capsys, monkeypatch
):
    acme, globex = (Lake(tmp_path).for_account(name) for name in ("acme", "globex"))
    day = date(2026, 10, 2)
    first = [
        '{"id": "r1", "cost": "x"}',
        '{"id": "r2", "cost": "y"}',
        '{"cost": "no id"}',  # no id: the record is its raw text
        '{"id": "", "cost": "empty id"}',
        '{"id": "r3", "cost": ',  # not JSON
    ]
    rerated = '{"id": "r1", "cost": "z", "updated_at": "2026-10-03T00:00:00Z"}'  # a new version of r1
    later = NOW + timedelta(days=1)
    for raws, run_id, now in ((first, "run-1", NOW), ([*first, rerated, '{"cost": "other"}'], "run-2", later)):
        _quarantine(acme, "cdrs", run_id, day, raws, now)
        _quarantine(acme, "mdrs", run_id, day, ['{"id": "r1"}'], now)  # the same id in another kind
        _quarantine(globex, "cdrs", run_id, day, ['{"id": "r1"}', '{"cost": "no id"}'], now)  # ... another account
    document = status_json(capsys, monkeypatch, tmp_path)
    counts = {
        (account, kind): document["accounts"][account][kind]["quarantined"]
        for account in ("acme", "globex") for kind in api.RECORD_TYPES
    }
    # acme's cdrs: r1 (twice, then re-rated), r2, the two texts without an id, the empty id, the text not JSON
    assert counts == {("acme", "cdrs"): 6, ("acme", "mdrs"): 1, ("globex", "cdrs"): 2, ("globex", "mdrs"): 0}
    assert (document["cdrs"]["quarantined"], document["mdrs"]["quarantined"]) == (8, 1)
    # the warehouse tells them apart by the same key
    assert run_cdr(capsys, monkeypatch, "build", "--data-dir", str(tmp_path))[0] == 0
    assert _warehouse_quarantined(tmp_path) == {key: count for key, count in counts.items() if count}


def test_an_account_whose_key_is_not_set_is_named_once_in_the_run_status_shows(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CDR_TEST_ACME_KEY", raising=False)
    cause = "CDR_TEST_ACME_KEY is not set (or is empty): export it with the account's API key"
    accounts = [Account("acme", "CDR_TEST_ACME_KEY", None, "http://127.0.0.1:9")]
    window = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC))
    report = asyncio.run(sync_accounts(["cdrs"], window, Settings(data_dir=tmp_path), accounts, NOW, "run-1"))
    assert report.accounts[0].error == f"account acme: {cause}"
    (run,) = read_sync_runs(Lake(tmp_path))
    assert (run.status, run.error, run.accounts[0].error) == ("failed", f"account acme: {cause}", cause)
    out = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(tmp_path))[1]
    assert f"            account acme: {cause}\n" in out and out.count("acme") == 1
    # with several accounts, each one's outcome on a line of its own, naming it once
    _account_lake(tmp_path, "acme", [call("a1", "2026-10-01T10:00:00Z", "2026-10-01T10:01:00Z")])
    _account_lake(tmp_path, "globex", [call("g1", "2026-10-01T11:00:00Z", "2026-10-01T11:01:00Z")])
    out = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(tmp_path))[1]
    assert f"            account acme: failed ({cause})\n" in out and out.count(cause) == 1
    assert status_json(capsys, monkeypatch, tmp_path)["last_sync"]["accounts"] == [
        {"account": "acme", "status": "failed", "error": cause}
    ]


def _listing(monkeypatch, folder: Path, names: list[str]) -> None:
    """An accounts file listing `names` (each key in a variable of its own, never read by `cdr status`)."""
    path = folder / "accounts.toml"
    path.write_text("".join(f'[accounts.{name}]\napi_key_env = "{name.upper().replace("-", "_")}_KEY"\n' for name in names))
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(path))


def test_listed_accounts_the_data_dir_holds_nothing_of_show_as_never_synced(tmp_path, capsys, monkeypatch):
    # A reseller's accounts whose first sync failed have no folder: counted, named among those needing a look, with
    # the command of their first sync (the JSON has each, its days and marks null), not left out of "accounts".
    data = tmp_path / "data"
    names = _reseller(data, 12, {})
    lapsed = [f"lapsed-{n}" for n in range(4)]
    before = status_json(capsys, monkeypatch, data)
    _listing(monkeypatch, tmp_path, [*names, *lapsed])
    code, out, err = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(data))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[1] == ("accounts    16, their records together below; 4 accounts with missing days, a record type "
                        "never synced, or synced less far than most, each below")
    assert lines[6] == ("accounts    lapsed-0, lapsed-1, lapsed-2, ... (4 accounts): never synced (`cdr sync "
                        "--only-missing --range last_7_days` lands their first days)")
    assert lines[7].startswith("last sync ") and "account     " not in out
    document = status_json(capsys, monkeypatch, data)
    never = _kind(None, None, None, [], 0, 0)
    assert list(document["accounts"]) == sorted([*names, *lapsed])
    assert all(document["accounts"][name] == {"cdrs": never, "mdrs": never} for name in lapsed)
    # the data dir's own figures are as without them
    assert {key: document[key] for key in ("cdrs", "mdrs")} == {key: before[key] for key in ("cdrs", "mdrs")}

    # up to ten accounts, each in its place: one never synced is named with its own first sync
    few = tmp_path / "few"
    _reseller(few, 2, {})
    _listing(monkeypatch, tmp_path, ["a00", "a01", "lapsed-0"])
    lines = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(few))[1].splitlines()
    assert lines[lines.index("account     a01") + 5] == (
        "account     lapsed-0: never synced (`cdr sync --account lapsed-0 --range last_7_days` lands its first days)"
    )
    assert lines[lines.index("account     a01") + 6].startswith("last sync ")
