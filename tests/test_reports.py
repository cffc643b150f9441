"""Every rpt_ table's exact rows on the hand-made small world, the finance export, and finance
totals against an independent Python computation over sandbox records."""

from __future__ import annotations

import csv
import errno
import io
import re
import zipfile
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import orjson
import pytest

from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.dates import Window
from pipelines.errors import CdrError, UsageError
from pipelines.lake import Lake
from pipelines.models import build, warehouse_path
from pipelines.status import read_status
from pipelines.reports import (
    COMBINED_COLUMNS, FINANCE_COLUMNS, statement_totals, coverage_of, day_ranges, export_finance, finance_csv,
    finance_xlsx, lake_held, lake_touched, month_coverage, parse_month,
)
from tests.fixtures.cli import run_cdr
from tests.fixtures.disk import record_disk_events
from tests.fixtures.landed import land
from tests.fixtures.lake import call, message, small_world, usage, write_lake

D = Decimal


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small world's lake, synced January to March, built into a warehouse (report time zone UTC)."""
    data_dir = write_lake(tmp_path_factory.mktemp("world"), *small_world())
    land(data_dir, "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z")
    build(data_dir)
    return data_dir


@pytest.fixture
def con(world_dir: Path) -> duckdb.DuckDBPyConnection:
    # One per test: DuckDB refuses the exports' own (confined) connection while one of another
    # configuration has the file open in this process.
    connection = duckdb.connect(str(warehouse_path(world_dir)), read_only=True)
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, table: str, order: str) -> list[tuple]:
    """A report's rows, ordered, without its first column: `account`, the default one in every row of this lake."""
    got = con.execute(f"select * from {table} order by {order}").fetchall()
    assert con.execute(f"select column_name from (describe {table})").fetchone() == ("account",), table
    assert {row[0] for row in got} <= {DEFAULT_ACCOUNT}, table
    return [row[1:] for row in got]


def test_finance_monthly_statement(con):
    assert rows(con, "rpt_finance_monthly_statement", "month, product, direction, currency") == [
        ("2026-01", "sms", "outbound", "USD", 2, 0, 3, D("0.012")),
        ("2026-01", "voice", "outbound", "USD", 2, 120, 0, D("0.02")),
        ("2026-02", "mms", "outbound", "EUR", 1, 0, 1, D("0.02")),
        ("2026-02", "sms", "inbound", "USD", 1, 0, 1, D("0.001")),
        ("2026-02", "voice", "inbound", "EUR", 1, 90, 0, D("0.0045")),
        ("2026-02", "voice", "outbound", "EUR", 2, 30, 0, D("0.025")),
        ("2026-02", "voice", "outbound", "USD", 1, 1, 0, D("0.000222")),
    ]


def test_finance_daily_cost(con):
    assert rows(con, "rpt_finance_daily_cost", "report_date, product, currency") == [
        (date(2026, 1, 30), "sms", "USD", 1, 0, 2, D("0.008")),
        (date(2026, 1, 30), "voice", "USD", 2, 120, 0, D("0.02")),
        (date(2026, 1, 31), "sms", "USD", 1, 0, 1, D("0.004")),
        (date(2026, 2, 1), "sms", "USD", 1, 0, 1, D("0.001")),
        (date(2026, 2, 1), "voice", "EUR", 3, 120, 0, D("0.0295")),
        (date(2026, 2, 2), "mms", "EUR", 1, 0, 1, D("0.02")),
        (date(2026, 2, 2), "voice", "USD", 1, 1, 0, D("0.000222")),
    ]


def test_finance_cost_by_country(con):
    assert rows(con, "rpt_finance_cost_by_country", "month, currency, country_rank") == [
        ("2026-01", "USD", 1, "GB", "GB", 4, 2, 120, D("2.0"), 3, D("0.032")),
        ("2026-02", "EUR", 1, "DE", "DE", 3, 2, 30, D("0.5"), 1, D("0.045")),
        ("2026-02", "EUR", 2, "US", "US", 1, 1, 90, D("1.5"), 0, D("0.0045")),
        # messages alone: no calls
        ("2026-02", "USD", 1, "US", "US", 1, 0, 0, D("0.0"), 1, D("0.001")),
        ("2026-02", "USD", 2, "GB", "GB", 1, 1, 1, D("0.0"), 0, D("0.000222")),
    ]


def test_finance_cost_by_country_folds_all_but_the_top_ten_into_one_row(tmp_path):
    # Twelve countries: cost 0.0012 for the first, down to 0.0001 for the twelfth.
    codes = ["AA", "BB", "CC", "DD", "EE", "FF", "GG", "HH", "II", "JJ", "KK", "LL"]
    messages = [
        message(f"m{i}", "2026-03-05T10:00:00Z", country_code=code, rate=f"0.{12 - i:04d}")
        for i, code in enumerate(codes)
    ]
    build(write_lake(tmp_path, messages=messages))
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as c:
        result = c.execute(
            "select country_rank, country_code, country_label, records, cost "
            "from rpt_finance_cost_by_country order by country_rank"
        ).fetchall()
    assert result[:2] == [(1, "AA", "AA", 1, D("0.0012")), (2, "BB", "BB", 1, D("0.0011"))]
    assert [r[0] for r in result] == list(range(1, 12))
    assert result[10] == (11, None, "Other (2 countries)", 2, D("0.0002") + D("0.0001"))


def test_finance_cost_by_connection_names_each_by_its_latest_name(con):
    renamed = "Main Trunk ⚡ renamed"
    assert rows(con, "rpt_finance_cost_by_connection", "month, currency, connection_id") == [
        ("2026-01", "conn-a", renamed, "USD", 2, 120, D("2.0"), D("0.02")),
        ("2026-02", "conn-b", 'Bob\'s "Main" Trunk', "EUR", 3, 120, D("2.0"), D("0.0295")),
        ("2026-02", "conn-a", renamed, "USD", 1, 1, D("0.0"), D("0.000222")),
    ]


