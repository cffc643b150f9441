"""The sync: slices landed exactly and resumably; failures isolated; against a fake client and the sandbox."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import orjson
import polars as pl
import pytest
from pydantic import SecretStr

from pipelines.dates import Window, format_utc, parse_datetime
from pipelines.errors import CdrError, UsageError
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.lake import AccountLake, Lake
from pipelines.opentact import api
from pipelines.opentact.client import ApiKeyRejected, ClientConfig, OpentactClient, Page, RetriesExhausted
from pipelines.opentact.records import Rejected
from pipelines.opentact.slices import freeze, utc_days
from pipelines.settings import Settings
from pipelines.state import begin_run, checkpoint_path, open_checkpoints, read_state
from pipelines.sync import MIN_BROKEN_REJECTS, DayReport, SliceFailure, SyncProgress, SyncReport, _is_broken, sync
from sandbox.export import export_window
from sandbox.testing import TEST_API_KEY, running_sandbox
from sandbox.world import World
from tests.fixtures.lake import read_quarantine
from tests.fixtures.processes import reap
from tests.test_land import cdr, cdrs

pytestmark = pytest.mark.anyio

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def anyio_backend() -> str:
    """The pipeline's event loop."""
    return "asyncio"


# -- a fake client: real slicing, pages from a frame, failures on demand --------------------------


class FakeClient:
    """Serves `records[kind]` in pages of two, as the real client would slice and freeze them."""

    def __init__(
        self,
        records: dict[str, pl.DataFrame],
        fail: Sequence[tuple[str, Window | str]] = (),  # (kind, "plan"): asking for its plan fails
        # per (kind, slice) read: reasons (raw JSON `{"id": 1}`), or (reason, raw JSON) pairs
        rejects: dict[tuple[str, Window], list[str] | list[tuple[str, str]]] | None = None,
        key_rejected: bool = False,
        settle_lag: timedelta = timedelta(minutes=2),
        whole: bool = False,
    ) -> None:
        self.records = records
        # plans a window of several days as one slice, as the real client does a small one
        self.whole = whole
        self.planned: list[tuple[str, Window]] = []
        self.fail = set(fail)
        self.rejects = rejects or {}
        self.key_rejected = key_rejected
        self.settle_lag = settle_lag
        self.read: list[tuple[str, Window]] = []

    def frozen(self, window: Window, now: datetime | None = None) -> Window:
        assert now is not None
        return freeze(window, now, self.settle_lag)

    def plan_slices(self, kind: str, window: Window, now: datetime | None = None) -> list[Window]:
        return utc_days(self.frozen(window, now))

    async def plan(self, kind: str, window: Window, now: datetime | None = None) -> list[Window]:
        self.planned.append((kind, window))
        if (kind, "plan") in self.fail:
            raise RetriesExhausted(f"gave up on {kind} {window} page 1 after 9 attempts; last: HTTP 503")
        days = self.plan_slices(kind, window, now)
        if self.whole and len(days) > 1:
            return [Window(days[0].start, days[-1].end)]
        return days

    async def read_slice(self, kind: str, slice_: Window) -> AsyncIterator[Page]:
        self.read.append((kind, slice_))
        if self.key_rejected:
            raise ApiKeyRejected("API key rejected (401) by http://fake: check OPENTACT_API_KEY")
        frame = self.records.get(kind, pl.DataFrame(schema=api.SCHEMAS[kind]))
        frame = frame.filter((pl.col("created_at") >= slice_.start) & (pl.col("created_at") < slice_.end))
        bad = [
            Rejected(reason, '{"id": 1}', kind, slice_, 1) if isinstance(reason, str) else Rejected(*reason, kind, slice_, 1)
            for reason in self.rejects.get((kind, slice_), [])
        ]
        pages = [frame.slice(n, 2) for n in range(0, max(frame.height, 1), 2)]
        for number, part in enumerate(pages, start=1):
            await asyncio.sleep(0)
            if number == 2 and (kind, slice_) in self.fail:
                raise RetriesExhausted(f"gave up on {kind} {slice_} page 2 after 9 attempts; last: HTTP 503")
            yield Page(slice_, slice_, number, part, bad if number == 1 else [], last=number == len(pages))

    async def read_usage(
        self, kind: str, window: Window, dimensions: Sequence[str] = api.USAGE_DIMENSIONS, now: datetime | None = None
    ) -> pl.DataFrame:
        frozen = self.frozen(window, now)
        frame = self.records.get(kind, pl.DataFrame(schema=api.SCHEMAS[kind]))
        frame = frame.filter((pl.col("created_at") >= frozen.start) & (pl.col("created_at") < frozen.end))
        table = frame.group_by(
            pl.col("created_at").dt.date().alias("date"), "country_code", "direction", "currency"
        ).agg(pl.len().cast(pl.Int64).alias("count"), pl.col("cost").sum())
        return table.with_columns(
            product=pl.lit(api.USAGE_PRODUCTS[kind]), billed_duration_secs=pl.lit(None), parts=pl.lit(None)
        ).select([pl.col(name).cast(dtype) for name, dtype in api.USAGE_SCHEMA.items()])


def at(day: int, hour: int = 0) -> datetime:
    """October 2026, UTC."""
    return datetime(2026, 10, day, hour, tzinfo=UTC)


def day_window(first: int, last: int) -> Window:
    """Whole UTC days first..last of October 2026."""
    return Window(at(first), at(last + 1))


