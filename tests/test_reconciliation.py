"""Reconciliation against the API's usage, with the quarantine read back: stg_quarantine's exact
rows (dedupe across re-syncs, exact parsing of raw JSON) and rpt_reconciliation_daily's
statuses on a hand-made lake whose quarantine files are written by `pipelines.land.quarantine`."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import orjson
import pytest

from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.dates import Window
from cdr_app.demo import reconciliation_line
from pipelines.errors import CdrError
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.lake import Lake
from pipelines.land import quarantine
from pipelines.models import build, quarantine_source_sql, warehouse_path
from pipelines.opentact.records import Rejected
from tests.fixtures.lake import call, message, usage, write_lake

D = Decimal
RUN_1 = "run-1"
RUN_2 = "run-2"
SEEN_1 = datetime(2026, 3, 5, 2, 0, tzinfo=timezone.utc)
SEEN_2 = datetime(2026, 3, 6, 2, 0, tzinfo=timezone.utc)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def day_slice(day: str) -> Window:
    start = utc(f"{day}T00:00:00")
    return Window(start, start + timedelta(days=1))


def raw_call(id: str | None, created_at: str, billed: object, cost: object, currency: object = "USD", **extra) -> str:
    """A CDR's JSON text as the API served it (the fields reconciliation reads, plus a defect)."""
    record = {"id": id, "record_type": "call", "cld": "12345", "created_at": created_at,
              "updated_at": created_at, "billed_duration_secs": billed, "cost": cost, "currency": currency} | extra
    if id is None:
        del record["id"]
    return orjson.dumps(record).decode()


def raw_message(id: str | None, created_at: str, parts: object, cost: object, currency: object = "USD") -> str:
    """An MDR's JSON text as the API served it."""
    record = {"id": id, "record_type": "message", "created_at": created_at, "parts": parts, "cost": cost,
              "currency": currency}
    if id is None:
        del record["id"]
    return orjson.dumps(record).decode()


def reject(kind: str, raw: str, window: Window, reason: str = "field 'cld' is not an E.164 number") -> Rejected:
    return Rejected(reason, raw, kind, window, 1)  # type: ignore[arg-type]


# The quarantined records of the world. Run 2 re-syncs 03-01 and 03-02: it quarantines the
# same records again (one of them re-rated in between).
Q_C2 = raw_call("q-c2", "2026-03-01T12:00:00.000Z", 120, "2.4E-2")
Q_M_NO_ID = raw_message(None, "2026-03-01T13:00:00.000Z", 3, "0.012")
Q_C4_UNREADABLE_COST = raw_call("q-c4", "2026-03-02T09:00:00.000Z", 60, "n/a")
Q_C5_V1 = raw_call("q-c5", "2026-03-02T10:00:00.000Z", 60, "0.05", "EUR")
Q_C5_V2 = raw_call("q-c5", "2026-03-02T10:00:00.000Z", 60, "0.04", "EUR", updated_at="2026-03-03T10:00:00.000Z")
Q_C7 = raw_call("q-c7", "2026-03-03T09:00:00.000Z", 60, "0.01")
Q_C8_NO_CURRENCY = raw_call("q-c8", "2026-03-03T09:30:00.000Z", 60, "0.01", 840)
Q_M5 = raw_message("q-m5", "2026-03-04T02:30:00.000Z", 1, "0.004")
HOUR_SLICE = Window(utc("2026-03-04T02:00:00"), utc("2026-03-04T03:00:00"))


