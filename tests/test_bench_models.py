"""bench_models on a tiny synthetic lake: the scan, the floor and the build all run over it."""

from __future__ import annotations

import re

import duckdb
import pytest

from bench import bench_models
from pipelines.models import warehouse_path


@pytest.mark.slow
def test_a_tiny_run_times_the_scan_every_floor_pass_and_a_passing_build(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench_models, "OUT", tmp_path)
    bench_models.main(["--cdrs", "3000", "--mdrs", "1500", "--days", "2", "--rounds", "1", "--floor",
                       "--duplicate-share", "0.01", "--incremental", "1"])
    out = capsys.readouterr().out
    assert "best: scan " in out and "best: build " in out and "best: floor " in out
    assert "build / scan per round: " in out
    # the incremental build followed the round's full one, and rebuilt the day re-landed
    assert "incremental build (1 changed days) / full build per round: " in out
    assert "incremental build / scan of the 1 changed days per round: " in out
    floor_line = next(line for line in out.splitlines() if line.startswith("passes of the best floor: "))
    assert all(f"{name} " in floor_line for name in bench_models.FLOOR_QUERIES)
    # The build passed every data test, superseded versions included, into a warehouse holding
    # each record once.
    (lake,) = tmp_path.glob("lake-*")
    with duckdb.connect(str(warehouse_path(lake)), read_only=True) as con:
        assert con.execute("select count(*), count(distinct id) from calls").fetchall() == [(3000, 3000)]
        assert con.execute("select count(*), count(distinct id) from messages").fetchall() == [(1500, 1500)]


def test_a_lake_spread_over_accounts_builds_each_account_and_resyncs_every_account(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench_models, "OUT", tmp_path)
    bench_models.main(["--cdrs", "600", "--mdrs", "300", "--days", "3", "--accounts", "3", "--rounds", "1",
                       "--no-floor", "--no-alerts-apart", "--incremental", "1"])
    out = capsys.readouterr().out
    assert "600 CDRs, 300 MDRs in each of 3 accounts, 3 days" in out
    assert "incremental build (1 changed days) / full build per round: " in out
    (lake,) = tmp_path.glob("lake-*-a3")
    # the newest day of every account was re-landed, and nothing else
    newest = bench_models.newest_partitions(lake, "cdrs", 1)
    assert sorted(path.parent.parent.name for path in newest) == ["account=a0000", "account=a0001", "account=a0002"]
    assert all(path.stat().st_nlink == 1 for path in newest)
    with duckdb.connect(str(warehouse_path(lake)), read_only=True) as con:
        per_account = con.execute("select account, count(*), count(distinct id) from calls group by all order by all")
        assert per_account.fetchall() == [(f"a000{index}", 600, 600) for index in range(3)]


def test_a_quarantine_of_many_files_is_read_back_by_the_build(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench_models, "OUT", tmp_path)
    bench_models.main(["--cdrs", "400", "--mdrs", "200", "--days", "2", "--accounts", "2", "--quarantine-files", "3",
                       "--rounds", "1", "--no-floor", "--no-alerts-apart", "--incremental", "1"])
    out = capsys.readouterr().out
    assert "in each of 2 accounts, 3 quarantine files a day, 2 days" in out
    (lake,) = tmp_path.glob("lake-*-a2-q3")
    assert len(list((lake / "quarantine").rglob("*.jsonl"))) == 2 * 2 * 3
    with duckdb.connect(str(warehouse_path(lake)), read_only=True) as con:
        rows = con.execute("select account, utc_date, count(*) from stg_quarantine group by all order by all").fetchall()
        assert [count for _, _, count in rows] == [3] * 4 and {account for account, _, _ in rows} == {"a0000", "a0001"}


@pytest.mark.parametrize("dataset", ["cdrs", "mdrs"])
def test_the_floor_reads_only_columns_the_scan_reads(dataset):
    # The floor may not be cheaper for reading less than the build: every lake column a floor
    # pass names is one the scan (and so the build) reads.
    columns = set(bench_models.BUILD_COLUMNS[dataset])
    schema = set(bench_models.api.CDR_SCHEMA if dataset == "cdrs" else bench_models.api.MDR_SCHEMA)
    for name, query in bench_models.FLOOR_QUERIES.items():
        if not name.startswith(dataset):
            continue
        named = {column for column in schema if re.search(rf"(?<![\w.]){column}(?!\w)", query)}
        assert named <= columns, (name, named - columns)