RECORDS = {
    "cdrs": cdrs(*(cdr(f"c{d}-{n}", at(d, 2 + 5 * n), cost=f"0.{d}{n}") for d in (1, 2, 3) for n in range(3))),
}


def default_lake(data: Path) -> AccountLake:
    """The default account's part of a data dir: the one a sync without accounts writes."""
    return Lake(data).for_account(DEFAULT_ACCOUNT)


def lake_ids(lake: AccountLake, kind: str = "cdrs") -> dict[date, list[str]]:
    """Each day partition's ids, in stored order."""
    return {day: lake.read_partition(kind, day, api.LAKE_SCHEMAS[kind])["id"].to_list() for day in lake.partition_days(kind)}


def settings(tmp_path: Path, **changes: object) -> Settings:
    """Settings for a test data dir."""
    return Settings(data_dir=tmp_path / "data", **changes)


async def test_a_sync_lands_every_slice_reports_per_day_and_advances_the_mark(tmp_path: Path) -> None:
    ticks: list[SyncProgress] = []
    now = at(6)
    report = await sync("cdrs", day_window(1, 3), settings(tmp_path), FakeClient(RECORDS), now, "run-1", ticks.append)
    lake = default_lake(tmp_path / "data")
    assert lake_ids(lake) == {date(2026, 10, d): [f"c{d}-{n}" for n in range(3)] for d in (1, 2, 3)}
    assert report.ok and report.failures == ()
    (kind,) = report.kinds
    assert (kind.kind, kind.window, kind.slices, kind.skipped, kind.landed, kind.records, kind.completed) == (
        "cdrs", day_window(1, 3), 3, 0, 3, 9, True,
    )
    assert kind.days == tuple(DayReport(date(2026, 10, d), new=3) for d in (1, 2, 3))
    assert report.records == 9 and report.records_per_sec > 0
    assert ticks[-1] == SyncProgress("cdrs", slices_total=3, slices_done=3, records=9)
    assert read_state(lake, "cdrs").high_water_mark == at(4)
    assert open_checkpoints(lake, "cdrs") == []
    usage = lake.read_partition("usage_cdrs", date(2026, 10, 2), api.USAGE_SCHEMA)
    assert usage.select("count", "cost").rows() == [(3, Decimal("0.630000000"))]
    assert lake.partition_days("usage_cdrs") == [date(2026, 10, d) for d in (1, 2, 3)]


async def test_a_slice_of_many_pages_lands_every_record_once_in_order(tmp_path: Path) -> None:
    # 71 records in pages of two: 36 pages, merged into blocks while the slice is read.
    many = cdrs(*(cdr(f"m{n:03d}", at(5) + timedelta(minutes=7 * (70 - n))) for n in range(71)))
    report = await sync("cdrs", day_window(5, 5), settings(tmp_path), FakeClient({"cdrs": many}), at(7), "run-1")
    assert report.ok and report.kinds[0].records == 71
    landed = default_lake(tmp_path / "data").read_partition("cdrs", date(2026, 10, 5), api.LAKE_SCHEMAS["cdrs"])
    assert landed.equals(many.sort("created_at", "id"))
    assert report.kinds[0].days == (DayReport(date(2026, 10, 5), new=71),)


async def test_a_failing_slice_does_not_stop_the_others_and_the_next_run_redoes_only_it(tmp_path: Path) -> None:
    day2 = day_window(2, 2)
    client = FakeClient(RECORDS, fail=[("cdrs", day2)])
    report = await sync(["cdrs", "mdrs"], day_window(1, 3), settings(tmp_path), client, at(6), "run-1")
    lake = default_lake(tmp_path / "data")
    assert not report.ok
    assert report.failures == (
        SliceFailure("cdrs", day2, f"gave up on cdrs {day2} page 2 after 9 attempts; last: HTTP 503", retryable=True),
    )
    cdr_report, mdr_report = report.kinds
    assert (cdr_report.landed, cdr_report.failed, cdr_report.completed) == (2, 1, False)
    assert mdr_report.completed and mdr_report.landed == 3
    assert list(lake_ids(lake)) == [date(2026, 10, 1), date(2026, 10, 3)]
    # The failed type's mark does not move and its usage waits; its checkpoint stays.
    assert read_state(lake, "cdrs").high_water_mark is None
    assert lake.partition_days("usage_cdrs") == []
    assert lake.exists(checkpoint_path(DEFAULT_ACCOUNT, "cdrs", day_window(1, 3)))
    assert read_state(lake, "mdrs").high_water_mark == at(4)

    healthy = FakeClient(RECORDS)
    again = await sync("cdrs", day_window(1, 3), settings(tmp_path), healthy, at(6), "run-2")
    assert healthy.read == [("cdrs", day2)]
    assert again.ok and (again.kinds[0].skipped, again.kinds[0].landed) == (2, 1)
    assert lake_ids(lake) == {date(2026, 10, d): [f"c{d}-{n}" for n in range(3)] for d in (1, 2, 3)}
    assert read_state(lake, "cdrs").high_water_mark == at(4)
    assert open_checkpoints(lake, "cdrs") == []


