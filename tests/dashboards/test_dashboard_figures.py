from datetime import date, timedelta
from decimal import Decimal

import plotly.graph_objects as go
import polars as pl
import pytest

from dashboards import figures, theme
from dashboards.figures import NO_DATA, TOP_N
from dashboards.render import partial_months
from tests.dashboards.dashboard_fixtures import drawn

MONEY = pl.Decimal(38, 9)


def _frame(rows: list[tuple], schema: dict) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row")


def _no_data(fig: go.Figure) -> bool:
    return not fig.data and [a.text for a in fig.layout.annotations] == [NO_DATA]


def _bars(fig: go.Figure) -> list[go.Bar]:
    """A figure's bar traces (a ranking also writes its names as text)."""
    return [trace for trace in fig.data if trace.type == "bar"]


def _title(fig: go.Figure) -> str:
    return fig.layout.title.text


COST_SCHEMA = {"key": pl.String, "connection_name": pl.String, "currency": pl.String, "cost": MONEY}


def _connections(count: int, currency: str = "USD") -> pl.DataFrame:
    rows = [(f"id-{i}", f"Trunk {i:02d}", currency, Decimal(count - i) + Decimal("0.000001")) for i in range(count)]
    return _frame(rows, {"connection_id": pl.String, "connection_name": pl.String, "currency": pl.String, "cost": MONEY})


def test_a_ranking_keeps_the_top_n_and_folds_the_rest_into_one_exact_bar():
    fig = drawn(figures.cost_by_connection(_connections(TOP_N + 8)))
    (bars,) = _bars(fig)
    assert list(bars.y[:TOP_N]) == [f"Trunk {i:02d}" for i in range(TOP_N)]
    assert bars.y[-1] == "Other (8)"
    # The folded bar's hover shows the exact sum of the 8 smallest: 8+7+…+1 and 8 millionths.
    assert bars.customdata[-1][1] == "36.00 USD"
    assert bars.x[-1] == pytest.approx(36.000008)
    assert len(bars.y) == TOP_N + 1


def test_a_ranking_with_one_row_more_than_n_shows_it_rather_than_an_other_of_one():
    (bars,) = _bars(drawn(figures.cost_by_connection(_connections(TOP_N + 1))))
    assert len(bars.y) == TOP_N + 1 and "Other" not in bars.y[-1]


def test_a_ranking_sums_a_name_over_months_and_draws_one_panel_per_currency():
    frame = pl.concat([_connections(3), _connections(3), _connections(2, "EUR")])
    fig = drawn(figures.cost_by_connection(frame))
    usd, eur = _bars(fig)
    assert list(usd.y) == ["Trunk 00", "Trunk 01", "Trunk 02"]
    assert [row[1] for row in usd.customdata] == ["6.00 USD", "4.00 USD", "2.00 USD"]
    assert [row[1] for row in eur.customdata] == ["2.00 EUR", "1.00 EUR"]
    assert [a.text for a in fig.layout.annotations] == ["USD", "EUR"]
    assert fig.layout.xaxis.title.text == "Cost (USD)" and fig.layout.xaxis2.title.text == "Cost (EUR)"


def test_names_from_the_data_are_encoded_for_plotly_and_kept_apart_when_equal():
    frame = _frame(
        [("a", "<script>alert(1)</script>", "USD", Decimal(3)), ("b", "Same", "USD", Decimal(2)),
         ("c", "Same", "USD", Decimal(1)), ("d", None, "USD", Decimal("0.5"))],
        {"connection_id": pl.String, "connection_name": pl.String, "currency": pl.String, "cost": MONEY},
    )
    (bars,) = _bars(drawn(figures.cost_by_connection(frame)))
    assert list(bars.y) == ["&lt;script&gt;alert(1)&lt;/script&gt;", "Same", "Same #2", "(unknown connection)"]
    assert bars.customdata[0][0] == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_over_several_accounts_a_ranking_names_each_connections_account():
    schema = {"account": pl.String, "connection_id": pl.String, "connection_name": pl.String, "currency": pl.String,
              "cost": MONEY}
    rows = [("acme", "id-1", "Main Trunk", "USD", Decimal(3)), ("globex", "id-2", "Main Trunk", "USD", Decimal(2)),
            ("globex", "id-1", "Main Trunk", "USD", Decimal(1))]
    (both,) = _bars(drawn(figures.cost_by_connection(_frame(rows, schema))))
    # each account's own, whatever their ids and names: never 'Main Trunk #2', never two accounts as one bar
    assert list(both.y) == ["acme: Main Trunk", "globex: Main Trunk", "globex: Main Trunk #2"]
    (alone,) = _bars(drawn(figures.cost_by_connection(_frame(rows[:1], schema))))
    assert list(alone.y) == ["Main Trunk"]  # one account's page: its own name would be noise


