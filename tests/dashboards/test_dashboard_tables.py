from datetime import date, timedelta
from decimal import Decimal

import polars as pl

from dashboards import tables
from dashboards.tables import Cell, Tile

D = Decimal
MONEY = pl.Decimal(38, 9)
STATEMENT = {
    "month": pl.String, "product": pl.String, "direction": pl.String, "currency": pl.String,
    "records": pl.Int64, "billed_duration_secs": pl.Int64, "parts": pl.Int64, "cost": MONEY,
}
RECONCILIATION = {
    "day": pl.Date, "product": pl.String, "currency": pl.String, "pipeline_records": pl.Int64,
    "quarantined_records": pl.Int64, "api_records": pl.Int64, "pipeline_cost": MONEY, "quarantined_cost": MONEY,
    "api_cost": MONEY, "cost_difference": MONEY, "status": pl.String,
}


def _frame(rows, schema):
    return pl.DataFrame(rows, schema=schema, orient="row")


def _texts(table):
    return [[cell.text for cell in row] for row in table.rows]


def test_the_statement_lists_rows_newest_first_with_exact_totals_per_currency():
    frame = _frame(
        [
            ("2026-09", "voice", "outbound", "USD", 10, 610, 0, Decimal("1.100000")),
            ("2026-10", "sms", "outbound", "USD", 4, 0, 5, Decimal("0.000400")),
            ("2026-10", "voice", "inbound", "EUR", 2, 120, 0, Decimal("0.25")),
        ],
        STATEMENT,
    )
    table = tables.finance_statement(frame)
    assert table.headers == ("Month", "Product", "Direction", "Currency", "Records", "Billed minutes", "Parts", "Cost")
    assert _texts(table) == [
        ["2026-10", "sms", "outbound", "USD", "4", "0.00", "5", "0.0004"],
        ["2026-10", "voice", "inbound", "EUR", "2", "2.00", "0", "0.2500"],
        ["2026-09", "voice", "outbound", "USD", "10", "10.17", "0", "1.1000"],
        ["Total 2026-09 to 2026-10", "", "", "EUR", "2", "2.00", "0", "0.2500"],
        ["Total 2026-09 to 2026-10", "", "", "USD", "14", "10.17", "5", "1.1004"],
    ]
    # One number of decimals per column (the most any amount needs), so the column lines up.
    assert table.rows[-1][-1] == Cell("1.1004", numeric=True, css="total")


def test_the_statement_shows_its_latest_twelve_months_and_says_so():
    rows = [(f"2025-{m:02d}", "sms", "outbound", "USD", 1, 0, 1, Decimal(1)) for m in range(1, 13)]
    rows += [(f"2026-{m:02d}", "sms", "outbound", "USD", 1, 0, 1, Decimal(1)) for m in range(1, 3)]
    table = tables.finance_statement(_frame(rows, STATEMENT))
    months = [row[0] for row in _texts(table)]
    assert months[0] == "2026-02" and months[11] == "2025-03" and months[12] == "Total 2025-03 to 2026-02"
    assert "latest 12 of 14 months" in table.note


def test_the_statement_caps_its_rows_whatever_the_number_of_currencies():
    rows = [
        (f"2026-{m:02d}", product, "outbound", f"C{c:02d}", 1, 60, 0, Decimal("0.5"))
        for m in range(1, 13) for product in ("voice", "sms", "mms") for c in range(30)
    ]
    table = tables.finance_statement(_frame(rows, STATEMENT))
    totals = [row for row in _texts(table) if row[0].startswith("Total")]
    assert len(table.rows) == tables.MAX_TABLE_ROWS + tables.MAX_TOTAL_ROWS
    assert totals[0] == ["Total 2026-01 to 2026-12", "", "", "C00", "36", "36.00", "0", "18.00"]
    assert "Showing 200 of 1,080 rows and 20 of 30 currency totals." in table.note


def test_an_empty_statement_has_no_rows_and_says_no_data():
    table = tables.finance_statement(pl.DataFrame(schema=STATEMENT))
    assert table.rows == () and table.empty_message == "No data for this period"


def test_reconciliation_lists_the_unexplained_differences_first_then_the_explained_ones():
    frame = _frame(
        [
            (date(2026, 10, 1), "calls", "USD", 5, 0, 5, D("1.5"), D(0), D("1.5"), D(0), "match"),
            (date(2026, 10, 2), "calls", "USD", 5, 0, 4, D("1.5"), D(0), D("1.25"), D("0.25"), "mismatch"),
            (date(2026, 10, 3), "messages", "EUR", None, 0, 3, None, D(0), D("0.000300"), D("-0.000300"),
             "missing_in_lake"),
            (date(2026, 10, 3), "calls", "USD", 4, 1, 5, D("1.2"), D("0.3"), D("1.5"), D("-0.3"),
             "explained_by_quarantine"),
            (date(2026, 10, 4), "calls", "USD", 4, 1, 5, D("1.2"), D("0.3"), D("1.5"), D("-0.3"),
             "explained_by_quarantine"),
            # a quarantined cost that did not read explains nothing
            (date(2026, 10, 4), "messages", "USD", 1, 1, 2, D("0.1"), None, D("0.2"), D("-0.1"), "mismatch"),
        ],
        RECONCILIATION,
    )
    table = tables.reconciliation_table(frame)
    assert table.headers == (
        "UTC day", "Product", "Currency", "Status", "Pipeline records", "Quarantined", "API records",
        "Pipeline cost", "Quarantined cost", "API cost", "Difference",
    )
    assert _texts(table) == [
        ["2026-10-04", "messages", "USD", "mismatch", "1", "1", "2", "0.10", "—", "0.2000", "-0.1000"],
        ["2026-10-03", "messages", "EUR", "missing in lake", "—", "0", "3", "—", "0.00", "0.0003", "-0.0003"],
        ["2026-10-02", "calls", "USD", "mismatch", "5", "0", "4", "1.50", "0.00", "1.2500", "0.2500"],
        ["2026-10-04", "calls", "USD", "explained", "4", "1", "5", "1.20", "0.30", "1.5000", "-0.3000"],
        ["2026-10-03", "calls", "USD", "explained", "4", "1", "5", "1.20", "0.30", "1.5000", "-0.3000"],
    ]
    assert [(row[3].css, row[-1].css) for row in table.rows] == [("flag", "flag")] * 3 + [("explained", "explained")] * 2