async def test_a_run_that_lands_nothing_leaves_no_checkpoint_and_the_next_sweeps_a_killed_runs_debris(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    client = FakeClient(RECORDS, fail=[("cdrs", day_window(d, d)) for d in (1, 2, 3)])
    report = await sync("cdrs", day_window(1, 3), settings(tmp_path), client, at(6), "run-1")
    assert [f.slice for f in report.failures] == [day_window(d, d) for d in (1, 2, 3)]
    assert open_checkpoints(default_lake(data), "cdrs") == [] and not (data / "state/account=default/cdrs").exists()
    # What a sync killed while writing a day leaves: its directory, and a temporary in staging.
    (data / "lake/cdrs/account=default/date=2026-10-09").mkdir(parents=True)
    (data / ".staging").mkdir(exist_ok=True)
    (data / ".staging/.data.parquet.0123456789ab.tmp").write_bytes(b"half")
    assert (await sync("cdrs", day_window(1, 1), settings(tmp_path), FakeClient(RECORDS), at(6), "run-2")).ok
    assert sorted(p.name for p in (data / "lake/cdrs/account=default").iterdir()) == ["date=2026-10-01"]
    assert list((data / ".staging").iterdir()) == []


async def test_failures_are_listed_in_window_order_and_a_bad_run_id_is_refused_up_front(tmp_path: Path) -> None:
    client = FakeClient(RECORDS, fail=[("cdrs", day_window(3, 3)), ("cdrs", day_window(1, 1))])
    report = await sync("cdrs", day_window(1, 3), settings(tmp_path), client, at(6), "run-1")
    assert [f.slice for f in report.failures] == [day_window(1, 1), day_window(3, 3)]
    assert list(lake_ids(default_lake(tmp_path / "data"))) == [date(2026, 10, 2)]
    with pytest.raises(ValueError, match="run id 'a/b' must be"):
        await sync("cdrs", day_window(1, 3), settings(tmp_path), FakeClient(RECORDS), at(6), "a/b")


async def test_an_incremental_sync_starts_a_lookback_before_the_mark(tmp_path: Path) -> None:
    first = await sync("cdrs", day_window(1, 1), settings(tmp_path), FakeClient(RECORDS), at(2, 1), "run-1")
    assert first.ok
    client = FakeClient(RECORDS)
    later = await sync("cdrs", None, settings(tmp_path, lookback_days=1), client, at(4, 12), "run-2")
    assert later.kinds[0].window == Window(at(1), at(4, 12) - timedelta(minutes=2))
    assert [s for _, s in client.read] == [day_window(1, 1), day_window(2, 2), day_window(3, 3), Window(at(4), at(4, 12) - timedelta(minutes=2))]
    assert later.kinds[0].new == 6 and later.kinds[0].days[0] == DayReport(date(2026, 10, 1), unchanged=3)
    assert read_state(default_lake(tmp_path / "data"), "cdrs").high_water_mark == at(4, 12) - timedelta(minutes=2)


async def test_a_first_sync_without_a_range_is_a_usage_error_that_writes_nothing(tmp_path: Path) -> None:
    client = FakeClient(RECORDS)
    with pytest.raises(UsageError, match="no earlier sync of cdrs .*--range"):
        await sync(["cdrs", "mdrs"], None, settings(tmp_path), client, at(6), "run-1")
    assert client.read == []
    assert not (tmp_path / "data").exists() or not any(p.is_file() for p in (tmp_path / "data").rglob("*"))


async def test_a_rejected_key_stops_the_whole_sync(tmp_path: Path) -> None:
    with pytest.raises(ApiKeyRejected, match="API key rejected"):
        await sync(["cdrs", "mdrs"], day_window(1, 3), settings(tmp_path), FakeClient(RECORDS, key_rejected=True), at(6), "run-1")
    assert default_lake(tmp_path / "data").partition_days("cdrs") == []


async def test_rejects_are_quarantined_per_day_and_never_landed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = FakeClient(RECORDS, rejects={("cdrs", day_window(2, 2)): ["missing id", "bad cost"]})
    with caplog.at_level(logging.INFO, logger="pipelines"):
        report = await sync("cdrs", day_window(1, 3), settings(tmp_path), client, at(6), "run-7")
    (logged,) = [r.getMessage() for r in caplog.records if "quarantined" in r.getMessage()]
    assert logged.startswith("quarantined 2 malformed cdrs records of ") and logged.endswith("(first: missing id)")
    lake = default_lake(tmp_path / "data")
    assert report.kinds[0].days[1] == DayReport(date(2026, 10, 2), new=3, quarantined=2)
    assert report.kinds[0].quarantined == 2 and report.records == 11
    table = read_quarantine(lake, "cdrs")
    assert table.select("run_id", "reason", "raw_json", "slice_start").rows() == [
        ("run-7", "missing id", '{"id": 1}', at(2)),
        ("run-7", "bad cost", '{"id": 1}', at(2)),
    ]
    assert sum(len(ids) for ids in lake_ids(lake).values()) == 9


def lake_files(data: Path) -> dict[str, bytes]:
    """Every lake partition's bytes, by path below lake/."""
    return {str(p.relative_to(data / "lake")): p.read_bytes() for p in sorted((data / "lake").rglob("*.parquet"))}


async def test_a_window_synced_as_one_slice_lands_the_lake_day_slices_land(tmp_path: Path) -> None:
    by_day, whole = FakeClient(RECORDS), FakeClient(RECORDS, whole=True)
    reports = [
        await sync(["cdrs", "mdrs"], day_window(1, 3), settings(tmp_path / name), client, at(6), "run-1")
        for name, client in (("days", by_day), ("whole", whole))
    ]
    assert whole.read == [("cdrs", day_window(1, 3)), ("mdrs", day_window(1, 3))]
    assert len(by_day.read) == 6
    assert [(k.slices, k.landed, k.completed) for k in reports[1].kinds] == [(1, 1, True), (1, 1, True)]
    assert [(k.days, k.records, k.usage_rows) for k in reports[0].kinds] == [
        (k.days, k.records, k.usage_rows) for k in reports[1].kinds
    ]
    days, one = (tmp_path / name / "data" for name in ("days", "whole"))
    assert lake_files(days) == lake_files(one) and len(lake_files(one)) == 6  # 3 days of cdrs and their usage
    for kind in api.RECORD_TYPES:
        assert read_state(default_lake(days), kind) == read_state(default_lake(one), kind)
        assert open_checkpoints(default_lake(one), kind) == []
    # A re-sync as one slice changes nothing.
    again = await sync(["cdrs", "mdrs"], day_window(1, 3), settings(tmp_path / "whole"), whole, at(6), "run-2")
    assert again.ok and lake_files(one) == lake_files(days)
    assert {(d.new, d.updated, d.removed) for k in again.kinds for d in k.days} == {(0, 0, 0)}


async def test_a_type_whose_plan_fails_fails_alone_and_writes_nothing(tmp_path: Path) -> None:
    client = FakeClient(RECORDS, fail=[("cdrs", "plan")])
    report = await sync(["cdrs", "mdrs"], day_window(1, 3), settings(tmp_path), client, at(6), "run-1")
    window = day_window(1, 3)
    assert report.failures == (
        SliceFailure("cdrs", window, f"planning: gave up on cdrs {window} page 1 after 9 attempts; last: HTTP 503", retryable=True),
    )
    cdr_report, mdr_report = report.kinds
    assert (cdr_report.slices, cdr_report.failed, cdr_report.completed) == (1, 1, False)
    assert mdr_report.completed and [kind for kind, _ in client.read] == ["mdrs"] * 3
    lake = default_lake(tmp_path / "data")
    assert lake.partition_days("cdrs") == [] and read_state(lake, "cdrs").high_water_mark is None
    assert open_checkpoints(lake, "cdrs") == []


async def test_progress_never_counts_more_slices_done_than_planned(tmp_path: Path) -> None:
    # No plan at all (the API unreachable): each type's window is its one failed slice, not "2/0".
    ticks: list[SyncProgress] = []
    client = FakeClient(RECORDS, fail=[("cdrs", "plan"), ("mdrs", "plan")])
    report = await sync(["cdrs", "mdrs"], day_window(1, 3), settings(tmp_path), client, at(6), "run-1", ticks.append)
    assert len(report.failures) == 2
    assert (ticks[-1].slices_done, ticks[-1].slices_total) == (2, 2)

    # Every CDR slice landed, then their usage read failed, while MDR slices still land: the
    # CDR slices are done, no more.
    class UsageDown(FakeClient):
        usage_failed = asyncio.Event()

        async def read_usage(self, kind: str, window: Window, *args: object, **kwargs: object) -> pl.DataFrame:
            self.usage_failed.set()
            raise RetriesExhausted(f"gave up on usage of {kind} {window} page 1 after 9 attempts; last: HTTP 503")

        async def read_slice(self, kind: str, slice_: Window) -> AsyncIterator[Page]:
            if kind == "mdrs":
                await self.usage_failed.wait()
            async for page in super().read_slice(kind, slice_):
                yield page

    ticks.clear()
    report = await sync(
        ["cdrs", "mdrs"], day_window(1, 3), settings(tmp_path), UsageDown(RECORDS), at(6), "run-2", ticks.append,
        slice_concurrency=6,
    )
    assert [(f.kind, f.cause.split(":")[0]) for f in report.failures] == [("cdrs", "usage"), ("mdrs", "usage")]
    assert all(tick.slices_done <= tick.slices_total for tick in ticks)
    assert (ticks[-1].slices_done, ticks[-1].slices_total) == (6, 6)


async def test_a_resumed_run_keeps_the_slices_its_checkpoint_planned(tmp_path: Path) -> None:
    day2 = day_window(2, 2)
    failed = await sync("cdrs", day_window(1, 3), settings(tmp_path), FakeClient(RECORDS, fail=[("cdrs", day2)]), at(6), "run-1")
    assert not failed.ok
    # A client that would plan the window as one slice is not asked: the run resumes its plan.
    whole = FakeClient(RECORDS, whole=True)
    resumed = await sync("cdrs", day_window(1, 3), settings(tmp_path), whole, at(6), "run-2")
    assert whole.planned == [] and whole.read == [("cdrs", day2)]
    assert resumed.ok and (resumed.kinds[0].slices, resumed.kinds[0].skipped, resumed.kinds[0].landed) == (3, 2, 1)
    lake = default_lake(tmp_path / "data")
    assert lake_ids(lake) == {date(2026, 10, d): [f"c{d}-{n}" for n in range(3)] for d in (1, 2, 3)}
    assert open_checkpoints(lake, "cdrs") == []


async def test_a_resumed_slice_of_several_days_is_read_and_landed_whole(tmp_path: Path) -> None:
    # A run planned days 1-2 as one slice and day 3 as another, and landed day 3 before it stopped.
    lake = default_lake(tmp_path / "data")
    assert (await sync("cdrs", day_window(3, 3), settings(tmp_path), FakeClient(RECORDS), at(6), "run-0")).ok
    two_days = Window(at(1), at(3))
    begin_run(lake, "cdrs", day_window(1, 3), [two_days, day_window(3, 3)], "run-1").mark_done(day_window(3, 3))
    client = FakeClient(RECORDS)
    report = await sync("cdrs", day_window(1, 3), settings(tmp_path), client, at(6), "run-2")
    assert client.planned == [] and client.read == [("cdrs", two_days)]
    (kind,) = report.kinds
    assert (kind.slices, kind.skipped, kind.landed, kind.completed) == (2, 1, 1, True)
    assert kind.days == tuple(DayReport(date(2026, 10, d), new=3) for d in (1, 2))
    assert lake_ids(lake) == {date(2026, 10, d): [f"c{d}-{n}" for n in range(3)] for d in (1, 2, 3)}
    assert open_checkpoints(lake, "cdrs") == [] and read_state(lake, "cdrs").high_water_mark == at(4)


async def test_rejects_of_a_slice_of_several_days_count_in_the_day_of_their_created_at(tmp_path: Path) -> None:
    raw = orjson.dumps({"id": "x", "created_at": "2026-10-02T05:00:00.000Z"}).decode()
    client = FakeClient(RECORDS, whole=True, rejects={("cdrs", day_window(1, 3)): [("bad cost", raw)]})
    report = await sync("cdrs", day_window(1, 3), settings(tmp_path), client, at(6), "run-1")
    assert report.ok and client.read == [("cdrs", day_window(1, 3))]
    assert report.kinds[0].days[1] == DayReport(date(2026, 10, 2), new=3, quarantined=1)
    table = read_quarantine(default_lake(tmp_path / "data"), "cdrs")
    # As a slice of day 2 would have quarantined it: reconciliation counts it in that day.
    assert table.select("reason", "slice_start", "slice_end").rows() == [("bad cost", at(2), at(3))]


async def test_a_reject_without_a_readable_created_at_has_its_slice_read_day_by_day(tmp_path: Path) -> None:
    whole, day2 = day_window(1, 3), day_window(2, 2)
    client = FakeClient(RECORDS, whole=True, rejects={("cdrs", whole): ["missing id"], ("cdrs", day2): ["missing id"]})
    report = await sync("cdrs", whole, settings(tmp_path), client, at(6), "run-1")
    assert report.ok
    assert client.read == [("cdrs", whole)] + [("cdrs", day_window(d, d)) for d in (1, 2, 3)]
    (kind,) = report.kinds
    assert (kind.slices, kind.landed, kind.records, kind.quarantined) == (1, 1, 9, 1)
    assert kind.days[1] == DayReport(date(2026, 10, 2), new=3, quarantined=1)
    table = read_quarantine(default_lake(tmp_path / "data"), "cdrs")
    assert table.select("reason", "slice_start", "slice_end").rows() == [("missing id", at(2), at(3))]
    assert sum(len(ids) for ids in lake_ids(default_lake(tmp_path / "data")).values()) == 9


async def test_a_broken_day_fails_a_slice_of_several_days_however_good_the_others(tmp_path: Path) -> None:
    assert (await sync("cdrs", day_window(1, 3), settings(tmp_path), FakeClient(RECORDS), at(6), "clean")).ok
    data = tmp_path / "data"
    before = lake_files(data)
    many = cdrs(*(cdr(f"d{d}-{n}", at(d, 1) + timedelta(minutes=n)) for d in (1, 3) for n in range(300)))
    raw = orjson.dumps({"id": "x", "created_at": "2026-10-02T05:00:00.000Z"}).decode()
    junk = FakeClient({"cdrs": many}, whole=True, rejects={("cdrs", day_window(1, 3)): [("missing cost", raw)] * 25})
    report = await sync("cdrs", day_window(1, 3), settings(tmp_path), junk, at(6), "junk")
    # 25 of 625 overall is 4%, under the limit; but day 2 is all malformed.
    (failure,) = report.failures
    assert failure.slice == day_window(1, 3) and failure.cause.startswith("25 of 25 records malformed")
    assert lake_files(data) == before


async def test_a_slice_the_lake_cannot_take_fails_alone_with_its_cause(tmp_path: Path) -> None:
    lake = default_lake(tmp_path / "data")
    lake.write_bytes(lake.partition("cdrs", date(2026, 10, 2)), b"not parquet")
    report = await sync("cdrs", day_window(1, 3), settings(tmp_path), FakeClient(RECORDS), at(6), "run-1")
    (failure,) = report.failures
    assert failure.slice == day_window(2, 2)
    assert "lake/cdrs/account=default/date=2026-10-02/data.parquet is unreadable" in failure.cause
    assert report.kinds[0].landed == 2


@pytest.mark.parametrize(
    ("valid", "rejected", "max_percent", "broken"),
    [
        (0, 0, 5, False),  # an empty day is a day without records
        (2, 1, 5, False),  # a third of a tiny slice: too few rejects to call the source broken
        (0, 1, 5, True),  # every record malformed: nothing of the day could be read
        (240, 13, 5, False),  # a little over 5% of a small day: chance, not a broken source
        (380, 20, 5, False),  # exactly 5%: not more than the limit
        (379, 20, 5, True),
        (0, 2644, 5, True),
        (3, 19, 5, False),
        (3, 20, 5, True),
        (0, 50, 100, False),  # 100% lands whatever comes
        (1000, 1, 0, False),  # 0%: still needs MIN_BROKEN_REJECTS rejects unless nothing is valid
        (1000, 20, 0, True),
    ],
)
def test_a_slice_is_broken_when_its_rejects_exceed_the_share_and_are_many_or_all(
    valid: int, rejected: int, max_percent: float, broken: bool
) -> None:
    assert MIN_BROKEN_REJECTS == 20
    assert _is_broken(valid, rejected, max_percent) is broken


async def test_a_mostly_malformed_slice_keeps_the_lake_quarantines_and_fails_without_retry(tmp_path: Path) -> None:
    assert (await sync("cdrs", day_window(1, 3), settings(tmp_path), FakeClient(RECORDS), at(6), "clean")).ok
    lake = default_lake(tmp_path / "data")
    day2 = day_window(2, 2)
    before = (tmp_path / "data" / lake.partition("cdrs", date(2026, 10, 2))).read_bytes()
    junk = FakeClient({"cdrs": RECORDS["cdrs"].head(0)}, rejects={("cdrs", day2): ["missing id"] * 25})
    report = await sync("cdrs", day_window(1, 3), settings(tmp_path), junk, at(6), "junk")
    (failure,) = report.failures
    (quarantined,) = (tmp_path / "data" / "quarantine" / "cdrs").rglob("*.jsonl")
    assert failure == SliceFailure(
        "cdrs",
        day2,
        "25 of 25 records malformed (more than 5%, the OPENTACT_MAX_REJECTED_PERCENT limit): the API served a broken "
        f"cdrs slice, so the lake keeps what it had for it; the rejects are in {quarantined}; run the sync again once "
        "the API serves valid records, or raise OPENTACT_MAX_REJECTED_PERCENT to land the valid ones",
        retryable=False,
    )
    assert (tmp_path / "data" / lake.partition("cdrs", date(2026, 10, 2))).read_bytes() == before
    assert read_quarantine(lake, "cdrs").filter(pl.col("run_id") == "junk").height == 25
    # The other days served nothing and nothing malformed: they are empty now, as the API says.
    assert list(lake_ids(lake)) == [date(2026, 10, 2)]
    assert report.kinds[0].quarantined == 25 and not report.kinds[0].completed

    # With the limit at 100% the same slice lands its (no) valid records.
    lenient = await sync("cdrs", day2, settings(tmp_path, opentact_max_rejected_percent=100), junk, at(6), "lenient")
    assert lenient.ok and lake_ids(lake) == {}


async def test_a_day_of_junk_over_a_synced_day_keeps_its_partitions_byte_for_byte(tmp_path: Path) -> None:
    # The sandbox serving every record malformed (`--malformed-rate 1.0`) over a day synced clean.
    data = tmp_path / "data"
    day = Window(datetime(2026, 10, 3, tzinfo=UTC), datetime(2026, 10, 4, tzinfo=UTC))
    world = {"start": START.isoformat(), "now": format_utc(NOW), "seed": 5, "calls_per_day": 300, "messages_per_day": 150}
    with running_sandbox(**world) as clean:
        first = await run_sync(clean, data, day, NOW, "clean")
    assert first.ok
    served = [k.records for k in first.kinds]
    assert min(served) > 100
    before = {path: path.read_bytes() for path in (data / "lake").rglob("*.parquet")}
    state_before = {kind: read_state(default_lake(data), kind) for kind in api.RECORD_TYPES}
    assert len(before) == 4  # cdrs, mdrs and their usage, one day each
    with running_sandbox(**world, malformed_rate=1.0) as junk:
        report = await run_sync(junk, data, day, NOW, "junk")
    assert not report.ok
    assert [(f.kind, f.slice, f.retryable) for f in report.failures] == [("cdrs", day, False), ("mdrs", day, False)]
    for failure, count in zip(report.failures, served):
        assert failure.cause.startswith(f"{count} of {count} records malformed (more than 5%, ")
        assert f"the rejects are in {data}/quarantine/{failure.kind}/account=default/date=2026-10-08/junk-" in failure.cause
        assert read_quarantine(default_lake(data), failure.kind).filter(pl.col("run_id") == "junk").height == count
    assert {path: path.read_bytes() for path in (data / "lake").rglob("*.parquet")} == before
    assert {kind: read_state(default_lake(data), kind) for kind in api.RECORD_TYPES} == state_before


@pytest.mark.parametrize(
    ("path", "is_dir", "problem"),
    [
        ("state/account=default/cdrs/landed.json", True, "is a directory where the data dir needs a file"),
        ("state/account=default/cdrs", False, "is a file where the data dir needs a directory"),
        ("state/account=default", False, "is a file where the data dir needs a directory"),
        ("lake", False, "is a file where the data dir needs a directory"),
        ("lake/cdrs", False, "is a file where the data dir needs a directory"),
        ("lake/cdrs/account=default", False, "is a file where the data dir needs a directory"),
        ("quarantine/cdrs/account=default", False, "is a file where the data dir needs a directory"),
        (".staging", False, "is a file where the data dir needs a directory"),
    ],
)
@pytest.mark.parametrize("incremental", [False, True])
async def test_a_data_dir_in_the_wrong_shape_fails_once_naming_the_path_and_writes_nothing(
    tmp_path: Path, path: str, is_dir: bool, problem: str, incremental: bool
) -> None:
    data = tmp_path / "data"
    if incremental:
        assert (await sync("cdrs", day_window(1, 1), settings(tmp_path), FakeClient(RECORDS), at(2, 1), "first")).ok
    target = data / path
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.mkdir() if is_dir else target.write_bytes(b"in the way")
    before = sorted((str(p), p.is_dir() or p.read_bytes()) for p in data.rglob("*"))
    client = FakeClient(RECORDS)
    with pytest.raises(CdrError) as failed:
        await sync("cdrs", None if incremental else day_window(1, 3), settings(tmp_path), client, at(4, 1), "run-1")
    assert str(failed.value) == f"{data}/{path} {problem}; move it out of the data dir"
    assert failed.value.exit_code == 1 and client.read == []
    assert sorted((str(p), p.is_dir() or p.read_bytes()) for p in data.rglob("*")) == before


async def test_a_partition_directory_that_is_a_file_fails_its_slice_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "lake/cdrs/account=default").mkdir(parents=True)
    (data / "lake/cdrs/account=default/date=2026-10-02").write_bytes(b"in the way")
    report = await sync("cdrs", day_window(1, 3), settings(tmp_path), FakeClient(RECORDS), at(6), "run-1")
    assert [(f.slice, f.cause, f.retryable) for f in report.failures] == [
        (day_window(2, 2), f"{data}/lake/cdrs/account=default/date=2026-10-02 is a file where the data dir needs a directory; "
         "move it out of the data dir", False),
    ]
    assert (data / "lake/cdrs/account=default/date=2026-10-02").read_bytes() == b"in the way"
    assert sorted(p.name for p in (data / "lake/cdrs/account=default").iterdir()) == ["date=2026-10-01", "date=2026-10-02", "date=2026-10-03"]


