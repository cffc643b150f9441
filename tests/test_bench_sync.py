"""bench_sync on a tiny month: every pass runs against one sandbox and reads the same records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import bench_sync


@pytest.mark.slow
def test_a_tiny_run_measures_every_pass_and_the_ladder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(bench_sync, "OUT", tmp_path)
    bench_sync.main([
        "--days", "2", "--calls-per-day", "300", "--rounds", "1", "--no-dlt", "--no-cdr", "--rss-records", "1000",
    ])
    figures = json.loads((tmp_path / "bench_sync.json").read_text())
    total = figures["warm-up"][0]["records"]
    assert total > 300
    # The ceiling, the client alone and the sync all read the month's every record (the sync's
    # lake is checked to hold them before a figure is kept).
    assert [(r["label"], r["records"]) for name in ("bare", "client", "sync") for r in figures[name]] == [
        ("bare", total), ("client", total), ("sync", total),
    ]
    assert figures["warm-up"][0]["extra"]["requests"] == figures["client"][0]["extra"]["requests"] >= 2
    assert figures["sync"][0]["peak_rss_mib"] > 50 and figures["sync"][0]["cpu_seconds"] > 0
    (ladder,) = figures["ladder"]
    assert ladder["label"] == "sync 4 days" and ladder["records"] > total
    assert ladder["extra"]["sandbox_rss_mib"] > 0
    assert figures["cdr sync"] == figures["dlt"] == figures["baseline"] == []
    out = capsys.readouterr().out
    assert "| 1 | " in out and "Peak RSS of the sync by records" in out
    assert list(tmp_path.iterdir()) == [tmp_path / "bench_sync.json"]  # the scratch dirs are gone
