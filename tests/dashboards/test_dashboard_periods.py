"""Honest periods on the rendered pages: a partial month says so, money shows to the cent."""

import re
from dataclasses import replace
from datetime import UTC, date, datetime
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
    assert "2026-11 (partial: 1–6): the data ends inside the month." in finance
    # the figure's x categories and its note
    assert '"2026-11 (partial: 1–6)"' in finance and "Hatched: a partial month" in finance
    assert "<td class=\"\">2026-10</td>" in finance and "2026-10 (partial" not in finance
    # August to October alone are whole months: nothing is marked
    render_site(small_warehouse, tmp_path, synced_at=SYNCED_AT, now=NOW)
    whole = (tmp_path / "finance.html").read_text("utf-8")
    assert "partial" not in whole and "Hatched" not in whole


def test_a_last_day_synced_only_to_noon_is_hatched_on_the_daily_trends(small_warehouse, tmp_path):
    # the small warehouse's last report day is 2026-10-31
    render_site(small_warehouse, tmp_path, synced_at=datetime(2026, 10, 31, 12, tzinfo=UTC), now=NOW)
    note = "Hatched: 2026-10-31, synced only to 12:00; not comparable with whole days"
    assert (tmp_path / "overview.html").read_text("utf-8").count(note) == 2
    assert note in (tmp_path / "voice-quality.html").read_text("utf-8")
    # synced to the end of the day: a whole day, nothing hatched
    render_site(small_warehouse, tmp_path, synced_at=SYNCED_AT, now=NOW)
    assert "Hatched" not in (tmp_path / "overview.html").read_text("utf-8")


def test_money_on_every_page_is_shown_to_the_cent(six_days_into_november):
    amounts = []
    for page in six_days_into_november.glob("*.html"):
        text = page.read_text("utf-8")
        amounts += MONEY_TEXT.findall(text)
        # table cost cells: the statement's and the reconciliation's
        amounts += re.findall(r"<td class=\"num [a-z ]*\">(-?[\d,]+\.\d+)</td>", text)
    assert amounts and all(len(amount.split(".")[1]) == 2 for amount in amounts), sorted(set(amounts))[:10]


def test_a_month_the_lake_ends_inside_reads_partial_on_the_pages_as_in_the_statement(tmp_path):
    from dashboards.render import render_data_dir_site
    from pipelines.errors import UsageError
    from pipelines.lake import Lake
    from pipelines.models import build, warehouse_path
    from pipelines.reports import export_finance
    from tests.fixtures.lake import call, write_lake
    from tests.fixtures.landed import land

    calls = [call(f"c{day}", f"2026-10-{day:02d}T12:00:00Z", f"2026-10-{day:02d}T12:01:00Z") for day in (1, 15, 31)]
    data_dir = write_lake(tmp_path / "data", calls=calls)
    land(data_dir, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")
    # The lake's last UTC day ends at 20:00 on October 31st in New York.
    build(data_dir, report_timezone="America/New_York")
    with pytest.raises(UsageError, match=r"missing 2026-10-31 \(America/New_York days; the data ends 2026-10-31 20:00\)"):
        export_finance(warehouse_path(data_dir), "2026-10", tmp_path / "out", lake=Lake(data_dir), now=NOW)
    export = export_finance(
        warehouse_path(data_dir), "2026-10", tmp_path / "out", lake=Lake(data_dir), now=NOW, allow_partial=True
    )
    assert export.partial == "partial: covers 2026-10-01 to 2026-10-31 20:00"
    render_data_dir_site(data_dir, tmp_path / "site", now=NOW, zone="America/New_York")
    finance = (tmp_path / "site" / "finance.html").read_text("utf-8")
    assert "Total 2026-10 (partial: 1–31 20:00)" in finance