def test_finance_cost_by_messaging_profile(con):
    assert rows(con, "rpt_finance_cost_by_messaging_profile", "month, currency, messaging_profile_id") == [
        ("2026-01", "prof-1", "Marketing", "USD", 2, 3, D("0.012"), D("0.005")),
        ("2026-02", "prof-2", 'Alerts & "OTP"', "EUR", 1, 1, D("0.02"), D("0.0025")),
        ("2026-02", "prof-2", 'Alerts & "OTP"', "USD", 1, 1, D("0.001"), D("0")),
    ]


def test_finance_cost_by_tag_counts_a_record_once_per_distinct_tag(con):
    assert rows(con, "rpt_finance_cost_by_tag", "month, currency, cost desc, tag nulls last, product") == [
        ("2026-01", "vip", "voice", "USD", 1, D("0.02")),
        ("2026-01", "campaign", "sms", "USD", 1, D("0.008")),
        ("2026-01", None, "sms", "USD", 1, D("0.004")),
        ("2026-01", None, "voice", "USD", 1, D("0")),
        ("2026-02", "support", "voice", "EUR", 2, D("0.0295")),
        ("2026-02", "campaign", "mms", "EUR", 1, D("0.02")),
        ("2026-02", "vip", "mms", "EUR", 1, D("0.02")),
        ("2026-02", "vip", "voice", "EUR", 1, D("0.0045")),
        ("2026-02", None, "voice", "EUR", 1, D("0")),
        ("2026-02", None, "sms", "USD", 1, D("0.001")),
        # c6 is tagged vip twice: still one record
        ("2026-02", "vip", "voice", "USD", 1, D("0.000222")),
    ]


def test_finance_month_over_month(con):
    assert rows(con, "rpt_finance_month_over_month", "month, product, currency") == [
        ("2026-01", "sms", "USD", 2, D("0.012"), None, None, None),
        ("2026-01", "voice", "USD", 2, D("0.02"), None, None, None),
        ("2026-02", "mms", "EUR", 1, D("0.02"), None, None, None),
        ("2026-02", "sms", "USD", 1, D("0.001"), D("0.012"), D("-0.011"), -91.67),
        ("2026-02", "voice", "EUR", 3, D("0.0295"), None, None, None),
        ("2026-02", "voice", "USD", 1, D("0.000222"), D("0.02"), D("-0.019778"), -98.89),
    ]


def test_voice_quality_daily(con):
    assert rows(con, "rpt_voice_quality_daily", "report_date, direction") == [
        (date(2026, 1, 30), "outbound", 2, 1, 0.5, 120.0, 1.0, 0, 0.0),
        (date(2026, 2, 1), "inbound", 1, 1, 1.0, 90.0, 1.0, 0, 0.0),
        # c4 talks 4 s (a short call), c5 fails with SIP 503 (a network failure)
        (date(2026, 2, 1), "outbound", 2, 1, 0.5, 4.0, 0.5, 1, 1.0),
        (date(2026, 2, 2), "outbound", 1, 1, 1.0, 1.0, 1.0, 1, 1.0),
    ]


def test_voice_quality_by_country(con):
    assert rows(con, "rpt_voice_quality_by_country", "month, direction, country_code") == [
        ("2026-01", "outbound", "GB", 2, 1, 0.5, 120.0, 1.0, 0, 0.0),
        ("2026-02", "inbound", "US", 1, 1, 1.0, 90.0, 1.0, 0, 0.0),
        ("2026-02", "outbound", "DE", 2, 1, 0.5, 4.0, 0.5, 1, 1.0),
        ("2026-02", "outbound", "GB", 1, 1, 1.0, 1.0, 1.0, 1, 1.0),
    ]


def test_call_outcomes_daily(con):
    assert rows(con, "rpt_call_outcomes_daily", "report_date, calls desc, status") == [
        (date(2026, 1, 30), "answered", "normal_clearing", 200, 1, 0.5),
        (date(2026, 1, 30), "busy", "user_busy", 486, 1, 0.5),
        (date(2026, 2, 1), "answered", "normal_clearing", 200, 2, 2 / 3),
        (date(2026, 2, 1), "failed", "network_out_of_order", 503, 1, 1 / 3),
        (date(2026, 2, 2), "answered", "normal_clearing", 200, 1, 1.0),
    ]


def test_call_outcomes_by_country(con):
    assert rows(con, "rpt_call_outcomes_by_country", "month, country_code, calls desc, status") == [
        ("2026-01", "GB", "answered", "normal_clearing", 200, 1, 0.5),
        ("2026-01", "GB", "busy", "user_busy", 486, 1, 0.5),
        ("2026-02", "DE", "answered", "normal_clearing", 200, 1, 0.5),
        ("2026-02", "DE", "failed", "network_out_of_order", 503, 1, 0.5),
        ("2026-02", "GB", "answered", "normal_clearing", 200, 1, 1.0),
        ("2026-02", "US", "answered", "normal_clearing", 200, 1, 1.0),
    ]


def test_calls_by_weekday_hour_fills_every_cell_of_each_month(con):
    grid = rows(con, "rpt_calls_by_weekday_hour", "month, weekday, hour")
    assert len(grid) == 2 * 7 * 24
    assert grid[0] == ("2026-01", 1, "Monday", 0, 0, 0)
    # 2026-01-30 is a Friday; 2026-02-01 a Sunday; 2026-02-02 a Monday
    assert [r for r in grid if r[4]] == [
        ("2026-01", 5, "Friday", 10, 2, 1),
        ("2026-02", 1, "Monday", 12, 1, 1),
        ("2026-02", 7, "Sunday", 0, 1, 1),
        ("2026-02", 7, "Sunday", 9, 2, 1),
    ]


def test_peak_concurrent_calls_daily(con):
    assert rows(con, "rpt_peak_concurrent_calls_daily", "report_date") == [
        (date(2026, 1, 30), 2, datetime(2026, 1, 30, 10, 1), 0),
        (date(2026, 1, 31), 1, datetime(2026, 1, 31, 23, 59), 0),
        # c3 is still talking at midnight
        (date(2026, 2, 1), 2, datetime(2026, 2, 1, 9, 0, 3), 1),
        (date(2026, 2, 2), 1, datetime(2026, 2, 2, 12, 0), 0),
    ]


