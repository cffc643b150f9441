from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from dashboards import tables
from dashboards.render import partial_months
from dashboards.tables import Cell, Tile
from pipelines.dates import Window
from pipelines.reports import partial_months as held_partial_months

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


def test_the_statement_lists_each_month_newest_first_with_its_totals_per_currency_to_the_cent():
    frame = _frame(
        [
            ("2026-09", "voice", "outbound", "USD", 10, 610, 0, Decimal("1.104999")),
            ("2026-10", "sms", "outbound", "USD", 4, 0, 5, Decimal("0.000400")),
            ("2026-10", "voice", "inbound", "EUR", 2, 120, 0, Decimal("0.255")),
            ("2026-10", "voice", "outbound", "USD", 1, 60, 0, Decimal("0.004600")),
        ],
        STATEMENT,
    )
    table = tables.finance_statement(frame)
    assert table.headers == ("Month", "Product", "Direction", "Currency", "Records", "Billed minutes", "Parts", "Cost")
    assert _texts(table) == [
        # minutes do not apply to messages, nor parts to calls: a dash, not a zero
        ["2026-10", "sms", "outbound", "USD", "4", "—", "5", "<0.01"],
        ["2026-10", "voice", "inbound", "EUR", "2", "2.00", "—", "0.26"],
        ["2026-10", "voice", "outbound", "USD", "1", "1.00", "—", "<0.01"],
        ["Total 2026-10", "", "", "EUR", "2", "2.00", "0", "0.26"],
        # the total of the exact amounts (0.005), rounded: not the sum of the rounded rows
        ["Total 2026-10", "", "", "USD", "5", "1.00", "5", "0.01"],
        ["2026-09", "voice", "outbound", "USD", "10", "10.17", "—", "1.10"],
        ["Total 2026-09", "", "", "USD", "10", "10.17", "0", "1.10"],
    ]
    assert table.rows[-1][-1] == Cell("1.10", numeric=True, css="total")
    assert "rounded to the cent" in table.note and "partial" not in table.note
    assert "— marks what does not apply: minutes to messages, parts to calls." in table.note


def test_a_partial_month_is_labelled_on_its_rows_and_totals_and_explained():
    frame = _frame(
        [
            ("2026-10", "sms", "outbound", "USD", 4, 0, 5, Decimal("4")),
            ("2026-11", "sms", "outbound", "USD", 1, 0, 1, Decimal("1")),
        ],
        STATEMENT,
    )
    table = tables.finance_statement(frame, partial=partial_months(date(2026, 10, 1), date(2026, 11, 6)))
    assert [row[0].text for row in table.rows] == [
        "2026-11 (partial: 1–6)", "Total 2026-11 (partial: 1–6)", "2026-10", "Total 2026-10",
    ]
    assert table.rows[0][0].css == "partial" and table.rows[1][0].css == "total partial"
    assert table.note.endswith(
        " 2026-11 (partial: 1–6): the data ends inside the month."
        " A partial month holds only the days named and does not compare with whole months."
    )


def _utc(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 9, 1, hour, tzinfo=UTC) + timedelta(days=day - 1)


@pytest.mark.parametrize(
    ("held", "why"),
    [
        # the same rule as `cdr report finance` labels September partial; the note says why, case by case
        ([(3, 31)], "2026-09 (partial: 3–30): the data begins inside the month."),
        ([(1, 28)], "2026-09 (partial: 1–27): the data ends inside the month."),
        ([(3, 28)], "2026-09 (partial: 3–27): the data begins and ends inside the month."),
        ([(1, 14), (15, 31)], "2026-09 (partial: 1–30, missing 14): the data misses days inside the month."),
        (
            [(2, 14), (15, 31)],
            "2026-09 (partial: 2–30, missing 14): the data begins inside the month and misses days in it.",
        ),
        ([], "2026-09 (partial: no day): the data holds no day of the month."),
    ],
)
def test_the_statement_note_says_why_each_partial_month_is_partial(held, why):
    frame = _frame([("2026-09", "sms", "outbound", "USD", 1, 0, 1, Decimal("1"))], STATEMENT)
    windows = {"": tuple(Window(_utc(start), _utc(end)) for start, end in held)}
    partial = held_partial_months(windows, ["2026-09"], "UTC", now=_utc(40))
    note = tables.finance_statement(frame, partial=partial).note
    assert f" {why} A partial month holds only the days named" in note


