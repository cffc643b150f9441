"""Dashboards stage: one pure function per figure, a report frame -> a Plotly figure (its JSON: `dashboards.plot`).

Each function takes the rows of one `rpt_` table (columns renamed to the names documented on
the function, see `pages.py`) and returns a figure whose size does not grow with the data:
rankings keep the top N and fold the rest into one bar, time series stay daily up to
`MAX_POINTS` days and become weekly, then monthly, beyond. Money is never summed across
currencies: a money figure draws one panel per currency. Every text that comes from the data
goes through `plot_text`, so markup in a carrier or connection name shows as typed.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from dashboards import plot, theme
from dashboards.plot import Figure, axis_id
from dashboards.tables import EXPLAINED, MATCH, several_accounts
from dashboards.formatting import (
    MISSING,
    format_billed_minutes,
    format_count,
    format_money,
    format_rate,
    format_seconds,
    month_before,
    month_label,
    plot_text,
    shorten,
    zoned,
)
from pipelines.alerts import SEVERITIES
from pipelines.errors import counted
from pipelines.reports import MonthCoverage

NO_DATA = "No data for this period"
NO_ALERTS = "No alert fired in this period"
TOP_N = 12
MAX_POINTS = 400
MAX_CURRENCIES = 4
MAX_PARTS = 10
MAX_MONTHS = 24
LABEL_LIMIT = 32
# A ranking writes each name on its own line above its bar, both across the plot's whole width: beside
# the bars, long names left a phone's bars a sliver of it. Each bar takes the lower part of its band.
RANK_BAND_PX = 40
RANK_BAR = {"width": 0.45, "offset": 0.0}
RANK_MARGIN_PX = 16
RANK_NAME_SIZE = 12
HOVER_LIMIT = 120
# A legend's row (with its padding) runs from LEGEND_TOP_PX to some 30 px below; the top panel's title
# then needs its own 22 px, and a gap either side, above the plot.
LEGEND_TOP_PX = 44
PANEL_GAP_PX = 96
LEGEND_MARGIN_PX = 106
# rpt_finance_cost_by_country keeps this many countries per month and currency, then the rest.
COUNTRY_TOP = 10
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HEATMAP_TICK_HOURS = 3
# A partial month's bars: lighter and hatched, so they never pass for a whole month's.
PARTIAL_OPACITY = 0.45
PARTIAL_PATTERN = "/"
# The last day when the data is synced only to a time inside it: hatched like a partial month.
CUT_NOTE = "<br><sup>Hatched: {bucket}, synced only to {until}; not comparable with whole {unit}s</sup>"
# A time axis whose data all fall on one bucket (day, week, month) spans a bucket either side, ticked by bucket.
BUCKET_DAYS = {"day": 1, "week": 7, "month": 31}
DAY_MS = 86_400_000
BAR_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class CutDay:
    """The last report day when the data is synced only to a time inside it, and that time ('12:00')."""

    day: date
    until: str


# Alerts: a hover lists this many alerts of a point (then how many more), each message wrapped
# and, past MESSAGE_LIMIT characters, shortened (the Alerts page's tables show it whole).
MAX_HOVER_ALERTS = 6
MESSAGE_WRAP = 80
MESSAGE_LIMIT = 400
MAX_TIMELINE_ALERTS = 500


# --- Overview ------------------------------------------------------------------------------


def daily_volume(
    frame: pl.DataFrame, markers: pl.DataFrame | None = None, cut: CutDay | None = None, zone: str = "UTC"
) -> Figure:
    """Records per day and product (columns: day, product, records), the alerts to mark (`alert_marks`),
    the last day if synced only in part and the report time zone -> stacked bars, each day an alert fired
    marked, a cut day hatched."""
    title = "Records per {unit}, by product"
    if frame.is_empty():
        return empty_figure(title.format(unit="day"))
    bucketed, unit = _bucket_days(frame)
    totals = bucketed.group_by("bucket", "product").agg(pl.col("records").sum()).sort("bucket")
    # A stacked bar's hover shows one product: it also gives the whole bar, the day's total.
    whole = dict(totals.group_by("bucket").agg(pl.col("records").sum()).iter_rows())
    fig = plot.figure()
    for index, product in enumerate(_ordered(totals, "product", None)):
        rows = totals.filter(pl.col("product") == product)
        plot.add(fig, {
            "type": "bar",
            "x": _iso(rows["bucket"]),
            "y": rows["records"].to_list(),
            "customdata": [format_count(whole[bucket]) for bucket in rows["bucket"].to_list()],
            "name": plot_text(product),
            "marker": {"color": theme.product_color(product, index)},
            "hovertemplate": f"%{{x}}<br>{plot_text(product)}: %{{y:,}} records"
            f"<br>{unit.capitalize()} total: %{{customdata}} records<extra></extra>",
        })
    _finish(fig, title.format(unit=unit) + _mark_cut(fig, cut, unit), y_title="Records", barmode="stack")
    _time_axis(fig, unit, zone)
    _mark_alerts(fig, markers, bucketed["bucket"], unit, panels=1)
    return fig


def daily_cost(
    frame: pl.DataFrame, markers: pl.DataFrame | None = None, cut: CutDay | None = None, zone: str = "UTC"
) -> Figure:
    """Cost per day, product and currency (columns: day, product, currency, cost), the alerts to mark
    (`alert_marks`), the last day if synced only in part and the report time zone -> stacked bars per
    currency, each day an alert fired marked, a cut day hatched."""
    title = "Cost per {unit}, by product"
    if frame.is_empty():
        return empty_figure(title.format(unit="day"))
    bucketed, unit = _bucket_days(frame)
    totals = bucketed.group_by("bucket", "product", "currency").agg(pl.col("cost").sum()).sort("bucket")
    currencies, currency_note = _currencies(totals)
    # A stacked bar's hover shows one product: it also gives the whole bar, the day's total (exact, then rounded).
    whole = {
        (bucket, currency): cost
        for bucket, currency, cost in totals.group_by("bucket", "currency").agg(pl.col("cost").sum()).iter_rows()
    }
    fig = _currency_grid(currencies, shared_x=True)
    products = _ordered(totals, "product", None)
    for row, currency in enumerate(currencies, start=1):
        for index, product in enumerate(products):
            rows = totals.filter((pl.col("currency") == currency) & (pl.col("product") == product))
            if rows.is_empty():
                continue
            plot.add(fig, {
                "type": "bar",
                "x": _iso(rows["bucket"]),
                "y": _floats(rows["cost"]),
                "customdata": [
                    [format_money(cost, currency), format_money(whole[(bucket, currency)], currency)]
                    for bucket, cost in rows.select("bucket", "cost").iter_rows()
                ],
                "name": plot_text(product),
                "legendgroup": product,
                "showlegend": row == 1,
                "marker": {"color": theme.product_color(product, index)},
                "hovertemplate": f"%{{x}}<br>{plot_text(product)}: %{{customdata[0]}}"
                f"<br>{unit.capitalize()} total: %{{customdata[1]}}<extra></extra>",
            }, row=row)
        plot.update_axes(fig, "y", {"title": {"text": f"Cost ({plot_text(currency)})"}}, row=row)
    cut_note = _mark_cut(fig, cut, unit)
    _finish(fig, title.format(unit=unit) + currency_note + cut_note, barmode="stack", height=_grid_height(currencies))
    _time_axis(fig, unit, zone, rows=len(currencies))
    _mark_alerts(fig, markers, bucketed["bucket"], unit, panels=len(currencies), currencies=currencies)
    return fig


# --- Finance -------------------------------------------------------------------------------


def cost_by_product(frame: pl.DataFrame) -> Figure:
    """Cost by product, direction and currency (columns: product, direction, currency, cost) -> bars per currency."""
    title = "Cost by product and direction"
    if frame.is_empty():
        return empty_figure(title)
    totals = frame.group_by("product", "direction", "currency").agg(pl.col("cost").sum())
    currencies, currency_note = _currencies(totals)
    fig = _currency_grid(currencies, shared_x=False)
    directions = _ordered(totals, "direction", None)
    for row, currency in enumerate(currencies, start=1):
        in_currency = totals.filter(pl.col("currency") == currency)
        products = _ordered(in_currency, "product", None)
        for index, direction in enumerate(directions):
            rows = in_currency.filter(pl.col("direction") == direction)
            by_product = dict(zip(rows["product"].to_list(), rows["cost"].to_list(), strict=True))
            amounts = [by_product.get(product, Decimal(0)) for product in products]
            plot.add(fig, {
                "type": "bar",
                "x": [plot_text(product) for product in products],
                "y": [float(amount) for amount in amounts],
                "customdata": [format_money(amount, currency) for amount in amounts],
                "name": plot_text(direction),
                "legendgroup": direction,
                "showlegend": row == 1,
                "marker": {"color": theme.direction_color(direction, index)},
                "hovertemplate": f"%{{x}}, {plot_text(direction)}: %{{customdata}}<extra></extra>",
            }, row=row)
        plot.update_axes(fig, "y", {"title": {"text": f"Cost ({plot_text(currency)})"}}, row=row)
    _finish(fig, title + currency_note, barmode="group", height=_grid_height(currencies))
    return fig


def cost_by_country(frame: pl.DataFrame) -> Figure:
    """Cost by remote country, month and currency as the report ranks them (columns: month, currency,
    country_rank, country_label, records (calls and messages), calls, billed_duration_secs, cost) -> the latest
    month's bars, each earlier month a menu pick.

    The report ranks every month and currency on its own: the top 10 countries, then one row for
    the rest ("Other (N countries)"). A country outside one month's top 10 hides inside that
    month's rest, so months are never added together: each month is drawn as the report has it.
    """
    title = f"Cost by country, {{month}}: top {COUNTRY_TOP} and the rest"
    if frame.is_empty():
        return empty_figure(f"Cost by country: top {COUNTRY_TOP} and the rest")
    labelled = frame.with_columns(pl.col("month").map_elements(_month_label, return_dtype=pl.String()))
    months = labelled["month"].unique().sort().to_list()[-MAX_MONTHS:]
    currencies, currency_note = _currencies(labelled.filter(pl.col("month").is_in(months)))
    # One trace per currency panel; the menu swaps in another month's bars (the axes recompute
    # their categories from the bars shown, so no month's countries linger in another's).
    views: dict[str, list[dict[str, list[Any]]]] = {}
    for month in months:
        in_month = labelled.filter(pl.col("month") == month)
        views[month] = [
            _country_bars(in_month.filter(pl.col("currency") == currency), currency) for currency in currencies
        ]
    latest = months[-1]
    bars = [max(len(views[month][index]["y"]) for month in months) or 1 for index in range(len(currencies))]
    fig, height = _ranking_grid(currencies, bars)
    for row, (currency, bars_now) in enumerate(zip(currencies, views[latest], strict=True), start=1):
        plot.add(fig, {
            "type": "bar", "x": bars_now["x"], "y": bars_now["y"], "customdata": bars_now["customdata"],
            "marker": {"color": bars_now["marker.color"]}, "orientation": "h", "showlegend": False,
            "hovertemplate": "%{customdata[0]}: %{customdata[1]}<br>%{customdata[2]}<extra></extra>",
            **RANK_BAR,
        }, row=row)
        _rank_names(fig, bars_now["y"], bars_now["x"], row=row)
        plot.update_axes(fig, "x", {"title": {"text": f"Cost ({plot_text(currency)})"}}, row=row)
    _finish(fig, title.format(month=latest) + currency_note, height=height, legend=False)
    _rank_margin(fig)
    if len(months) > 1:
        # Each panel's bars, then its names (`_rank_names`): the data of every trace, in the figure's order.
        keys = ("x", "y", "customdata", "marker.color")
        buttons = [
            {
                "label": month, "method": "update",
                "args": [
                    {key: [value for view in views[month] for value in _ranked_data(view)[key]] for key in keys},
                    {"title.text": title.format(month=month) + currency_note}
                    | {f"{axis_id('xaxis', row)}.range": _value_range(view["x"])
                       for row, view in enumerate(views[month], start=1)},
                    list(range(2 * len(currencies))),
                ],
            }
            for month in reversed(months)
        ]
        plot.update_layout(
            fig,
            updatemenus=[{
                "buttons": buttons, "direction": "down", "showactive": True, "active": 0,
                "x": 1, "xanchor": "right", "y": 1, "yanchor": "bottom",
            }],
        )
    return fig


def _ranked_data(view: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """One panel's bar data (`_country_bars`) -> each key's value for its bars, then for its names."""
    low = _value_range(view["x"])[0]
    return {
        "x": [view["x"], [low] * len(view["y"])], "y": [view["y"], view["y"]],
        "customdata": [view["customdata"], None], "marker.color": [view["marker.color"], None],
    }


def _country_bars(rows: pl.DataFrame, currency: str) -> dict[str, list[Any]]:
    """One month's rows of one currency, in the report's rank order -> the bar trace's data."""
    ordered = rows.sort("country_rank", nulls_last=True)
    names = [label or "(unknown country)" for label in ordered["country_label"].to_list()]
    costs = ordered["cost"].to_list()
    calls = ordered["calls"].to_list()
    # A country's cost is its calls' and its messages': a hover naming the calls alone read as if they cost it all.
    messages = [
        None if records is None or count is None else records - count
        for records, count in zip(ordered["records"].to_list(), calls, strict=True)
    ]
    seconds = ordered["billed_duration_secs"].to_list()
    rest = [rank is None or rank > COUNTRY_TOP for rank in ordered["country_rank"].to_list()]
    return {
        "y": _labels(names),
        "x": [float(cost) for cost in costs],
        "customdata": [
            [
                _hover_label(name), format_money(cost, currency),
                f"Calls: {format_count(count)}, billed minutes: {format_billed_minutes(secs, calls=bool(count))}, "
                f"messages: {format_count(sent)}",
            ]
            for name, cost, count, secs, sent in zip(names, costs, calls, seconds, messages, strict=True)
        ],
        "marker.color": [theme.OTHER_COLOR if other else theme.NEUTRAL for other in rest],
    }


