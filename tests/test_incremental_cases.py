"""Lake changes between two builds that the sync can make, each built incrementally and proved equal,
row for row, to a full build of the same lake (or shown to fall back to one by itself)."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pytest

from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.errors import LakeError
from pipelines.lake import Lake
from pipelines.land import quarantine
from pipelines.models import BuildReport, build, warehouse_path
from pipelines.opentact.records import Rejected
from tests.fixtures.lake import Record, call, message, usage, write_lake
from tests.test_incremental_build import _calls_of, differences, full_build_of_a_copy
from tests.test_reconciliation import day_slice, raw_call

UTC = timezone.utc
NOW = datetime(2026, 3, 20, tzinfo=UTC)
DAYS = range(2, 9)


class Builds:
    """A data dir built step by step, each build compared with a full build of a copy."""

    def __init__(self, tmp_path: Path, zone: str = "UTC") -> None:
        self.tmp_path = tmp_path
        self.data = tmp_path / "data"
        self.zone = zone
        self.step = 0

    def build(self, mode: str = "incremental") -> BuildReport:
        self.step += 1
        report = build(self.data, report_timezone=self.zone, now=NOW)
        copy = full_build_of_a_copy(self.data, self.tmp_path / f"full-{self.step}", self.zone, NOW)
        found = differences(self.data, copy)
        assert not found, f"step {self.step} ({report.how}, {self.zone}):\n" + "\n".join(found)
        assert report.mode == mode, report.how
        return report


def _messages_of(day: int, *extra: Record) -> list[Record]:
    d = f"2026-03-{day:02d}"
    return [message(f"m{day}-a", f"{d}T08:00:00Z"), message(f"m{day}-b", f"{d}T23:30:00Z"), *extra]


def _usage_of(day: int) -> list[Record]:
    return [usage(f"2026-03-{day:02d}", "calls", "USD", 3, "0.05", billed_duration_secs=240)]


def _world(builds: Builds) -> Builds:
    write_lake(
        builds.data,
        [c for day in DAYS for c in _calls_of(day)],
        [m for day in DAYS for m in _messages_of(day)],
        [u for day in DAYS for u in _usage_of(day)],
    )
    builds.build("full")
    return builds


def test_a_day_folder_naming_no_day_is_refused_not_read_past(tmp_path: Path) -> None:
    """A copy of a day set aside inside the lake (`date=2026-03-05.orig`) is read by a full build's views,
    but an incremental build tells changed days by their folders' names and would miss it (its warehouse
    differed from a full build's): the build refuses it, leaving the warehouse as it was."""
    builds = _world(Builds(tmp_path))
    day = builds.data / "lake" / "cdrs" / "account=default" / "date=2026-03-05"
    aside = day.with_name("date=2026-03-05.orig")
    shutil.copytree(day, aside)
    write_lake(builds.data, _calls_of(5, call("d5-late", "2026-03-05T10:00:00Z", "2026-03-05T10:01:00Z")))
    before = warehouse_path(builds.data).read_bytes()
    with pytest.raises(LakeError, match=r"date=2026-03-05\.orig names no day .*: move it out of the lake"):
        build(builds.data, now=NOW)
    assert warehouse_path(builds.data).read_bytes() == before


@pytest.mark.slow
def test_days_deleted_from_the_lake_lose_their_rows(tmp_path: Path) -> None:
    """A day re-landed with no record left has its partition deleted: a path gone makes its day changed,
    and its rows go; a call lasting days filed on it leaves the concurrency of the days it reached
    (known only from the previous build)."""
    builds = Builds(tmp_path, "America/New_York")
    long = call("long", "2026-03-03T12:00:00Z", "2026-03-06T08:00:00Z", answered_at="2026-03-03T12:00:30Z")
    write_lake(
        builds.data,
        [c for day in DAYS for c in _calls_of(day)] + [long],
        [m for day in DAYS for m in _messages_of(day)],
        [u for day in DAYS for u in _usage_of(day)],
    )
    builds.build("full")
    lake = Lake(builds.data).for_account(DEFAULT_ACCOUNT)
    assert lake.delete_partition("cdrs", date(2026, 3, 6))
    assert lake.delete_partition("mdrs", date(2026, 3, 7))
    assert lake.delete_partition("usage_cdrs", date(2026, 3, 7))
    assert builds.build().days_rebuilt == 2


def test_a_record_moved_to_another_day_with_both_days_re_landed(tmp_path: Path) -> None:
    """A re-rating moved a call's created_at to the day before, and the sync re-landed both days: its id
    leaves one changed day for another, which is no id shared across days."""
    builds = _world(Builds(tmp_path))
    moved = call("d5-a", "2026-03-05T09:00:00Z", "2026-03-05T09:05:00Z", answered_at="2026-03-05T09:00:10Z",
                 created_at="2026-03-04T22:00:00Z", updated_at="2026-03-10T00:00:00Z")
    write_lake(builds.data, _calls_of(4, moved) + [c for c in _calls_of(5) if c["id"] != "d5-a"])
    assert builds.build().days_rebuilt == 2


def test_the_quarantine_alone_changed(tmp_path: Path) -> None:
    """A record set aside changes no lake day, yet the reconciliation counts it: the build rebuilds no
    day and equals a full build."""
    builds = _world(Builds(tmp_path))
    lake = Lake(builds.data).for_account(DEFAULT_ACCOUNT)
    raw = raw_call("late", "2026-03-05T12:00:00.000Z", 60, "0.01")
    quarantine(lake, "cdrs", "run-1", [Rejected("bad cld", raw, "cdrs", day_slice("2026-03-05"), 1)], now=NOW)
    assert builds.build().days_rebuilt == 0


