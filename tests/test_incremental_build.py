"""An incremental build is the full build: after each step of a run of syncs (new days, late records and
re-rates, a malformed record, a re-sync, a report time zone across DST), every table and view of the
incrementally built warehouse equals, row for row, a full build of a copy of the same data dir; and
the comparison catches a build that misses a changed day."""

from __future__ import annotations

import errno
import shutil
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

import duckdb
import pytest

from pipelines.dates import Window
from pipelines.errors import CdrError
from pipelines.models import BuildReport, build, incremental, publish, runner, warehouse_path
from pipelines.models.publish import FailedBuild
from pipelines.opentact import api, client
from pipelines.opentact.client import OpentactClient
from pipelines.settings import Settings
from pipelines.sync import sync
from sandbox.testing import running_sandbox
from tests.fixtures.lake import Record, call, message, usage, write_lake
from tests.test_sync import client_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

UTC = timezone.utc
NEW_YORK = "America/New_York"  # leaves daylight saving time at 2026-11-01 06:00 UTC
WORLD = {
    "seed": 41, "start": "2026-10-28", "calls_per_day": 100, "messages_per_day": 50,
    "rerate_rate": 0.3, "malformed_rate": 0.02,
}
# The sandbox's clock is pinned, so two of them serve the one world as of two instants: the later
# shows the earlier's days re-rated (re-ratings come within 3 days) and the rest of a day cut short.
EARLY = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
LATE = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
# Columns holding the build's own clock or the identity (inode) of the lake files it read, by
# relation: the only values two builds of one lake, one of them in a copy, may differ in.
BUILD_OWN_COLUMNS = {"rpt_build_info": ("built_at",), "build_manifest": ("lake_fingerprints", "lake_footers")}
# What the data dir holds of a build (the warehouse, its WAL, temporaries, a failed one): not copied.
WAREHOUSE_FILES = ("warehouse", ".warehouse")
SAMPLE_ROWS = 3
COMPARE_WORKERS = 2


@pytest.fixture
def anyio_backend() -> str:
    """The pipeline's event loop."""
    return "asyncio"


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[dict[datetime, str]]:
    """The world as of EARLY and as of LATE -> their base URLs, by clock."""
    pinned = {clock: clock.isoformat().replace("+00:00", "Z") for clock in (EARLY, LATE)}
    with running_sandbox(now=pinned[EARLY], **WORLD) as early, running_sandbox(now=pinned[LATE], **WORLD) as late:
        yield {EARLY: early, LATE: late}


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def utc_days(first: date, end: datetime) -> Window:
    """From midnight UTC of `first` to `end`."""
    return Window(midnight(first), end)


async def run_sync(url: str, clock: datetime, data_dir: Path, window: Window, run_id: str) -> None:
    async with OpentactClient(client_config(url)) as opentact:
        report = await sync(list(api.RECORD_TYPES), window, Settings(data_dir=data_dir), opentact, clock, run_id)
    assert report.ok, report


def spy_on_dirty_days(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[set[date]], set[date]] = set
) -> list[set[date]]:
    """Wrap `incremental.dirty_days` (wherever the build reads it) -> the days it found, per call.

    `change` turns the days found into the days the build is given.
    """
    real = incremental.dirty_days
    found: list[set[date]] = []

    def wrapped(previous: object, current: object) -> set[date]:
        days = set(real(previous, current))
        found.append(days)
        return change(days)

    for name, module in list(sys.modules.items()):
        if module is not None and name.startswith("pipelines.") and vars(module).get("dirty_days") is real:
            monkeypatch.setattr(module, "dirty_days", wrapped)
    return found


def without_newest(days: set[date]) -> set[date]:
    return days - {max(days)} if days else days


def full_build_of_a_copy(data_dir: Path, copy: Path, report_timezone: str, now: datetime) -> Path:
    """The data dir copied without its warehouse, built in full -> the copy."""
    shutil.copytree(data_dir, copy, ignore=lambda _, names: [n for n in names if n.startswith(WAREHOUSE_FILES)])
    report = build(copy, report_timezone=report_timezone, full=True, now=now)
    assert report.mode == "full"
    return copy