def cost_by_connection(frame: pl.DataFrame) -> Figure:
    """Cost by connection (SIP trunk) and currency (columns: connection_id, connection_name, currency, cost; and
    account, if any) -> top-N bars, over several accounts each account's connections named after it."""
    ranked = frame.select(
        *_owned(frame, pl.col("connection_id"), pl.col("connection_name").fill_null("(unknown connection)")),
        "currency", "cost", pl.lit(False).alias("is_rest"),
    )
    return _ranked_cost(ranked, "Cost by connection")


def cost_by_messaging_profile(frame: pl.DataFrame) -> Figure:
    """Cost by messaging profile and currency (columns: messaging_profile_id, messaging_profile_name, currency,
    cost; and account, if any) -> top-N bars, over several accounts each account's profiles named after it."""
    ranked = frame.select(
        *_owned(frame, pl.col("messaging_profile_id"), pl.col("messaging_profile_name").fill_null("(unknown profile)")),
        "currency", "cost", pl.lit(False).alias("is_rest"),
    )
    return _ranked_cost(ranked, "Cost by messaging profile")


def _owned(frame: pl.DataFrame, key: pl.Expr, label: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Rows of things each account has its own of (connections, profiles), their id and name -> the ranking's key
    and label: over several accounts, each account's apart, its name first ('acme: Main Trunk'). Two accounts'
    connections may bear one name, which read as 'Main Trunk' and 'Main Trunk #2', whose is whose unsaid."""
    if "account" not in frame.columns or not several_accounts(frame["account"]):
        return key.alias("key"), label.alias("label")
    account = pl.col("account").fill_null("")
    return (
        pl.concat_str(account, pl.lit("/"), key.fill_null("")).alias("key"),
        pl.concat_str(account, pl.lit(": "), label).alias("label"),
    )


def cost_by_tag(frame: pl.DataFrame) -> Figure:
    """Cost by tag and currency (columns: tag, currency, cost) -> top-N bars, the rest not added up.

    A record with several tags counts under each, so the tags below the top N are not summed
    into an 'other' bar: that sum would count such records more than once.
    """
    ranked = frame.select(
        pl.col("tag").alias("key"), pl.col("tag").fill_null("(untagged)").alias("label"),
        "currency", "cost", pl.lit(False).alias("is_rest"),
    )
    return _ranked_cost(ranked, "Cost by tag", fold=False)


def month_over_month(
    frame: pl.DataFrame, partial: Mapping[str, MonthCoverage] | None = None, zone: str = "UTC"
) -> Figure:
    """Cost per month, product and currency with the change on the month before
    (columns: month 'YYYY-MM', product, currency, cost, cost_change_pct in %), the partial
    months and the report time zone -> grouped bars, a partial month labelled as one and its bars
    hatched and lighter."""
    title = "Cost month over month"
    if frame.is_empty():
        return empty_figure(title)
    partial = partial or {}
    labelled = frame.with_columns(pl.col("month").map_elements(_month_label, return_dtype=pl.String()))
    months = labelled["month"].unique().sort().to_list()
    if len(months) > MAX_MONTHS:
        # A long history shows its latest months; the statement export has every month.
        months = months[-MAX_MONTHS:]
        title += f" (latest {MAX_MONTHS} months)"
        labelled = labelled.filter(pl.col("month").is_in(months))
    currencies, currency_note = _currencies(labelled)
    fig = _currency_grid(currencies, shared_x=True)
    products = _ordered(labelled, "product", None)
    for row, currency in enumerate(currencies, start=1):
        for index, product in enumerate(products):
            rows = labelled.filter((pl.col("currency") == currency) & (pl.col("product") == product)).sort("month")
            if rows.is_empty():
                continue
            hover = [
                format_money(cost, currency) + _change_text(month, change, partial)
                for month, cost, change in rows.select("month", "cost", "cost_change_pct").iter_rows()
            ]
            cut = [month in partial for month in rows["month"].to_list()]
            plot.add(fig, {
                "type": "bar",
                "x": [month_label(month, partial) for month in rows["month"].to_list()], "y": _floats(rows["cost"]),
                "customdata": hover, "name": plot_text(product), "legendgroup": product, "showlegend": row == 1,
                "marker": {
                    "color": theme.product_color(product, index),
                    "opacity": [PARTIAL_OPACITY if short else 1.0 for short in cut],
                    "pattern": {"shape": [PARTIAL_PATTERN if short else "" for short in cut]},
                },
                "hovertemplate": f"%{{x}}, {plot_text(product)}: %{{customdata}}<extra></extra>",
            }, row=row)
        plot.update_axes(fig, "y", {"title": {"text": f"Cost ({plot_text(currency)})"}}, row=row)
    plot.update_axes(fig, "x", {
        "type": "category", "categoryorder": "array",
        "categoryarray": [month_label(month, partial) for month in months],
    })
    note = ""
    if any(month in partial for month in months):
        note = "<br><sup>Hatched: a partial month, holding only the days named; not comparable with whole months</sup>"
    _finish(fig, title + currency_note + note, barmode="group", height=_grid_height(currencies))
    _time_axis(fig, "month", zone, rows=len(currencies))
    return fig


def _change_text(month: str, change: float | None, partial: Mapping[str, MonthCoverage]) -> str:
    """A month, its change on the month before (%) and the partial months -> the hover's ' (+25.0 % on the month
    before)', or why no change is shown: a partial month on either side is no comparison."""
    before = month_before(month)
    if month in partial:
        return " (a partial month: no change on the month before)"
    if before in partial:
        return f" (the month before, {before}, is partial: no change shown)"
    return "" if change is None else f" ({change:+,.1f} % on the month before)"


# --- Voice quality -------------------------------------------------------------------------


def call_quality_daily(frame: pl.DataFrame, markers: pl.DataFrame | None = None, zone: str = "UTC") -> Figure:
    """ASR, NER, short-call share and ACD per day (in the report time zone `zone`), both directions
    together, each day a call quality alert fired marked (`markers`: `alert_marks`).

    Columns: day, calls, answered_calls, asr, ner, short_call_share, acd_secs (ratios in [0, 1],
    one row per day and direction). Rows are combined weighting each ratio by its denominator
    (calls for ASR and NER, answered calls for ACD and short calls), which is exact.
    """
    title = "Call quality per {unit}: ASR, NER, short calls (%) and ACD (min)"
    if frame.is_empty():
        return empty_figure(title.format(unit="day"))
    bucketed, unit = _bucket_days(frame)
    weighted = (
        bucketed.with_columns(
            asr_w=pl.col("asr") * pl.col("calls"),
            ner_w=pl.col("ner") * pl.col("calls"),
            short_w=pl.col("short_call_share") * pl.col("answered_calls"),
            acd_w=pl.col("acd_secs") * pl.col("answered_calls"),
        )
        .group_by("bucket")
        .agg(pl.col("calls", "answered_calls", "asr_w", "ner_w", "short_w", "acd_w").sum())
        .sort("bucket")
    )
    calls = pl.when(pl.col("calls") > 0).then(pl.col("calls"))
    answered = pl.when(pl.col("answered_calls") > 0).then(pl.col("answered_calls"))
    series = weighted.select(
        "bucket",
        (pl.col("asr_w") / calls * 100).alias("asr"),
        (pl.col("ner_w") / calls * 100).alias("ner"),
        (pl.col("short_w") / answered * 100).alias("short"),
        (pl.col("acd_w") / answered / 60).alias("acd_min"),
    )
    x = _iso(series["bucket"])
    fig = plot.grid(2, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4])
    for name, column, color in (
        ("ASR", "asr", theme.NEUTRAL),
        ("NER", "ner", theme.GOOD),
        ("Short calls", "short", theme.COLORWAY[3]),
    ):
        plot.add(fig, {
            "type": "scatter", "x": x, "y": _rounded(series[column], 2), "name": name,
            "mode": "lines+markers" if len(x) <= 62 else "lines",
            "line": {"color": color, "width": 2}, "marker": {"size": 5},
            "hovertemplate": f"%{{x}}<br>{name}: %{{y:.1f}} %<extra></extra>",
        }, row=1)
    plot.add(fig, {
        "type": "bar", "x": x, "y": _rounded(series["acd_min"], 3), "name": "ACD",
        "marker": {"color": theme.COLORWAY[4]}, "hovertemplate": "%{x}<br>ACD: %{y:.2f} min<extra></extra>",
    }, row=2)
    plot.update_axes(fig, "y", {"title": {"text": "%"}, "range": [0, 100]}, row=1)
    plot.update_axes(fig, "y", {"title": {"text": "ACD (min)"}, "rangemode": "tozero"}, row=2)
    _finish(fig, title.format(unit=unit), height=460)
    _time_axis(fig, unit, zone, rows=2)
    _mark_alerts(fig, markers, bucketed["bucket"], unit, panels=2)
    return fig