COUNTRY_SCHEMA = {"month": pl.String, "currency": pl.String, "country_rank": pl.Int64, "country_label": pl.String,
                  "records": pl.Int64, "calls": pl.Int64, "billed_duration_secs": pl.Int64, "cost": MONEY}


def _country_report(month: str, currency: str, costs: dict[str, Decimal]) -> list[tuple]:
    """One month of rpt_finance_cost_by_country as the report ranks it: top 10, then the rest."""
    ranked = sorted(costs.items(), key=lambda item: (-item[1], item[0]))
    rows = [
        (month, currency, rank, code, rank + 2, rank, 60 * rank, cost) for rank, (code, cost) in enumerate(ranked[:10], 1)
    ]
    rest = ranked[10:]
    if rest:
        rows.append((month, currency, 11, f"Other ({len(rest)} countries)", 3, 1, 30, sum(c for _, c in rest)))
    return rows


def test_cost_by_country_draws_each_month_as_ranked_never_adding_months_up():
    codes = [f"C{i:02d}" for i in range(12)]
    # October ranks C00 first, September the other way round: their top 10s and rests differ.
    october = {code: Decimal(100 - i) + Decimal("0.000001") for i, code in enumerate(codes)}
    september = {code: Decimal(i + 1) for i, code in enumerate(codes)}
    frame = _frame(_country_report("2026-10", "USD", october) + _country_report("2026-09", "USD", september),
                   COUNTRY_SCHEMA)
    fig = drawn(figures.cost_by_country(frame))
    (bars,) = _bars(fig)
    assert _title(fig) == "Cost by country, 2026-10: top 10 and the rest (USD)"
    assert list(bars.y) == codes[:10] + ["Other (2 countries)"]
    # October's rest only: C10 and C11 (90 + 89 and two millionths), not September's too
    assert bars.customdata[-1][1] == "179.00 USD" and bars.customdata[0][1] == "100.00 USD"
    assert bars.customdata[0][2] == "Calls: 1, billed minutes: 1.00, messages: 2"
    assert list(bars.marker.color) == [theme.NEUTRAL] * 10 + [theme.OTHER_COLOR]
    (menu,) = fig.layout.updatemenus
    assert [button.label for button in menu.buttons] == ["2026-10", "2026-09"]
    data, layout, traces = menu.buttons[1].args
    # the bars, then their names
    september_names = [*reversed(codes[2:]), "Other (2 countries)"]
    assert data["y"] == [september_names, september_names] and list(traces) == [0, 1]
    assert [row[1] for row in data["customdata"][0]][:2] == ["12.00 USD", "11.00 USD"]
    assert data["customdata"][0][-1][1] == "3.00 USD"  # September's rest: C00 and C01
    # the value axis spans the month's bars: the names start at its start
    assert layout == {"title.text": "Cost by country, 2026-09: top 10 and the rest (USD)", "xaxis.range": [0.0, 12.6]}
    assert menu.buttons[0].args[0]["y"] == [list(bars.y), list(bars.y)]


def test_cost_by_country_of_one_month_has_a_panel_per_currency_and_no_menu():
    frame = _frame(
        _country_report("2026-10", "USD", {"GB": Decimal(3), "US": Decimal(2)})
        + _country_report("2026-10", "EUR", {"DE": Decimal("0.5")}),
        COUNTRY_SCHEMA,
    )
    fig = drawn(figures.cost_by_country(frame))
    usd, eur = _bars(fig)
    assert (list(usd.y), list(eur.y)) == (["GB", "US"], ["DE"])
    assert [a.text for a in fig.layout.annotations] == ["USD", "EUR"]
    assert fig.layout.updatemenus == ()