def differences(built: Path, expected: Path, *, views: bool = True) -> list[str]:
    """Two data dirs' warehouses -> how their relations, columns, rows and macros differ (empty: none).

    Each relation is read in its own warehouse (`use`), where its view text and macros resolve,
    and compared as multisets: every row, exact decimals, doubles bit for bit. Without `views`,
    the views' rows (what reads the lake live, the same in both) are not compared.
    """
    # Many small queries: one thread each, two at a time.
    con = duckdb.connect(config={"threads": 1})
    try:
        for alias, data_dir in (("a", built), ("b", expected)):
            con.execute(f"attach '{warehouse_path(data_dir)}' as {alias} (read_only)")
        found: list[str] = []
        relations = {alias: _relations(con, alias) for alias in "ab"}
        if relations["a"].keys() != relations["b"].keys():
            found.append(
                f"relations only in the incremental build: {sorted(relations['a'].keys() - relations['b'].keys())}; "
                f"only in the full build: {sorted(relations['b'].keys() - relations['a'].keys())}"
            )
        same_columns = []
        for name in sorted(relations["a"].keys() & relations["b"].keys()):
            if not views and relations["a"][name][0] == relations["b"][name][0] == "VIEW":
                continue
            if relations["a"][name] == relations["b"][name]:
                excluded = BUILD_OWN_COLUMNS.get(name, ())
                same_columns.append((name, [(c, kind) for c, kind in relations["a"][name][1] if c not in excluded]))
            else:
                found.append(f"{name}: (kind, columns) {relations['a'][name]} != {relations['b'][name]}")
        with ThreadPoolExecutor(COMPARE_WORKERS) as pool:
            found += [d for d in pool.map(lambda job: _rows_differing(con, *job), same_columns) if d]
        macros = {alias: _macros(con, alias) for alias in "ab"}
        if macros["a"] != macros["b"]:
            only = {alias: sorted(macros[alias] - macros[other]) for alias, other in ("ab", "ba")}
            found.append(f"macros differ: incremental {only['a']}, full {only['b']}")
        return found
    finally:
        con.close()


def _rows_differing(con: duckdb.DuckDBPyConnection, name: str, compared: list[tuple[str, str]]) -> str | None:
    """A relation of both warehouses and the columns compared -> its rows on one side only, described."""
    select = ", ".join(f'"{column}"' for column, _ in compared)
    with con.cursor() as cursor:  # `use` and temp tables are the cursor's own
        for alias in "ab":
            cursor.execute(f"use {alias}")
            cursor.execute(f"create temp table side_{alias} as select {select} from main.{name}")
        cursor.execute("use memory")
        rows = cursor.execute(
            "select 'incremental' as side, * from (select * from side_a except all select * from side_b) "
            "union all select 'full', * from (select * from side_b except all select * from side_a) "
            "order by all"
        ).fetchall()
    if not rows:
        return None
    # The days differing, by the relation's first date column: what a missed day shows as.
    dated = next((i for i, (_, kind) in enumerate(compared) if kind == "DATE"), None)
    on_days = ""
    if dated is not None:
        on_days = f" on {compared[dated][0]} {', '.join(sorted({str(row[1 + dated]) for row in rows}))}"
    shown = "\n    ".join(map(repr, rows[:SAMPLE_ROWS]))
    return f"{name}: {len(rows)} row(s) differ{on_days}, e.g. (side, {select})\n    {shown}"


def _relations(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, tuple[str, tuple[tuple[str, str], ...]]]:
    """A catalog -> each table and view of its main schema: (kind, its (column, type) in order)."""
    kinds = dict(
        con.execute(
            "select table_name, table_type from information_schema.tables "
            "where table_catalog = ? and table_schema = 'main'",
            [catalog],
        ).fetchall()
    )
    columns: dict[str, list[tuple[str, str]]] = {name: [] for name in kinds}
    for table, column, kind in con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = ? and table_schema = 'main' order by table_name, ordinal_position",
        [catalog],
    ).fetchall():
        columns[table].append((column, kind))
    return {name: (kinds[name], tuple(columns[name])) for name in kinds}


