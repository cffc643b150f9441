import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import plotly.offline
import pytest
from tests.dashboards.dashboard_fixtures import (
    HOSTILE_CONNECTION,
    HOSTILE_PROFILE,
    LARGE,
    NOW,
    SYNCED_AT,
    drawn,
    page_figure,
)

from dashboards.pages import PAGES, all_sources
from dashboards.render import FIT_JS, INDEX, PLOTLY_JS, STYLESHEET, Switchers, _environment, render_site
from dashboards.warehouse import DashboardError, read_report
from pipelines.errors import CdrError
from pipelines.sql import connect_read_only
from pipelines.status import SITE_MARKER

MAX_PAGE_BYTES = 1_000_000


@pytest.fixture(scope="module")
def small_site(small_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("site")
    return out, render_site(small_warehouse, out, synced_at=SYNCED_AT, now=NOW)


def _html(site: Path, name: str) -> str:
    return (site / name).read_text("utf-8")


def test_the_site_is_an_index_every_page_one_copy_of_each_asset_and_its_marker(small_site):
    out, written = small_site
    assert [path.name for path in written] == [
        INDEX, *(page.filename for page in PAGES), STYLESHEET, FIT_JS, PLOTLY_JS, SITE_MARKER
    ]
    assert sorted(path.name for path in out.iterdir()) == sorted(path.name for path in written)
    assert (out / PLOTLY_JS).read_text("utf-8") == plotly.offline.get_plotlyjs()


def test_every_page_loads_the_shared_plotly_js_once_and_draws_each_figure_once(small_site):
    out, _ = small_site
    for page in PAGES:
        html = _html(out, page.filename)
        assert html.count('<script src="plotly.min.js"></script>') == 1
        # plotly.js, one script per figure, and the one fitting them to the screen
        assert html.count(f'<script src="{FIT_JS}"></script>') == 1
        assert html.count("<script") == 2 + len(page.figures)
        assert html.count("Plotly.newPlot(") == len(page.figures)
        assert [f"fig-{spec.key}" for spec in page.figures] == re.findall(r'<div id="(fig-[^"]+)" class="plotly-graph-div"', html)
        # Nothing fetched from the network: no http(s) URL is referenced as a source.
        assert not re.search(r'(src|href)="(https?:)?//', html)


@pytest.mark.parametrize("warehouse", ["small_warehouse", "large_warehouse", "empty_warehouse"])
def test_every_figure_a_page_draws_is_one_plotly_accepts(warehouse, request, tmp_path):
    # The pages write each figure's JSON as the figures build it, unvalidated: plotly's graph objects check every
    # property here, so a misspelt or misplaced one fails.
    render_site(request.getfixturevalue(warehouse), tmp_path, synced_at=SYNCED_AT, now=NOW)
    for page in PAGES:
        html = _html(tmp_path, page.filename)
        for spec in page.figures:
            fig = drawn(page_figure(html, spec.key))
            assert fig.layout.template.layout.font.family.startswith("system-ui"), (page.slug, spec.key)


def test_the_index_links_every_page_and_states_period_sync_and_making(small_site):
    out, _ = small_site
    index = _html(out, INDEX)
    for page in PAGES:
        assert f'href="{page.filename}"' in index
    assert "2026-08-01 to 2026-10-31 (92 days)" in index
    assert "2026-11-01 02:30 UTC" in index  # synced
    # made: by the real clock (the pages judge the data as of 2026-11-02 06:00 UTC)
    made = re.search(r"<dt>Pages made</dt><dd>(\d{4}-\d\d-\d\d \d\d:\d\d) UTC</dd>", index)
    assert made is not None
    assert timedelta(0) <= datetime.now(UTC) - datetime.strptime(made[1], "%Y-%m-%d %H:%M").replace(tzinfo=UTC) < timedelta(hours=1)
    assert "Days are UTC calendar days" in index


def test_hostile_names_never_reach_the_html_as_markup(small_site):
    out, _ = small_site
    for page in [INDEX, *(page.filename for page in PAGES)]:
        html = _html(out, page)
        for hostile in (HOSTILE_CONNECTION, HOSTILE_PROFILE, "<b>bold</b>", "<i>Co</i>", "alert(1)</script>"):
            assert hostile not in html, (page, hostile)
    finance = _html(out, "finance.html")
    # Entity-encoded for plotly's label parser; the JSON inside <script> escapes "/" too.
    assert r'"&lt;script&gt;alert(1)&lt;\u002fscript&gt;"' in finance


def test_the_reconciliation_page_tells_explained_differences_from_unexplained_ones(small_site, small_warehouse):
    out, _ = small_site
    html = _html(out, "reconciliation.html")
    with duckdb.connect(str(small_warehouse), read_only=True) as con:
        counts = dict(con.execute("select status, count(*) from rpt_reconciliation_daily group by all").fetchall())
        held = con.execute(
            "select sum(quarantined_records) from rpt_reconciliation_daily where status = 'explained_by_quarantine'"
        ).fetchone()[0]
    tiles = re.findall(r'<div class="tile-label">([^<]+)</div>\s*<div class="tile-value">([^<]+)</div>', html)
    assert tiles[1:4] == [
        ("Match", str(counts["match"])),
        ("Explained by quarantine", str(counts["explained_by_quarantine"])),
        ("Not explained", str(counts["mismatch"])),
    ]
    assert f"{held} quarantined malformed records account for the difference" in html
    statuses = re.findall(r'<td class="(flag|explained)">([a-z ]+)</td>', html)
    assert statuses == [("flag", "mismatch")] * counts["mismatch"] + [
        ("explained", "explained")
    ] * counts["explained_by_quarantine"]


def test_the_reconciliation_page_names_products_as_the_other_pages_do(small_site):
    out, _ = small_site
    # rpt_reconciliation_daily keeps the API's products (calls, messages); the page shows the pages' names.
    products = re.findall(r'<td class="">\d{4}-\d{2}-\d{2}</td>\s*<td class="">([^<]+)</td>', _html(out, "reconciliation.html"))
    assert set(products) == {"voice", "sms + mms"}
    statement = re.findall(r'<td class="(?:partial)?">\d{4}-\d{2}[^<]*</td>\s*<td class="">([^<]+)</td>', _html(out, "finance.html"))
    assert set(statement) == {"voice", "sms", "mms"}


def test_text_in_tiles_and_tables_is_escaped_by_the_template(warehouse_factory, tmp_path):
    warehouse = warehouse_factory()
    con = duckdb.connect(str(warehouse))
    con.execute("update rpt_finance_monthly_statement set currency = '<b>X</b>' where currency = 'EUR'")
    con.close()
    render_site(warehouse, tmp_path / "site", synced_at=SYNCED_AT, now=NOW)
    overview = _html(tmp_path / "site", "overview.html")
    finance = _html(tmp_path / "site", "finance.html")
    assert "<b>X</b>" not in overview + finance
    assert "Cost (&lt;b&gt;X&lt;/b&gt;)" in overview
    assert "<td class=\"\">&lt;b&gt;X&lt;/b&gt;</td>" in finance


def _early_and_late(warehouse_factory) -> Path:
    """A warehouse of two accounts: "early" holds the daily costs up to 13 September, "late" those from the 14th."""
    warehouse = warehouse_factory()
    con = duckdb.connect(str(warehouse))
    con.execute("alter table rpt_finance_daily_cost add column account varchar")
    con.execute("update rpt_finance_daily_cost set account = if(report_date >= date '2026-09-14', 'late', 'early')")
    con.close()
    return warehouse


def test_each_accounts_pages_state_the_period_of_its_own_data(warehouse_factory, tmp_path):
    # Account "late" holds records from 14 September only; the warehouse's period spans both accounts.
    warehouse = _early_and_late(warehouse_factory)
    con = duckdb.connect(str(warehouse))
    con.execute("update rpt_alerts set account = 'early'")
    con.close()
    site = tmp_path / "site"
    render_site(warehouse, site, synced_at=SYNCED_AT, now=NOW)
    # the index says whose calls and messages its pages show
    assert "Calls and messages of every Opentact account:" in _html(site, INDEX)
    assert "Calls and messages of the Opentact account late:" in _html(site / "accounts" / "late", INDEX)
    for name in (INDEX, "overview.html", "finance.html"):
        assert "2026-08-01 to 2026-10-31 (92 days)" in _html(site, name)
        late = _html(site / "accounts" / "late", name)
        assert "2026-09-14 to 2026-10-31 (48 days)" in late and "2026-08-01" not in late
        assert "2026-08-01 to 2026-09-13 (44 days)" in _html(site / "accounts" / "early", name)


def _switcher(html: str) -> str:
    """A page -> its header's account switcher (empty when it has none)."""
    header = html[html.index('<header class="site-header">'):html.index("</header>")]
    starts = [header.find(tag) for tag in ('<details class="accounts"', '<nav class="accounts"') if tag in header]
    return header[min(starts):] if starts else ""


def test_the_switcher_of_many_accounts_is_a_menu_naming_the_account_shown(warehouse_factory, tmp_path):
    # A reseller's 150 account links filled a third of the screen above every page.
    warehouse = warehouse_factory()
    con = duckdb.connect(str(warehouse))
    con.execute("alter table rpt_finance_daily_cost add column account varchar")
    con.execute("update rpt_finance_daily_cost set account = printf('c%02d', dayofyear(report_date) % 11)")
    con.close()
    site = tmp_path / "site"
    render_site(warehouse, site, synced_at=SYNCED_AT, now=NOW)
    names = [*(f"c{n:02d}" for n in range(11)), "default"]  # the other reports' rows: the account default
    top, own = _switcher(_html(site, "finance.html")), _switcher(_html(site / "accounts" / "c03", "finance.html"))
    assert '<details class="accounts">\n    <summary>All accounts · 12 accounts</summary>' in top
    assert "<summary>c03 · 12 accounts</summary>" in own
    # the menu still leads to every account's same page, and back to all accounts'
    assert re.findall(r'href="([^"]+)"', top) == ["finance.html", *(f"accounts/{name}/finance.html" for name in names)]
    assert re.findall(r'href="([^"]+)"', own) == [
        "../../finance.html", *(f"../../accounts/{name}/finance.html" for name in names)
    ]
    assert own.count('aria-current="true"') == 1 and 'aria-current="true">c03</a>' in own

    # ten accounts (and fewer) keep their links in the header, as they were
    con = duckdb.connect(str(warehouse))
    con.execute("update rpt_finance_daily_cost set account = printf('c%02d', dayofyear(report_date) % 9)")
    con.close()
    render_site(warehouse, site, synced_at=SYNCED_AT, now=NOW)
    few = _switcher(_html(site, "finance.html"))
    assert "<details" not in few and "<summary" not in few and few.count("<a href=") == 11


def test_each_switcher_link_is_rendered_once_per_page_and_folder_depth_not_once_per_page_shown(monkeypatch):
    # A reseller's hundreds of accounts: every page of every account rendering every account's link anew grew
    # with the square of the accounts.
    names = [f"a{n:02d}" for n in range(30)]
    environment = _environment()
    rendered = []
    link = environment.get_template("switcher.html").module.account_link
    monkeypatch.setattr(
        environment.get_template("switcher.html").module, "account_link",
        lambda *args: rendered.append(args) or link(*args),
    )
    switchers = Switchers(environment, names)
    shown = {
        (account, here): switchers.of(account, "" if account is None else "../../", here)
        for account in (None, *names) for here in (INDEX, "finance.html")
    }
    # each folder depth's links to each page, plain and marked: not once for each of the 31 page sets
    assert len(rendered) == 2 * 2 * 2 * (len(names) + 1)
    own = shown[("a03", "finance.html")]
    assert (own.shown, own.count) == ("a03", 30)
    assert re.findall(r'href="([^"]+)"', own.links) == [
        "../../finance.html", *(f"../../accounts/{name}/finance.html" for name in names)
    ]
    assert re.findall(r'aria-current="true">([^<]+)<', own.links) == ["a03"]


def test_the_all_accounts_rankings_of_connections_and_profiles_name_each_ones_account(warehouse_factory, tmp_path):
    # Two accounts' trunks of one name read as 'Main Trunk' and 'Main Trunk #2' (and of one id, as one bar):
    # whose was whose went unsaid.
    warehouse = warehouse_factory()
    con = duckdb.connect(str(warehouse))
    for table in ("rpt_finance_cost_by_connection", "rpt_finance_cost_by_messaging_profile"):
        con.execute(f"alter table {table} add column account varchar")
        con.execute(f"update {table} set account = 'acme'")
        con.execute(f"insert into {table} by name select * replace ('globex' as account) from {table}")
    con.close()
    site = tmp_path / "site"
    render_site(warehouse, site, synced_at=SYNCED_AT, now=NOW)
    labels = {
        where: set(re.findall(r'"y":\[([^\]]*)\]', _html(site / where, "finance.html")))
        for where in ("", "accounts/acme", "accounts/globex")
    }
    shown = {where: " ".join(found) for where, found in labels.items()}
    for name in ("Trunk 1", "Profile 1"):
        assert f'"acme: {name}"' in shown[""] and f'"globex: {name}"' in shown[""], shown[""]
        assert f'"{name} #2"' not in shown[""]
        for account in ("acme", "globex"):
            assert f'"{name}"' in shown[f"accounts/{account}"] and ": " + name not in shown[f"accounts/{account}"]


def test_the_all_accounts_index_counts_the_figures_its_pages_draw(warehouse_factory, tmp_path):
    # it said "6 figures" of the Finance page, whose cost by country is drawn on each account's page only
    warehouse = _early_and_late(warehouse_factory)
    site = tmp_path / "site"
    render_site(warehouse, site, synced_at=SYNCED_AT, now=NOW)
    counts = {
        where: dict(re.findall(r'<h2>([^<]*)</h2>\s*<p>[^<]*</p>\s*<span class="count">(\d+) figures?</span>',
                               _html(site / where, INDEX)))
        for where in ("", "accounts/late")
    }
    drawn = {
        where: {page.title: str(_html(site / where, page.filename).count('class="plotly-graph-div"'))
                for page in PAGES}
        for where in ("", "accounts/late")
    }
    assert counts == drawn
    assert counts[""]["Finance"] == "5" and counts["accounts/late"]["Finance"] == "6"


def test_pages_stay_under_one_megabyte_whatever_the_volume(large_warehouse, tmp_path):
    written = render_site(large_warehouse, tmp_path, synced_at=SYNCED_AT, now=NOW)
    sizes = {path.name: path.stat().st_size for path in written if path.suffix == ".html"}
    assert len(sizes) == len(PAGES) + 1
    assert max(sizes.values()) < MAX_PAGE_BYTES, sizes
    finance = _html(tmp_path, "finance.html")
    assert "Other (4,988)" in finance  # 5000 connections: the top 12 and one folded bar
    assert "latest 12 of 36 months" in finance
    assert "per week" in _html(tmp_path, "overview.html")  # three years of days become weeks


def test_pages_stay_under_one_megabyte_with_many_currencies(warehouse_factory, tmp_path):
    warehouse = warehouse_factory(LARGE)
    con = duckdb.connect(str(warehouse))
    for table in ("rpt_finance_monthly_statement", "rpt_finance_daily_cost", "rpt_finance_month_over_month",
                  "rpt_reconciliation_daily"):
        con.execute(f"insert into {table} by name select {table}.* replace ('X' || lpad(n::varchar, 2, '0') as currency)"
                    f" from {table}, range(40) t(n) where currency = 'USD'")
    con.close()
    written = render_site(warehouse, tmp_path / "site", synced_at=SYNCED_AT, now=NOW)
    sizes = {path.name: path.stat().st_size for path in written if path.suffix == ".html"}
    assert max(sizes.values()) < MAX_PAGE_BYTES, sizes
    assert "4 largest of 42 currencies" in _html(tmp_path / "site", "overview.html")


def _axis_titles(html: str, figure: str) -> list[str]:
    """The x axis titles of one figure of a page."""
    layout = page_figure(html, figure)["layout"]
    return [
        axis["title"]["text"] for name, axis in layout.items()
        if re.fullmatch(r"xaxis\d*", name) and "text" in axis.get("title", {})
    ]


def test_every_time_axis_names_its_zone(warehouse_factory, tmp_path):
    warehouse = warehouse_factory()
    con = duckdb.connect(str(warehouse))
    con.execute("update rpt_build_info set report_timezone = 'Europe/Berlin'")
    con.close()
    render_site(warehouse, tmp_path, synced_at=SYNCED_AT, now=NOW)
    berlin = "(Europe/Berlin)"
    expected = {
        ("overview.html", "daily-volume"): [f"Day {berlin}"],
        # a panel per currency: the bottom one's axis
        ("overview.html", "daily-cost"): [f"Day {berlin}"],
        ("finance.html", "month-over-month"): [f"Month {berlin}"],
        ("voice-quality.html", "call-quality-daily"): [f"Day {berlin}"],
        ("voice-quality.html", "calls-heatmap"): [f"Hour of day {berlin}"],
        ("voice-quality.html", "peak-concurrency"): [f"Day {berlin}"],
        # the API's usage is dated in UTC days, alerts' windows in UTC, whatever the report time zone
        ("reconciliation.html", "reconciliation-differences"): ["Day (UTC)"],
        ("alerts.html", "alerts-timeline"): ["Window start (UTC)"],
    }
    found = {key: _axis_titles(_html(tmp_path, key[0]), key[1]) for key in expected}
    assert found == expected


def test_an_empty_warehouse_renders_pages_that_say_so(empty_warehouse, tmp_path):
    render_site(empty_warehouse, tmp_path, synced_at=None, now=NOW)
    overview = _html(tmp_path, "overview.html")
    assert overview.count("No data for this period") >= 2
    assert "Data synced: never" in overview
    assert "Period: no data yet" in _html(tmp_path, INDEX)
    assert "No data for this period" in _html(tmp_path, "reconciliation.html")


def test_a_missing_warehouse_asks_for_a_build(tmp_path):
    with pytest.raises(CdrError, match=r"^no warehouse at .*warehouse.duckdb: run `cdr build` first$"):
        render_site(tmp_path / "warehouse.duckdb", tmp_path / "site", synced_at=None, now=NOW)
    assert not (tmp_path / "site").exists()


def test_missing_tables_and_columns_are_all_named_before_anything_is_written(warehouse_factory, tmp_path):
    warehouse = warehouse_factory()
    con = duckdb.connect(str(warehouse))
    con.execute("drop table rpt_message_parts")
    con.execute("alter table rpt_finance_daily_cost drop column cost")
    con.close()
    with pytest.raises(DashboardError) as raised:
        render_site(warehouse, tmp_path / "site", synced_at=None, now=NOW)
    message = str(raised.value)
    assert "\n" not in message and message.endswith("run `cdr build`")
    assert "table rpt_message_parts" in message and "column rpt_finance_daily_cost.cost" in message
    assert not (tmp_path / "site").exists()


def test_dashboards_read_only_report_tables(small_warehouse, tmp_path):
    with connect_read_only(small_warehouse, scratch=tmp_path) as con:
        with pytest.raises(ValueError, match="only rpt_"):
            read_report(con, "fct_calls_daily", {"day": "report_date"}, scratch=tmp_path)
        frame = read_report(con, "rpt_finance_daily_cost", {"day": "report_date", "cost": "cost"}, scratch=tmp_path)
    assert str(frame.schema["cost"]) == "Decimal(precision=38, scale=9)"  # exact money, not a float
    assert str(frame.schema["day"]) == "Date"


def test_every_source_is_a_report_table():
    assert all(source.table.startswith("rpt_") for source in all_sources())


def test_the_real_models_feed_every_page(tmp_path):
    """The page specs match queries/reports: a real build over an empty lake renders every page."""
    from pipelines.models import build

    report = build(tmp_path)
    written = render_site(report.warehouse, tmp_path / "site", synced_at=None, now=NOW)
    assert len([path for path in written if path.suffix == ".html"]) == len(PAGES) + 1
    assert "No data for this period" in _html(tmp_path / "site", "voice-quality.html")
    # rpt_alerts as the models build it has every column the Alerts page reads.
    alerts = _html(tmp_path / "site", "alerts.html")
    assert "run `cdr build`" not in alerts and "No alert fired in this period" in alerts


def test_a_rerender_replaces_the_pages_in_place(small_warehouse, tmp_path):
    render_site(small_warehouse, tmp_path, synced_at=None, now=NOW)
    render_site(small_warehouse, tmp_path, synced_at=SYNCED_AT, now=NOW)
    assert "Data synced: 2026-11-01 02:30 UTC" in _html(tmp_path, INDEX)
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