def quality_by_country(frame: pl.DataFrame) -> Figure:
    """ASR and NER of the busiest countries
    (columns: country_code, calls, answered_calls, asr, ner, acd_secs; any number of rows per country) -> bars."""
    title = f"ASR and NER by country (%), top {TOP_N} by calls"
    if frame.is_empty():
        return empty_figure(title)
    ranked = (
        frame.group_by("country_code")
        .agg(
            pl.col("calls", "answered_calls").sum(),
            (pl.col("asr") * pl.col("calls")).sum().alias("asr_w"),
            (pl.col("ner") * pl.col("calls")).sum().alias("ner_w"),
            (pl.col("acd_secs") * pl.col("answered_calls")).sum().alias("acd_w"),
        )
        .filter(pl.col("calls") > 0)
        .sort("calls", "country_code", descending=[True, False], nulls_last=True)
        .head(TOP_N)
    )
    labels = _labels(ranked["country_code"].to_list())
    details = [
        f"{counted(calls, 'call')}, ACD {format_seconds(acd_w / answered if answered else None)}"
        for calls, answered, acd_w in ranked.select("calls", "answered_calls", "acd_w").iter_rows()
    ]
    fig = plot.figure()
    for name, column, color in (("ASR", "asr_w", theme.NEUTRAL), ("NER", "ner_w", theme.GOOD)):
        plot.add(fig, {
            "type": "bar", "x": labels, "y": _rounded(ranked[column] / ranked["calls"] * 100, 2), "name": name,
            "marker": {"color": color}, "customdata": details,
            "hovertemplate": f"%{{x}}: {name} %{{y:.1f}} %<br>%{{customdata}}<extra></extra>",
        })
    plot.update_axes(fig, "x", {"type": "category"})
    _finish(fig, title, y_title="%", barmode="group")
    plot.update_axes(fig, "y", {"range": [0, 100]})
    return fig