def test_a_country_of_messages_alone_shows_a_dash_for_its_billed_minutes():
    frame = _frame(
        [("2026-10", "USD", 1, "US", 4, 0, 0, Decimal(2)), ("2026-10", "USD", 2, "GB", 1, 1, 0, Decimal(1))],
        COUNTRY_SCHEMA,
    )
    (bars,) = _bars(drawn(figures.cost_by_country(frame)))
    # minutes do not apply to messages, as on the statement; an unanswered call bills 0.00 minutes
    assert [row[2] for row in bars.customdata] == [
        "Calls: 0, billed minutes: —, messages: 4", "Calls: 1, billed minutes: 0.00, messages: 0",
    ]


def test_a_countrys_hover_counts_the_messages_its_cost_includes_beside_the_calls():
    # the demo's DE: 220.45 USD, of it 139.36 for 1,616 messages; the hover named its 3,041 calls alone
    frame = _frame(
        [("2026-10", "USD", 1, "DE", 3041 + 1616, 3041, 243099, Decimal("220.45")),
         ("2026-10", "USD", 11, "Other (39 countries)", 30, 20, 1200, Decimal("10"))],
        COUNTRY_SCHEMA,
    )
    (bars,) = _bars(drawn(figures.cost_by_country(frame)))
    assert [row[1:] for row in bars.customdata] == [
        ["220.45 USD", "Calls: 3,041, billed minutes: 4,051.65, messages: 1,616"],
        ["10.00 USD", "Calls: 20, billed minutes: 20.00, messages: 10"],
    ]


def test_tags_are_never_added_up_into_an_other_bar():
    rows = [(f"tag-{i:02d}", "EUR", Decimal(50 - i)) for i in range(TOP_N + 5)] + [(None, "EUR", Decimal(1))]
    (bars,) = _bars(drawn(figures.cost_by_tag(_frame(rows, {"tag": pl.String, "currency": pl.String, "cost": MONEY}))))
    assert len(bars.y) == TOP_N
    assert not any(label.startswith("Other") for label in bars.y)


def test_daily_cost_draws_each_currency_in_its_own_panel_with_exact_hover():
    rows = [
        (date(2026, 10, 1), "voice", "USD", 3, Decimal("1.100000")),
        (date(2026, 10, 1), "sms", "USD", 2, Decimal("0.200000")),
        (date(2026, 10, 2), "voice", "EUR", 1, Decimal("0.000123")),
    ]
    frame = _frame(rows, {"day": pl.Date, "product": pl.String, "currency": pl.String, "records": pl.Int64,
                          "cost": MONEY})
    fig = drawn(figures.daily_cost(frame))
    by_panel = {(trace.yaxis, trace.name): [list(point) for point in trace.customdata] for trace in fig.data}
    # each product's cost, then the day's total in that currency
    assert by_panel == {
        ("y", "voice"): [["1.10 USD", "1.30 USD"]], ("y", "sms"): [["0.20 USD", "1.30 USD"]],
        ("y2", "voice"): [["<0.01 EUR", "<0.01 EUR"]],
    }
    assert fig.data[0].hovertemplate == "%{x}<br>voice: %{customdata[0]}<br>Day total: %{customdata[1]}<extra></extra>"
    assert fig.layout.yaxis.title.text == "Cost (USD)" and fig.layout.yaxis2.title.text == "Cost (EUR)"
    assert _title(fig) == "Cost per day, by product (USD, EUR)"


def test_money_figures_draw_the_largest_currencies_and_say_how_many_are_left_out():
    rows = [(date(2026, 10, 1), "voice", f"C{c}", 1, Decimal(c + 1)) for c in range(6)]
    frame = _frame(rows, {"day": pl.Date, "product": pl.String, "currency": pl.String, "records": pl.Int64,
                          "cost": MONEY})
    fig = drawn(figures.daily_cost(frame))
    assert [a.text for a in fig.layout.annotations] == ["C5", "C4", "C3", "C2"]
    assert _title(fig) == "Cost per day, by product (4 largest of 6 currencies)"