def test_reconciliation_beyond_the_row_cap_still_shows_every_unexplained_row():
    explained = [
        (date(2026, 1, 1) + timedelta(days=i), "calls", "USD", 1, 1, 2, D(1), D(1), D(2), D(-1),
         "explained_by_quarantine")
        for i in range(tables.MAX_TABLE_ROWS + 10)
    ]
    unexplained = [(date(2025, 1, 1), "calls", "USD", 1, 0, 2, D(1), D(0), D(2), D(-1), "mismatch")]
    table = tables.reconciliation_table(_frame(explained + unexplained, RECONCILIATION))
    assert len(table.rows) == tables.MAX_TABLE_ROWS and _texts(table)[0][:4] == ["2025-01-01", "calls", "USD", "mismatch"]
    assert "Showing 200 of 211 rows that differ (1 not explained, listed first)." in table.note


def test_reconciliation_that_matches_says_so_instead_of_an_empty_table():
    frame = _frame(
        [(date(2026, 10, 1), "calls", "USD", 5, 0, 5, D("1.5"), D(0), D("1.5"), D(0), "match")],
        RECONCILIATION,
    )
    table = tables.reconciliation_table(frame)
    assert table.rows == () and table.empty_message == "All 1 day × product × currency totals match the API exactly."


def test_reconciliation_tiles_tell_explained_from_unexplained_and_net_only_the_unexplained():
    frame = _frame(
        [
            (date(2026, 10, 1), "calls", "USD", 5, 0, 5, D(1), D(0), D(1), D(0), "match"),
            (date(2026, 10, 2), "calls", "USD", 5, 0, 4, D(1), D(0), D("0.75"), D("0.25"), "mismatch"),
            (date(2026, 10, 2), "messages", "USD", 1, 0, None, D("0.1"), D(0), None, D("0.1"), "missing_in_api"),
            (date(2026, 10, 3), "calls", "EUR", 4, 2, 6, D(1), D("0.5"), D("1.5"), D("-0.5"),
             "explained_by_quarantine"),
            (date(2026, 10, 3), "messages", "EUR", 4, 1, 5, D(1), D("0.1"), D("1.1"), D("-0.1"),
             "explained_by_quarantine"),
        ],
        RECONCILIATION,
    )
    assert tables.reconciliation_tiles(frame) == [
        Tile("Totals compared", "5", "UTC day × product × currency over 3 days"),
        Tile("Match", "1", "pipeline = API on every total", css="good"),
        Tile("Explained by quarantine", "2", "3 quarantined malformed records account for the difference"),
        Tile("Not explained", "2", "1 mismatch, 1 missing in API", css="bad"),
        Tile("Unexplained difference (USD)", "0.35", "pipeline − API, rows not explained", css="bad"),
    ]


def test_reconciliation_tiles_when_the_quarantine_explains_everything():
    frame = _frame(
        [(date(2026, 10, 3), "calls", "EUR", 4, 2, 6, D(1), D("0.5"), D("1.5"), D("-0.5"), "explained_by_quarantine")],
        RECONCILIATION,
    )
    assert tables.reconciliation_tiles(frame)[1:] == [
        Tile("Match", "0", "pipeline = API on every total"),
        Tile("Explained by quarantine", "1", "2 quarantined malformed records account for the difference"),
        Tile("Not explained", "0", "every difference is accounted for", css="good"),
    ]


def test_overview_tiles_are_exact_totals_of_the_period():
    statement = _frame(
        [
            ("2026-09", "voice", "outbound", "USD", 10, 600, 0, Decimal("1.000001")),
            ("2026-10", "voice", "inbound", "USD", 5, 90, 0, Decimal("2")),
            ("2026-10", "sms", "outbound", "EUR", 7, 0, 9, Decimal("0.07")),
        ],
        STATEMENT,
    )
    quality = _frame([(100, 75), (300, 25)], {"calls": pl.Int64, "answered_calls": pl.Int64})
    delivery = _frame([(40, 39)], {"messages": pl.Int64, "delivered": pl.Int64})
    assert tables.overview_tiles(statement, quality, delivery) == [
        Tile("Cost (USD)", "3.000001", "calls and messages, exact"),
        Tile("Cost (EUR)", "0.07", "calls and messages, exact"),
        Tile("Calls", "15", "11.50 billed minutes"),
        Tile("Messages", "7", "9 billed parts"),
        Tile("Answer-seizure ratio", "25.0 %", "100 answered of 400 calls"),
        Tile("Delivery rate", "97.5 %", "39 delivered of 40 outbound messages"),
    ]


def test_overview_tiles_of_an_empty_period_say_there_is_no_data():
    tiles = tables.overview_tiles(
        pl.DataFrame(schema=STATEMENT),
        pl.DataFrame(schema={"calls": pl.Int64, "answered_calls": pl.Int64}),
        pl.DataFrame(schema={"messages": pl.Int64, "delivered": pl.Int64}),
    )
    assert tiles[0] == Tile("Cost", "—", "no data for this period")
    assert [tile.value for tile in tiles[1:]] == ["0", "0", "—", "—"]