def write_world(data_dir: Path) -> Path:
    """The lake, the API's usage and two syncs' quarantine files of the reconciliation world."""
    calls = [
        call("c1", "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z", answered_at="2026-03-01T10:00:05Z"),
        call("c3", "2026-03-02T10:00:00Z", "2026-03-02T10:01:00Z", answered_at="2026-03-02T10:00:05Z"),
        call("c6", "2026-03-03T10:00:00Z", "2026-03-03T10:01:00Z", answered_at="2026-03-03T10:00:05Z"),
    ]
    messages = [message("m1", "2026-03-01T11:00:00Z", parts=2), message("m2", "2026-03-03T11:00:00Z")]
    usage_rows = [
        # c1 + q-c2: explained, with q-c2's cost in exponent form
        usage("2026-03-01", "calls", "USD", 2, "0.034", billed_duration_secs=180),
        # m1 + the id-less message quarantined twice: explained once, not twice
        usage("2026-03-01", "messages", "USD", 2, "0.020", parts=5),
        # c3 + q-c4, whose cost does not read: not explained
        usage("2026-03-02", "calls", "USD", 2, "0.02", billed_duration_secs=120),
        # q-c5 alone, at its re-rated cost: explained though the lake has no such row
        usage("2026-03-02", "calls", "EUR", 1, "0.04", billed_duration_secs=60),
        # c6 + q-c7 make two calls, the API counts three: an unexplained difference
        usage("2026-03-03", "calls", "USD", 3, "0.03", billed_duration_secs=180),
        usage("2026-03-03", "messages", "USD", 1, "0.004", parts=1),
        usage("2026-03-05", "calls", "USD", 1, "0.01", billed_duration_secs=60),
    ]
    write_lake(data_dir, calls, messages, usage_rows)
    lake = Lake(data_dir).for_account(DEFAULT_ACCOUNT)
    first = {
        "cdrs": [
            reject("cdrs", Q_C2, day_slice("2026-03-01")),
            reject("cdrs", Q_C4_UNREADABLE_COST, day_slice("2026-03-02")),
            reject("cdrs", Q_C5_V1, day_slice("2026-03-02")),
            reject("cdrs", Q_C7, day_slice("2026-03-03")),
            reject("cdrs", Q_C8_NO_CURRENCY, day_slice("2026-03-03")),
        ],
        "mdrs": [
            reject("mdrs", Q_M_NO_ID, day_slice("2026-03-01"), "missing field 'id'"),
            reject("mdrs", Q_M5, HOUR_SLICE),
        ],
    }
    second = {
        "cdrs": [
            reject("cdrs", Q_C2, day_slice("2026-03-01")),
            reject("cdrs", Q_C4_UNREADABLE_COST, day_slice("2026-03-02")),
            reject("cdrs", Q_C5_V2, day_slice("2026-03-02")),
        ],
        "mdrs": [reject("mdrs", Q_M_NO_ID, day_slice("2026-03-01"), "missing field 'id'")],
    }
    for run_id, seen, rejects in ((RUN_1, SEEN_1, first), (RUN_2, SEEN_2, second)):
        for kind, items in rejects.items():
            quarantine(lake, kind, run_id, items, now=seen)  # type: ignore[arg-type]
    return data_dir


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = write_world(tmp_path_factory.mktemp("reconciliation"))
    report = build(data_dir)
    assert report.sources["lake_quarantine"] == 4
    return data_dir


@pytest.fixture(scope="module")
def con(world: Path):
    connection = duckdb.connect(str(warehouse_path(world)), read_only=True)
    yield connection
    connection.close()


def sha(raw: str) -> str:
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def test_stg_quarantine_holds_each_record_once_at_its_latest_sighting(con):
    rows = con.execute(
        "select kind, product, utc_date, record_key, record_id, currency, billed_duration_secs, parts, cost, "
        "last_run_id, first_seen_at, last_seen_at, sightings from stg_quarantine order by kind, utc_date, record_key"
    ).fetchall()
    assert rows == [
        ("cdrs", "calls", date(2026, 3, 1), "id:q-c2", "q-c2", "USD", 120, None, D("0.024"), RUN_2, SEEN_1, SEEN_2, 2),
        ("cdrs", "calls", date(2026, 3, 2), "id:q-c4", "q-c4", "USD", 60, None, None, RUN_2, SEEN_1, SEEN_2, 2),
        # re-rated between the syncs: the later version counts
        ("cdrs", "calls", date(2026, 3, 2), "id:q-c5", "q-c5", "EUR", 60, None, D("0.04"), RUN_2, SEEN_1, SEEN_2, 2),
        ("cdrs", "calls", date(2026, 3, 3), "id:q-c7", "q-c7", "USD", 60, None, D("0.01"), RUN_1, SEEN_1, SEEN_1, 1),
        ("cdrs", "calls", date(2026, 3, 3), "id:q-c8", "q-c8", None, 60, None, D("0.01"), RUN_1, SEEN_1, SEEN_1, 1),
        # no id: the raw text is the key
        ("mdrs", "messages", date(2026, 3, 1), sha(Q_M_NO_ID), None, "USD", None, 3, D("0.012"), RUN_2, SEEN_1,
         SEEN_2, 2),
        # an hour's slice dates the record by its UTC day
        ("mdrs", "messages", date(2026, 3, 4), "id:q-m5", "q-m5", "USD", None, 1, D("0.004"), RUN_1, SEEN_1, SEEN_1,
         1),
    ]


