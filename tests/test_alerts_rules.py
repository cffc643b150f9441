"""Alert rules against sandbox worlds: few false alarms on a clean 90-day world, every injected
anomaly (at the sizes issue #14 names) found on its day by the right rule and scope, and the
anomalies judged by an incremental build exactly as by a full one."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.dates import parse_datetime
from pipelines.models import QUERIES_DIR, build, warehouse_path
from sandbox import catalog
from sandbox.anomalies import parse_anomalies
from sandbox.world import World
from tests.fixtures.sandbox_lake import write_world
from tests.test_incremental_build import differences, full_build_of_a_copy

pytestmark = pytest.mark.slow

START = date(2026, 1, 5)  # a Monday
DAYS = 90
END = datetime.combine(START + timedelta(days=DAYS), datetime.min.time(), tzinfo=UTC)
WORLD = dict(seed=21, start=START, calls_per_day=8000, messages_per_day=8000)
SUPPORT_LINE = catalog.CONNECTIONS[6]


@dataclass(frozen=True)
class Expected:
    """An injected anomaly, the rule and scope that must report it, and the rules its side effects may trigger."""

    item: dict
    rule: str
    scope: dict[str, str]
    also: frozenset[str] = frozenset()


# One incident per day in the world's last fortnight, each at the largest size the rules must
# still find (issue #14, section 4); CA has ~250 outbound calls on a weekday.
EXPECTED = [
    Expected({"kind": "cost_spike", "start": "2026-03-23", "end": "2026-03-24", "product": "voice", "factor": 2.5},
             "cost_spike", {"product": "voice"}, frozenset({"after_hours", "high_risk_destination"})),
    Expected({"kind": "cost_spike", "start": "2026-03-24", "end": "2026-03-25", "product": "sms", "factor": 2.5},
             "cost_spike", {"product": "sms"}, frozenset({"after_hours"})),
    Expected({"kind": "irsf", "start": "2026-03-25T20:00Z", "end": "2026-03-26T04:00Z", "country_code": "LV",
              "calls": 100},
             "high_risk_destination", {"country_code": "LV", "product": "voice"},
             frozenset({"new_destination", "cost_spike", "after_hours"})),
    Expected({"kind": "short_call_burst", "start": "2026-03-27T10:00Z", "end": "2026-03-27T11:00Z",
              "country_code": "GB", "calls": 500, "max_secs": 6},
             "short_call_burst", {"country_code": "GB"}),
    Expected({"kind": "asr_drop", "start": "2026-03-30", "end": "2026-03-31", "country_code": "CA",
              "answer_rate": 0.30},
             "asr_drop", {"country_code": "CA"}),
    Expected({"kind": "sms_pumping", "start": "2026-03-31", "end": "2026-04-01", "country_code": "DE",
              "messages": 1000, "delivery_rate": 0.3},
             "message_volume_spike", {"country_code": "DE"}, frozenset({"message_failure_spike", "cost_spike"})),
    # failed + rejected is ~7% of outbound messages: 0.19 delivery_failed makes it ~21%, tripled
    Expected({"kind": "delivery_failure", "start": "2026-04-01", "end": "2026-04-02", "carrier": "AT&T Mobility",
              "failure_rate": 0.19},
             "message_failure_spike", {"carrier": "AT&T Mobility"}),
    Expected({"kind": "asr_drop", "start": "2026-04-02", "end": "2026-04-03", "connection_id": SUPPORT_LINE.id,
              "answer_rate": 0.3},
             "asr_drop", {"connection_id": SUPPORT_LINE.id}),
]
COLUMNS = ("rule", "severity", "product", "country_code", "connection_id", "carrier", "window_start", "window_end",
           "message")


def alerts(data_dir: Path) -> list[dict]:
    with duckdb.connect(str(warehouse_path(data_dir)), read_only=True) as con:
        rows = con.execute(f"select {', '.join(COLUMNS)} from rpt_alerts where severity <> 'info'").fetchall()
    return [dict(zip(COLUMNS, row)) for row in rows]


def window(expected: Expected) -> tuple[datetime, datetime]:
    return parse_datetime(expected.item["start"]), parse_datetime(expected.item["end"])


def overlaps(alert: dict, expected: Expected) -> bool:
    start, end = window(expected)
    return alert["window_start"] < end and alert["window_end"] > start


def finds(alert: dict, expected: Expected) -> bool:
    """The alert reports the anomaly: its rule, its scope, on its day."""
    return (
        alert["rule"] == expected.rule
        and all(alert[field] == value for field, value in expected.scope.items())
        and overlaps(alert, expected)
    )


def explained(alert: dict) -> bool:
    """The alert is the anomaly's or one of its side effects (a rule it may trigger, no other scope)."""
    for expected in EXPECTED:
        scope = {k: v for k, v in expected.scope.items() if k != "connection_id"}
        if (
            overlaps(alert, expected)
            and alert["rule"] in {expected.rule, *expected.also}
            and all(alert[field] in (None, value) for field, value in scope.items())
        ):
            return True
    return False


# The world's last day, where the support line's calls carry a new name.
RENAMED_ON = END.date() - timedelta(days=1)
RENAMED = "Support Line (renamed)"
# The days the anomalies change (each one's first day and the next), and the renaming day.
TOUCHED = {parse_datetime(e.item["start"]).date() + timedelta(days=d) for e in EXPECTED for d in (0, 1)} | {RENAMED_ON}


