"""The alert thresholds file and its override (CDR_ALERTS_CONFIG): keys replace the shipped ones, anything unknown is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import UsageError
from pipelines.models import QUERIES_DIR
from pipelines.models.thresholds import load_thresholds


def override(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_override_replaces_only_the_keys_it_gives(tmp_path):
    shipped = load_thresholds(QUERIES_DIR)
    changed = load_thresholds(QUERIES_DIR, override(tmp_path, "[cost_spike]\nday_ratio = 3\n"))
    assert changed.values[("cost_spike", "day_ratio")] == 3.0
    assert {k: v for k, v in changed.values.items() if k != ("cost_spike", "day_ratio")} == {
        k: v for k, v in shipped.values.items() if k != ("cost_spike", "day_ratio")
    }
    assert changed.digest != shipped.digest
    assert shipped.version == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[cost_spikes]\nday_ratio = 3\n", "unknown rule [cost_spikes]; the rules are after_hours"),
        ("[cost_spike]\nday_ration = 3\n", "unknown key cost_spike.day_ration; [cost_spike] takes country_max_factor"),
        ('[cost_spike]\nday_ratio = "3"\n', 'cost_spike.day_ratio must be a number >= 0, got "3"'),
        ("[cost_spike]\nday_ratio = true\n", "cost_spike.day_ratio must be a number >= 0, got true"),
        ("[cost_spike]\nday_ratio = -1\n", "cost_spike.day_ratio must be a number >= 0, got -1"),
        # shipped as whole numbers (weeks, hours): counts, which the rules' SQL takes as 32-bit integers
        ("[cost_spike]\nweeks = 2.5\n", "cost_spike.weeks must be a whole number from 0 to 100,000, got 2.5"),
        ("[cost_spike]\nweeks = 1000000000\n", "cost_spike.weeks must be a whole number from 0 to 100,000, got 1000000000"),
        ("version = 2\n", "version 2 is not the shipped version 1"),
        ("[cost_spike\n", "not valid TOML"),
    ],
)
def test_a_bad_override_is_one_line_naming_the_key(tmp_path, text, expected):
    with pytest.raises(UsageError) as caught:
        load_thresholds(QUERIES_DIR, override(tmp_path, text))
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_old_override_version_names_the_shipped_file_to_compare_with(tmp_path):
    with pytest.raises(UsageError) as caught:
        load_thresholds(QUERIES_DIR, override(tmp_path, "version = 2\n"))
    assert f"compare it with {QUERIES_DIR / 'alerts' / 'thresholds.toml'} and update it" in str(caught.value)


def test_a_missing_override_file_is_refused(tmp_path):
    with pytest.raises(UsageError, match="cannot read it"):
        load_thresholds(QUERIES_DIR, tmp_path / "absent.toml")


def test_cdr_build_reads_the_override_from_cdr_alerts_config(tmp_path, capsys, monkeypatch):
    import duckdb

    from tests.fixtures.cli import run_cdr
    from tests.fixtures.lake import small_world, write_lake

    data_dir = write_lake(tmp_path / "data", *small_world())
    config = override(tmp_path, "[cost_spike]\nday_ratio = 3\n")
    monkeypatch.setenv("CDR_ALERTS_CONFIG", str(config))
    code, _, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(data_dir))
    assert code == 0, err
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        used = con.execute("select value from alert_thresholds where rule = 'cost_spike' and name = 'day_ratio'").fetchall()
        recorded = con.execute("select override from alert_config").fetchone()
    assert used == [(3.0,)] and recorded is not None and str(config) in str(recorded[0])

    config.write_text("[cost_spike]\nday_ration = 3\n", encoding="utf-8")
    code, out, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(data_dir))
    assert code == 2 and err.count("\n") == 1 and "unknown key cost_spike.day_ration" in err


def test_other_thresholds_make_the_next_build_a_full_one(tmp_path):
    """Alert tables keep the windows an incremental build does not judge again: judged by other
    thresholds, they would be stale."""
    from pipelines.models import build
    from tests.fixtures.lake import small_world, write_lake

    data_dir = write_lake(tmp_path / "data", *small_world())
    assert build(data_dir).mode == "full"
    config = override(tmp_path, "[cost_spike]\nday_ratio = 3\n")
    report = build(data_dir, alerts_config=config)
    assert report.mode == "full" and "alert thresholds changed" in report.reason
    assert build(data_dir, alerts_config=config).mode == "incremental"