def test_message_delivery_by_carrier_counts_outbound_messages(con):
    assert rows(con, "rpt_message_delivery_by_carrier", "month, carrier") == [
        ("2026-01", "O2", 1, 0, 1, 0, 0.0, 1.0),
        ("2026-01", "Vodafone", 1, 1, 0, 0, 1.0, 0.0),
        ("2026-02", "Telekom <DE>", 1, 0, 1, 0, 0.0, 1.0),
    ]


def test_message_delivery_by_country(con):
    assert rows(con, "rpt_message_delivery_by_country", "month, country_code") == [
        ("2026-01", "GB", 2, 1, 1, 0, 0.5, 0.5),
        ("2026-02", "DE", 1, 0, 1, 0, 0.0, 1.0),
    ]


def test_message_parts(con):
    assert rows(con, "rpt_message_parts", "month, message_type, encoding, parts") == [
        ("2026-01", "sms", "gsm7", 2, 1, 1.0),
        ("2026-01", "sms", "ucs2", 1, 1, 1.0),
        ("2026-02", "mms", "gsm7", 1, 1, 1.0),
        ("2026-02", "sms", "gsm7", 1, 1, 1.0),
    ]


def test_message_failure_reasons(con):
    assert rows(con, "rpt_message_failure_reasons", "month, error_code") == [
        ("2026-01", "30003", "Unreachable handset", 1, 1.0),
        ("2026-02", "40002", 'Blocked as spam "content" <policy>', 1, 1.0),
    ]


def test_reconciliation_flags_every_difference(con):
    # no quarantine here: quarantined records 0 (tests/test_reconciliation.py covers it)
    assert rows(con, "rpt_reconciliation_daily", "utc_date, product, currency") == [
        (date(2026, 1, 29), "messages", "USD", None, 1, -1, None, None, None, 1, None, D("0.004"), D("-0.004"),
         0, None, 0, D("0"), "missing_in_lake"),
        (date(2026, 1, 30), "calls", "USD", 2, 2, 0, 120, 120, None, None, D("0.02"), D("0.02"), D("0"),
         0, 0, None, D("0"), "match"),
        (date(2026, 1, 30), "messages", "USD", 1, 1, 0, None, None, 2, 2, D("0.008"), D("0.008"), D("0"),
         0, None, 0, D("0"), "match"),
        (date(2026, 1, 31), "messages", "USD", 1, None, 1, None, None, 1, None, D("0.004"), None, D("0.004"),
         0, None, 0, D("0"), "missing_in_api"),
        (date(2026, 2, 1), "calls", "EUR", 3, 3, 0, 120, 120, None, None, D("0.0295"), D("0.0296"), D("-0.0001"),
         0, 0, None, D("0"), "mismatch"),
        (date(2026, 2, 1), "messages", "USD", 1, 1, 0, None, None, 1, 1, D("0.001"), D("0.001"), D("0"),
         0, None, 0, D("0"), "match"),
        (date(2026, 2, 2), "calls", "USD", 1, None, 1, 1, None, None, None, D("0.000222"), None, D("0.000222"),
         0, 0, None, D("0"), "missing_in_api"),
        (date(2026, 2, 2), "messages", "EUR", 1, None, 1, None, None, 1, None, D("0.02"), None, D("0.02"),
         0, None, 0, D("0"), "missing_in_api"),
    ]


def test_build_info(con):
    (row,) = con.execute(
        "select report_timezone, calls, messages, first_report_date, last_report_date from rpt_build_info"
    ).fetchall()
    assert row == ("UTC", 6, 4, date(2026, 1, 30), date(2026, 2, 2))


def test_money_stays_decimal_in_every_report(con):
    money = con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_name like 'rpt_%' and (column_name like '%cost%' or column_name like '%fee%') "
        "and column_name not like '%pct%'"
    ).fetchall()
    assert len(money) >= 10
    assert {kind for _, _, kind in money} == {"DECIMAL(38,9)"}


def test_a_reporting_time_zone_moves_records_to_their_local_dates(tmp_path):
    data_dir = write_lake(tmp_path, *small_world())
    build(data_dir, report_timezone="America/New_York")
    with duckdb.connect(str(warehouse_path(data_dir)), read_only=True) as c:
        # c3 was created 2026-02-01 00:00:40 UTC: 2026-01-31 19:00:40 in New York, so January
        voice = c.execute(
            "select month, direction, currency, records, cost from rpt_finance_monthly_statement "
            "where product = 'voice' order by all"
        ).fetchall()
        days = c.execute("select distinct report_date from rpt_finance_daily_cost order by 1").fetchall()
        # reconciliation stays in UTC days: the API dates usage in UTC
        recon = c.execute("select utc_date, status from rpt_reconciliation_daily where product = 'calls' order by 1").fetchall()
        tz = c.execute("select report_timezone from rpt_build_info").fetchall()
    assert voice == [
        ("2026-01", "inbound", "EUR", 1, D("0.0045")),
        ("2026-01", "outbound", "USD", 2, D("0.02")),
        ("2026-02", "outbound", "EUR", 2, D("0.025")),
        ("2026-02", "outbound", "USD", 1, D("0.000222")),
    ]
    assert days == [(date(2026, 1, 30),), (date(2026, 1, 31),), (date(2026, 2, 1),), (date(2026, 2, 2),)]
    assert recon == [(date(2026, 1, 30), "match"), (date(2026, 2, 1), "mismatch"), (date(2026, 2, 2), "missing_in_api")]
    assert tz == [("America/New_York",)]


# -- the finance export ---------------------------------------------------------------------