def test_reconciliation_tells_explained_differences_from_unexplained_ones(con):
    rows = con.execute("select * from rpt_reconciliation_daily order by utc_date, product, currency").fetchall()
    columns = [d[0] for d in con.description]
    assert {row[0] for row in rows} == {DEFAULT_ACCOUNT}
    rows = [row[1:] for row in rows]
    assert columns == [
        "account", "utc_date", "product", "currency", "pipeline_records", "api_records", "records_diff",
        "pipeline_billed_duration_secs", "api_billed_duration_secs", "pipeline_parts", "api_parts",
        "pipeline_cost", "api_cost", "cost_diff", "quarantined_records", "quarantined_billed_duration_secs",
        "quarantined_parts", "quarantined_cost", "status",
    ]
    assert rows == [
        (date(2026, 3, 1), "calls", "USD", 1, 2, -1, 60, 180, None, None, D("0.01"), D("0.034"), D("-0.024"),
         1, 120, None, D("0.024"), "explained_by_quarantine"),
        (date(2026, 3, 1), "messages", "USD", 1, 2, -1, None, None, 2, 5, D("0.008"), D("0.020"), D("-0.012"),
         1, None, 3, D("0.012"), "explained_by_quarantine"),
        (date(2026, 3, 2), "calls", "EUR", None, 1, -1, None, 60, None, None, None, D("0.04"), D("-0.04"),
         1, 60, None, D("0.04"), "explained_by_quarantine"),
        # q-c4's cost does not read: the quarantined cost is unknown and explains nothing
        (date(2026, 3, 2), "calls", "USD", 1, 2, -1, 60, 120, None, None, D("0.01"), D("0.02"), D("-0.01"),
         1, 60, None, None, "mismatch"),
        # q-c8 (no readable currency) joins no row; q-c7 explains one of the two missing calls
        (date(2026, 3, 3), "calls", "USD", 1, 3, -2, 60, 180, None, None, D("0.01"), D("0.03"), D("-0.02"),
         1, 60, None, D("0.01"), "mismatch"),
        (date(2026, 3, 3), "messages", "USD", 1, 1, 0, None, None, 1, 1, D("0.004"), D("0.004"), D("0"),
         0, None, 0, D("0"), "match"),
        (date(2026, 3, 4), "messages", "USD", None, None, 0, None, None, None, None, None, None, D("0"),
         1, None, 1, D("0.004"), "missing_in_api"),
        (date(2026, 3, 5), "calls", "USD", None, 1, -1, None, 60, None, None, None, D("0.01"), D("-0.01"),
         0, 0, None, D("0"), "missing_in_lake"),
    ]


def test_an_api_total_equal_to_the_lake_matches_whatever_the_quarantine_holds(tmp_path):
    # The API does not count q-x (or the lake holds its fixed version): pipeline = API is a match.
    write_lake(tmp_path, [call("c1", "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z", answered_at="2026-03-01T10:00:05Z")],
               usage_rows=[usage("2026-03-01", "calls", "USD", 1, "0.01", billed_duration_secs=60)])
    quarantine(Lake(tmp_path).for_account(DEFAULT_ACCOUNT), "cdrs", RUN_1, [reject("cdrs", raw_call("q-x", "2026-03-01T12:00:00.000Z", 60, "0.01"),
                                                       day_slice("2026-03-01"))], now=SEEN_1)
    build(tmp_path)
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as c:
        assert c.execute("select quarantined_records, status from rpt_reconciliation_daily").fetchall() == [(1, "match")]


