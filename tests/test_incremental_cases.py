"""Lake changes between two builds that the sync can make, each built incrementally and proved equal,
row for row, to a full build of the same lake (or shown to fall back to one by itself)."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipelines.lake import LakeError
from pipelines.models import BuildReport, build, warehouse_path
from tests.fixtures.lake import Record, call, message, usage, write_lake
from tests.test_incremental_build import _calls_of, differences, full_build_of_a_copy

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