def hangup_causes(frame: pl.DataFrame) -> Figure:
    """Calls by hangup cause and SIP code (columns: hangup_cause, sip_response_code, calls) -> top-N bars."""
    title = f"Hangup causes (calls), top {TOP_N}"
    if frame.is_empty():
        return empty_figure(title)
    labelled = frame.with_columns(
        pl.format("{} ({})", pl.col("hangup_cause").fill_null("unknown"),
                  pl.col("sip_response_code").cast(pl.String()).fill_null("no SIP code")).alias("label")
    )
    return _ranked_counts(labelled, "label", "calls", title, "calls")


def calls_heatmap(frame: pl.DataFrame, zone: str = "UTC") -> Figure:
    """Calls by ISO weekday (1 = Monday) and hour (columns: weekday, hour, calls) in the report time zone
    -> a 7 x 24 heatmap, its hour axis naming the zone."""
    title = "Calls by weekday and hour of day"
    if frame.is_empty() or frame["calls"].sum() == 0:
        return empty_figure(title)
    grid = [[0] * 24 for _ in WEEKDAYS]
    for weekday, hour, calls in frame.select("weekday", "hour", "calls").iter_rows():
        if weekday is not None and hour is not None and 1 <= weekday <= 7 and 0 <= hour <= 23:
            grid[weekday - 1][hour] += int(calls or 0)
    fig = plot.figure({
        "type": "heatmap", "z": grid, "x": [f"{hour:02d}:00" for hour in range(24)], "y": list(WEEKDAYS),
        "colorscale": [list(stop) for stop in theme.HEAT_SCALE], "xgap": 2, "ygap": 2,
        "colorbar": {"title": {"text": "Calls"}, "thickness": 12},
        "hovertemplate": "%{y} %{x}: %{z:,} calls<extra></extra>",
    })
    plot.update_axes(fig, "y", {"autorange": "reversed", "showgrid": False})
    # Every third hour: twelve labels of a half-width figure run into each other; plotly turns
    # them when even these do not fit.
    plot.update_axes(fig, "x", {
        "showgrid": False, "title": {"text": zoned("Hour of day", plot_text(zone))}, "tickmode": "array",
        "tickvals": [f"{hour:02d}:00" for hour in range(0, 24, HEATMAP_TICK_HOURS)],
    })
    _finish(fig, title, legend=False)
    return fig


def peak_concurrency(frame: pl.DataFrame, cut: CutDay | None = None, zone: str = "UTC") -> Figure:
    """Peak concurrent calls per day (columns: day, peak_concurrent_calls), the last day if synced only in
    part and the report time zone -> bars, a cut day hatched."""
    title = "Peak concurrent calls per {unit}"
    if frame.is_empty():
        return empty_figure(title.format(unit="day"))
    bucketed, unit = _bucket_days(frame)
    peaks = bucketed.group_by("bucket").agg(pl.col("peak_concurrent_calls").max()).sort("bucket")
    fig = plot.figure({
        "type": "bar", "x": _iso(peaks["bucket"]), "y": peaks["peak_concurrent_calls"].to_list(),
        "marker": {"color": theme.NEUTRAL}, "name": "Peak",
        "hovertemplate": "%{x}: %{y:,} concurrent calls<extra></extra>",
    })
    _finish(fig, title.format(unit=unit) + _mark_cut(fig, cut, unit), y_title="Concurrent calls", legend=False)
    _time_axis(fig, unit, zone)
    return fig


# --- Messaging -----------------------------------------------------------------------------


def delivery_by_carrier(frame: pl.DataFrame) -> Figure:
    """Delivery rate of the busiest carriers (columns: carrier, messages, delivered) -> bars."""
    return _delivery(frame, "carrier", f"Delivery rate by carrier (%), top {TOP_N} by messages")


def delivery_by_country(frame: pl.DataFrame) -> Figure:
    """Delivery rate of the busiest countries (columns: country_code, messages, delivered) -> bars."""
    return _delivery(frame, "country_code", f"Delivery rate by country (%), top {TOP_N} by messages")


def parts_distribution(frame: pl.DataFrame) -> Figure:
    """Messages by billed parts, type and encoding (columns: message_type, encoding, parts, messages)
    -> stacked bars, long messages folded into 10+."""
    title = "Messages by number of parts, by type and encoding"
    if frame.is_empty():
        return empty_figure(title)
    folded = (
        frame.with_columns(
            pl.col("parts").clip(upper_bound=MAX_PARTS),
            pl.format("{} {}", pl.col("message_type").fill_null("?"), pl.col("encoding").fill_null("?"))
            .str.to_uppercase().alias("series"),
        )
        .group_by("series", "parts").agg(pl.col("messages").sum()).sort("parts")
    )
    categories = [f"{MAX_PARTS}+" if parts == MAX_PARTS else str(parts) for parts in folded["parts"].unique().sort()]
    fig = plot.figure()
    for index, series in enumerate(_ordered(folded, "series", "messages")):
        rows = folded.filter(pl.col("series") == series)
        parts = rows["parts"].to_list()
        plot.add(fig, {
            "type": "bar",
            "x": [f"{MAX_PARTS}+" if count == MAX_PARTS else str(count) for count in parts],
            "y": rows["messages"].to_list(), "name": plot_text(series),
            "customdata": [f"{MAX_PARTS}+ parts" if count == MAX_PARTS else counted(count, "part") for count in parts],
            "marker": {"color": theme.COLORWAY[(index + 1) % len(theme.COLORWAY)]},
            "hovertemplate": f"%{{customdata}}, {plot_text(series)}: %{{y:,}} messages<extra></extra>",
        })
    plot.update_axes(fig, "x", {
        "type": "category", "categoryorder": "array", "categoryarray": categories,
        "title": {"text": "Parts per message"},
    })
    _finish(fig, title, y_title="Messages", barmode="stack")
    return fig