def test_an_api_day_counting_nothing_matches_a_lake_holding_nothing_and_raises_no_alert(tmp_path):
    write_lake(tmp_path, [], usage_rows=[
        usage("2026-03-01", "calls", "USD", 0, "0", billed_duration_secs=0),
        usage("2026-03-01", "messages", "USD", 0, "0.0", parts=0),
        usage("2026-03-02", "calls", "USD", 1, "0.01", billed_duration_secs=60),
    ])
    build(tmp_path)
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as c:
        assert c.execute(
            "select utc_date, product, status from rpt_reconciliation_daily order by all"
        ).fetchall() == [
            (date(2026, 3, 1), "calls", "match"),
            (date(2026, 3, 1), "messages", "match"),
            (date(2026, 3, 2), "calls", "missing_in_lake"),
        ]
        assert c.execute("select window_start::date from alert_reconciliation_gap").fetchall() == [(date(2026, 3, 2),)]


def test_a_quarantined_record_the_lake_now_holds_is_counted_there_and_not_again(tmp_path):
    """q-r1 was malformed on the first sync and read well on the next; q-r2 is malformed still. The API
    counts three calls: the lake's two and q-r2, which alone explains the difference."""
    fixed = call("q-r1", "2026-03-01T10:10:00Z", "2026-03-01T10:11:00Z", answered_at="2026-03-01T10:10:05Z")
    c1 = call("c1", "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z", answered_at="2026-03-01T10:00:05Z")
    write_lake(tmp_path, [c1, fixed], usage_rows=[usage("2026-03-01", "calls", "USD", 3, "0.03", billed_duration_secs=180)])
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    malformed = raw_call("q-r1", "2026-03-01T10:10:00.000Z", 60, "0.01", duration_secs=-5)
    still = raw_call("q-r2", "2026-03-01T12:00:00.000Z", 60, "0.01")
    # q-r1 under another account is another record: the lake's q-r1 does not explain it away
    other = Lake(tmp_path).for_account("acme")
    quarantine(lake, "cdrs", RUN_1, [reject("cdrs", malformed, day_slice("2026-03-01")),
                                     reject("cdrs", still, day_slice("2026-03-01"))], now=SEEN_1)
    quarantine(lake, "cdrs", RUN_2, [reject("cdrs", still, day_slice("2026-03-01"))], now=SEEN_2)
    quarantine(other, "cdrs", RUN_1, [reject("cdrs", malformed, day_slice("2026-03-01"))], now=SEEN_1)
    build(tmp_path)
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as c:
        assert c.execute("select account, record_id, is_in_lake from stg_quarantine order by all").fetchall() == [
            ("acme", "q-r1", False), (DEFAULT_ACCOUNT, "q-r1", True), (DEFAULT_ACCOUNT, "q-r2", False)
        ]
        assert c.execute(
            "select pipeline_records, api_records, quarantined_records, quarantined_cost, status "
            "from rpt_reconciliation_daily where account = ?", [DEFAULT_ACCOUNT]
        ).fetchall() == [(2, 3, 1, D("0.01"), "explained_by_quarantine")]
        assert c.execute("select count(*) from rpt_alerts where rule = 'reconciliation_gap' and account = ?",
                         [DEFAULT_ACCOUNT]).fetchall() == [(0,)]


# Raw texts and what stg_quarantine reads from them: (record_id, currency, billed seconds, cost).
READ_CASES = [
    (raw_call("plain", "x", 60, "0.000500"), ("plain", "USD", 60, D("0.0005"))),
    (raw_call("zero", "x", 0, "0"), ("zero", "USD", 0, D("0"))),
    (raw_call("exponent", "x", 6, "1.666E-4"), ("exponent", "USD", 6, D("0.0001666"))),
    (raw_call("exponent-int", "x", 6, "1666e-7"), ("exponent-int", "USD", 6, D("0.0001666"))),
    # more than 9 decimals would be rounded by a cast: unreadable instead
    (raw_call("ten-decimals", "x", 6, "0.0100000001"), ("ten-decimals", "USD", 6, None)),
    (raw_call("tiny-exponent", "x", 6, "1.5E-10"), ("tiny-exponent", "USD", 6, None)),
    (raw_call("underscore", "x", 6, "1_000"), ("underscore", "USD", 6, None)),
    (raw_call("null-cost", "x", 6, None), ("null-cost", "USD", 6, None)),
    # numbers where the contract wants strings, and the reverse, still read when exact
    (raw_call("types-swapped", "x", "60", 0.25), ("types-swapped", "USD", 60, D("0.25"))),
    (raw_call("fractional-secs", "x", 60.5, "0.01"), ("fractional-secs", "USD", None, D("0.01"))),
    (raw_call("negative-secs", "x", -60, "0.01"), ("negative-secs", "USD", -60, D("0.01"))),
    (raw_call("", "x", 60, "0.01", {"code": "USD"}), (None, None, 60, D("0.01"))),
    ("{not json", (None, None, None, None)),
    ("[1, 2]", (None, None, None, None)),
]


