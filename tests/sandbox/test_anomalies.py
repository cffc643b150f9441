"""Sandbox anomalies: each kind of incident lands as real-looking records at the scope the
alert rules must catch, the rest of the world stays as it was, and bad files are one line."""

from __future__ import annotations

import csv
import hashlib
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import polars as pl
import pytest

from pipelines.dates import format_utc
from pipelines.errors import UsageError
from sandbox import catalog
from sandbox.anomalies import load_anomalies, parse_anomalies
from sandbox.export import export_window
from sandbox.testing import TEST_API_KEY, running_sandbox
from sandbox.world import World
from tests.fixtures.cli import run_cdr
from tests.sandbox.test_world import check_cdr, check_mdr

START = date(2026, 3, 1)
LATER = datetime(2026, 5, 1, tzinfo=UTC)
PARAMS = dict(seed=3, start=START, calls_per_day=3000, messages_per_day=2000, rerate_rate=0.1, malformed_rate=0.02)
TRUNK = catalog.CONNECTIONS[2]
# One incident per day, each at (or below) the size the alert rules must find.
ITEMS = [
    {"kind": "cost_spike", "start": "2026-03-03", "end": "2026-03-04", "product": "voice", "factor": 2.5},
    {"kind": "cost_spike", "start": "2026-03-03", "end": "2026-03-04", "product": "sms", "factor": 0.5},
    {"kind": "irsf", "start": "2026-03-05T20:00Z", "end": "2026-03-06T04:00Z", "country_code": "LV", "calls": 100},
    {"kind": "short_call_burst", "start": "2026-03-06T10:00Z", "end": "2026-03-06T11:00Z", "country_code": "GB",
     "calls": 500, "max_secs": 6},
    {"kind": "asr_drop", "start": "2026-03-07", "end": "2026-03-08", "country_code": "US", "answer_rate": 0.31},
    {"kind": "asr_drop", "start": "2026-03-07", "end": "2026-03-08", "connection_id": TRUNK.id, "answer_rate": 0.1},
    {"kind": "sms_pumping", "start": "2026-03-08", "end": "2026-03-09", "country_code": "SO", "messages": 1000,
     "delivery_rate": 0.3},
    {"kind": "delivery_failure", "start": "2026-03-09", "end": "2026-03-10", "carrier": "AT&T Mobility",
     "failure_rate": 0.5},
    {"kind": "delivery_failure", "start": "2026-03-09", "end": "2026-03-10", "country_code": "DE",
     "failure_rate": 0.3},
]
DAYS = 10


def month(world: World, kind: str) -> pl.DataFrame:
    return pl.concat([world.view(kind, START + timedelta(days=i), LATER) for i in range(DAYS)])


def on(frame: pl.DataFrame, day: int, *conditions: pl.Expr) -> pl.DataFrame:
    return frame.filter(pl.col("created_at").dt.date() == date(2026, 3, day), *conditions)


def answer_ratio(frame: pl.DataFrame) -> float:
    return (frame.get_column("status") == "answered").mean()  # type: ignore[return-value]


def failure_ratio(frame: pl.DataFrame) -> float:
    return (frame.get_column("status") == "delivery_failed").mean()  # type: ignore[return-value]


OUT = pl.col("direction") == "outbound"


@pytest.fixture(scope="module")
def anomalies_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("anomalies") / "anomalies.json"
    path.write_bytes(orjson.dumps(ITEMS))
    return path


@pytest.fixture(scope="module")
def worlds(anomalies_file: Path) -> dict[str, dict[str, pl.DataFrame]]:
    clean, dirty = World(**PARAMS), World(**PARAMS, anomalies=load_anomalies(anomalies_file))
    return {
        "clean": {kind: month(clean, kind) for kind in ("cdrs", "mdrs")},
        "dirty": {kind: month(dirty, kind) for kind in ("cdrs", "mdrs")},
    }