def _macros(con: duckdb.DuckDBPyConnection, catalog: str) -> set[tuple[str, str]]:
    """A catalog -> its macros' names and definitions (the build's clock and report time zone among them)."""
    return set(
        con.execute(
            "select function_name, coalesce(macro_definition, '') from duckdb_functions() "
            "where database_name = ? and schema_name = 'main' and not internal "
            "and function_type in ('macro', 'table_macro')",
            [catalog],
        ).fetchall()
    )


class Steps:
    """A data dir synced and built incrementally step by step, each build proved against a full one."""

    def __init__(self, sandboxes: dict[datetime, str], data_dir: Path, scratch: Path) -> None:
        self.sandboxes = sandboxes
        self.data_dir = data_dir
        self.scratch = scratch
        self.syncs = 0
        self.builds = 0

    async def sync(self, clock: datetime, window: Window) -> None:
        """Sync from the sandbox pinned at `clock`, a few minutes after it and after every sync before."""
        self.syncs += 1
        # Two syncs at one instant would tie on when they saw a quarantined record, which
        # stg_quarantine does not order by; a real clock never ties.
        now = clock + timedelta(minutes=5 * self.syncs)
        await run_sync(self.sandboxes[clock], now, self.data_dir, window, f"sync-{self.syncs}")

    def build(self, report_timezone: str, now: datetime) -> BuildReport:
        """Build the data dir (incrementally where it can) and compare it with a full build of a copy."""
        self.builds += 1
        report = build(self.data_dir, report_timezone=report_timezone, now=now)
        copy = full_build_of_a_copy(self.data_dir, self.scratch / f"full-{self.builds}", report_timezone, now)
        found = differences(self.data_dir, copy)
        assert not found, (
            f"build {self.builds}, after sync {self.syncs} ({report.mode} build, {report.days_rebuilt} day(s) rebuilt, "
            f"{report_timezone}) the warehouse differs from a full build:\n" + "\n".join(found)
        )
        return report