def test_quarantined_fields_read_exactly_or_not_at_all(tmp_path):
    rejects = [reject("cdrs", raw, day_slice("2026-03-01")) for raw, _ in READ_CASES]
    quarantine(Lake(tmp_path).for_account(DEFAULT_ACCOUNT), "cdrs", RUN_1, rejects, now=SEEN_1)
    build(tmp_path)
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as c:
        rows = c.execute("select record_key, record_id, currency, billed_duration_secs, cost from stg_quarantine").fetchall()
    expected = {(f"id:{read[0]}" if read[0] else sha(raw)): read for raw, read in READ_CASES}
    assert {key: tuple(rest) for key, *rest in rows} == expected


def test_quarantine_dates_stay_utc_in_any_report_time_zone(world: Path, tmp_path):
    data_dir = write_world(tmp_path)
    build(data_dir, report_timezone="America/New_York")
    with duckdb.connect(str(warehouse_path(data_dir)), read_only=True) as c:
        # 02:00 UTC on 03-04 is still 03-03 in New York: the UTC day counts, as in the API's usage
        assert c.execute("select utc_date from stg_quarantine where record_id = 'q-m5'").fetchall() == [(date(2026, 3, 4),)]
        ny = c.execute("select * from rpt_reconciliation_daily order by all").fetchall()
    with duckdb.connect(str(warehouse_path(world)), read_only=True) as c:
        assert ny == c.execute("select * from rpt_reconciliation_daily order by all").fetchall()


def test_no_quarantine_is_an_empty_typed_source(tmp_path):
    assert quarantine_source_sql(tmp_path) == (
        "select cast(null as VARCHAR) as account, cast(null as VARCHAR) as kind, cast(null as VARCHAR) as run_id, "
        "cast(null as TIMESTAMPTZ) as seen_at, "
        "cast(null as TIMESTAMPTZ) as slice_start, cast(null as TIMESTAMPTZ) as slice_end, "
        "cast(null as BIGINT) as page_number, cast(null as VARCHAR) as reason, cast(null as VARCHAR) as raw_json "
        "where false",
        0,
    )
    (tmp_path / "quarantine" / "cdrs" / "account=default" / "date=2026-03-05").mkdir(parents=True)
    report = build(tmp_path)
    assert report.sources["lake_quarantine"] == 0
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as c:
        types = dict(c.execute("select column_name, column_type from (describe stg_quarantine)").fetchall())
    assert types["cost"] == "DECIMAL(38,9)" and types["utc_date"] == "DATE" and types["sightings"] == "BIGINT"


def test_a_quarantine_line_without_its_slice_fails_the_build_naming_the_test(tmp_path):
    folder = tmp_path / "quarantine" / "cdrs" / "account=default" / "date=2026-03-05"
    folder.mkdir(parents=True)
    line = {"kind": "cdrs", "run_id": RUN_1, "seen_at": "2026-03-05T02:00:00.000Z", "slice_start": None,
            "slice_end": None, "page_number": 1, "reason": "edited by hand", "raw_json": "{}"}
    (folder / "run-1-000000000000.jsonl").write_bytes(orjson.dumps(line) + b"\n")
    with pytest.raises(CdrError, match="stg_quarantine_readable: .*1 offending row"):
        build(tmp_path)


def test_the_demo_headline_says_what_is_explained_and_plainly_what_is_not():
    assert reconciliation_line(259, 109, 140, 0) == (
        "reconciliation vs the API's usage: 259 match, 109 explained by 140 quarantined records, 0 unexplained"
    )
    assert reconciliation_line(1_200, 1, 1, 3) == (
        "reconciliation vs the API's usage: 1,200 match, 1 explained by 1 quarantined record, 3 unexplained: "
        "the pipeline and the API disagree there and nothing accounts for it (see the Reconciliation page)"
    )
    assert reconciliation_line(5, 0, 0, 0) == "reconciliation vs the API's usage: 5 match, 0 explained, 0 unexplained"