def test_the_world_without_anomalies_is_unchanged(tmp_path):
    # The digest of this export before anomalies existed: change it only when the clean
    # world is meant to change.
    world = World(seed=8, start=START, calls_per_day=400, messages_per_day=250, rerate_rate=0.2, malformed_rate=0.03)
    export_window(world, datetime(2026, 3, 5, 13, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC),
                  datetime(2026, 3, 6, tzinfo=UTC), tmp_path)
    digest = hashlib.sha256()
    for name in ("cdrs", "mdrs", "malformed"):
        digest.update((tmp_path / f"{name}.jsonl").read_bytes())
    assert digest.hexdigest() == "c201d87643c40fdc1c70135b1a2ad3781fc4e6ce7edd19a1c7205ddb4aacd025"


def test_days_without_an_incident_are_the_clean_world(worlds):
    for kind in ("cdrs", "mdrs"):
        for day in (1, 2, 4, 10):
            assert on(worlds["dirty"][kind], day).equals(on(worlds["clean"][kind], day)), (kind, day)


@pytest.mark.parametrize("kind", ["cdrs", "mdrs"])
def test_injected_records_keep_every_contract_invariant_with_unique_ids(kind, worlds):
    frame = worlds["dirty"][kind]
    check = check_cdr if kind == "cdrs" else check_mdr
    for text in frame.filter(pl.col("malformed").is_null()).get_column("json"):
        check(orjson.loads(text))
    assert frame.get_column("id").n_unique() == frame.height
    assert frame.equals(frame.sort("created_at", "id"))
    added = set(frame.get_column("id")) - set(worlds["clean"][kind].get_column("id"))
    assert len(added) >= 1000


def test_same_seed_and_file_give_the_same_world(anomalies_file, worlds):
    again = World(**PARAMS, anomalies=load_anomalies(anomalies_file))
    for day in (3, 5, 8, 9):
        assert on(month(again, "cdrs"), day).equals(on(worlds["dirty"]["cdrs"], day))
        assert on(month(again, "mdrs"), day).equals(on(worlds["dirty"]["mdrs"], day))


def test_a_cost_spike_multiplies_that_product_and_only_it(worlds):
    clean, dirty = worlds["clean"], worlds["dirty"]
    calls_before, calls_after = on(clean["cdrs"], 3), on(dirty["cdrs"], 3)
    assert 2.3 < calls_after.height / calls_before.height < 2.7
    assert calls_after.get_column("cost").sum() > 2 * calls_before.get_column("cost").sum()
    # Same destination mix: the top countries keep their shares.
    share = lambda frame: (frame.get_column("country_code") == "US").mean()  # noqa: E731
    assert abs(share(calls_after) - share(calls_before)) < 0.03
    sms, mms = pl.col("message_type") == "sms", pl.col("message_type") == "mms"
    assert 0.4 < on(dirty["mdrs"], 3, sms).height / on(clean["mdrs"], 3, sms).height < 0.6
    assert on(dirty["mdrs"], 3, mms).equals(on(clean["mdrs"], 3, mms))


def test_irsf_calls_go_long_to_the_listed_ranges(worlds):
    calls = worlds["dirty"]["cdrs"].filter(pl.col("country_code") == "LV")
    assert calls.height == 100
    assert worlds["clean"]["cdrs"].filter(pl.col("country_code") == "LV").is_empty()
    assert set(calls.get_column("direction")) == {"outbound"}
    assert all(cld.startswith("+37190") for cld in calls.get_column("cld"))
    assert set(calls.get_column("number_type")) == {"premium"}
    assert calls.get_column("connection.id").n_unique() == 1
    answered = calls.filter(pl.col("status") == "answered")
    assert answered.height >= 75
    assert answered.get_column("duration_secs").median() > 300
    assert answered.get_column("cost").sum() > Decimal(200)
    created = calls.get_column("created_at")
    assert created.min() >= datetime(2026, 3, 5, 20, tzinfo=UTC) and created.max() < datetime(2026, 3, 6, 4, tzinfo=UTC)


def test_a_short_call_burst_is_that_many_short_answered_calls_in_the_hour(worlds):
    hour = (pl.col("created_at").dt.hour() == 10, pl.col("country_code") == "GB", OUT, pl.col("duration_secs") <= 6)
    burst = on(worlds["dirty"]["cdrs"], 6, *hour).height - on(worlds["clean"]["cdrs"], 6, *hour).height
    assert burst == 500
    assert (on(worlds["dirty"]["cdrs"], 6, *hour).get_column("status") == "answered").mean() > 0.95