async def test_each_incremental_build_equals_a_full_build_of_the_same_lake(
    sandboxes: dict[datetime, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = Steps(sandboxes, tmp_path / "data", tmp_path)
    dirty = spy_on_dirty_days(monkeypatch)
    oct28, oct29, oct30, oct31, nov1 = (date(2026, 10, 28) + timedelta(days=n) for n in range(5))

    # The first build is a full one.
    await steps.sync(EARLY, utc_days(oct28, midnight(oct29)))
    first = steps.build("UTC", EARLY)
    assert first.mode == "full" and "first build" in first.reason

    # New days, the newest cut short by the clock.
    await steps.sync(EARLY, utc_days(oct29, EARLY))
    report = steps.build("UTC", EARLY + timedelta(hours=1))
    assert report.mode == "incremental"
    assert {oct29, oct30} <= dirty[-1] and oct28 not in dirty[-1]
    assert report.days_rebuilt >= len(dirty[-1])

    # Days later: the days synced so far re-rated, the rest of Oct 30 arrived, Oct 31 new.
    await steps.sync(LATE, utc_days(oct28, midnight(nov1)))
    report = steps.build("UTC", LATE)
    assert report.mode == "incremental" and {oct28, oct29, oct30, oct31} <= dirty[-1]

    # A re-sync of an old window, where a record synced before now comes malformed: quarantined and
    # gone from its day, whose reconciliation now counts it as explained.
    validate = client.validate_records
    spoiled: list[str] = []

    def spoil_one(kind: api.RecordType, records: list[dict], *args: object) -> tuple:
        # The first record served, malformed in every page that serves it (a page the sync only
        # sized its slices by is served again).
        if kind == "cdrs" and records and not spoiled:
            spoiled.append(records[0]["id"])
        for record in records if kind == "cdrs" else ():
            if type(record) is dict and record.get("id") in spoiled:
                record["duration_secs"] = -1
        return validate(kind, records, *args)

    with monkeypatch.context() as patched:
        patched.setattr(client, "validate_records", spoil_one)
        await steps.sync(LATE, utc_days(oct28, midnight(oct30)))
    assert spoiled
    report = steps.build("UTC", LATE + timedelta(hours=1))
    assert report.mode == "incremental" and dirty[-1]

    # Another report time zone: every day again, once; then incremental builds in it, across its DST change.
    report = steps.build(NEW_YORK, LATE + timedelta(hours=2))
    assert report.mode == "full" and NEW_YORK in report.reason

    await steps.sync(LATE, utc_days(oct31, midnight(nov1) + timedelta(hours=12)))  # to past the change at 06:00
    report = steps.build(NEW_YORK, LATE + timedelta(hours=3))
    assert report.mode == "incremental" and nov1 in dirty[-1]

    await steps.sync(LATE, utc_days(nov1, LATE))  # the rest of Nov 1, and Nov 2 and 3
    report = steps.build(NEW_YORK, LATE + timedelta(hours=4))
    assert report.mode == "incremental" and nov1 in dirty[-1]
    assert report.days_rebuilt >= len(dirty[-1]) > 0


async def test_a_build_missing_the_newest_changed_day_is_caught(
    sandboxes: dict[datetime, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proof above would fail if a changed day went unbuilt."""
    data = tmp_path / "data"
    oct28, oct30, oct31 = date(2026, 10, 28), date(2026, 10, 30), date(2026, 10, 31)
    await run_sync(sandboxes[EARLY], EARLY, data, utc_days(oct28, midnight(oct30)), "first")
    assert build(data, now=EARLY).mode == "full"

    await run_sync(sandboxes[LATE], LATE, data, utc_days(oct28, midnight(oct31)), "second")
    dirty = spy_on_dirty_days(monkeypatch, without_newest)
    report = build(data, now=LATE)
    assert report.mode == "incremental"
    assert dirty and {oct28, oct30} <= dirty[-1], dirty  # re-rated, and new

    found = differences(data, full_build_of_a_copy(data, tmp_path / "full", "UTC", LATE))
    assert found, f"a build leaving out {max(dirty[-1])} (of {sorted(dirty[-1])}) compared equal to a full build"


def _calls_of(day: int, *extra: Record) -> list[Record]:
    """A few short calls created on that day of March 2026 (one across its midnight), and the extra records."""
    d = f"2026-03-{day:02d}"
    return [
        call(f"d{day}-a", f"{d}T09:00:00Z", f"{d}T09:05:00Z", answered_at=f"{d}T09:00:10Z"),
        call(f"d{day}-b", f"{d}T09:01:00Z", f"{d}T09:03:00Z", answered_at=f"{d}T09:01:05Z"),
        call(f"d{day}-c", f"2026-03-{day - 1:02d}T23:58:00Z", f"{d}T00:02:00Z", answered_at=f"2026-03-{day - 1:02d}T23:58:05Z"),
        *extra,
    ]


def test_calls_lasting_days_and_ids_repeated_across_days_build_as_a_full_build(tmp_path: Path) -> None:
    """A call lasting days changes the concurrency of days far from the day it is filed under: the
    incremental build rebuilds the days it reaches. An id a changed day shares with another day
    makes it a full build (and the unique-id test fails it, as it fails a full build)."""
    data, now = tmp_path / "data", datetime(2026, 3, 20, tzinfo=UTC)
    step = 0

    def build_and_compare(zone: str = "UTC") -> BuildReport:
        nonlocal step
        step += 1
        report = build(data, report_timezone=zone, now=now)
        found = differences(data, full_build_of_a_copy(data, tmp_path / f"full-{step}", zone, now))
        assert not found, f"step {step} ({report.how}):\n" + "\n".join(found)
        return report

    # filed on Mar 12 (its end), in progress since Mar 4: the concurrency of Mar 4-12
    long = call("long", "2026-03-04T12:00:00Z", "2026-03-12T08:00:00Z", answered_at="2026-03-04T12:00:30Z")
    write_lake(data, [call for day in range(2, 15) for call in _calls_of(day)] + [long])
    assert build_and_compare().mode == "full"

    # Mar 12 again, the long call now from Mar 6: Mar 4-5 lose it, though far from Mar 12
    write_lake(data, _calls_of(12, call("long", "2026-03-06T12:00:00Z", "2026-03-12T08:00:00Z", answered_at="2026-03-06T12:00:30Z")))
    report = build_and_compare()
    assert report.mode == "incremental" and report.days_rebuilt == 1

    # Mar 8 again with a call lasting from Mar 3, in another report time zone (a full build first)
    assert build_and_compare("Asia/Tokyo").mode == "full"
    write_lake(data, _calls_of(8, call("longer", "2026-03-03T20:00:00Z", "2026-03-08T01:00:00Z")))
    assert build_and_compare("Asia/Tokyo").mode == "incremental"

    # an id of Mar 2 filed again on Mar 14 (another instant: not a version of it) fails the unique-id
    # test, as in a full build; the previous warehouse stays, and the next build repairs
    repeat = call("d2-a", "2026-03-14T10:00:00Z", "2026-03-14T10:01:00Z", rate="0.0200")
    write_lake(data, _calls_of(14, repeat))
    for data_dir in (data, tmp_path / "full-repeat"):
        if data_dir != data:
            shutil.copytree(data, data_dir, ignore=lambda _, names: [n for n in names if n.startswith(WAREHOUSE_FILES)])
        with pytest.raises(FailedBuild, match="stg_cdrs_id_unique_not_null.*\n.*id='d2-a'"):
            build(data_dir, report_timezone="Asia/Tokyo", now=now, full=data_dir != data)
    write_lake(data, _calls_of(14))
    assert build_and_compare("Asia/Tokyo").mode == "incremental"

    # a leg stuck over a report day with no other call (Mar 16 in Tokyo), then from earlier on
    write_lake(data, _calls_of(17, call("stuck", "2026-03-14T20:00:00Z", "2026-03-17T05:00:00Z")))
    assert build_and_compare("Asia/Tokyo").mode == "incremental"
    with duckdb.connect(str(warehouse_path(data)), read_only=True) as con:
        assert con.execute(
            "select peak_concurrent_calls, calls_at_start from fct_call_concurrency_daily where report_date = '2026-03-16'"
        ).fetchall() == [(1, 1)]
    write_lake(data, _calls_of(17, call("stuck", "2026-03-12T20:00:00Z", "2026-03-17T05:00:00Z")))
    assert build_and_compare("Asia/Tokyo").mode == "incremental"


def _messages_of(day: int, *extra: Record) -> list[Record]:
    """A message created on that day of March 2026, and the extra records."""
    return [message(f"m{day}", f"2026-03-{day:02d}T08:00:00Z"), *extra]


def _failed_tests(data_dir: Path, now: datetime, *, full: bool) -> dict[str, set[str]]:
    """A build that must fail -> each failed data test and the lines it listed (its count and sample rows)."""
    with pytest.raises(FailedBuild) as caught:
        build(data_dir, now=now, full=full)
    failed: dict[str, set[str]] = {}
    for line in str(caught.value).splitlines()[1:]:
        if not line.startswith("  "):
            name, listed = line.split(": ", 1)
            failed[name] = {listed.split("; ", 1)[1]}
        else:
            failed[name].add(line.strip())
    return failed


def test_the_row_by_row_tests_of_an_incremental_build_fail_as_a_full_builds_do(tmp_path: Path) -> None:
    """The data tests declaring `-- incremental` read only the changed days' rows in an incremental
    build: bad calls, messages and usage rows planted in a changed day fail the same tests, listing
    the same rows, as a full build of the same lake."""
    data, now = tmp_path / "data", datetime(2026, 3, 20, tzinfo=UTC)
    days = range(2, 8)
    write_lake(data, [c for day in days for c in _calls_of(day)], [m for day in days for m in _messages_of(day)])
    assert build(data, now=now).mode == "full"

    answered = dict(answered_at="2026-03-05T10:00:05Z")
    bad_calls = [
        call("bad-direction", "2026-03-05T10:00:00Z", "2026-03-05T10:01:10Z", **answered, direction="sideways"),
        # 65 talk seconds in 60/60 increments bill 120
        call("bad-increment", "2026-03-05T10:00:00Z", "2026-03-05T10:01:10Z", **answered, billed_duration_secs=65),
    ]
    bad_messages = [
        message("bad-cost", "2026-03-05T10:00:00Z", parts=2, cost="0.0040"),
        message("bad-encoding", "2026-03-05T11:00:00Z", encoding="utf8"),
        message("bad-status", "2026-03-05T12:00:00Z", status="lost"),
    ]
    repeated = [usage("2026-03-05", "calls", "USD", 3, "0.05", billed_duration_secs=420)] * 2
    write_lake(data, _calls_of(5, *bad_calls), _messages_of(5, *bad_messages), repeated)
    full = tmp_path / "full"
    shutil.copytree(data, full, ignore=lambda _, names: [n for n in names if n.startswith(WAREHOUSE_FILES)])

    failed = _failed_tests(data, now, full=False)
    assert failed == _failed_tests(full, now, full=True)
    assert sorted(failed) == [
        "fct_calls_daily_accepted_values",
        "fct_message_delivery_daily_accepted_values",
        "fct_messages_daily_accepted_values",
        "stg_cdrs_billing_rules",
        "stg_mdrs_cost_matches_parts",
        "stg_usage_key_unique",
    ]
    assert any("rows=2" in line for line in failed["stg_usage_key_unique"])
    assert any("direction='sideways'" in line for line in failed["fct_calls_daily_accepted_values"])
    assert any("id='bad-increment'" in line for line in failed["stg_cdrs_billing_rules"])
    assert any("id='bad-cost'" in line for line in failed["stg_mdrs_cost_matches_parts"])
    assert any("encoding='utf8'" in line for line in failed["fct_message_delivery_daily_accepted_values"])
    assert any("status='lost'" in line for line in failed["fct_messages_daily_accepted_values"])

    write_lake(data, _calls_of(5), _messages_of(5), repeated[:1])
    report = build(data, now=now)
    assert report.mode == "incremental" and report.days_rebuilt == 1
    assert not differences(data, full_build_of_a_copy(data, tmp_path / "full-clean", "UTC", now))


def test_a_day_whose_usage_alone_changed_is_rebuilt(tmp_path: Path) -> None:
    """The API's usage is tracked like the records: a re-synced usage partition makes its day dirty, and
    the reconciliation reads the new totals, as a full build does."""
    data, now = tmp_path / "data", datetime(2026, 3, 20, tzinfo=UTC)
    days = range(2, 8)
    calls = [c for day in days for c in _calls_of(day)]
    write_lake(data, calls, usage_rows=[usage(f"2026-03-{day:02d}", "calls", "USD", 3, "0.05") for day in days])
    assert build(data, now=now).mode == "full"

    write_lake(data, usage_rows=[usage("2026-03-05", "calls", "USD", 4, "0.07")])
    report = build(data, now=now)
    assert report.mode == "incremental" and report.days_rebuilt == 1
    assert not differences(data, full_build_of_a_copy(data, tmp_path / "full", "UTC", now))
    with duckdb.connect(str(warehouse_path(data)), read_only=True) as con:
        api = con.execute(
            "select utc_date, api_records, api_cost from rpt_reconciliation_daily "
            "where product = 'calls' order by utc_date"
        ).fetchall()
    assert [(day.day, records, str(cost)) for day, records, cost in api] == [
        (day, 4 if day == 5 else 3, "0.070000000" if day == 5 else "0.050000000") for day in days
    ]


def test_an_incremental_build_failing_a_data_test_leaves_the_previous_warehouse_as_it_was(tmp_path: Path) -> None:
    """The incremental build changes a copy of the warehouse: a failed data test keeps that copy apart
    and the previous warehouse whole; the next build repairs."""
    data, now = tmp_path / "data", datetime(2026, 3, 20, tzinfo=UTC)
    write_lake(data, [call for day in range(2, 8) for call in _calls_of(day)])
    assert build(data, now=now).mode == "full"
    before = warehouse_path(data).read_bytes()

    overbilled = call("over", "2026-03-05T10:00:00Z", "2026-03-05T10:01:00Z", answered_at="2026-03-05T10:00:05Z",
                      billed_duration_secs=600)
    write_lake(data, _calls_of(5, overbilled))
    with pytest.raises(FailedBuild, match="stg_cdrs_billing_rules"):
        build(data, now=now)
    assert warehouse_path(data).read_bytes() == before
    assert (data / "warehouse.failed.duckdb").is_file()

    write_lake(data, _calls_of(5))
    report = build(data, now=now)
    assert report.mode == "incremental" and report.days_rebuilt == 1
    assert not differences(data, full_build_of_a_copy(data, tmp_path / "full", "UTC", now))

    # a write-ahead log beside the warehouse is not in the file an incremental build would copy
    Path(f"{warehouse_path(data)}.wal").write_bytes(b"")
    write_lake(data, _calls_of(6))
    report = build(data, now=now)
    assert report.mode == "full" and "write-ahead log" in report.reason


def test_an_incremental_build_writes_each_model_into_the_copy_as_soon_as_it_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The models' rows go into the copy of the previous warehouse beside the other models, not all at the
    end: when the models' jobs are done, the copy already holds each model as this build made it."""
    data, now = tmp_path / "data", datetime(2026, 3, 20, tzinfo=UTC)
    write_lake(data, [call for day in range(2, 8) for call in _calls_of(day)])
    assert build(data, now=now).mode == "full"
    write_lake(data, _calls_of(5, call("late", "2026-03-05T09:02:00Z", "2026-03-05T09:04:00Z",
                                        answered_at="2026-03-05T09:02:05Z")))
    # an incremental model, and one rebuilt whole by every build
    models = ("fct_calls_daily", "rpt_finance_cost_by_connection")
    differing: dict[str, int] = {}
    real = runner._build_all

    def spy(con: duckdb.DuckDBPyConnection, *rest: object) -> object:
        done = real(con, *rest)
        for name in models:
            copied, built = f"new_warehouse.main.{name}", f"memory.main.{name}"
            differing[name] = con.execute(
                f"select count(*) from ((from {copied} except all from {built}) union all "
                f"(from {built} except all from {copied}))"
            ).fetchall()[0][0]
        return done

    monkeypatch.setattr(runner, "_build_all", spy)
    report = build(data, now=now)
    monkeypatch.setattr(runner, "_build_all", real)
    assert report.mode == "incremental" and report.days_rebuilt == 1
    assert differing == dict.fromkeys(models, 0)
    assert not differences(data, full_build_of_a_copy(data, tmp_path / "full", "UTC", now))


def test_an_incremental_build_whose_copy_fails_leaves_the_previous_warehouse_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The previous warehouse is copied in a thread while the changed days are built: a copy that fails
    (a full disk) fails the build with one line, and leaves the previous warehouse whole and no temporary."""
    data, now = tmp_path / "data", datetime(2026, 3, 20, tzinfo=UTC)
    write_lake(data, [call for day in range(2, 8) for call in _calls_of(day)])
    assert build(data, now=now).mode == "full"
    before = warehouse_path(data).read_bytes()
    write_lake(data, _calls_of(5, call("late", "2026-03-05T11:00:00Z", "2026-03-05T11:04:00Z")))

    def full_disk(src: BinaryIO, dst: BinaryIO) -> None:
        dst.write(src.read(4096))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(publish, "_copy_whole", full_disk)
    with pytest.raises(CdrError, match=r"^cannot create a warehouse in .*: No space left on device$"):
        build(data, now=now)
    assert warehouse_path(data).read_bytes() == before
    assert [path.name for path in data.iterdir() if path.name.startswith(".warehouse")] == []