def test_export_finance_writes_the_exact_columns_and_decimal_strings(world_dir, tmp_path):
    export = export_finance(warehouse_path(world_dir), "2026-02", tmp_path, lake=Lake(world_dir))
    assert [p.name for p in export.files] == ["finance_2026-02.csv", "finance_2026-02.xlsx"]
    text = (tmp_path / "finance_2026-02.csv").read_text()
    assert text.splitlines() == [
        "month,product,direction,currency,records,billed_duration_secs,parts,cost",
        "2026-02,mms,outbound,EUR,1,0,1,0.020000000",
        "2026-02,sms,inbound,USD,1,0,1,0.001000000",
        "2026-02,voice,inbound,EUR,1,90,0,0.004500000",
        "2026-02,voice,outbound,EUR,2,30,0,0.025000000",
        "2026-02,voice,outbound,USD,1,1,0,0.000222000",
    ]
    assert export.totals() == {"EUR": D("0.0495"), "USD": D("0.001222")}


def test_finance_csv_writes_zero_as_a_plain_decimal():
    text = finance_csv([("2026-03", "voice", "outbound", "USD", 1, 0, 0, D("0E-9"))])
    assert text.splitlines()[1] == "2026-03,voice,outbound,USD,1,0,0,0.000000000"


FORMULA_LIKE = ("=1+1", "+SUM(A1)", "-2", '@HYPERLINK("https://evil")', "\tvoice", "\rUSD")


def test_finance_csv_text_cells_open_as_text_and_amounts_stay_exact_numbers():
    rows = [("2026-03", *FORMULA_LIKE[:3], 1, 0, 0, D("-1.250000000")),
            ("2026-03", *FORMULA_LIKE[3:], -1, 0, 0, D("0.000222000")),
            ("2026-03", "voice", "out\r=1+1", "USD", 1, 0, 0, D("1"))]  # a spreadsheet starts a row at a CR
    text = finance_csv(rows)
    parsed = list(csv.reader(io.StringIO(text, newline="")))

    assert parsed[1] == ["2026-03", "'=1+1", "'+SUM(A1)", "'-2", "1", "0", "0", "-1.250000000"]
    assert parsed[2] == [
        "2026-03", "'@HYPERLINK(\"https://evil\")", "'\tvoice", "'\rUSD", "-1", "0", "0", "0.000222000",
    ]
    assert parsed[3:] == [["2026-03", "voice", "out\r=1+1", "USD", "1", "0", "0", "1"]]
    combined_rows = [("-acme", *rows[0])]
    combined = finance_csv(combined_rows, COMBINED_COLUMNS, statement_totals(combined_rows, COMBINED_COLUMNS, "2026-03"))
    assert combined.splitlines()[1:] == [
        "'-acme,2026-03,'=1+1,'+SUM(A1),'-2,1,0,0,-1.250000000", "(all accounts),2026-03,,,'-2,1,0,0,-1.250000000",
    ]


def test_finance_xlsx_writes_formula_like_names_as_text_never_as_formulas():
    rows = [("2026-03", *FORMULA_LIKE[:3], 1, 0, 0, D("-1.25"))]
    with zipfile.ZipFile(io.BytesIO(finance_xlsx(rows, "2026-03"))) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        strings = book.read("xl/sharedStrings.xml").decode()

    assert "<f>" not in sheet and "<v>-1.25</v>" in sheet
    assert all(f"<t>{name}</t>" in strings for name in FORMULA_LIKE[:3])


def test_export_finance_xlsx_holds_the_same_statement(world_dir, tmp_path):
    export_finance(warehouse_path(world_dir), "2026-02", tmp_path, lake=Lake(world_dir))
    with zipfile.ZipFile(tmp_path / "finance_2026-02.xlsx") as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        strings = book.read("xl/sharedStrings.xml").decode()
    for name in FINANCE_COLUMNS + ("mms", "sms", "voice", "inbound", "outbound", "EUR", "USD"):
        assert f">{name}<" in strings
    assert "<v>0.0045</v>" in sheet and "<v>90</v>" in sheet
    assert "partial" not in strings


def _sheet_rows(path: Path) -> dict[int, list[str]]:
    """An XLSX file -> its first sheet's cell texts by row number (shared strings resolved, numbers as written)."""
    with zipfile.ZipFile(path) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        shared = re.findall(r"<si><t[^>]*>([^<]*)</t></si>", book.read("xl/sharedStrings.xml").decode())
    rows: dict[int, list[str]] = {}
    for ref, attributes, value in re.findall(r'<c r="[A-Z]+([0-9]+)"([^>]*)><v>([^<]*)</v></c>', sheet):
        rows.setdefault(int(ref), []).append(shared[int(value)] if ' t="s"' in attributes else value)
    return rows


def test_one_accounts_xlsx_ends_with_a_total_per_currency_its_csv_keeps_the_rows_alone(world_dir, tmp_path):
    export = export_finance(warehouse_path(world_dir), "2026-02", tmp_path, lake=Lake(world_dir))
    csv_rows = list(csv.reader(io.StringIO((tmp_path / "finance_2026-02.csv").read_text())))
    assert csv_rows[0] == list(FINANCE_COLUMNS) and len(csv_rows) == 1 + len(export.rows)
    sheet = _sheet_rows(tmp_path / "finance_2026-02.xlsx")
    totals = [cells for cells in sheet.values() if "(total)" in cells]
    # summed here from the CSV, per currency: records, billed seconds, parts, cost
    expected: dict[str, list[Decimal]] = {}
    for row in csv_rows[1:]:
        sums = expected.setdefault(row[3], [Decimal(0)] * 4)
        for index, value in enumerate(row[4:]):
            sums[index] += Decimal(value)
    assert sorted(expected) == ["EUR", "USD"]
    assert [(cells[:3], [Decimal(value) for value in cells[3:]]) for cells in totals] == [
        (["2026-02", "(total)", currency], expected[currency]) for currency in sorted(expected)
    ]
    # no direction: an empty cell, not an empty text
    with zipfile.ZipFile(tmp_path / "finance_2026-02.xlsx") as book:
        assert "<t></t>" not in book.read("xl/sharedStrings.xml").decode()


def test_export_finance_of_a_month_without_usage_writes_only_the_header(world_dir, tmp_path):
    # a quiet month after the last data: what the monthly flow exports on the 1st
    export = export_finance(warehouse_path(world_dir), "2026-03", tmp_path, xlsx=False, now=APRIL, lake=Lake(world_dir))
    assert export.rows == () and export.totals() == {}
    assert (tmp_path / "finance_2026-03.csv").read_text() == ",".join(FINANCE_COLUMNS) + "\n"