def test_an_asr_drop_lowers_the_answer_ratio_of_its_country_and_its_connection(worlds):
    clean, dirty = worlds["clean"]["cdrs"], worlds["dirty"]["cdrs"]
    us = (OUT, pl.col("country_code") == "US", pl.col("connection.id") != TRUNK.id)
    assert answer_ratio(on(clean, 7, *us)) > 0.55
    assert 0.25 < answer_ratio(on(dirty, 7, *us)) < 0.37
    trunk = (OUT, pl.col("connection.id") == TRUNK.id)
    assert answer_ratio(on(dirty, 7, *trunk)) < 0.16 < 0.4 < answer_ratio(on(clean, 7, *trunk))
    others = (OUT, pl.col("country_code") != "US", pl.col("connection.id") != TRUNK.id)
    assert on(dirty, 7, *others).equals(on(clean, 7, *others))
    # Unanswered now means no talk and no charge.
    dropped = on(dirty, 7, *us, pl.col("status") != "answered")
    assert dropped.get_column("answered_at").null_count() == dropped.height
    assert set(dropped.get_column("billed_duration_secs")) == {0}


def test_sms_pumping_sends_that_many_barely_delivered_messages(worlds):
    pumped = worlds["dirty"]["mdrs"].filter(pl.col("country_code") == "SO")
    assert pumped.height == 1000
    assert set(pumped.get_column("direction")) == {"outbound"}
    assert 0.25 < (pumped.get_column("status") == "delivered").mean() < 0.35
    assert set(pumped.get_column("status")) <= {"delivered", "sent", "delivery_failed", "delivery_unconfirmed"}
    assert all(re.fullmatch(r"\+252(61|62|63|90)[0-9]{7}", cld) for cld in pumped.get_column("cld"))
    usd = pumped.filter(pl.col("currency") == "USD")
    # Somalia's SMS rate, but for the share re-rated since.
    assert (usd.get_column("rate") == Decimal("0.15")).mean() > 0.8 and usd.height > 500


def test_a_delivery_failure_raises_the_failure_share_of_its_carrier_and_country(worlds):
    clean, dirty = worlds["clean"]["mdrs"], worlds["dirty"]["mdrs"]
    carrier = (OUT, pl.col("carrier") == "AT&T Mobility")
    assert failure_ratio(on(clean, 9, *carrier)) < 0.12
    assert 0.38 < failure_ratio(on(dirty, 9, *carrier)) < 0.62
    germany = (OUT, pl.col("country_code") == "DE")
    assert 0.18 < failure_ratio(on(dirty, 9, *germany)) < 0.42
    failed = on(dirty, 9, *carrier, pl.col("status") == "delivery_failed")
    assert failed.get_column("errors").list.len().min() == 1
    others = (OUT, pl.col("carrier") != "AT&T Mobility", pl.col("country_code") != "DE")
    assert on(dirty, 9, *others).equals(on(clean, 9, *others))


def test_the_server_lists_counts_and_exports_injected_records_alike(anomalies_file, tmp_path):
    window = {"filter[created_at][gte]": "2026-03-05T00:00:00Z", "filter[created_at][lt]": "2026-03-07T00:00:00Z"}
    now = datetime(2026, 3, 12, tzinfo=UTC)
    export_window(World(**PARAMS, anomalies=load_anomalies(anomalies_file)), now,
                  datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 7, tzinfo=UTC), tmp_path)
    truth = [line for line in (tmp_path / "cdrs.jsonl").read_text().splitlines() if '"country_code":"LV"' in line]
    options = {k: v for k, v in PARAMS.items() if k != "start"}
    with running_sandbox(start=START.isoformat(), now=format_utc(now), anomalies=anomalies_file, **options) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TEST_API_KEY}"}, timeout=60) as http:
            listed = http.get("/v2/reports/cdrs", params={
                **window, "filter[country_code]": "LV", "sort": "created_at", "page[size]": "250",
            }).json()["data"]
            usage = http.get("/v2/reports/usage", params={
                **window, "product": "calls", "dimensions": "country_code", "metrics": "count,cost",
                "filter[country_code]": "LV",
            }).json()["data"]
    assert [orjson.loads(line) for line in truth] == listed
    assert usage == [{"country_code": "LV", "count": len(listed),
                      "cost": f"{sum(Decimal(r['cost']) for r in listed):.6f}"}]
    # Every valid one of the 100 (malformed ones are never injected).
    assert len(listed) == 100