# -- against the sandbox: every fault, exact lake, no-op rerun, lookback, kill and resume ---------

START = date(2026, 10, 1)
NOW = datetime(2026, 10, 8, 6, 0, tzinfo=UTC)
WORLD = {"seed": 31, "calls_per_day": 240, "messages_per_day": 120, "rerate_rate": 0.2, "malformed_rate": 0.03}
FAULTS = {"fail_rate": 0.15, "drop_rate": 0.1, "rate_limit": 40, "latency_ms": 5}
WINDOW = Window(datetime(2026, 10, 2, 12, tzinfo=UTC), datetime(2026, 10, 5, tzinfo=UTC))
LAG = timedelta(minutes=2)


@pytest.fixture(scope="module")
def sandbox() -> str:
    """A sandbox with every fault, its clock pinned at NOW."""
    with running_sandbox(start=START.isoformat(), now=format_utc(NOW), **WORLD, **FAULTS) as url:
        yield url


def client_config(base_url: str, **changes: object) -> ClientConfig:
    """A client with small pages and short waits, so faults cost little time."""
    settings: dict[str, object] = {
        "page_size": 40,
        "concurrency": 4,
        "backoff_base_secs": 0.02,
        "backoff_max_secs": 0.3,
        "retry_max_secs": 60,
        "timeout_secs": 10,
        "settle_lag": LAG,
    }
    return ClientConfig(base_url=base_url, api_key=SecretStr(TEST_API_KEY), **{**settings, **changes})  # type: ignore[arg-type]