APRIL = datetime(2026, 4, 15, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("0000-01", "--month 0000-01 is before 2000-01, older than any CDR: pass a month the warehouse holds"),
        ("1999-12", "--month 1999-12 is before 2000-01, older than any CDR: pass a month the warehouse holds"),
        ("2025-12", "--month 2025-12 is before any data: the warehouse holds 2026-01 to 2026-02; "
                    "pass a month from 2026-01 to 2026-04, or sync that month first"),
        ("2026-05", "--month 2026-05 has not begun (2026-04 in UTC): the warehouse holds 2026-01 to 2026-02; "
                    "pass a month up to 2026-04"),
    ],
)
def test_a_month_the_warehouse_cannot_state_is_a_usage_error_naming_its_months(world_dir, tmp_path, month, message):
    with pytest.raises(UsageError) as caught:
        export_finance(warehouse_path(world_dir), month, tmp_path / "out", now=APRIL, lake=Lake(world_dir))
    assert str(caught.value) == message
    assert list(tmp_path.iterdir()) == []


def test_the_current_month_is_that_of_the_report_time_zone(tmp_path):
    data_dir = write_lake(tmp_path / "data", *small_world())
    build(data_dir, report_timezone="America/New_York")
    # 02:00 UTC on May 1st is still April 30th in New York
    may_first = datetime(2026, 5, 1, 2, tzinfo=timezone.utc)
    land(data_dir, "2026-04-01T04:00:00Z", "2026-05-01T02:00:00Z")
    with pytest.raises(UsageError, match=r"^--month 2026-05 has not begun \(2026-04 in America/New_York\)"):
        export_finance(warehouse_path(data_dir), "2026-05", tmp_path, now=may_first, lake=Lake(data_dir))
    april = export_finance(
        warehouse_path(data_dir), "2026-04", tmp_path, now=may_first, lake=Lake(data_dir), allow_partial=True
    )
    # the lake ends at 22:00 on April 30th in New York: now
    assert (april.rows, april.partial) == ((), "partial: covers 2026-04-01 to 2026-04-30 22:00")


def test_a_warehouse_without_data_has_no_statement_to_give(tmp_path):
    build(tmp_path)
    with pytest.raises(UsageError, match=r"holds no calls or messages, so none for --month 2026-01: sync the month"):
        export_finance(warehouse_path(tmp_path), "2026-01", tmp_path / "out", now=APRIL, lake=Lake(tmp_path))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-01", "2026-00", "january", ""])
def test_a_bad_month_is_a_usage_error(month):
    with pytest.raises(UsageError, match="YYYY-MM"):
        parse_month(month)


def test_export_finance_without_a_warehouse_says_to_build(tmp_path):
    with pytest.raises(CdrError, match="run `cdr build` first"):
        export_finance(warehouse_path(tmp_path), "2026-01", tmp_path, lake=Lake(tmp_path))


def test_cli_report_finance_writes_the_files_and_reports_totals(world_dir, tmp_path, capsys, monkeypatch):
    code, out, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", "2026-02", "--out", str(tmp_path), "--data-dir", str(world_dir)
    )
    assert code == 0, err
    assert out.splitlines() == [
        f"wrote {tmp_path / 'finance_2026-02.csv'}, {tmp_path / 'finance_2026-02.xlsx'}: 5 rows, "
        "total cost EUR 0.049500000; USD 0.001222000"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finance_2026-02.csv", "finance_2026-02.xlsx"]


def test_cli_report_finance_bad_month_is_one_line_and_exit_2(world_dir, tmp_path, capsys, monkeypatch):
    code, _, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", "2026-13", "--data-dir", str(world_dir), "--out", str(tmp_path)
    )
    assert code == 2
    assert err.splitlines() == ["error: bad --month: '2026-13' is not a month as YYYY-MM, e.g. 2026-01"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("0000-01", "error: --month 0000-01 is before 2000-01, older than any CDR: pass a month the warehouse holds"),
        ("2025-12", "error: --month 2025-12 is before any data: the warehouse holds 2026-01 to 2026-02; pass a month "
                    "from 2026-01 to "),
    ],
)
def test_cli_report_finance_of_a_month_before_any_data_is_one_line_and_exit_2(
    world_dir, tmp_path, capsys, monkeypatch, month, message
):
    code, out, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", month, "--data-dir", str(world_dir), "--out", str(tmp_path)
    )
    assert (code, out) == (2, "")
    assert err.startswith(message) and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_cli_report_finance_out_a_file_or_in_a_missing_folder_is_one_line_and_exit_2(
    world_dir, tmp_path, capsys, monkeypatch
):
    taken = tmp_path / "taken"
    taken.write_text("a file\n")
    report = ("report", "finance", "--month", "2026-01", "--data-dir", str(world_dir), "--out")
    code, out, err = run_cdr(capsys, monkeypatch, *report, str(taken))
    assert (code, out) == (2, "")
    assert err == f"error: --out {taken} is a file, not a folder: pass a folder to write into\n"
    code, out, err = run_cdr(capsys, monkeypatch, *report, str(tmp_path / "missing" / "out"))
    assert (code, out) == (2, "")
    assert err == (
        f"error: --out {tmp_path / 'missing' / 'out'}: {tmp_path / 'missing'} is not a folder; "
        "create it first or pass another folder\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"] and taken.read_text() == "a file\n"


@pytest.mark.parametrize("folder", ["lake", "lake/cdrs/account=default", "quarantine/cdrs", "state"])
def test_cli_report_finance_out_inside_a_folder_the_sync_writes_is_refused(world_dir, capsys, monkeypatch, folder):
    before = sorted(str(p) for p in world_dir.rglob("*"))
    out = world_dir / folder
    code, stdout, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", "2026-01", "--data-dir", str(world_dir), "--out", str(out)
    )
    owner = world_dir / folder.split("/")[0]
    assert (code, stdout, err) == (
        2, "", f"error: --out {out} is inside {owner}, which the sync writes: pass a folder outside it\n"
    )
    assert sorted(str(p) for p in world_dir.rglob("*")) == before