def failure_reasons(frame: pl.DataFrame) -> Figure:
    """Failed messages by reason (columns: error_code, error_title, messages) -> top-N bars."""
    title = f"Message failure reasons (messages), top {TOP_N}"
    if frame.is_empty():
        return empty_figure(title)
    labelled = frame.with_columns(
        pl.format("{} {}", pl.col("error_code").fill_null("—"), pl.col("error_title").fill_null("")).alias("label")
    )
    return _ranked_counts(labelled, "label", "messages", title, "messages", color=theme.BAD)


# --- Reconciliation ------------------------------------------------------------------------


# The two kinds of difference, in drawing order: (class, legend name, colour).
RECONCILIATION_CLASSES = (
    ("unexplained", "Not explained", theme.BAD),
    ("explained", "Explained by quarantined records", theme.OTHER_COLOR),
)


def reconciliation_differences(frame: pl.DataFrame) -> Figure:
    """Pipeline minus API cost per UTC day, explained by the quarantine or not
    (columns: day, currency, status, cost_difference) -> stacked bars per currency.

    Rows that match add nothing; every other row's difference goes to "explained by quarantined
    records" (status explained_by_quarantine) or "not explained" (any other status).
    """
    title = "Pipeline minus API cost per {unit} (UTC days): explained by quarantined records, or not"
    if frame.is_empty():
        return empty_figure(title.format(unit="day"))
    bucketed, unit = _bucket_days(frame)
    totals = (
        bucketed.filter(pl.col("status") != MATCH)
        .with_columns(
            pl.col("cost_difference").fill_null(Decimal(0)),
            pl.when(pl.col("status") == EXPLAINED)
            .then(pl.lit("explained")).otherwise(pl.lit("unexplained")).alias("class"),
        )
        .group_by("bucket", "class", "currency").agg(pl.col("cost_difference").sum()).sort("bucket")
    )
    if totals.is_empty():
        return empty_figure(title.format(unit=unit), "The pipeline's totals match the API's on every day")
    currencies, currency_note = _currencies(totals, value="cost_difference")
    fig = _currency_grid(currencies, shared_x=True)
    shown: set[str] = set()
    for row, currency in enumerate(currencies, start=1):
        for kind, name, color in RECONCILIATION_CLASSES:
            rows = totals.filter((pl.col("currency") == currency) & (pl.col("class") == kind))
            if rows.is_empty():
                continue
            plot.add(fig, {
                "type": "bar", "x": _iso(rows["bucket"]), "y": _floats(rows["cost_difference"]),
                "customdata": [format_money(v, currency) for v in rows["cost_difference"].to_list()],
                "name": name, "legendgroup": kind, "showlegend": kind not in shown, "marker": {"color": color},
                "hovertemplate": f"%{{x}}, {name.lower()}: %{{customdata}}<extra></extra>",
            }, row=row)
            shown.add(kind)
        plot.update_axes(
            fig, "y", {"title": {"text": f"Difference ({plot_text(currency)})"}, "zeroline": True,
                       "zerolinecolor": theme.AXIS}, row=row,
        )
    _finish(fig, title.format(unit=unit) + currency_note, barmode="relative", height=_grid_height(currencies))
    # The API dates its usage in UTC days, whatever the report time zone.
    _time_axis(fig, unit, "UTC", rows=len(currencies))
    return fig


# --- Alerts --------------------------------------------------------------------------------


def alert_marks(alerts: pl.DataFrame | None, rules: Sequence[str], tz: str) -> pl.DataFrame | None:
    """rpt_alerts rows (columns: rule, severity, currency, window_start, message, account), the rules a trend
    marks and the report time zone -> the alerts of those rules with the report day their window starts on
    (columns: day, rule, severity, currency, window_start, message, account); None for a warehouse without
    rpt_alerts."""
    if alerts is None:
        return None
    return alerts.filter(pl.col("rule").is_in(list(rules))).select(
        pl.col("window_start").dt.convert_time_zone(tz).dt.date().alias("day"),
        "rule", "severity", "currency", "window_start", "message", "account",
    )


def alerts_timeline(frame: pl.DataFrame) -> Figure:
    """Alerts (columns: rule, severity, window_start, message) -> a point per rule and window start
    (UTC), coloured by its worst severity, the alerts' messages on hover; the latest
    MAX_TIMELINE_ALERTS, the title saying how many there are when that leaves some out."""
    title = "Alerts over time, by rule (window start, UTC)"
    if frame.is_empty():
        return empty_figure(title, NO_ALERTS)
    ordered = frame.sort("window_start", "rule", "severity", "message")
    shown = ordered.tail(MAX_TIMELINE_ALERTS)
    if shown.height < ordered.height:
        title += f": the latest {shown.height:,} of {ordered.height:,} alerts"
    points: dict[str, dict[str, list[Any]]] = {}
    named = _names_accounts(shown)
    for (rule, start), rows in _groups(shown, "rule", "window_start"):
        worst = _worst(rows)
        point = points.setdefault(worst, {"x": [], "y": [], "customdata": []})
        point["x"].append(start.strftime("%Y-%m-%d %H:%M"))
        point["y"].append(plot_text(rule))
        point["customdata"].append(_alert_hover(f"{start:%Y-%m-%d %H:%M} UTC", rows, name_account=named))
    fig = plot.figure()
    for severity in sorted(points, key=_severity_rank):
        plot.add(fig, {
            "type": "scatter", **points[severity], "mode": "markers", "name": plot_text(severity),
            "marker": {"color": theme.severity_color(severity), "size": 11, "line": {"width": 1, "color": "#ffffff"}},
            "hovertemplate": "%{customdata}<extra></extra>",
        })
    rules = sorted({str(rule) for rule in shown["rule"].to_list()}, reverse=True)
    plot.update_axes(
        fig, "y", {"type": "category", "categoryorder": "array", "categoryarray": [plot_text(rule) for rule in rules]}
    )
    _finish(fig, title, x_title=zoned("Window start", "UTC"), height=max(theme.FIGURE_HEIGHT, 180 + 36 * len(rules)))
    _lone_time(fig, "day", ticked=False)
    return fig


def _mark_alerts(
    fig: Figure, marks: pl.DataFrame | None, buckets: pl.Series, unit: str, *, panels: int,
    currencies: Sequence[str] | None = None,
) -> None:
    """Mark each day (week, month: `unit`) of a trend on which alerts fired: a triangle of the worst severity
    atop a panel, whose hover lists their messages, and a dotted line down it.

    `currencies`: the currency of each panel, when the figure draws one per currency: an alert in a
    currency is marked on that currency's panel (none, when it has no panel). An alert in no currency
    (a volume rule's) concerns the traffic whatever it is billed in, so it is marked on every panel:
    atop the first alone it would read as that currency's. Without `currencies`, every alert is marked
    atop the first panel, its line down every panel.
    """
    if marks is None or marks.is_empty() or buckets.is_empty():
        return
    marked = (
        marks.with_columns(bucket=_truncate(pl.col("day"), unit))
        .filter(pl.col("bucket").is_between(buckets.min(), buckets.max()))
    )
    if currencies is None:
        lines = _mark_panel(fig, marked, unit, row=1, axis=panels + 1, line_ref="paper")
    else:
        lines = []
        for row, currency in enumerate(currencies, start=1):
            on_panel = marked.filter((pl.col("currency") == currency) | pl.col("currency").is_null())
            line_ref = f"{axis_id('y', row)} domain"
            lines += _mark_panel(fig, on_panel, unit, row=row, axis=panels + row, line_ref=line_ref)
    if lines:
        fig["layout"]["shapes"] = [*fig["layout"].get("shapes", []), *lines]