async def run_sync(base_url: str, data_dir: Path, window: Window | None, now: datetime, run_id: str) -> SyncReport:
    """One sync of both record types against a sandbox."""
    async with OpentactClient(client_config(base_url)) as client:
        return await sync(list(api.RECORD_TYPES), window, Settings(data_dir=data_dir), client, now, run_id)


def export(tmp_path: Path, now: datetime, window: Window) -> dict[str, list]:
    """The sandbox's ground truth for a window as of `now`."""
    out = tmp_path / f"export-{now:%d%H%M}"
    export_window(World(start=START, cache_days=1, **WORLD), now, window.start, window.end, out)
    return {name: [orjson.loads(line) for line in (out / f"{name}.jsonl").read_bytes().splitlines()] for name in ("cdrs", "mdrs", "malformed")}


def by_day_from_export(truth: dict[str, list], kind: str) -> dict[date, dict[str, tuple[Decimal, datetime]]]:
    """Export records -> {created UTC day: {id: (cost, updated_at)}}."""
    days: dict[date, dict[str, tuple[Decimal, datetime]]] = defaultdict(dict)
    for record in truth[kind]:
        days[parse_datetime(record["created_at"]).date()][record["id"]] = (Decimal(record["cost"]), parse_datetime(record["updated_at"]))
    return dict(days)