def test_a_failed_write_leaves_the_previous_statement(world_dir, tmp_path, monkeypatch):
    (tmp_path / "finance_2026-02.csv").write_text("the statement of an earlier build\n")
    (tmp_path / "finance_2026-02.xlsx").write_bytes(b"its workbook")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    write_bytes = Path.write_bytes

    def disk_full_at_the_xlsx(path, data):
        if ".xlsx." in path.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full_at_the_xlsx)
    with pytest.raises(CdrError, match=r"^cannot write .*finance_2026-02.xlsx \(No space left on device\)$"):
        export_finance(warehouse_path(world_dir), "2026-02", tmp_path, lake=Lake(world_dir))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before



def test_every_file_reaches_the_disk_before_it_replaces_the_previous_one(world_dir, tmp_path, monkeypatch):
    events = record_disk_events(monkeypatch)
    export_finance(warehouse_path(world_dir), "2026-02", tmp_path, lake=Lake(world_dir))
    # each file's bytes, its rename, then the folder's entry; the first file is replaced last
    assert events == [
        "fsync", ("replace", "finance_2026-02.xlsx"), "fsync",
        "fsync", ("replace", "finance_2026-02.csv"), "fsync",
    ]

def test_cli_report_finance_without_warehouse_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    code, _, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", "2026-01", "--data-dir", str(tmp_path), "--out", str(tmp_path)
    )
    assert code == 1
    assert err.splitlines() == [f"error: no warehouse at {tmp_path / 'warehouse.duckdb'}: run `cdr build` first"]


# -- honest periods: a statement only for a month the lake holds whole ------------------------


def test_a_day_whose_records_the_api_counted_but_the_lake_lacks_is_missing(world_dir, tmp_path):
    # the small world's usage counts a message on January 29th that no partition holds (missing_in_lake)
    with pytest.raises(UsageError, match=r"^--month 2026-01 is not fully synced: missing 2026-01-29 \(UTC days\)"):
        export_finance(warehouse_path(world_dir), "2026-01", tmp_path, lake=Lake(world_dir))
    export = export_finance(warehouse_path(world_dir), "2026-01", tmp_path, lake=Lake(world_dir), allow_partial=True)
    assert export.partial == "partial: covers 2026-01-01 to 2026-01-31, missing 2026-01-29"