def _mark_panel(
    fig: Figure, marked: pl.DataFrame, unit: str, *, row: int, axis: int, line_ref: str
) -> list[dict[str, object]]:
    """The alerts of one panel (row `row`), their days in `bucket` -> a triangle per day atop the panel, on an
    invisible y axis of its own (number `axis`); and the dotted lines to draw down the height `line_ref`
    refers to."""
    x, colors, hovers = [], [], []
    named = _names_accounts(marked)
    for (bucket,), rows in _groups(marked, "bucket"):
        x.append(bucket.isoformat())
        colors.append(theme.severity_color(_worst(rows)))
        label = f"{bucket.isoformat()}" + ("" if unit == "day" else f" ({unit})")
        hovers.append(_alert_hover(label, rows, name_account=named))
    if not x:
        return []
    # An axis of its own over the panel keeps the triangles at its top whatever the data's scale.
    plot.update_layout(fig, **{
        f"yaxis{axis}": {"overlaying": axis_id("y", row), "range": [0, 1], "visible": False, "fixedrange": True}
    })
    # One legend entry for the marks of every panel.
    first = not any(trace.get("legendgroup") == "alerts" for trace in fig["data"])
    plot.add(fig, {
        "type": "scatter", "x": x, "y": [1.0] * len(x), "xaxis": axis_id("x", row), "yaxis": f"y{axis}",
        "mode": "markers", "name": "Alerts", "legendgroup": "alerts", "showlegend": first, "cliponaxis": False,
        "marker": {"symbol": "triangle-down", "size": 13, "color": colors, "line": {"width": 1, "color": "#ffffff"}},
        "customdata": hovers, "hovertemplate": "%{customdata}<extra></extra>",
    })
    return [
        {
            "type": "line", "xref": axis_id("x", row), "yref": line_ref, "x0": day, "x1": day, "y0": 0, "y1": 1,
            "layer": "below", "opacity": 0.6, "line": {"color": color, "width": 1, "dash": "dot"},
        }
        for day, color in zip(x, colors, strict=True)
    ]


def _mark_cut(fig: Figure, cut: CutDay | None, unit: str) -> str:
    """Hatch and lighten the bars of the day (week, month: `unit`) holding a cut day -> the title's note
    saying so ('' when no bar is)."""
    if cut is None:
        return ""
    bucket = cut.day if unit == "day" else pl.Series([cut.day]).dt.truncate("1w" if unit == "week" else "1mo")[0]
    x = bucket.isoformat()
    hit = False
    for trace in fig["data"]:
        if trace["type"] != "bar" or trace.get("x") is None:
            continue
        # a day as a date's ISO text, or a timestamp's at midnight
        cut_here = [str(value)[:10] == x for value in trace["x"]]
        if any(cut_here):
            hit = True
            plot.merge(trace, {"marker": {
                "opacity": [PARTIAL_OPACITY if short else 1.0 for short in cut_here],
                "pattern": {"shape": [PARTIAL_PATTERN if short else "" for short in cut_here]},
            }})
    if not hit:
        return ""
    if unit == "day":
        return CUT_NOTE.format(bucket=x, until=cut.until, unit=unit)
    return CUT_NOTE.format(bucket=f"the {unit} of {x}", until=f"{cut.until} on {cut.day.isoformat()}", unit=unit)


def _groups(frame: pl.DataFrame, *keys: str) -> list[tuple[tuple[Any, ...], pl.DataFrame]]:
    """Rows -> (key values, rows) per distinct key, in key order."""
    if frame.is_empty():
        return []
    parts = frame.sort(*keys).partition_by(*keys, maintain_order=True, as_dict=True)
    return list(parts.items())


def _severity_rank(severity: object) -> int:
    """A severity -> its rank, the worst first (an unknown one last)."""
    return len(SEVERITIES) - 1 - SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _worst(rows: pl.DataFrame) -> str:
    return str(min(rows["severity"].to_list(), key=_severity_rank))


def _names_accounts(frame: pl.DataFrame) -> bool:
    """Alerts drawn in one figure -> whether its hovers name each alert's account (as the tables do)."""
    return several_accounts(frame["account"])


def _alert_hover(header: str, rows: pl.DataFrame, *, name_account: bool = False) -> str:
    """A point's header and its alerts (rule, severity, window_start, message, and account with `name_account`)
    -> hover text, worst first, at most MAX_HOVER_ALERTS messages, every text from the data encoded for plotly."""
    accounts = rows["account"] if name_account else pl.Series([None] * rows.height)
    ordered = sorted(
        zip(*(rows[name] for name in ("severity", "rule", "window_start", "message")), accounts, strict=True),
        key=lambda row: (_severity_rank(row[0]), row[2], str(row[1]), str(row[3]), str(row[4])),
    )
    lines = [f"<b>{plot_text(header)}</b>: {counted(len(ordered), 'alert')}"]
    for severity, rule, _, message, account in ordered[:MAX_HOVER_ALERTS]:
        whose = "" if account is None else f"{plot_text(account)}: "
        lines.append(f"<b>{plot_text(severity)}</b> {whose}{plot_text(rule)}: {_wrapped(message)}")
    if len(ordered) > MAX_HOVER_ALERTS:
        lines.append(f"… and {len(ordered) - MAX_HOVER_ALERTS:,} more on the Alerts page")
    return "<br>".join(lines)


def _wrapped(text: object) -> str:
    """A message -> encoded for plotly in lines of about MESSAGE_WRAP characters, shortened past MESSAGE_LIMIT."""
    plain = shorten(MISSING if text is None else str(text), MESSAGE_LIMIT)
    lines = textwrap.wrap(plain, MESSAGE_WRAP, break_long_words=True, break_on_hyphens=False) or [""]
    return "<br>".join(plot_text(line) for line in lines)


# --- The empty state and shared helpers ----------------------------------------------------


def empty_figure(title: str, message: str = NO_DATA) -> Figure:
    """A title -> a figure that says there is no data, rather than drawing an empty axis."""
    fig = plot.figure(layout={"annotations": [{
        "text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
        "font": {"size": 16, "color": theme.MUTED},
    }]})
    plot.update_axes(fig, "x", {"visible": False})
    plot.update_axes(fig, "y", {"visible": False})
    _finish(fig, title, height=240, legend=False)
    return fig


@dataclass(frozen=True, slots=True)
class _Ranking:
    """The top N rows of a ranking plus, when more rows exist, one row folding the rest."""

    names: list[str]
    values: dict[str, list[Any]]
    is_other: list[bool]


