"""The Alerts page and the alert markers on the trends: open alerts, the timeline, the list, an older warehouse."""

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import polars as pl
import pytest

from dashboards import figures, tables, theme
from dashboards.figures import MAX_HOVER_ALERTS, MAX_TIMELINE_ALERTS, NO_ALERTS
from dashboards.pages import PAGES
from dashboards.render import render_site
from dashboards.tables import MAX_TABLE_ROWS
from pipelines.alerts import ALERT_COLUMNS, OPEN_MEANING
from tests.dashboards.dashboard_fixtures import HOSTILE_CONNECTION, NOW, SYNCED_AT, drawn
from tests.fixtures.alerts import alert

HOSTILE_ENCODED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SCHEMA = {
    name: pl.Datetime("us", "UTC") if name.startswith("window_") else
    pl.Float64 if name in ("observed", "baseline", "threshold") else pl.String
    for name in ALERT_COLUMNS
}
D1 = datetime(2026, 10, 1, tzinfo=UTC)


def day(n: int) -> datetime:
    return D1 + timedelta(days=n - 1)


def _frame(alerts) -> pl.DataFrame:
    return pl.DataFrame([a.row() for a in alerts], schema=SCHEMA, orient="row")


def _texts(table):
    return [[cell.text for cell in row] for row in table.rows]


# --- The open alerts, the list and the tiles ---------------------------------------------


def test_open_alerts_come_worst_first_with_since_when_and_the_definition_stated():
    frame = _frame([
        alert("fr7", day(7), rule="asr_drop", country_code="FR"),  # cleared: before the last two days
        alert("us8", day(8)), alert("us9", day(9)), alert("us10", day(10), severity="critical",
                                                             message="cost is 5x its usual"),
        alert("gb10", day(10), hours=1, rule="short_call_burst", country_code="GB", message=HOSTILE_CONNECTION),
    ])

    table = tables.open_alerts(frame, day(9))

    assert _texts(table) == [
        ["critical", "cost_spike", "voice outbound, country US, USD", "2026-10-08 00:00 UTC",
         "2026-10-10 00:00 UTC, 24 h", "3", "cost is 5x its usual"],
        ["warning", "short_call_burst", "voice outbound, country GB, USD", "2026-10-10 00:00 UTC",
         "2026-10-10 00:00 UTC, 1 h", "1", HOSTILE_CONNECTION],
    ]
    assert [row[0].css for row in table.rows] == ["severity sev-critical", "severity sev-warning"]
    assert table.note.startswith(OPEN_MEANING)


def test_no_open_alert_says_from_when_and_no_data_says_nothing_is_open():
    frame = _frame([alert("us1", day(1))])
    assert tables.open_alerts(frame, day(9)).empty_message == (
        "No open alerts: no rule fired in the last 2 days of data (from 2026-10-09 00:00 UTC)."
    )
    assert tables.open_alerts(frame, None).rows == ()
    assert [(t.label, t.value, t.detail) for t in tables.alert_tiles(frame, day(9))] == [
        ("Open alerts", "0", "no rule fired in the last 2 days of data"),
        ("Alerts recorded", "1", "by 1 rule, 2026-10-01 to 2026-10-01 (UTC)"),
    ]


def test_the_tiles_count_open_conditions_by_severity():
    frame = _frame([
        alert("a", day(9)), alert("b", day(10)), alert("c", day(10), country_code="GB", severity="critical"),
        alert("d", day(2), rule="asr_drop"),
    ])
    open_tile, recorded = tables.alert_tiles(frame, day(9))
    assert (open_tile.value, open_tile.detail, open_tile.css) == ("2", "1 critical, 1 warning", "bad")
    assert (recorded.value, recorded.detail) == ("4", "by 2 rules, 2026-10-02 to 2026-10-10 (UTC)")


def test_the_list_shows_the_newest_alerts_and_says_how_to_get_every_one():
    frame = _frame([alert(f"k{n:04d}", D1 + timedelta(hours=n), hours=1) for n in range(MAX_TABLE_ROWS + 5)])

    table = tables.alert_list(frame)

    assert len(table.rows) == MAX_TABLE_ROWS
    assert table.rows[0][0].text == "2026-10-09 12:00 UTC, 1 h"  # hour 204, the newest
    assert table.rows[-1][0].text == "2026-10-01 05:00 UTC, 1 h"
    assert table.note.endswith(
        f"Showing the newest {MAX_TABLE_ROWS} of {MAX_TABLE_ROWS + 5} alerts; "
        "`cdr alerts --start 2026-09-30 --end 2026-10-10 --format csv` lists every one."
    )
    assert [cell.text for cell in table.rows[0][4:7]] == ["250.00", "100.00", "200.00"]