@pytest.fixture(scope="module")
def gappy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small world built, its lake synced in January but for the 7th to 9th and the 31st (and the 29th's message
    the API counted is not in the lake)."""
    data_dir = write_lake(tmp_path_factory.mktemp("gappy"), *small_world())
    land(data_dir, "2026-01-01T00:00:00Z", "2026-01-07T00:00:00Z")
    land(data_dir, "2026-01-10T00:00:00Z", "2026-01-31T00:00:00Z")
    land(data_dir, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")
    build(data_dir)
    return data_dir


def test_cli_report_finance_refuses_a_month_not_fully_synced_naming_its_days(gappy_dir, tmp_path, capsys, monkeypatch):
    code, out, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", "2026-01", "--out", str(tmp_path), "--data-dir", str(gappy_dir)
    )
    assert (code, out, list(tmp_path.iterdir())) == (2, "", [])
    assert err.splitlines() == [
        "error: --month 2026-01 is not fully synced: missing 2026-01-07..2026-01-09, 2026-01-29, 2026-01-31 (UTC days); "
        "sync them (cdr sync --start 2026-01-07 --end 2026-02-01 --tz UTC) or pass --allow-partial"
    ]


def test_cli_report_finance_allow_partial_says_what_the_month_covers(gappy_dir, tmp_path, capsys, monkeypatch):
    code, out, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", "2026-01", "--allow-partial", "--out", str(tmp_path),
        "--data-dir", str(gappy_dir),
    )
    assert code == 0, err
    assert out.splitlines() == [
        f"wrote {tmp_path / 'finance_2026-01.csv'}, {tmp_path / 'finance_2026-01.xlsx'}: 2 rows, "
        "total cost USD 0.032000000; partial: covers 2026-01-01 to 2026-01-30, missing 2026-01-07..2026-01-09, "
        "2026-01-29"
    ]
    # the CSV is the statement as a complete month's: same columns, nothing added
    assert (tmp_path / "finance_2026-01.csv").read_text().splitlines() == [
        ",".join(FINANCE_COLUMNS),
        "2026-01,sms,outbound,USD,2,0,3,0.012000000",
        "2026-01,voice,outbound,USD,2,120,0,0.020000000",
    ]
    with zipfile.ZipFile(tmp_path / "finance_2026-01.xlsx") as book:
        strings = book.read("xl/sharedStrings.xml").decode()
    assert ">2026-01 partial: covers 2026-01-01 to 2026-01-30, missing 2026-01-07..2026-01-09, 2026-01-29<" in strings


def test_a_complete_month_beside_a_partial_one_exports_without_a_note(gappy_dir, tmp_path):
    export = export_finance(warehouse_path(gappy_dir), "2026-02", tmp_path, lake=Lake(gappy_dir))
    assert export.partial == "" and len(export.rows) == 5
    with zipfile.ZipFile(tmp_path / "finance_2026-02.xlsx") as book:
        assert "partial" not in book.read("xl/sharedStrings.xml").decode()


def test_the_month_in_progress_is_partial_up_to_now(world_dir, tmp_path):
    now = datetime(2026, 3, 2, 15, tzinfo=timezone.utc)
    with pytest.raises(UsageError) as caught:
        export_finance(warehouse_path(world_dir), "2026-03", tmp_path, lake=Lake(world_dir), now=now)
    assert str(caught.value) == (
        "--month 2026-03 has not ended (it is 2026-03-02 in UTC): its statement would be partial: covers "
        "2026-03-01 to 2026-03-02 15:00; pass --allow-partial to export it, or a month that has ended"
    )
    assert list(tmp_path.iterdir()) == []
    export = export_finance(warehouse_path(world_dir), "2026-03", tmp_path, lake=Lake(world_dir), now=now, allow_partial=True)
    assert export.partial == "partial: covers 2026-03-01 to 2026-03-02 15:00"


def test_coverage_is_of_the_reporting_zones_days(tmp_path):
    # UTC January is New York's January 1st 05:00 UTC on: its last five hours are not synced
    land(tmp_path, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
    later = datetime(2026, 6, 1, tzinfo=timezone.utc)
    new_york = month_coverage(Lake(tmp_path), "2026-01", "America/New_York", now=later)
    # its note says how far into January 31st the lake goes: to 19:00 in New York
    assert (new_york.missing, new_york.note()) == ((date(2026, 1, 31),), "partial: covers 2026-01-01 to 2026-01-31 19:00")
    # and its refusal says so, as `cdr status` shows the data synced into that day
    assert new_york.refusal() == (
        "--month 2026-01 is not fully synced: missing 2026-01-31 (America/New_York days; the data ends 2026-01-31 "
        "19:00); sync them (cdr sync --start 2026-01-31 --end 2026-02-01 --tz America/New_York) or pass --allow-partial"
    )
    assert month_coverage(Lake(tmp_path), "2026-01", "UTC", now=later).complete
    # east of UTC, the month began on UTC December 31st, which no sync landed
    berlin = month_coverage(Lake(tmp_path), "2026-01", "Europe/Berlin", now=later)
    assert berlin.missing == (date(2026, 1, 1),)
    assert "missing 2026-01-01 (Europe/Berlin days; the data begins 2026-01-01 01:00); " in berlin.refusal()


def test_a_statement_of_several_accounts_says_what_each_short_one_holds():
    def held(start: str, end: str) -> tuple[Window, ...]:
        return (Window(datetime.fromisoformat(start), datetime.fromisoformat(end)),)

    whole = held("2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00")
    to_6th = held("2026-01-01T00:00:00+00:00", "2026-01-07T00:00:00+00:00")
    later = datetime(2026, 6, 1, tzinfo=timezone.utc)
    # the complete account is not named; the short ones each say what they hold, those alike together
    coverage = coverage_of(
        {"acme": whole, "globex": to_6th, "initech": held("2026-01-10T00:00:00+00:00", "2026-02-01T00:00:00+00:00"),
         "umbrella": to_6th},
        "2026-01", "UTC", now=later,
    )
    assert coverage.lacking == ("globex", "initech", "umbrella")
    assert coverage.note() == (
        "partial: globex, umbrella cover 2026-01-01 to 2026-01-06; initech covers 2026-01-10 to 2026-01-31"
    )
    assert coverage_of({"acme": whole, "globex": to_6th}, "2026-01", "UTC", now=later).note() == (
        "partial: globex covers 2026-01-01 to 2026-01-06"
    )
    # every account short alike (the month in progress): what they all hold, as for one account
    now = datetime(2026, 1, 20, 12, tzinfo=timezone.utc)
    assert coverage_of({"acme": whole, "globex": whole}, "2026-01", "UTC", now=now).note() == (
        coverage_of({"acme": whole}, "2026-01", "UTC", now=now).note()
    ) == "partial: covers 2026-01-01 to 2026-01-20 12:00"


def test_an_unlisted_account_is_left_out_only_of_a_month_it_holds_nothing_of(tmp_path):
    later = datetime(2026, 6, 1, tzinfo=timezone.utc)
    land(tmp_path, "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z", account="acme")
    land(tmp_path, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", account="globex")
    # initech landed calls alone in February: it holds some of the month, if not every statement kind of it
    land(tmp_path, "2026-01-01T00:00:00Z", "2026-02-03T00:00:00Z", kinds=("cdrs",), account="initech")
    lake = Lake(tmp_path)
    held = lake_held(lake, ["acme", "globex", "initech"])
    unlisted = lake_touched(lake, ["globex", "initech"])
    february = coverage_of(held, "2026-02", "UTC", now=later, unlisted=unlisted)
    assert february.left_out == ("globex",)
    assert february.lacking == ("initech",)
    assert february.left_out_note("accounts.toml") == "left out: globex (not in accounts.toml; holds nothing of 2026-02)"
    # without initech, February is whole; January, which globex holds, keeps it
    assert coverage_of({"acme": held["acme"], "globex": held["globex"]}, "2026-02", "UTC", now=later,
                       unlisted=unlisted).complete
    january = coverage_of(held, "2026-01", "UTC", now=later, unlisted=unlisted)
    assert january.left_out == () and january.left_out_note("accounts.toml") == ""
    # a listed account (not in `unlisted`) holding nothing of the month makes it partial, as without the rule
    assert coverage_of(held, "2026-02", "UTC", now=later, unlisted={}).lacking == ("globex", "initech")
    # nor is every account left out: a statement of no account would read as a whole month
    alone = coverage_of({"globex": held["globex"]}, "2026-02", "UTC", now=later, unlisted=unlisted)
    assert alone.left_out == () and not alone.complete


def test_a_day_counts_once_every_statement_kind_landed_it(tmp_path):
    later = datetime(2026, 6, 1, tzinfo=timezone.utc)
    land(tmp_path, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", kinds=("cdrs",))
    land(tmp_path, "2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z", kinds=("mdrs",))
    coverage = month_coverage(Lake(tmp_path), "2026-01", "UTC", now=later)
    assert coverage.missing == tuple(date(2026, 1, day) for day in range(1, 15))
    assert coverage.note() == "partial: covers 2026-01-15 to 2026-01-31"
    # a sync that landed nothing for the month leaves it uncovered
    assert month_coverage(Lake(tmp_path), "2026-03", "UTC", now=later).note() == "partial: covers no day of 2026-03"


def test_a_landed_day_whose_partition_is_gone_is_missing_as_cdr_status_says(tmp_path, capsys, monkeypatch):
    calls = [call(f"c{day}", f"2026-10-0{day}T10:00:00Z", f"2026-10-0{day}T10:01:00Z") for day in (1, 2, 4, 5, 7)]
    usage_rows = [usage("2026-10-04", "calls", "USD", 1, "0.01", billed_duration_secs=60)]
    data_dir = write_lake(tmp_path / "data", calls=calls, usage_rows=usage_rows)
    land(data_dir, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")
    # October 4th's calls are lost after the sync landed them, though the API's usage counted one that day.
    (data_dir / "lake" / "cdrs" / "account=default" / "date=2026-10-04" / "data.parquet").unlink()
    build(data_dir)
    assert read_status(data_dir).kinds[0].gaps == (date(2026, 10, 4),)
    out = tmp_path / "out"
    report = ("report", "finance", "--month", "2026-10", "--out", str(out), "--data-dir", str(data_dir))
    code, printed, err = run_cdr(capsys, monkeypatch, *report)
    assert (code, printed, out.exists()) == (2, "", False)
    # the days landed without records, which no usage counted either (the 3rd, 6th, 8th on), are held
    assert err.splitlines() == [
        "error: --month 2026-10 is not fully synced: missing 2026-10-04 (UTC days); "
        "sync them (cdr sync --start 2026-10-04 --end 2026-10-05 --tz UTC) or pass --allow-partial"
    ]
    code, printed, err = run_cdr(capsys, monkeypatch, *report, "--allow-partial")
    assert code == 0, err
    assert printed.endswith(": 1 row, total cost USD 0.000000000; partial: covers 2026-10-01 to 2026-10-31, "
                            "missing 2026-10-04\n"), printed


def test_a_warehouse_built_for_another_zone_is_refused_by_the_report_and_the_dashboards(
    world_dir, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CDR_REPORT_TIMEZONE", "America/New_York")
    refusal = (
        f"error: the warehouse {warehouse_path(world_dir)} was built for UTC days, not America/New_York "
        "(CDR_REPORT_TIMEZONE): run `cdr build` to rebuild it for America/New_York, or set CDR_REPORT_TIMEZONE=UTC"
    )
    for partial in ((), ("--allow-partial",)):
        code, out, err = run_cdr(
            capsys, monkeypatch, "report", "finance", "--month", "2026-01", *partial, "--out", str(tmp_path / "out"),
            "--data-dir", str(world_dir),
        )
        assert (code, out, err.splitlines()) == (2, "", [refusal])
    code, out, err = run_cdr(
        capsys, monkeypatch, "dashboards", "--out", str(tmp_path / "site"), "--data-dir", str(world_dir)
    )
    assert (code, out, err.splitlines()) == (2, "", [refusal])
    assert list(tmp_path.iterdir()) == []


def test_day_ranges_join_consecutive_days_and_cap_the_list():
    days = [date(2026, 1, d) for d in (1, 2, 3, 5, 7, 8, 10, 12)]
    assert day_ranges(days) == "2026-01-01..2026-01-03, 2026-01-05, 2026-01-07..2026-01-08 and 2 more"
    assert day_ranges(days[:4]) == "2026-01-01..2026-01-03, 2026-01-05"


# -- finance totals against an independent computation over sandbox records ------------------


def _sandbox_lake(data_dir: Path) -> list[dict]:
    """Four sandbox days across a month end, re-rated, landed twice (before and after the
    re-ratings, as two syncs would) -> the records as the API finally serves them."""
    from pipelines.dates import Window
    from pipelines.opentact.records import validate_records
    from sandbox.world import World

    world = World(seed=11, start=date(2026, 1, 30), calls_per_day=150, messages_per_day=150, rerate_rate=0.3)
    lake = Lake(data_dir).for_account(DEFAULT_ACCOUNT)
    served: list[dict] = []
    for offset in range(4):
        day = date(2026, 1, 30) + timedelta(days=offset)
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        window = Window(start, start + timedelta(days=1))
        for kind in ("cdrs", "mdrs"):
            versions = []
            for now in (start + timedelta(days=1), start + timedelta(days=30)):
                texts = world.view(kind, day, now).get_column("json").to_list()
                records = [orjson.loads(text) for text in texts]
                frame, rejects = validate_records(kind, records, window, 1)
                assert rejects == []
                versions.append(frame)
            served += [orjson.loads(text) for text in world.view(kind, day, start + timedelta(days=30))["json"]]
            lake.write_partition(kind, day, versions[0].vstack(versions[1]))
    return served


@pytest.fixture(scope="module")
def sandbox_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """The sandbox lake, built -> (its data dir, the records as finally served)."""
    data_dir = tmp_path_factory.mktemp("sandbox")
    served = _sandbox_lake(data_dir)
    land(data_dir, "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z")
    build(data_dir)
    return data_dir, served


def test_finance_statement_equals_a_python_computation_over_sandbox_records(sandbox_built):
    data_dir, served = sandbox_built
    expected: dict[tuple, list] = defaultdict(lambda: [0, 0, 0, D(0)])
    for record in served:
        # Exact decimals straight from the served JSON text, no lake, no SQL.
        product = "voice" if record["record_type"] == "call" else record["message_type"]
        key = (record["created_at"][:7], product, record["direction"], record["currency"])
        totals = expected[key]
        totals[0] += 1
        totals[1] += record.get("billed_duration_secs", 0)
        totals[2] += record.get("parts", 0)
        totals[3] += D(record["cost"])
    with duckdb.connect(str(warehouse_path(data_dir)), read_only=True) as c:
        statement = c.execute(f"select {', '.join(FINANCE_COLUMNS)} from rpt_finance_monthly_statement").fetchall()
    assert {row[:4]: list(row[4:]) for row in statement} == dict(expected)
    assert {row[0] for row in statement} == {"2026-01", "2026-02"}
    assert len(served) > 1000


def test_exported_csv_totals_equal_the_python_computation(sandbox_built, tmp_path):
    data_dir, served = sandbox_built
    export = export_finance(warehouse_path(data_dir), "2026-01", tmp_path, xlsx=False, lake=Lake(data_dir))
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for record in served:
        if record["created_at"].startswith("2026-01"):
            expected[record["currency"]] += D(record["cost"])
    with open(export.files[0], newline="") as handle:
        exported: dict[str, Decimal] = defaultdict(Decimal)
        for row in csv.DictReader(handle):
            exported[row["currency"]] += D(row["cost"])
    assert exported == expected
    assert export.totals() == expected
