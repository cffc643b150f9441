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
        ("[cost_spike]\nweeks = 2.5\n", "cost_spike.weeks must be a whole number from 1 to 100,000, got 2.5"),
        ("[cost_spike]\nweeks = 1000000000\n", "cost_spike.weeks must be a whole number from 1 to 100,000, got 1000000000"),
        ("[sync_stale]\nmax_silence_hours = 2.5\n", "sync_stale.max_silence_hours must be a whole number from 0 to 100,000, got 2.5"),
        # values their meaning rules out ([rule.allowed] in the shipped file)
        ("[after_hours]\nstart_hour = 30\n", "after_hours.start_hour must be a whole number from 0 to 23, got 30"),
        ("[after_hours]\nend_hour = 2\n", "after_hours.end_hour must be a whole number from start_hour + 1 (9) to 24, got 2"),
        ("[after_hours]\nend_hour = 8\n", "after_hours.end_hour must be a whole number from start_hour + 1 (9) to 24, got 8"),
        ("[after_hours]\nstart_hour = 20\n",
         "after_hours.end_hour must be a whole number from start_hour + 1 (21) to 24, got 19 (the shipped value)"),
        ("[after_hours]\nweekends = 7\n", "after_hours.weekends must be a whole number from 0 to 1, got 7"),
        ('[after_hours]\nweekends = "yes"\n', 'after_hours.weekends must be a whole number from 0 to 1, got "yes"'),
        ("[cost_spike]\nweeks = 0\n", "cost_spike.weeks must be a whole number from 1 to 100,000, got 0"),
        ("[cost_spike]\nmin_points = 0\n", "cost_spike.min_points must be a whole number from 1 to weeks (8), got 0"),
        ("[cost_spike]\nmin_points = 9\n", "cost_spike.min_points must be a whole number from 1 to weeks (8), got 9"),
        ("[cost_spike]\nweeks = 2\n", "cost_spike.min_points must be a whole number from 1 to weeks (2), got 3 (the shipped value)"),
        ("[short_call_burst]\ndays = 0\n", "short_call_burst.days must be a whole number from 1 to 100,000, got 0"),
        ("[new_destination]\nlookback_days = 0\n", "new_destination.lookback_days must be a whole number from 1 to 100,000, got 0"),
        ("[high_risk_destination]\npremium_min_points = 9\n",
         "high_risk_destination.premium_min_points must be a whole number from 1 to premium_weeks (8), got 9"),
        ("[asr_drop]\nrelative_drop = 1.5\n", "asr_drop.relative_drop must be a number from 0 to 1, got 1.5"),
        ("[asr_drop]\nner_drop = 2\n", "asr_drop.ner_drop must be a number from 0 to 1, got 2"),
        ("[asr_drop]\ncritical_relative_drop = 1.2\n", "asr_drop.critical_relative_drop must be a number from 0 to 1, got 1.2"),
        ("[asr_drop]\nmin_points = 15\n", "asr_drop.min_points must be a whole number from 1 to days (14), got 15"),
        ("[message_failure_spike]\ncritical_share = 50\n", "message_failure_spike.critical_share must be a number from 0 to 1, got 50"),
        ("[message_volume_spike]\ndelivery_drop = 25\n", "message_volume_spike.delivery_drop must be a number from 0 to 1, got 25"),
        ("[message_volume_spike]\ncritical_delivery = 1.5\n",
         "message_volume_spike.critical_delivery must be a number from 0 to 1, got 1.5"),
        # the ranges are the shipped file's: an override does not change them
        ("[cost_spike.allowed]\nweeks = [0, 1]\n", "unknown key cost_spike.allowed; [cost_spike] takes"),
        ("version = 2\n", "version 2 is not the shipped version 1"),
        ("[cost_spike\n", "not valid TOML"),
    ],
)
def test_a_bad_override_is_one_line_naming_the_key(tmp_path, text, expected):
    with pytest.raises(UsageError) as caught:
        load_thresholds(QUERIES_DIR, override(tmp_path, text))
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_shipped_thresholds_pass_their_own_ranges_and_the_ranges_are_no_thresholds():
    import tomllib

    shipped = load_thresholds(QUERIES_DIR)
    document = tomllib.loads((QUERIES_DIR / "alerts" / "thresholds.toml").read_text(encoding="utf-8"))
    allowed = {rule: table.pop("allowed") for rule, table in document.items() if isinstance(table, dict) and "allowed" in table}
    assert {"after_hours", "asr_drop", "cost_spike"} <= set(allowed)
    # the digest and the alert_thresholds rows hold exactly the thresholds, as before ranges were shipped
    assert set(shipped.values) == {(rule, name) for rule, table in document.items() if isinstance(table, dict) for name in table}


def test_every_shipped_threshold_is_read_by_a_rule():
    # a key no rule reads would be tuned by its users to no effect
    read = "\n".join(path.read_text(encoding="utf-8") for path in (QUERIES_DIR / "alerts").glob("*.sql"))
    unread = [
        f"{rule}.{name}" for rule, name in load_thresholds(QUERIES_DIR).values
        if f"threshold('{rule}', '{name}')" not in read
    ]
    assert unread == []


def test_a_value_at_either_end_of_its_range_is_taken(tmp_path):
    text = (
        "[after_hours]\nstart_hour = 0\nend_hour = 1\nweekends = 0\nweeks = 1\nmin_points = 1\n"
        "[asr_drop]\nrelative_drop = 1\nner_drop = 0\ndays = 3\nmin_points = 3\n"
    )
    changed = load_thresholds(QUERIES_DIR, override(tmp_path, text))
    assert changed.values[("after_hours", "end_hour")] == 1.0 and changed.values[("asr_drop", "min_points")] == 3.0
    changed = load_thresholds(QUERIES_DIR, override(tmp_path, "[after_hours]\nstart_hour = 23\nend_hour = 24\n"))
    assert changed.values[("after_hours", "start_hour")] == 23.0


@pytest.mark.parametrize(
    "allowed", ['x = [0]', 'y = [0, 1]', 'x = [0, "y"]', 'x = [0, "x +1"]', 'x = 1'], ids=str
)
def test_a_shipped_range_that_is_not_lowest_highest_of_a_key_is_refused(tmp_path, allowed):
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "thresholds.toml").write_text(f"version = 1\n[r]\nx = 1\n[r.allowed]\n{allowed}\n", encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_thresholds(tmp_path)
    assert "[r.allowed] gives each key of [r] `[lowest, highest]`" in str(caught.value) and "\n" not in str(caught.value)


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