def test_currency_codes_in_titles_are_encoded_too():
    frame = _frame([("a", "x", "<b>", Decimal(1))],
                   {"connection_id": pl.String, "connection_name": pl.String, "currency": pl.String, "cost": MONEY})
    fig = drawn(figures.cost_by_connection(frame))
    assert _title(fig) == "Cost by connection, top 12 (&lt;b&gt;)"
    assert fig.layout.xaxis.title.text == "Cost (&lt;b&gt;)"


def test_daily_volume_stacks_products_in_house_order():
    rows = [(date(2026, 10, 1), p, "USD", n, Decimal(0)) for p, n in (("mms", 1), ("voice", 5), ("sms", 3))]
    frame = _frame(rows, {"day": pl.Date, "product": pl.String, "currency": pl.String, "records": pl.Int64,
                          "cost": MONEY})
    fig = drawn(figures.daily_volume(frame))
    assert [(t.name, list(t.y)) for t in fig.data] == [("voice", [5]), ("sms", [3]), ("mms", [1])]
    assert fig.layout.barmode == "stack"
    # each product's hover also gives the day's total
    assert [list(t.customdata) for t in fig.data] == [["9"], ["9"], ["9"]]
    assert "Day total: %{customdata} records" in fig.data[0].hovertemplate


def test_a_last_day_synced_only_in_part_is_hatched_and_named_in_the_title():
    rows = [(date(2026, 11, d), p, "USD", 10, Decimal(5)) for d in (5, 6) for p in ("voice", "sms")]
    frame = _frame(rows, {"day": pl.Date, "product": pl.String, "currency": pl.String, "records": pl.Int64,
                          "cost": MONEY})
    cut = figures.CutDay(date(2026, 11, 6), "12:00")
    for fig in (drawn(figures.daily_volume(frame, cut=cut)), drawn(figures.daily_cost(frame, cut=cut))):
        for bars in fig.data:
            assert list(bars.x) == ["2026-11-05", "2026-11-06"]
            assert list(bars.marker.pattern.shape) == ["", "/"] and list(bars.marker.opacity) == [1.0, 0.45]
        assert "Hatched: 2026-11-06, synced only to 12:00; not comparable with whole days" in _title(fig)
    weekly = drawn(figures.peak_concurrency(
        _frame([(date(2025, 1, 1) + timedelta(days=i), 2) for i in range(600)],
               {"day": pl.Date, "peak_concurrent_calls": pl.Int64}),
        cut=figures.CutDay(date(2026, 8, 23), "12:00"),
    ))
    (bars,) = weekly.data
    assert bars.x[-1] == "2026-08-17" and bars.marker.pattern.shape[-1] == "/"
    assert "Hatched: the week of 2026-08-17, synced only to 12:00 on 2026-08-23" in _title(weekly)
    assert "Hatched" not in _title(drawn(figures.daily_cost(frame)))


@pytest.mark.parametrize(("days", "unit", "points"), [(400, "day", 400), (401, "week", 58), (2801, "month", 93)])
def test_long_periods_become_weeks_then_months(days, unit, points):
    start = date(2019, 1, 1)  # a Tuesday: the first week bucket starts the Monday before
    rows = [(start + timedelta(days=i), 2) for i in range(days)]
    frame = _frame(rows, {"day": pl.Date, "peak_concurrent_calls": pl.Int64})
    fig = drawn(figures.peak_concurrency(frame))
    (bars,) = _bars(fig)
    assert _title(fig) == f"Peak concurrent calls per {unit}"
    assert len(bars.x) == points


def test_weekly_buckets_add_up_money_exactly_then_round_to_the_cent():
    # each day below half a cent, a week of them exactly half a cent (and a hair): one cent
    rows = [(date(2024, 1, 1) + timedelta(days=i), "voice", "USD", 1, Decimal("0.000715")) for i in range(410)]
    frame = _frame(rows, {"day": pl.Date, "product": pl.String, "currency": pl.String, "records": pl.Int64,
                          "cost": MONEY})
    (bars,) = _bars(drawn(figures.daily_cost(frame)))
    assert bars.x[0] == "2024-01-01" and list(bars.customdata[0]) == ["0.01 USD", "0.01 USD"]
    assert "Week total: %{customdata[1]}" in bars.hovertemplate


