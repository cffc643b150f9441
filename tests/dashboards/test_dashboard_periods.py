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


def test_money_on_every_page_is_shown_to_the_cent(six_days_into_november):
    amounts = []
    for page in six_days_into_november.glob("*.html"):
        text = page.read_text("utf-8")
        amounts += MONEY_TEXT.findall(text)
        # table cost cells: the statement's and the reconciliation's
        amounts += re.findall(r"<td class=\"num [a-z ]*\">(-?[\d,]+\.\d+)</td>", text)
    assert amounts and all(len(amount.split(".")[1]) == 2 for amount in amounts), sorted(set(amounts))[:10]