def test_a_scope_names_every_scope_column_set_and_an_alert_on_every_message_says_sms_and_mms():
    hostile = replace(alert("x", day(1), country_code=None), connection_id="c1", connection_name=HOSTILE_CONNECTION,
                      carrier="AT&T")
    assert tables.alert_scope(hostile) == f"voice outbound, connection {HOSTILE_CONNECTION}, carrier AT&T, USD"
    # as the rules set them (queries/alerts/): a null product is every message, never the whole account
    bare = replace(alert("y", day(1), country_code=None), direction=None, currency=None)
    stale_calls, stale_messages = replace(bare, rule="sync_stale"), replace(bare, rule="sync_stale", product=None)
    gap = replace(bare, rule="reconciliation_gap", product=None, currency="EUR")
    failures = replace(alert("z", day(1), country_code=None), rule="message_failure_spike", product=None,
                       carrier="Acme Mobile", currency=None)
    assert [tables.alert_scope(a) for a in (stale_calls, stale_messages, gap, failures)] == [
        "voice", "sms + mms", "sms + mms, EUR", "sms + mms outbound, carrier Acme Mobile",
    ]
    assert tables.alert_scope(replace(stale_messages, account="acme"), name_account=True) == "account acme: sms + mms"


# --- The timeline ------------------------------------------------------------------------


def test_the_timeline_draws_a_point_per_rule_and_window_coloured_by_its_worst_alert():
    frame = _frame([
        alert("a", day(1), country_code="GB", severity="critical", message=HOSTILE_CONNECTION),
        alert("b", day(1), country_code="FR"),
        alert("c", day(2), rule="asr_drop", severity="info"),
    ])

    fig = drawn(figures.alerts_timeline(frame))

    assert [(t.name, list(t.x), list(t.y), t.marker.color) for t in fig.data] == [
        ("critical", ["2026-10-01 00:00"], ["cost_spike"], theme.SEVERITY_COLORS["critical"]),
        ("info", ["2026-10-02 00:00"], ["asr_drop"], theme.SEVERITY_COLORS["info"]),
    ]
    hover = fig.data[0].customdata[0]
    assert hover.startswith("<b>2026-10-01 00:00 UTC</b>: 2 alerts<br><b>critical</b> cost_spike: " + HOSTILE_ENCODED)
    assert "<b>warning</b> cost_spike: cost_spike b: voice cost to FR" in hover
    assert HOSTILE_CONNECTION not in hover


def test_over_several_accounts_the_timeline_and_trend_hovers_name_each_alerts_account():
    same = alert("a", day(1), severity="critical", message="Voice cost on 2026-10-01 was 3x its usual.")
    frame = _frame([replace(same, account="acme"), replace(same, alert_key="b", account="globex")])

    timeline = drawn(figures.alerts_timeline(frame)).data[0].customdata[0]
    trend = drawn(figures.daily_volume(_volume(3), figures.alert_marks(frame, ("cost_spike",), "UTC")))
    marks = trend.data[-1].customdata[0]
    alone = drawn(figures.alerts_timeline(_frame([replace(same, account="acme")]))).data[0].customdata[0]

    for hover in (timeline, marks):
        assert "<b>critical</b> acme: cost_spike: Voice cost" in hover
        assert "<b>critical</b> globex: cost_spike: Voice cost" in hover
    assert "<b>critical</b> cost_spike: Voice cost" in alone  # one account's page: its own name would be noise


def test_the_timeline_keeps_the_latest_alerts_and_says_how_many_there_are():
    count = MAX_TIMELINE_ALERTS + 7
    frame = _frame([alert(f"k{n:04d}", D1 + timedelta(hours=n), hours=1) for n in range(count)])
    fig = drawn(figures.alerts_timeline(frame))
    (points,) = fig.data
    assert len(points.x) == MAX_TIMELINE_ALERTS and points.x[0] == "2026-10-01 07:00"
    assert fig.layout.title.text.endswith(f": the latest {MAX_TIMELINE_ALERTS} of {count} alerts")


def test_no_alert_draws_a_timeline_that_says_so():
    fig = drawn(figures.alerts_timeline(_frame([])))
    assert not fig.data and [a.text for a in fig.layout.annotations] == [NO_ALERTS]


# --- Markers on the trends ---------------------------------------------------------------

VOLUME = {"day": pl.Date, "product": pl.String, "records": pl.Int64}


def _volume(days: int, first: date = date(2026, 10, 1)) -> pl.DataFrame:
    return pl.DataFrame([(first + timedelta(days=i), "voice", 5) for i in range(days)], schema=VOLUME, orient="row")