def test_a_changed_day_of_23_hours_and_the_days_around_it(tmp_path: Path) -> None:
    """London springs forward at 01:00 UTC on 2026-03-29: that report day lasts 23 hours and the UTC day
    overlaps two report days; calls across the change and a call lasting days are rebuilt as in full."""
    builds = Builds(tmp_path, "Europe/London")

    def calls_of(day: int, *extra: Record) -> list[Record]:
        d, before = f"2026-03-{day:02d}", f"2026-03-{day - 1:02d}"
        return [
            call(f"{day}-a", f"{d}T00:20:00Z", f"{d}T01:40:00Z", answered_at=f"{d}T00:20:10Z"),
            call(f"{day}-b", f"{d}T01:10:00Z", f"{d}T01:50:00Z", answered_at=f"{d}T01:10:05Z"),
            call(f"{day}-c", f"{before}T23:58:00Z", f"{d}T00:02:00Z", answered_at=f"{before}T23:58:05Z"),
            call(f"{day}-d", f"{d}T23:30:00Z", f"{d}T23:59:00Z"),
            *extra,
        ]

    days = range(25, 32)
    write_lake(builds.data, [c for day in days for c in calls_of(day)],
               [message(f"m{day}", f"2026-03-{day:02d}T00:59:00Z") for day in days])
    builds.build("full")
    long = call("long", "2026-03-27T12:00:00Z", "2026-03-29T00:30:00Z", answered_at="2026-03-27T12:00:09Z")
    write_lake(builds.data, calls_of(29, long), [message("m29", "2026-03-29T00:59:00Z"), message("m29-b", "2026-03-29T23:30:00Z")])
    assert builds.build().days_rebuilt == 1


def test_two_names_of_a_connection_at_one_instant_name_it_as_in_a_full_build(tmp_path: Path) -> None:
    """A connection and a messaging profile renamed, their two names' versions updated at the same
    instant on two days: the latest version names them, the same of the two whatever order
    the rows are in (an incremental build appends a re-landed day's rows after the others)."""
    builds = Builds(tmp_path)
    at = "2026-03-09T00:00:00Z"

    def day_of(day: int, name: str) -> tuple[list[Record], list[Record]]:
        d = f"2026-03-{day:02d}"
        named = call(f"{name}-call", f"{d}T10:00:00Z", f"{d}T10:01:00Z", connection=("conn-a", name), updated_at=at)
        sent = message(f"{name}-message", f"{d}T10:00:00Z", profile=("prof-1", name), updated_at=at)
        return _calls_of(day, named), [sent]

    for day, name in ((5, "Name A"), (7, "Name B")):
        write_lake(builds.data, *day_of(day, name))
    builds.build("full")
    write_lake(builds.data, *day_of(5, "Name A"))
    builds.build()
    with duckdb.connect(str(warehouse_path(builds.data)), read_only=True) as con:
        # of the two, the one whose hash is greater (macros/latest_name.sql)
        (chosen,) = con.execute("select arg_max(name, hash(name)) from (values ('Name A'), ('Name B')) as t(name)").fetchone()
        assert con.execute("select connection_name from dim_connections").fetchall() == [(chosen,)]
        assert con.execute("select messaging_profile_name from dim_messaging_profiles").fetchall() == [(chosen,)]


def _records_on(day: date, rerated: bool = False) -> tuple[list[Record], list[Record], list[Record]]:
    """A day's calls, messages and usage, of several countries, outcomes, tags and errors: one call created
    in its first hours (the day before in New York). `rerated`: a call re-rated (rate and cost) and a message more."""
    d = day.isoformat()
    calls = [
        call(f"{d}-a", f"{d}T09:00:00Z", f"{d}T09:05:00Z", answered_at=f"{d}T09:00:10Z", tags=("vip",),
             rate="0.0300" if rerated else "0.0100", updated_at=f"{d}T12:00:00Z" if rerated else None),
        call(f"{d}-b", f"{d}T02:00:00Z", f"{d}T02:03:00Z", answered_at=f"{d}T02:00:05Z", direction="inbound",
             country_code="US"),
        call(f"{d}-c", f"{d}T23:00:00Z", f"{d}T23:01:00Z", status="busy", country_code="US", tags=("vip", "trial")),
    ]
    messages = [
        message(f"{d}-m", f"{d}T03:00:00Z", tags=("vip",)),
        message(f"{d}-n", f"{d}T12:00:00Z", status="delivery_failed", errors=[("40001", "Unreachable")], parts=2,
                encoding="ucs2", carrier="EE", country_code="US"),
        *([message(f"{d}-o", f"{d}T01:00:00Z", message_type="mms")] if rerated else []),
    ]
    return calls, messages, [usage(d, "calls", "USD", 3, "0.05", billed_duration_secs=240)]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_changed_days_on_the_first_of_a_month_and_in_an_old_month(tmp_path: Path, zone: str) -> None:
    """The monthly reports recompute the months from the earliest changed day's on and keep the others:
    a change on the 1st (in New York its first hours are the month before's last day), then a re-sync
    of a day two months back; month over month compares each recomputed month with the month before."""
    builds = Builds(tmp_path, zone)
    days = [date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1),
            date(2026, 3, 2)]
    records = [_records_on(day) for day in days]
    write_lake(builds.data, *([r for day in records for r in day[part]] for part in range(3)))
    builds.build("full")
    write_lake(builds.data, *_records_on(date(2026, 3, 1), rerated=True))
    assert builds.build().days_rebuilt == 1
    write_lake(builds.data, *_records_on(date(2026, 1, 30), rerated=True))
    assert builds.build().days_rebuilt == 1