def test_the_high_risk_list_is_in_the_catalog_with_its_calling_codes():
    with open(catalog.high_risk_file(), encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(catalog.high_risk_ranges()) >= 10
    countries = {c.code: c for c in catalog.DESTINATIONS}
    for row in rows:
        assert row["range_type"] in ("premium", "irsf", "satellite") and row["note"]
        assert row["calling_code"].isdigit() and (row["prefix"] == "" or row["prefix"].isdigit())
        if row["country_code"]:
            country = countries[row["country_code"]]
            assert country.calling_code == row["calling_code"]
            plans = catalog.high_risk_plans(country)
            assert all(country.plans[number_type].length == plan.length for number_type, plan in plans)
            assert any(all(p.startswith(row["prefix"]) for p in plan.prefixes) for _, plan in plans)
        else:
            assert row["range_type"] == "satellite"
    assert {c.code for c in catalog.HIGH_RISK_COUNTRIES} <= {row["country_code"] for row in rows}
    assert all(c.weight == 0 for c in catalog.HIGH_RISK_COUNTRIES)


GOOD = {"kind": "irsf", "start": "2026-03-05T20:00Z", "end": "2026-03-06T04:00Z", "country_code": "LV", "calls": 100}


@pytest.mark.parametrize(
    "items, message",
    [
        ({"kind": "irsf"}, "must hold a JSON array of objects, got an object"),
        ([GOOD, 7], "item 2: must be an object, got a number"),
        ([{**GOOD, "kind": "fraud"}], "item 1: \"kind\" 'fraud' is not a kind; the kinds are cost_spike, irsf,"),
        ([{k: v for k, v in GOOD.items() if k != "kind"}], 'item 1: "kind" is missing'),
        ([GOOD, GOOD, {**GOOD, "calls": 0}], 'item 3 (irsf): "calls" must be a positive integer'),
        ([{**GOOD, "calls": 2.5}], 'item 1 (irsf): "calls" must be a positive integer'),
        ([{**GOOD, "calls": True}], 'item 1 (irsf): "calls" must be a positive integer'),
        ([{k: v for k, v in GOOD.items() if k != "calls"}], 'item 1 (irsf): "calls" is missing'),
        ([{**GOOD, "end": GOOD["start"]}], 'item 1 (irsf): "end" (2026-03-05T20:00:00.000Z) must be after "start"'),
        ([{**GOOD, "start": "2026-03-05T20:00"}], 'item 1 (irsf): "start" \'2026-03-05T20:00\' is not an ISO'),
        ([{**GOOD, "start": 5}], 'item 1 (irsf): "start" must be an ISO date-time string, got a number'),
        ([{**GOOD, "country_code": "XX"}], 'item 1 (irsf): "country_code" \'XX\' is not known'),
        ([{**GOOD, "country_code": "lv"}], 'item 1 (irsf): "country_code" \'lv\' is not known'),
        ([{**GOOD, "callz": 1}], 'item 1 (irsf): unknown field "callz"'),
        ([{"kind": "asr_drop", "start": "2026-03-01", "end": "2026-03-02", "answer_rate": 1.5, "country_code": "US"}],
         'item 1 (asr_drop): "answer_rate" must be a number between 0 and 1, got 1.5'),
        ([{"kind": "asr_drop", "start": "2026-03-01", "end": "2026-03-02", "answer_rate": 0.2}],
         'item 1 (asr_drop): give exactly one of "country_code" and "connection_id"'),
        ([{"kind": "asr_drop", "start": "2026-03-01", "end": "2026-03-02", "answer_rate": 0.2, "connection_id": "x"}],
         'item 1 (asr_drop): "connection_id" \'x\' is not known'),
        ([{"kind": "delivery_failure", "start": "2026-03-01", "end": "2026-03-02", "failure_rate": -0.1,
           "carrier": "Claro"}], 'item 1 (delivery_failure): "failure_rate" must be a number between 0 and 1'),
        ([{"kind": "delivery_failure", "start": "2026-03-01", "end": "2026-03-02", "failure_rate": 0.3,
           "carrier": "Nobody"}], 'item 1 (delivery_failure): "carrier" \'Nobody\' is not known'),
        ([{"kind": "delivery_failure", "start": "2026-03-01", "end": "2026-03-02", "failure_rate": 0.3,
           "carrier": "Claro", "country_code": "MX"}], 'item 1 (delivery_failure): give exactly one of "carrier" and "country_code"'),
        ([{"kind": "cost_spike", "start": "2026-03-01", "end": "2026-03-02", "product": "voice", "factor": 0}],
         'item 1 (cost_spike): "factor" must be a number above 0'),
        ([{"kind": "cost_spike", "start": "2026-03-01", "end": "2026-03-02", "product": "fax", "factor": 2}],
         'item 1 (cost_spike): "product" \'fax\' is not known; the products are mms, sms, voice'),
        ([{"kind": "short_call_burst", "start": "2026-03-01", "end": "2026-03-02", "country_code": "GB", "calls": 5,
           "max_secs": -1}], 'item 1 (short_call_burst): "max_secs" must be a positive integer'),
        ([{"kind": "sms_pumping", "start": "2026-03-01", "end": "2026-03-02", "country_code": "SO", "messages": 5,
           "delivery_rate": "low"}], 'item 1 (sms_pumping): "delivery_rate" must be a number between 0 and 1'),
    ],
)
def test_a_bad_item_is_one_line_naming_the_item_and_field(items, message):
    with pytest.raises(UsageError) as raised:
        parse_anomalies(orjson.dumps(items), "incidents.json")
    text = str(raised.value)
    assert text.startswith(f"anomalies file incidents.json: {message}"), text
    assert "\n" not in text


def test_a_file_that_is_not_json_or_not_there_is_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"kind": "irsf",')
    with pytest.raises(UsageError, match=r"^anomalies file .*bad\.json: not valid JSON \("):
        load_anomalies(bad)
    with pytest.raises(UsageError, match=r"^anomalies file .*missing\.json: cannot read it \("):
        load_anomalies(tmp_path / "missing.json")


def test_export_with_a_bad_file_exits_2_with_one_line_and_writes_nothing(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    Path("incidents.json").write_bytes(orjson.dumps([GOOD, {**GOOD, "calls": -3}]))
    code, stdout, stderr = run_cdr(
        capsys, monkeypatch, "sandbox", "export", "--seed", "1", "--start", "2026-03-01", "--calls-per-day", "10",
        "--messages-per-day", "10", "--now", "2026-03-09T00:00Z", "--window-start", "2026-03-01",
        "--window-end", "2026-03-08", "--out", "out", "--anomalies", "incidents.json",
    )
    assert code == 2 and stdout == "" and not Path("out").exists()
    assert stderr == 'error: anomalies file incidents.json: item 2 (irsf): "calls" must be a positive integer (at most 1000000), got -3\n'


def test_export_with_a_file_adds_its_records_to_the_truth(capsys, monkeypatch, tmp_path):
    incidents = tmp_path / "incidents.json"
    incidents.write_bytes(orjson.dumps([GOOD]))
    counts = {}
    for name, extra in (("clean", ()), ("dirty", ("--anomalies", str(incidents)))):
        code, stdout, _ = run_cdr(
            capsys, monkeypatch, "sandbox", "export", "--seed", "1", "--start", "2026-03-01", "--calls-per-day",
            "10", "--messages-per-day", "10", "--now", "2026-03-09T00:00Z", "--window-start", "2026-03-01",
            "--window-end", "2026-03-08", "--out", str(tmp_path / name), *extra,
        )
        assert code == 0, stdout
        counts[name] = (tmp_path / name / "cdrs.jsonl").read_text().splitlines()
    added = sorted(set(counts["dirty"]) - set(counts["clean"]))
    assert len(counts["dirty"]) == len(counts["clean"]) + 100 and len(added) == 100
    assert all('"country_code":"LV"' in line for line in added)