def test_call_quality_weights_each_ratio_by_its_own_denominator():
    schema = {"day": pl.Date, "calls": pl.Int64, "answered_calls": pl.Int64, "asr": pl.Float64,
              "ner": pl.Float64, "short_call_share": pl.Float64, "acd_secs": pl.Float64}
    day = date(2026, 10, 1)
    # Inbound 100 calls, 80 answered; outbound 300 calls, 60 answered.
    frame = _frame([(day, 100, 80, 0.8, 1.0, 0.5, 30.0), (day, 300, 60, 0.2, 0.9, 0.0, 120.0)], schema)
    fig = drawn(figures.call_quality_daily(frame))
    series = {trace.name: trace.y[0] for trace in fig.data}
    assert series["ASR"] == pytest.approx(35.0)  # 140 / 400
    assert series["NER"] == pytest.approx(92.5)  # 370 / 400
    assert series["Short calls"] == pytest.approx(100 * 40 / 140, abs=0.005)  # 2 decimals plotted
    assert series["ACD"] == pytest.approx((80 * 30 + 60 * 120) / 140 / 60, abs=1e-3)


def test_quality_by_country_ranks_by_calls_over_months_and_directions():
    schema = {"country_code": pl.String, "calls": pl.Int64, "answered_calls": pl.Int64, "asr": pl.Float64,
              "ner": pl.Float64, "acd_secs": pl.Float64}
    frame = _frame([("GB", 10, 5, 0.5, 1.0, 60.0), ("GB", 30, 27, 0.9, 1.0, 60.0), ("US", 20, 10, 0.5, 0.5, 30.0)],
                   schema)
    asr, ner = drawn(figures.quality_by_country(frame)).data
    assert list(asr.x) == ["GB", "US"]
    assert list(asr.y) == [pytest.approx(80.0), pytest.approx(50.0)]
    assert asr.customdata[0] == "40 calls, ACD 1 min 00 s"


def test_the_heatmap_sums_months_into_a_monday_first_grid():
    schema = {"weekday": pl.Int64, "hour": pl.Int64, "calls": pl.Int64}
    frame = _frame([(1, 0, 4), (1, 0, 6), (7, 23, 2), (3, 12, 0)], schema)
    (heat,) = drawn(figures.calls_heatmap(frame)).data
    assert heat.y[0] == "Mon" and heat.y[6] == "Sun"
    assert heat.z[0][0] == 10 and heat.z[6][23] == 2
    assert sum(map(sum, heat.z)) == 12