def test_alert_marks_keep_the_trends_rules_on_the_report_day_their_window_starts():
    frame = _frame([
        alert("late", datetime(2026, 10, 30, 23, tzinfo=UTC), hours=1),  # 00:00 on the 31st in Berlin (winter time)
        alert("other", day(3), rule="asr_drop"),
    ])
    marks = figures.alert_marks(frame, ("cost_spike",), "Europe/Berlin")
    assert marks.select("day", "rule").rows() == [(date(2026, 10, 31), "cost_spike")]
    assert figures.alert_marks(None, ("cost_spike",), "UTC") is None


def test_a_trend_marks_each_day_alerts_fired_with_the_worst_colour_and_their_messages():
    alerts = [
        alert("a", day(3), message=HOSTILE_CONNECTION), alert("b", day(3), country_code="GB", severity="critical"),
        alert("c", day(5)), alert("outside", day(40)),
    ]
    marks = figures.alert_marks(_frame(alerts), ("cost_spike",), "UTC")

    fig = drawn(figures.daily_volume(_volume(10), marks))

    *bars, marked = fig.data
    assert [t.name for t in bars] == ["voice"] and marked.name == "Alerts"
    assert list(marked.x) == ["2026-10-03", "2026-10-05"]
    assert list(marked.marker.color) == [theme.SEVERITY_COLORS["critical"], theme.SEVERITY_COLORS["warning"]]
    assert marked.yaxis == "y2" and fig.layout.yaxis2.overlaying == "y" and not fig.layout.yaxis2.visible
    assert marked.customdata[0].startswith("<b>2026-10-03</b>: 2 alerts<br><b>critical</b> cost_spike")
    assert HOSTILE_ENCODED in marked.customdata[0] and HOSTILE_CONNECTION not in marked.customdata[0]
    assert [(shape.x0, shape.yref) for shape in fig.layout.shapes] == [("2026-10-03", "paper"), ("2026-10-05", "paper")]


def test_a_trend_per_currency_marks_an_alert_on_its_currencys_panel_and_one_in_no_currency_on_every_panel():
    alerts = [
        replace(alert("eur", day(2), severity="critical"), currency="EUR"),
        alert("usd", day(4)),
        replace(alert("any", day(6), rule="message_volume_spike"), product=None, currency=None),
    ]
    marks = figures.alert_marks(_frame(alerts), ("cost_spike", "message_volume_spike"), "UTC")
    cost = pl.DataFrame(
        [(date(2026, 10, 1) + timedelta(days=i), "voice", currency, Decimal(amount))
         for i in range(10) for currency, amount in (("USD", 5), ("EUR", 1))],
        schema={"day": pl.Date, "product": pl.String, "currency": pl.String, "cost": pl.Decimal(38, 9)}, orient="row",
    )

    fig = drawn(figures.daily_cost(cost, marks))

    # USD, the larger, is the first panel (axes x, y), EUR the second (x2, y2); each panel's marks on an axis of its own
    marked = [t for t in fig.data if t.name == "Alerts"]
    assert [(t.xaxis, t.yaxis, list(t.x)) for t in marked] == [
        ("x", "y3", ["2026-10-04", "2026-10-06"]), ("x2", "y4", ["2026-10-02", "2026-10-06"]),
    ]
    assert (fig.layout.yaxis3.overlaying, fig.layout.yaxis4.overlaying) == ("y", "y2")
    assert [t.showlegend for t in marked] == [True, False]
    assert "eur" not in marked[0].customdata[0] and "usd" not in marked[1].customdata[0]
    assert all("message_volume_spike" in t.customdata[1] for t in marked)
    # the dotted lines run down their own panel only
    assert [(shape.x0, shape.xref, shape.yref) for shape in fig.layout.shapes] == [
        ("2026-10-04", "x", "y domain"), ("2026-10-06", "x", "y domain"),
        ("2026-10-02", "x2", "y2 domain"), ("2026-10-06", "x2", "y2 domain"),
    ]


def test_a_long_trend_marks_weeks_and_a_crowded_one_lists_the_first_messages_then_a_count():
    alerts = [alert(f"k{n}", day(1), country_code=f"C{n}") for n in range(MAX_HOVER_ALERTS + 3)]
    marks = figures.alert_marks(_frame(alerts), ("cost_spike",), "UTC")

    fig = drawn(figures.daily_cost(
        pl.DataFrame([(date(2025, 1, 1) + timedelta(days=i), "voice", "USD", Decimal(1)) for i in range(700)],
                     schema={"day": pl.Date, "product": pl.String, "currency": pl.String, "cost": pl.Decimal(38, 9)},
                     orient="row"),
        marks,
    ))

    marked = fig.data[-1]
    assert list(marked.x) == ["2026-09-28"]  # the Monday of 2026-10-01's week
    assert marked.customdata[0].startswith(f"<b>2026-09-28 (week)</b>: {MAX_HOVER_ALERTS + 3} alerts")
    assert marked.customdata[0].count("cost_spike:") == MAX_HOVER_ALERTS
    assert marked.customdata[0].endswith("… and 3 more on the Alerts page")