def _top_n(
    frame: pl.DataFrame, label: str, value: str, also: Sequence[str] = (), *, fold: bool = True,
    rest: str | None = None,
) -> _Ranking:
    """Rows -> the TOP_N largest by `value` and (with `fold`) one 'Other' row summing the rest exactly.

    `rest` names a boolean column marking rows the report already folded; they join the 'Other' row.
    """
    columns = (value, *also)
    folded_before = frame.filter(pl.col(rest)) if rest else frame.clear()
    ranked = frame.filter(~pl.col(rest)) if rest else frame
    ordered = ranked.sort(value, label, descending=[True, False], nulls_last=True)
    room = TOP_N + 1 if fold and folded_before.is_empty() else TOP_N
    keep = ordered if ordered.height <= room else ordered.head(TOP_N)
    names = ["(none)" if name is None else str(name) for name in keep[label].to_list()]
    values = {column: keep[column].to_list() for column in columns}
    is_other = [False] * keep.height
    rest_rows = pl.concat([ordered.slice(keep.height), folded_before]) if fold else folded_before.clear()
    if rest_rows.height:
        names.append("Other" if folded_before.height else f"Other ({rest_rows.height:,})")
        for column, total in zip(columns, rest_rows.select(pl.col(*columns).sum()).row(0), strict=True):
            values[column].append(total)
        is_other.append(True)
    return _Ranking(names=names, values=values, is_other=is_other)


def _ranked_cost(frame: pl.DataFrame, title: str, *, fold: bool = True) -> Figure:
    """Rows (key, label, currency, cost, is_rest) -> horizontal top-N bars, one panel per currency.

    Panels stack vertically, each as tall as its bars: side by side, long names of one panel
    would run into the bars of the other.
    """
    title = f"{title}, top {TOP_N}"
    if frame.is_empty():
        return empty_figure(title)
    totals = frame.group_by("key", "currency", "is_rest").agg(pl.col("label").first(), pl.col("cost").sum())
    currencies, currency_note = _currencies(totals)
    rankings = [
        _top_n(totals.filter(pl.col("currency") == currency), "label", "cost", fold=fold, rest="is_rest")
        for currency in currencies
    ]
    fig, height = _ranking_grid(currencies, [len(ranking.names) for ranking in rankings])
    for row, (currency, ranking) in enumerate(zip(currencies, rankings, strict=True), start=1):
        costs = ranking.values["cost"]
        plot.add(fig, {
            "type": "bar", "y": _labels(ranking.names), "x": [float(cost) for cost in costs], "orientation": "h",
            "customdata": [
                [_hover_label(name), format_money(cost, currency)]
                for name, cost in zip(ranking.names, costs, strict=True)
            ],
            "marker": {"color": _rank_colors(ranking, theme.NEUTRAL)}, "showlegend": False,
            "hovertemplate": "%{customdata[0]}: %{customdata[1]}<extra></extra>", **RANK_BAR,
        }, row=row)
        _rank_names(fig, _labels(ranking.names), [float(cost) for cost in costs], row=row)
        plot.update_axes(fig, "x", {"title": {"text": f"Cost ({plot_text(currency)})"}}, row=row)
    _finish(fig, title + currency_note, height=height, legend=False)
    _rank_margin(fig)
    return fig


def _ranked_counts(
    frame: pl.DataFrame, label: str, value: str, title: str, unit: str, color: str = theme.NEUTRAL
) -> Figure:
    ranking = _top_n(frame.group_by(label).agg(pl.col(value).sum()), label, value)
    fig = plot.figure({
        "type": "bar", "y": _labels(ranking.names), "x": ranking.values[value], "orientation": "h",
        "customdata": [_hover_label(name) for name in ranking.names],
        "marker": {"color": _rank_colors(ranking, color)},
        "hovertemplate": f"%{{customdata}}: %{{x:,}} {unit}<extra></extra>", **RANK_BAR,
    })
    _rank_names(fig, _labels(ranking.names), ranking.values[value])
    _finish(fig, title, x_title=unit.capitalize(), legend=False, height=_ranking_height(len(ranking.names)))
    _rank_margin(fig)
    return fig


def _delivery(frame: pl.DataFrame, label: str, title: str) -> Figure:
    if frame.is_empty() or not frame["messages"].sum():
        return empty_figure(title)
    totals = frame.group_by(label).agg(pl.col("messages", "delivered").sum())
    ranking = _top_n(totals, label, "messages", also=("delivered",))
    messages, delivered = ranking.values["messages"], ranking.values["delivered"]
    rates = [done / sent if sent else None for sent, done in zip(messages, delivered, strict=True)]
    fig = plot.figure({
        "type": "bar", "y": _labels(ranking.names),
        "x": [None if rate is None else round(rate * 100, 2) for rate in rates], "orientation": "h",
        "customdata": [
            [_hover_label(name), format_rate(rate), format_count(done), format_count(sent)]
            for name, rate, done, sent in zip(ranking.names, rates, delivered, messages, strict=True)
        ],
        "marker": {"color": _rank_colors(ranking, theme.GOOD)},
        "text": [format_rate(rate) for rate in rates], "textposition": "inside", "insidetextanchor": "end",
        "textfont": {"color": "#ffffff"},
        "hovertemplate": "%{customdata[0]}: %{customdata[1]} delivered<br>"
        "%{customdata[2]} of %{customdata[3]} messages<extra></extra>", **RANK_BAR,
    })
    _rank_names(fig, _labels(ranking.names), [], span=[0, 100])
    _finish(fig, title, x_title="Delivered (%)", legend=False, height=_ranking_height(len(ranking.names)))
    _rank_margin(fig)
    return fig


def _rank_colors(ranking: _Ranking, color: str) -> list[str]:
    return [theme.OTHER_COLOR if other else color for other in ranking.is_other]


def _ranking_height(bars: int) -> int:
    return max(theme.FIGURE_HEIGHT, 110 + RANK_BAND_PX * bars)


def _ranking_grid(currencies: Sequence[str], bars: Sequence[int]) -> tuple[Figure, int]:
    """A ranking's currencies and each one's number of bars -> its figure of a panel per currency, each as tall as
    its bars, and the figure's height."""
    height = _ranking_height(sum(bars)) + PANEL_GAP_PX * (len(currencies) - 1)
    # The gap between panels in pixels holds one panel's axis title and the next one's title.
    gap = PANEL_GAP_PX / (height - 120) if len(currencies) > 1 else 0.0
    fig = plot.grid(
        len(currencies), row_heights=bars, vertical_spacing=gap,
        subplot_titles=[plot_text(currency) for currency in currencies] if len(currencies) > 1 else None,
    )
    return fig, height


def _rank_names(
    fig: Figure, labels: list[str], values: Sequence[float | int | None], *, row: int | None = None,
    span: list[float] | None = None,
) -> None:
    """Write a ranking panel's names (row `row`; its bars' labels and values), each atop its band above its bar,
    the first at the top, from the value axis' start; that axis spans `span`, or the values and zero.

    Text, not tick labels: names inside the plot as tick labels would hide the value axis' ticks under them.
    """
    axis = span or _value_range(values)
    plot.add(fig, {
        "type": "scatter", "x": [axis[0]] * len(labels), "y": labels, "mode": "text", "texttemplate": "%{y}",
        "textposition": "top right", "textfont": {"size": RANK_NAME_SIZE, "color": theme.TEXT}, "hoverinfo": "skip",
        "showlegend": False, "cliponaxis": False,
    }, row=row)
    plot.update_axes(fig, "y", {"autorange": "reversed", "type": "category", "showticklabels": False}, row=row)
    # Fixed: the names must start at the axis' start, which an autorange would move with the text's room.
    plot.update_axes(fig, "x", {"range": axis}, row=row)