def by_day_from_lake(lake: AccountLake, kind: str) -> dict[date, dict[str, tuple[Decimal, datetime]]]:
    """Lake partitions -> {day: {id: (cost, updated_at)}}, checking ids are unique per day."""
    days = {}
    for day in lake.partition_days(kind):
        frame = lake.read_partition(kind, day, api.LAKE_SCHEMAS[kind])
        assert frame["id"].is_unique().all()
        assert frame.equals(frame.sort("created_at", "id"))
        days[day] = {row[0]: (row[1], row[2]) for row in frame.select("id", "cost", "updated_at").iter_rows()}
    return days


def assert_lake_is_the_export(lake: AccountLake, truth: dict[str, list], quarantine_log: bool = False) -> None:
    """Ids, costs, updated_at and per-day cost sums equal the export; quarantine holds its malformed records.

    With `quarantine_log`, earlier syncs may also have quarantined older versions of records
    (the quarantine is a log of what each sync saw), so it need only contain the export's.
    """
    for kind in api.RECORD_TYPES:
        expected, landed = by_day_from_export(truth, kind), by_day_from_lake(lake, kind)
        assert landed == expected
        assert {d: sum(c for c, _ in ids.values()) for d, ids in landed.items()} == {
            d: sum(c for c, _ in ids.values()) for d, ids in expected.items()
        }
        malformed = Counter(orjson.dumps(line["record"]).decode() for line in truth["malformed"] if line["type"] == kind)
        quarantined = set(read_quarantine(lake, kind)["raw_json"])
        assert quarantined >= set(malformed) if quarantine_log else quarantined == set(malformed)


