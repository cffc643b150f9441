"""When a build must be a full one, and which lake days an incremental one recomputes."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

import pipelines
from pipelines.models.incremental import (
    MONTH,
    Manifest,
    build_release,
    code_digest,
    dirty_days,
    full_build_reason,
    queries_hash,
    window_days,
)
from pipelines.models.runner import Replacement
from pipelines.models.sources import RECOMPUTED_MACROS, RECOMPUTED_SINCE_VARIABLE

D = date(2026, 10, 4)


def manifest(**changes) -> Manifest:
    fields = {"version": build_release(), "queries_hash": "q", "report_timezone": "UTC", "thresholds": "t", "fingerprints": {}}
    return Manifest(**(fields | changes))


def reason(previous, **changes):
    arguments = {
        "warehouse_exists": True, "queries": "q", "report_timezone": "UTC", "thresholds": "t", "forced": False,
        "killed_builds": 0,
    }
    return full_build_reason(previous, **(arguments | changes))


def test_a_build_is_incremental_only_when_nothing_but_the_lake_changed():
    assert reason(manifest()) is None
    assert reason(manifest(), forced=True) == "asked for (--full)"
    assert reason(None, warehouse_exists=False) == "first build"
    assert reason(None) == "the warehouse has no readable build manifest"
    assert reason(manifest(version="0.0.1")) == f"the warehouse was built by release 0.0.1, this is {build_release()}"
    assert reason(manifest(queries_hash="other")) == "the models changed (queries/)"
    assert reason(manifest(report_timezone="Europe/Berlin")) == "the report time zone changed (Europe/Berlin -> UTC)"
    assert reason(manifest(thresholds="other")) == "the alert thresholds changed (CDR_ALERTS_CONFIG)"
    assert reason(manifest(), killed_builds=1) == "a previous build never finished"


def test_the_release_a_warehouse_is_built_by_changes_with_the_code_writing_its_sql(tmp_path: Path):
    """A checkout updated without a new release number: the lake's schemas or the runner changed, so the
    next build is a full one; code that writes no SQL (the CLI) leaves it."""
    package = Path(pipelines.__file__).parent
    copy = tmp_path / "pipelines"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "queries"))
    assert code_digest(copy) == code_digest(package)
    assert build_release().endswith("+" + code_digest(package)[:12])
    (copy / "cli.py").write_text("# another CLI\n")
    assert code_digest(copy) == code_digest(package)
    for changed in ("lake.py", "models/runner.py", "models/sources.py", "opentact/api.py"):
        edited = copy / changed
        before = edited.read_bytes()
        edited.write_bytes(before + b"\n# changed\n")
        assert code_digest(copy) != code_digest(package), changed
        edited.write_bytes(before)


def test_dirty_days_are_the_days_whose_partition_appeared_went_or_was_rewritten():
    def day(dataset: str, n: int, account: str = "default") -> str:
        return f"lake/{dataset}/account={account}/date={D.replace(day=n).isoformat()}/data.parquet"

    before = {day("cdrs", 4): "1:1:1", day("cdrs", 5): "2:2:2", day("cdrs", 6): "3:3:3", day("mdrs", 4): "4:4:4"}
    after = {day("cdrs", 4): "1:1:1", day("cdrs", 5): "2:9:9", day("cdrs", 7): "5:5:5"}
    assert dirty_days(before, after) == {D, D.replace(day=5), D.replace(day=6), D.replace(day=7)}
    assert dirty_days(after, after) == set()
    # A day is dirty when its partition changed in any account, the others' unchanged.
    other = {**after, day("cdrs", 8, "acme"): "6:6:6", day("cdrs", 8): "7:7:7"}
    assert dirty_days(other, {**other, day("cdrs", 8, "acme"): "6:6:7"}) == {D.replace(day=8)}
    assert dirty_days(after, {**after, day("cdrs", 4, "acme"): "8:8:8"}) == {D}


def test_a_changed_day_is_recomputed_from_the_two_days_either_side_of_it():
    assert window_days({D}) == [D.replace(day=n) for n in range(2, 7)]
    assert window_days({D}, "Europe/Berlin") == [D.replace(day=n) for n in range(2, 7)]
    assert window_days(set()) == []


def test_in_utc_a_changed_day_is_recomputed_from_itself_alone():
    assert window_days({D, D.replace(day=6)}, "UTC") == [D, D.replace(day=6)]
    assert window_days({D}, "Etc/UTC") == [D]


def test_the_queries_hash_changes_with_any_file_a_build_reads(tmp_path):
    (tmp_path / "marts").mkdir()
    (tmp_path / "marts" / "fct_a.sql").write_text("-- fct_a\nselect 1")
    first = queries_hash(tmp_path)
    (tmp_path / "README.md").write_text("notes")
    assert queries_hash(tmp_path) == first
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "x.csv").write_text("a\n1\n")
    assert queries_hash(tmp_path) != first


def test_the_months_recomputed_begin_with_that_of_the_earliest_day_replaced():
    """`recomputed_month_start()` (what a model incremental on `month` reads its facts from) and the rows it
    replaces agree: the month of the day after `since`, the UTC midnight before the earliest day replaced."""
    with duckdb.connect() as con:
        for statement in RECOMPUTED_MACROS:
            con.execute(statement)
        assert con.execute("select recomputed_month_start()::varchar").fetchone() == ("-infinity",)
        for since, month in (("2026-02-28", "2026-03"), ("2026-03-01", "2026-03"), ("2026-03-31", "2026-04")):
            instant = datetime.fromisoformat(since).replace(tzinfo=timezone.utc)
            con.execute(f"set variable {RECOMPUTED_SINCE_VARIABLE} = timestamptz '{instant.isoformat()}'")
            assert con.execute("select strftime(recomputed_month_start(), '%Y-%m')").fetchone() == (month,), since
            changed = Replacement.recomputed(MONTH, instant, "recent").changed
            kept = con.execute(f"select list(month order by month) from (values ('{month}'), ('0000-00'), ('9999-99')) "
                               f"as t(month) where {changed}").fetchone()
            assert kept == ([month, "9999-99"],), since