def test_the_all_accounts_statement_labels_a_partial_month_by_what_each_short_account_holds():
    # acme from 10 August, globex from 14 September: August and September are each held by one account in
    # full or in part, never "no day" nor cut short for the whole of both.
    frame = _frame(
        [("2026-08", "sms", "outbound", "USD", 1, 0, 1, D(1)), ("2026-09", "sms", "outbound", "USD", 1, 0, 1, D(1))],
        STATEMENT,
    )
    end = datetime(2026, 10, 1, tzinfo=UTC)
    held = {
        "acme": (Window(datetime(2026, 8, 10, tzinfo=UTC), end),),
        "globex": (Window(datetime(2026, 9, 14, tzinfo=UTC), end),),
    }
    partial = held_partial_months(held, ["2026-08", "2026-09"], "UTC", now=end + timedelta(days=9))
    table = tables.finance_statement(frame, partial=partial)
    assert [row[0].text for row in table.rows] == [
        "2026-09 (partial: globex 14–30)", "Total 2026-09 (partial: globex 14–30)",
        "2026-08 (partial: acme 10–31; globex no day)", "Total 2026-08 (partial: acme 10–31; globex no day)",
    ]
    assert (
        " 2026-09 (partial: globex 14–30): the data of globex begins inside the month."
        " 2026-08 (partial: acme 10–31; globex no day): the data of acme begins inside the month;"
        " the data of globex holds no day of the month."
    ) in table.note


def test_the_statement_shows_its_latest_twelve_months_and_says_so():
    rows = [(f"2025-{m:02d}", "sms", "outbound", "USD", 1, 0, 1, Decimal(1)) for m in range(1, 13)]
    rows += [(f"2026-{m:02d}", "sms", "outbound", "USD", 1, 0, 1, Decimal(1)) for m in range(1, 3)]
    table = tables.finance_statement(_frame(rows, STATEMENT))
    months = [row[0] for row in _texts(table)]
    assert months[:3] == ["2026-02", "Total 2026-02", "2026-01"] and months[-1] == "Total 2025-03"
    assert "Showing the latest 12 of 14 months, each in full." in table.note


def test_the_statement_never_cuts_a_month_short_however_many_currencies():
    rows = [
        (f"{year}-{m:02d}", product, "outbound", f"C{c:02d}", 1, 60, 0, Decimal("0.5"))
        for year in (2025, 2026) for m in range(1, 13) for product in ("voice", "sms", "mms") for c in range(30)
    ]
    table = tables.finance_statement(_frame(rows, STATEMENT))
    texts = _texts(table)
    months = list(dict.fromkeys(row[0].removeprefix("Total ") for row in texts))
    # each month shown whole: its 90 rows and a total for each of its 30 currencies
    assert months == [f"2026-{m:02d}" for m in range(12, 4, -1)]
    assert len(texts) == len(months) * (90 + 30) <= tables.MAX_STATEMENT_ROWS
    assert texts[90] == ["Total 2026-12", "", "", "C00", "3", "3.00", "0", "1.50"]
    assert texts[-1] == ["Total 2026-05", "", "", "C29", "3", "3.00", "0", "1.50"]
    assert "Showing the latest 8 of 24 months, each in full." in table.note


def test_the_latest_month_is_shown_whole_even_beyond_the_row_budget():
    rows = [("2026-01", "sms", "outbound", f"C{c:04d}", 1, 0, 1, Decimal(1)) for c in range(tables.MAX_STATEMENT_ROWS)]
    table = tables.finance_statement(_frame(rows, STATEMENT))
    assert len(table.rows) == 2 * tables.MAX_STATEMENT_ROWS and "Showing" not in table.note


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
        ["2026-10-04", "sms + mms", "USD", "mismatch", "1", "1", "2", "0.10", "—", "0.20", "-0.10"],
        ["2026-10-03", "sms + mms", "EUR", "missing in lake", "—", "0", "3", "—", "0.00", "<0.01", "-<0.01"],
        ["2026-10-02", "voice", "USD", "mismatch", "5", "0", "4", "1.50", "0.00", "1.25", "0.25"],
        ["2026-10-04", "voice", "USD", "explained", "4", "1", "5", "1.20", "0.30", "1.50", "-0.30"],
        ["2026-10-03", "voice", "USD", "explained", "4", "1", "5", "1.20", "0.30", "1.50", "-0.30"],
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
    assert len(table.rows) == tables.MAX_TABLE_ROWS and _texts(table)[0][:4] == ["2025-01-01", "voice", "USD", "mismatch"]
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


def test_overview_tiles_are_the_totals_of_the_period_to_the_cent():
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
        Tile("Cost (USD)", "3.00", "calls and messages, to the cent"),
        Tile("Cost (EUR)", "0.07", "calls and messages, to the cent"),
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