async def test_a_sync_through_every_fault_lands_exactly_the_export_and_a_rerun_changes_nothing(
    sandbox: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    report = await run_sync(sandbox, data, WINDOW, NOW, "run-1")
    assert report.ok, report.failures
    lake = default_lake(data)
    truth = export(tmp_path, NOW, WINDOW)
    assert_lake_is_the_export(lake, truth)
    for kind_report in report.kinds:
        assert kind_report.new == len(truth[kind_report.kind]) and kind_report.completed
        assert kind_report.quarantined == sum(1 for line in truth["malformed"] if line["type"] == kind_report.kind)
    # Usage lands for the days held whole (not the first, which starts at noon); the API's
    # counts are the lake's plus what was quarantined.
    assert lake.partition_days("usage_cdrs") == [date(2026, 10, 3), date(2026, 10, 4)]
    for kind in api.RECORD_TYPES:
        quarantined = Counter(read_quarantine(lake, kind)["slice_start"].dt.date().to_list())
        for day in lake.partition_days(f"usage_{kind}"):
            usage = lake.read_partition(f"usage_{kind}", day, api.USAGE_SCHEMA)
            assert usage["count"].sum() == lake.read_partition(kind, day, api.LAKE_SCHEMAS[kind]).height + quarantined[day]

    files = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in (data / "lake").rglob("*.parquet")}
    again = await run_sync(sandbox, data, WINDOW, NOW, "run-2")
    assert again.ok
    assert [(k.new, k.updated, k.unchanged) for k in again.kinds] == [(0, 0, len(truth[k.kind])) for k in again.kinds]
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in (data / "lake").rglob("*.parquet")} == files
    assert_lake_is_the_export(lake, truth)