def add_anomalies(data_dir: Path) -> None:
    """Rewrite the clean world's days the anomalies touch, with them, and rename the support line on the
    last day (after its ratio dropped)."""
    anomalies = parse_anomalies(str([e.item for e in EXPECTED]).replace("'", '"'), "test")
    write_world(World(**WORLD, anomalies=anomalies), START, DAYS, data_dir, only=TOUCHED)
    last_day = data_dir / "lake" / "cdrs" / "account=default" / f"date={RENAMED_ON}" / "data.parquet"
    pl.read_parquet(last_day).with_columns(
        connection_name=pl.when(pl.col("connection_id") == SUPPORT_LINE.id)
        .then(pl.lit(RENAMED))
        .otherwise(pl.col("connection_name"))
    ).write_parquet(last_day, compression="zstd")


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The clean world and the same world with the anomalies, each built into a warehouse: the
    second as the nightly build would, incrementally over the clean world's."""
    dirty = tmp_path_factory.mktemp("dirty")
    write_world(World(**WORLD), START, DAYS, dirty)
    build(dirty, now=END)
    # The clean world's warehouse is that full build: copied with its lake before the anomalies come.
    clean = tmp_path_factory.mktemp("clean")
    shutil.copytree(dirty, clean, dirs_exist_ok=True)
    add_anomalies(dirty)
    report = build(dirty, now=END)
    assert report.mode == "incremental" and report.days_rebuilt == len(TOUCHED), report.how
    return {"clean": clean, "dirty": dirty}


def test_a_clean_world_raises_at_most_one_warning_per_30_days(warehouses):
    found = alerts(warehouses["clean"])
    for alert in found:
        print(alert["severity"], alert["message"])
    print(f"false alarms: {len(found)} warning-or-worse alerts in {DAYS} clean days")
    assert len(found) <= DAYS // 30


def test_every_injected_anomaly_is_found_on_its_day_by_its_rule_and_scope(warehouses):
    found = alerts(warehouses["dirty"])
    missed = [e.item for e in EXPECTED if not any(finds(a, e) for a in found)]
    unexplained = [a for a in found if not explained(a)]
    recall = 1 - len(missed) / len(EXPECTED)
    precision = 1 - len(unexplained) / len(found) if found else 1.0
    for alert in unexplained:
        print("unexplained:", alert["severity"], alert["message"])
    print(f"recall {recall:.2f} ({len(EXPECTED) - len(missed)}/{len(EXPECTED)}), "
          f"precision {precision:.2f} ({len(found) - len(unexplained)}/{len(found)} alerts explained)")
    assert missed == []


def rules_fired(data_dir: Path) -> set[str]:
    with duckdb.connect(str(warehouse_path(data_dir)), read_only=True) as con:
        return {row[0] for row in con.execute("select distinct rule from rpt_alerts").fetchall()}


def test_the_anomalies_judged_incrementally_are_judged_as_by_a_full_build(warehouses, tmp_path):
    """Every table of the incremental build (each alert rule's among them) equals a full build's, row
    for row, with alerts of most rules among the windows it judged again."""
    full = full_build_of_a_copy(warehouses["dirty"], tmp_path / "full", "UTC", END)
    assert differences(warehouses["dirty"], full, views=False) == []
    assert len(rules_fired(full)) >= 5


def test_the_anomalies_judged_incrementally_in_a_half_hour_zone_are_judged_as_by_a_full_build(warehouses, tmp_path):
    """A report day there starts inside a UTC hour, and an hour's window may straddle two report days."""
    zone = "Asia/Kolkata"
    data = tmp_path / "data"
    shutil.copytree(warehouses["clean"] / "lake", data / "lake")
    assert build(data, report_timezone=zone, now=END).mode == "full"
    add_anomalies(data)
    assert build(data, report_timezone=zone, now=END).mode == "incremental"
    full = full_build_of_a_copy(data, tmp_path / "full", zone, END)
    assert differences(data, full, views=False) == []
    assert len(rules_fired(full)) >= 5


def test_an_alert_rule_reading_too_little_history_is_caught(warehouses, tmp_path):
    """The proof above fails when an incremental rule does not read back as far as its windows look."""
    queries = tmp_path / "queries"
    shutil.copytree(QUERIES_DIR, queries)
    macro = queries / "macros" / "lookback_start.sql"
    macro.write_text(macro.read_text().replace("- lookback_days::integer", "- 0 * lookback_days::integer"))
    data = tmp_path / "data"
    shutil.copytree(warehouses["clean"] / "lake", data / "lake")
    assert build(data, now=END, queries_dir=queries).mode == "full"
    add_anomalies(data)
    assert build(data, now=END, queries_dir=queries).mode == "incremental"

    full = tmp_path / "full"
    shutil.copytree(data / "lake", full / "lake")
    build(full, now=END, queries_dir=queries)
    found = differences(data, full, views=False)
    assert found and all(line.startswith(("alert_", "rpt_alerts")) for line in found), found


def test_an_asr_drop_names_its_connection_as_that_day_did_after_a_rename(warehouses):
    """The support line renamed after its ratio dropped: the alert keeps the name it was sent with (the
    full-build proofs above include the rename), and the dim has the new name."""
    with duckdb.connect(str(warehouse_path(warehouses["dirty"])), read_only=True) as con:
        named = con.execute(
            "select distinct connection_name, message like '%' || connection_name || '%' from rpt_alerts"
            " where rule = 'asr_drop' and connection_id = ?", [SUPPORT_LINE.id]
        ).fetchall()
        current = con.execute(
            "select connection_name from dim_connections where connection_id = ?", [SUPPORT_LINE.id]
        ).fetchall()
    assert named == [(SUPPORT_LINE.name, True)]
    assert current == [(RENAMED,)]