def test_the_heatmap_labels_every_third_hour_and_lets_plotly_turn_the_labels():
    # every second hour's "HH:00" ran together at a laptop's width, half of a 1366 px page
    frame = _frame([(1, 0, 4)], {"weekday": pl.Int64, "hour": pl.Int64, "calls": pl.Int64})
    axis = drawn(figures.calls_heatmap(frame)).layout.xaxis
    assert list(axis.tickvals) == ["00:00", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00"]
    assert axis.tickangle is None


def test_the_heatmap_names_the_zone_of_its_hours():
    frame = _frame([(1, 0, 4)], {"weekday": pl.Int64, "hour": pl.Int64, "calls": pl.Int64})
    assert drawn(figures.calls_heatmap(frame, zone="America/New_York")).layout.xaxis.title.text == (
        "Hour of day (America/New_York)"
    )


def test_hangup_causes_pair_the_cause_with_its_sip_code():
    schema = {"hangup_cause": pl.String, "sip_response_code": pl.Int64, "calls": pl.Int64}
    frame = _frame([("user_busy", 486, 5), ("normal_clearing", 200, 9), ("user_busy", 486, 1)], schema)
    (bars,) = _bars(drawn(figures.hangup_causes(frame)))
    assert list(bars.y) == ["normal_clearing (200)", "user_busy (486)"] and list(bars.x) == [9, 6]


def test_delivery_rates_come_from_summed_counts_including_the_other_bar():
    rows = [(f"Carrier {i:02d}", 100, 90) for i in range(TOP_N)] + [("small-a", 10, 10), ("small-b", 30, 0)]
    frame = _frame(rows, {"carrier": pl.String, "messages": pl.Int64, "delivered": pl.Int64})
    (bars,) = _bars(drawn(figures.delivery_by_carrier(frame)))
    assert bars.y[-1] == "Other (2)"
    assert bars.x[-1] == 25.0  # 10 delivered of 40
    assert list(bars.customdata[-1][1:]) == ["25.0 %", "10", "40"]


def test_parts_fold_long_messages_and_stack_type_and_encoding():
    schema = {"message_type": pl.String, "encoding": pl.String, "parts": pl.Int64, "messages": pl.Int64}
    frame = _frame([("sms", "gsm7", 1, 50), ("sms", "gsm7", 12, 2), ("sms", "gsm7", 10, 1), ("mms", "ucs2", 1, 5)],
                   schema)
    fig = drawn(figures.parts_distribution(frame))
    traces = {t.name: dict(zip(t.x, t.y, strict=True)) for t in fig.data}
    assert traces == {"SMS GSM7": {"1": 50, "10+": 3}, "MMS UCS2": {"1": 5}}
    assert list(fig.layout.xaxis.categoryarray) == ["1", "10+"]
    # each hover counts its parts as a sentence would
    hovers = {t.name: [t.hovertemplate.replace("%{customdata}", label) for label in t.customdata] for t in fig.data}
    assert hovers["SMS GSM7"] == ["1 part, SMS GSM7: %{y:,} messages<extra></extra>",
                                  "10+ parts, SMS GSM7: %{y:,} messages<extra></extra>"]


def test_month_over_month_shows_the_reported_change():
    schema = {"month": pl.String, "product": pl.String, "currency": pl.String, "cost": MONEY,
              "cost_change_pct": pl.Float64}
    frame = _frame([("2026-09", "voice", "USD", Decimal("10"), None), ("2026-10", "voice", "USD", Decimal("12.5"), 25.0)],
                   schema)
    (bars,) = _bars(drawn(figures.month_over_month(frame)))
    assert list(bars.x) == ["2026-09", "2026-10"]
    assert list(bars.customdata) == ["10.00 USD", "12.50 USD (+25.0 % on the month before)"]


def test_month_over_month_keeps_the_latest_months_of_a_long_history():
    schema = {"month": pl.String, "product": pl.String, "currency": pl.String, "cost": MONEY,
              "cost_change_pct": pl.Float64}
    rows = [(f"{2020 + i // 12}-{i % 12 + 1:02d}", "sms", "USD", Decimal(i), None) for i in range(40)]
    fig = drawn(figures.month_over_month(_frame(rows, schema)))
    assert len(fig.data[0].x) == figures.MAX_MONTHS and fig.data[0].x[-1] == "2023-04"
    assert "latest 24 months" in _title(fig)


def test_month_over_month_marks_a_partial_month_beside_whole_ones():
    schema = {"month": pl.String, "product": pl.String, "currency": pl.String, "cost": MONEY,
              "cost_change_pct": pl.Float64}
    frame = _frame([("2026-10", "voice", "USD", Decimal("31"), None), ("2026-11", "voice", "USD", Decimal("6"), -80.6)],
                   schema)
    fig = drawn(figures.month_over_month(frame, partial=partial_months(date(2026, 10, 1), date(2026, 11, 6))))
    (bars,) = _bars(fig)
    assert list(bars.x) == ["2026-10", "2026-11 (partial: 1–6)"]
    assert list(fig.layout.xaxis.categoryarray) == ["2026-10", "2026-11 (partial: 1–6)"]
    assert list(bars.marker.pattern.shape) == ["", figures.PARTIAL_PATTERN]
    assert list(bars.marker.opacity) == [1.0, figures.PARTIAL_OPACITY]
    assert "Hatched: a partial month" in _title(fig)
    # a partial month is no comparison: its change, and that of the month after it, are not shown
    assert list(bars.customdata) == ["31.00 USD", "6.00 USD (a partial month: no change on the month before)"]
    after = drawn(figures.month_over_month(
        _frame([("2026-10", "voice", "USD", Decimal("31"), None), ("2026-11", "voice", "USD", Decimal("30"), -3.2)],
               schema),
        partial=partial_months(date(2026, 10, 6), date(2026, 11, 30)),
    ))
    assert list(after.data[0].customdata) == [
        "31.00 USD (a partial month: no change on the month before)",
        "30.00 USD (the month before, 2026-10, is partial: no change shown)",
    ]
    # whole months alone: no hatching, no note
    whole = drawn(figures.month_over_month(frame, partial=partial_months(date(2026, 8, 15), date(2026, 8, 31))))
    assert list(whole.data[0].marker.pattern.shape) == ["", ""] and "Hatched" not in _title(whole)


RECONCILIATION_SCHEMA = {"day": pl.Date, "currency": pl.String, "status": pl.String, "cost_difference": MONEY}


def test_reconciliation_differences_split_explained_from_unexplained_per_currency():
    day, next_day = date(2026, 10, 1), date(2026, 10, 2)
    frame = _frame(
        [
            (day, "USD", "explained_by_quarantine", Decimal("-0.010000")),
            (day, "USD", "explained_by_quarantine", Decimal("-0.000500")),
            (day, "USD", "mismatch", Decimal("0.02")),
            (day, "USD", "missing_in_api", None),
            (next_day, "USD", "match", Decimal(0)),
            (next_day, "EUR", "missing_in_lake", Decimal("-0.001")),
        ],
        RECONCILIATION_SCHEMA,
    )
    fig = drawn(figures.reconciliation_differences(frame))
    assert [(t.name, t.yaxis, list(t.x), list(t.customdata), t.showlegend) for t in fig.data] == [
        ("Not explained", "y", ["2026-10-01"], ["0.02 USD"], True),
        ("Explained by quarantined records", "y", ["2026-10-01"], ["-0.01 USD"], True),
        ("Not explained", "y2", ["2026-10-02"], ["-<0.01 EUR"], False),
    ]
    assert [t.marker.color for t in fig.data] == [theme.BAD, theme.OTHER_COLOR, theme.BAD]
    assert fig.layout.barmode == "relative"


def test_reconciliation_differences_when_everything_matches_say_so():
    frame = _frame([(date(2026, 10, 1), "USD", "match", Decimal(0))], RECONCILIATION_SCHEMA)
    fig = drawn(figures.reconciliation_differences(frame))
    assert not fig.data and [a.text for a in fig.layout.annotations] == ["The pipeline's totals match the API's on every day"]


@pytest.mark.parametrize(
    ("build", "columns"),
    [
        (figures.daily_volume, {"day": pl.Date, "product": pl.String, "records": pl.Int64}),
        (figures.daily_cost, {"day": pl.Date, "product": pl.String, "currency": pl.String, "cost": MONEY}),
        (figures.cost_by_product, {"product": pl.String, "direction": pl.String, "currency": pl.String, "cost": MONEY}),
        (figures.cost_by_country, COUNTRY_SCHEMA),
        (figures.cost_by_tag, {"tag": pl.String, "currency": pl.String, "cost": MONEY}),
        (figures.call_quality_daily, {"day": pl.Date, "calls": pl.Int64, "answered_calls": pl.Int64,
                                      "asr": pl.Float64, "ner": pl.Float64, "short_call_share": pl.Float64,
                                      "acd_secs": pl.Float64}),
        (figures.calls_heatmap, {"weekday": pl.Int64, "hour": pl.Int64, "calls": pl.Int64}),
        (figures.delivery_by_country, {"country_code": pl.String, "messages": pl.Int64, "delivered": pl.Int64}),
        (figures.failure_reasons, {"error_code": pl.String, "error_title": pl.String, "messages": pl.Int64}),
        (figures.reconciliation_differences, RECONCILIATION_SCHEMA),
    ],
)
def test_no_rows_say_no_data_rather_than_draw_an_empty_axis(build, columns):
    fig = drawn(build(pl.DataFrame(schema=columns)))
    assert _no_data(fig)
    assert not fig.layout.xaxis.visible


def test_every_figure_uses_the_house_template_not_plotlys_default():
    fig = drawn(figures.cost_by_connection(_connections(2)))
    assert fig.layout.template.layout.font.family.startswith("system-ui")
    assert fig.layout.template.data.scatter == ()  # plotly's default template would bring its own