async def test_a_lookback_run_after_the_clock_moves_picks_up_re_ratings_and_late_records(
    sandbox: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first_window = Window(datetime(2026, 10, 1, tzinfo=UTC), NOW)
    first = await run_sync(sandbox, data, first_window, NOW, "night-1")
    assert first.ok, first.failures
    later = NOW + timedelta(days=1, hours=3)
    with running_sandbox(start=START.isoformat(), now=format_utc(later), **WORLD) as moved:
        report = await run_sync(moved, data, None, later, "night-2")
    assert report.ok, report.failures
    assert report.kinds[0].window == Window(NOW - LAG - timedelta(days=3), later - LAG)
    assert all(k.updated > 0 and k.new > 0 for k in report.kinds)
    assert_lake_is_the_export(default_lake(data), export(tmp_path, later, Window(first_window.start, later - LAG)), quarantine_log=True)
    assert read_state(default_lake(data), "mdrs").high_water_mark == later - LAG


_KILLABLE = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import datetime
    from pathlib import Path
    from tests.test_sync import WINDOW_LONG, NOW, run_sync_progress

    asyncio.run(run_sync_progress(sys.argv[1], Path(sys.argv[2]), sys.argv[3]))
    """
)
WINDOW_LONG = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 7, tzinfo=UTC))
_TICK_PAUSE_SECS = 0.1


async def run_sync_progress(base_url: str, data_dir: Path, run_id: str) -> None:
    """The killable child: sync WINDOW_LONG, printing each slice landed."""
    seen = 0

    def tick(progress: SyncProgress) -> None:
        nonlocal seen
        if progress.slices_done > seen:
            seen = progress.slices_done
            print(f"slices {seen}", flush=True)
            # Slices of this small world land in milliseconds: held back a little, the kills
            # below fall inside the run (every kill leaves slices undone), not after its end.
            time.sleep(_TICK_PAUSE_SECS)

    # Windows of more pages than this are read by UTC day (the world's days hold 6 and 3): many
    # slices, so a kill can fall between them.
    async with OpentactClient(client_config(base_url, slice_max_pages=10)) as client:
        await sync(list(api.RECORD_TYPES), WINDOW_LONG, Settings(data_dir=data_dir), client, NOW, run_id, tick)


async def test_a_sync_killed_at_random_points_then_resumed_gives_the_exact_lake(sandbox: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    chooser = random.Random(7)
    for attempt in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLABLE, sandbox, str(data), f"killed-{attempt}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert child.stdout is not None
            # Let a slice or two land, then kill at a random instant of what follows: about 4,
            # 3 and 3 of the 12 slices (2 types x 6 days) land, so there is always a run to resume.
            for _ in range(2):
                line = child.stdout.readline()
                assert line.startswith("slices "), child.stderr.read() if child.stderr else line
            await asyncio.sleep(chooser.uniform(0, 1.5 * _TICK_PAUSE_SECS))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
        finally:
            reap(child)
    # What the killed runs landed and checkpointed (a record type whose slices all landed has
    # completed its run: re-syncing that window redoes it, as any re-sync does).
    landed = sum(len(run.done) for kind in api.RECORD_TYPES for run in open_checkpoints(default_lake(data), kind))
    assert landed >= 1
    report = await run_sync(sandbox, data, WINDOW_LONG, NOW, "resumed")
    assert report.ok, report.failures
    assert sum(k.skipped for k in report.kinds) == landed  # exactly the checkpointed slices are not redone
    assert landed < sum(k.slices for k in report.kinds)
    assert_lake_is_the_export(default_lake(data), export(tmp_path, NOW, WINDOW_LONG))
    # The resumed run swept what the killed writers left half-written.
    assert list((data / ".staging").glob("*")) == []