def _value_range(values: Sequence[float | int | None]) -> list[float]:
    """Bar lengths -> the value axis' range: zero and every bar, with room past the longest."""
    shown = [float(value) for value in values if value is not None]
    low, high = min([0.0, *shown]), max([0.0, *shown])
    room = (high - low) * 0.05 or 1.0
    return [low - room if low < 0 else 0.0, high + room]


def _rank_margin(fig: Figure) -> None:
    """A ranking's names are inside the plot: the left margin needs no room for them."""
    plot.update_layout(fig, margin={"l": RANK_MARGIN_PX})


def _labels(names: Sequence[object]) -> list[str]:
    """Category labels -> short, escaped and unique (plotly merges equal categories into one bar)."""
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        label = plot_text("(none)" if name is None else name, LABEL_LIMIT)
        count = seen.get(label, 0) + 1
        seen[label] = count
        labels.append(label if count == 1 else f"{label} #{count}")
    return labels


def _hover_label(name: object) -> str:
    return plot_text("(none)" if name is None else name, HOVER_LIMIT)


def _bucket_days(frame: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """Rows with a `day` -> the same rows with a `bucket` (day, week or month) keeping at most MAX_POINTS."""
    first, last = frame["day"].min(), frame["day"].max()
    assert isinstance(first, date) and isinstance(last, date)
    span = (last - first).days + 1
    unit = "day" if span <= MAX_POINTS else "week" if span <= MAX_POINTS * 7 else "month"
    return frame.with_columns(bucket=_truncate(pl.col("day"), unit)), unit


def _truncate(days: pl.Expr, unit: str) -> pl.Expr:
    """Days -> the first day of their `unit` (day, week or month)."""
    if unit == "day":
        return days
    # polars weeks start on Monday, like the reports' weeks.
    return days.dt.truncate("1w" if unit == "week" else "1mo")


def _currencies(frame: pl.DataFrame, value: str = "cost") -> tuple[list[str], str]:
    """The currencies of a frame, largest total first, at most MAX_CURRENCIES (one panel each),
    and the title's note: the currencies drawn, or how many were left out."""
    totals = (
        frame.group_by("currency").agg(pl.col(value).abs().sum())
        .sort(value, "currency", descending=[True, False], nulls_last=True)
    )
    every = [str(currency) for currency in totals["currency"].to_list()]
    shown = every[:MAX_CURRENCIES]
    if len(every) > len(shown):
        return shown, f" ({len(shown)} largest of {len(every)} currencies)"
    return shown, f" ({', '.join(plot_text(currency) for currency in shown)})"


def _currency_grid(currencies: Sequence[str], *, shared_x: bool) -> Figure:
    if len(currencies) == 1:
        return plot.grid(1)
    return plot.grid(
        len(currencies), shared_xaxes=shared_x, vertical_spacing=0.1,
        subplot_titles=[plot_text(currency) for currency in currencies],
    )


def _grid_height(currencies: Sequence[str]) -> int:
    return theme.FIGURE_HEIGHT + 220 * (len(currencies) - 1)


def _ordered(frame: pl.DataFrame, column: str, value: str | None) -> list[str]:
    """Distinct values of a column -> largest total first, or without a value column in the
    house order of products (voice, sms, mms) and then alphabetically."""
    if value is None:
        known = {name: index for index, name in enumerate(theme.PRODUCT_ORDER)}
        distinct = {str(item) for item in frame[column].drop_nulls().unique().to_list()}
        return sorted(distinct, key=lambda item: (known.get(item, len(known)), item))
    totals = frame.group_by(column).agg(pl.col(value).sum()).sort(value, column, descending=[True, False])
    return [str(item) for item in totals[column].drop_nulls().to_list()]


def _iso(days: pl.Series) -> list[str]:
    return [day.isoformat() for day in days.to_list()]


def _floats(amounts: pl.Series) -> list[float | None]:
    """Exact amounts -> floats for the axis only (hover labels carry the exact strings)."""
    return [None if amount is None else float(amount) for amount in amounts.to_list()]


def _rounded(values: pl.Series, decimals: int) -> list[float | None]:
    return [None if value is None else round(float(value), decimals) for value in values.to_list()]


def _month_label(month: object) -> str:
    """A month as a date, datetime or 'YYYY-MM…' text -> 'YYYY-MM'."""
    if isinstance(month, date):
        return month.strftime("%Y-%m")
    return str(month)[:7]


def _time_axis(fig: Figure, unit: str, zone: str, *, rows: int = 1) -> None:
    """Title the x axis of a figure over time, its bottom panel's of `rows`, with its unit and zone: 'Day (UTC)'."""
    title = zoned(unit.capitalize(), plot_text(zone))
    plot.update_axes(fig, "x", {"title": {"text": title}}, row=None if rows == 1 else rows)
    if fig["layout"].get("xaxis", {}).get("type") != "category":
        # On a phone plotly ticks a date axis at the first of a month, at the plot's left edge, and its label
        # ran into the value axis' 0: a label past the plot's edge is left out (the others name month and year).
        plot.update_axes(fig, "x", {"ticklabeloverflow": "hide past domain"})
        _lone_time(fig, unit, ticked=True)


def _lone_time(fig: Figure, unit: str, *, ticked: bool) -> None:
    """Give a figure over time whose data all stand at one time a `unit` either side of it (`ticked`: a tick
    a `unit` apart), and its bars a `unit`'s width.

    plotly draws a lone bar on a date axis a millisecond wide and ranges the axis over that: a single day
    read as ticks in fractions of a second ('23:59:59.9996'), so did a single alert's window start.
    """
    times = {str(x) for trace in fig["data"] if trace.get("x") is not None for x in trace["x"]}
    if len(times) != 1:
        return
    (only,) = times
    at, step = datetime.fromisoformat(only), timedelta(days=BUCKET_DAYS[unit])
    plot.update_axes(fig, "x", {"range": [(at - step).isoformat(sep=" "), (at + step).isoformat(sep=" ")]})
    if ticked:
        # the year too: plotly names it on the first tick, which falls on the axis' edge and is hidden
        plot.update_axes(fig, "x", {
            "tick0": only, "dtick": "M1" if unit == "month" else BUCKET_DAYS[unit] * DAY_MS,
            "tickformat": "%b %Y" if unit == "month" else "%b %-d, %Y",
        })
    for trace in fig["data"]:
        if trace["type"] == "bar":
            trace["width"] = BAR_SHARE * BUCKET_DAYS[unit] * DAY_MS


def _finish(
    fig: Figure,
    title: str,
    *,
    height: int = theme.FIGURE_HEIGHT,
    x_title: str | None = None,
    y_title: str | None = None,
    barmode: str | None = None,
    legend: bool = True,
) -> None:
    """Apply the house template, title, size and axis titles to a figure."""
    plot.update_layout(
        fig, template=theme.TEMPLATE, title={"text": title}, height=height, showlegend=legend, hovermode="closest",
    )
    if legend:
        # A line of its own under the title, level with the plot's left edge: a long title
        # and a long legend never overlap, whatever the figure's width.
        plot.update_layout(
            fig,
            legend={"yref": "container", "y": 1 - LEGEND_TOP_PX / height, "yanchor": "top",
                    "xref": "paper", "x": 0, "xanchor": "left", "traceorder": "normal"},
            margin={"t": LEGEND_MARGIN_PX},
        )
    if barmode:
        plot.update_layout(fig, barmode=barmode)
    if x_title:
        plot.update_axes(fig, "x", {"title": {"text": x_title}})
    if y_title:
        plot.update_axes(fig, "y", {"title": {"text": y_title}})