def test_a_trend_without_alerts_or_without_rpt_alerts_has_no_marks():
    for marks in (None, figures.alert_marks(_frame([]), ("cost_spike",), "UTC")):
        fig = drawn(figures.call_quality_daily(
            pl.DataFrame([(date(2026, 10, 1), 10, 5, 0.5, 0.9, 0.1, 60.0)], orient="row",
                         schema={"day": pl.Date, "calls": pl.Int64, "answered_calls": pl.Int64, "asr": pl.Float64,
                                 "ner": pl.Float64, "short_call_share": pl.Float64, "acd_secs": pl.Float64}),
            marks,
        ))
        assert "Alerts" not in [t.name for t in fig.data] and not fig.layout.shapes


# --- The pages ---------------------------------------------------------------------------


def _plot_names(html: str, figure: str) -> list[str]:
    """The trace names of one figure of a page."""
    script = html.split(f'id="fig-{figure}"', 1)[1].split("</script>", 1)[0]
    return re.findall(r'"name":"([^"]*)"', script)


def test_the_alerts_page_lists_open_alerts_then_the_timeline_then_every_alert(small_warehouse, tmp_path):
    render_site(small_warehouse, tmp_path, synced_at=SYNCED_AT, now=NOW)
    html = (tmp_path / "alerts.html").read_text("utf-8")

    assert html.index('id="open-alerts"') < html.index('id="alerts-timeline"') < html.index('id="all-alerts"')
    opened = html.split('id="open-alerts"', 1)[1].split("</section>", 1)[0]
    assert re.findall(r'<td class="">([a-z_]+)</td>', opened) == ["cost_spike", "asr_drop"]
    assert "2026-10-30 00:00 UTC" in opened  # the cost spike is on since the day before the last
    assert "fell to 20.0 %" in opened and HOSTILE_CONNECTION not in html
    assert OPEN_MEANING.split(" (")[0] in opened
    everything = html.split('id="all-alerts"', 1)[1]
    assert everything.count('<td class="message">') == 8
    # The trends mark the days their rules fired.
    overview = (tmp_path / "overview.html").read_text("utf-8")
    quality = (tmp_path / "voice-quality.html").read_text("utf-8")
    assert _plot_names(overview, "daily-cost")[-1] == "Alerts" and _plot_names(overview, "daily-volume")[-1] == "Alerts"
    assert _plot_names(quality, "call-quality-daily")[-1] == "Alerts"


def test_a_warehouse_built_before_alerts_renders_every_page_and_asks_for_a_build(warehouse_factory, tmp_path):
    warehouse = warehouse_factory()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table rpt_alerts")

    written = render_site(warehouse, tmp_path / "site", synced_at=SYNCED_AT, now=NOW)

    assert len([path for path in written if path.suffix == ".html"]) == len(PAGES) + 1
    html = (tmp_path / "site" / "alerts.html").read_text("utf-8")
    assert html.count("run `cdr build`, then `cdr dashboards`") == 1
    assert "Plotly.newPlot(" not in html and "<table>" not in html
    overview = (tmp_path / "site" / "overview.html").read_text("utf-8")
    assert "Alerts" not in _plot_names(overview, "daily-cost")


def test_an_rpt_alerts_lacking_a_column_counts_as_missing_too(warehouse_factory, tmp_path):
    warehouse = warehouse_factory()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("alter table rpt_alerts drop column message")
    render_site(warehouse, tmp_path / "site", synced_at=SYNCED_AT, now=NOW)
    assert "no rpt_alerts table, or an older one" in (tmp_path / "site" / "alerts.html").read_text("utf-8")


@pytest.mark.parametrize(("zone", "opened"), [("UTC", "2"), ("Pacific/Kiritimati", "3")])
def test_open_alerts_count_the_last_two_report_days_in_the_reports_time_zone(warehouse_factory, tmp_path, zone, opened):
    warehouse = warehouse_factory()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update rpt_build_info set report_timezone = ?", [zone])
        # A UTC day ending at midnight UTC of 2026-10-30: before UTC's open days, inside Kiritimati's (UTC+14),
        # whose 2026-10-30 begins at 10:00 UTC the day before.
        con.execute(
            "insert into rpt_alerts select * replace ('late' as alert_key, timestamptz '2026-10-29 00:00:00+00' "
            "as window_start, timestamptz '2026-10-30 00:00:00+00' as window_end) "
            "from rpt_alerts where rule = 'message_volume_spike'"
        )
    render_site(warehouse, tmp_path / "site", synced_at=SYNCED_AT, now=NOW)
    html = (tmp_path / "site" / "alerts.html").read_text("utf-8")
    tile = re.search(r'Open alerts</div>\s*<div class="tile-value">(\d+)</div>', html)
    assert tile and tile.group(1) == opened
