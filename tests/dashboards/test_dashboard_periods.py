"""Honest periods on the rendered pages: a partial month says so, money shows to the cent."""

import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from tests.dashboards.dashboard_fixtures import NOW, SMALL, SYNCED_AT, build_warehouse

from dashboards.render import render_site

# A cost on a page: a number then a currency code (hover labels), or a table's cost cell.
MONEY_TEXT = re.compile(r"(-?[\d,]+\.\d+) (?:USD|EUR)\b")


@pytest.fixture(scope="module")
def six_days_into_november(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """August to October whole, then November 1st to 6th: the site of a sync on November 6th."""
    folder = tmp_path_factory.mktemp("partial")
    warehouse = build_warehouse(folder / "warehouse.duckdb", replace(SMALL, first_day=date(2026, 8, 1), days=98))
    render_site(warehouse, folder / "site", synced_at=SYNCED_AT, now=NOW)
    return folder / "site"


def test_the_statement_and_month_over_month_mark_the_partial_month_only(six_days_into_november, small_warehouse, tmp_path):
    finance = (six_days_into_november / "finance.html").read_text("utf-8")
    assert "<td class=\"partial\">2026-11 (partial: 1–6)</td>" in finance
    assert "Total 2026-11 (partial: 1–6)" in finance
    assert "2026-11 (partial: 1–6): the data begins or ends inside the month" in finance
    # the figure's x categories and its note
    assert '"2026-11 (partial: 1–6)"' in finance and "Hatched: a partial month" in finance
    assert "<td class=\"\">2026-10</td>" in finance and "2026-10 (partial" not in finance
    # August to October alone are whole months: nothing is marked
    render_site(small_warehouse, tmp_path, synced_at=SYNCED_AT, now=NOW)
    whole = (tmp_path / "finance.html").read_text("utf-8")
    assert "partial" not in whole and "Hatched" not in whole


def test_money_on_every_page_is_shown_to_the_cent(six_days_into_november):
    amounts = []
    for page in six_days_into_november.glob("*.html"):
        text = page.read_text("utf-8")
        amounts += MONEY_TEXT.findall(text)
        # table cost cells: the statement's and the reconciliation's
        amounts += re.findall(r"<td class=\"num [a-z ]*\">(-?[\d,]+\.\d+)</td>", text)
    assert amounts and all(len(amount.split(".")[1]) == 2 for amount in amounts), sorted(set(amounts))[:10]
