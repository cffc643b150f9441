"""Dashboards stage: pure functions from report frames to the tables and tiles pages show.

Every cell is a display string made from the exact value (money from `Decimal`, to the cent),
so a page shows what finance exports, rounded. Cells are plain text: the template escapes them.
Tables are capped so a page stays small whatever the data volume; the statement by whole
months only: a month with rows left out would not add up to its totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import polars as pl

from dashboards.formatting import (
    MISSING,
    format_billed_minutes,
    format_count,
    format_day,
    format_instant,
    format_minutes,
    format_money,
    format_rate,
    is_voice,
    month_label,
    product_name,
)
from pipelines.alerts import OPEN_DAYS, OPEN_MEANING, SEVERITIES, Alert, OpenCondition, open_conditions
from pipelines.errors import counted
from pipelines.reports import MonthCoverage

MAX_TABLE_ROWS = 200
STATEMENT_MONTHS = 12
# Rows of the statement's months (with their totals) a page holds; the latest month is always shown.
MAX_STATEMENT_ROWS = 1000
MAX_TILE_CURRENCIES = 4


@dataclass(frozen=True, slots=True)
class Cell:
    """One table cell: its text, whether it is a number (right-aligned) and an optional CSS class."""

    text: str
    numeric: bool = False
    css: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table of display cells, with a note under it (what was left out, units)."""

    title: str
    headers: tuple[str, ...]
    numeric: tuple[bool, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""
    empty_message: str = "No data for this period"


@dataclass(frozen=True, slots=True)
class Tile:
    """One headline number: a label, its exact value, and a line of context."""

    label: str
    value: str
    detail: str = ""
    css: str = ""


def _table(title: str, columns: tuple[tuple[str, bool], ...], rows: list[tuple[Cell, ...]], note: str = "",
           empty_message: str = "No data for this period") -> Table:
    return Table(
        title=title,
        headers=tuple(name for name, _ in columns),
        numeric=tuple(numeric for _, numeric in columns),
        rows=tuple(rows),
        note=note,
        empty_message=empty_message,
    )


def _month(value: object) -> str:
    return value.strftime("%Y-%m") if hasattr(value, "strftime") else str(value)[:7]


def finance_statement(frame: pl.DataFrame, partial: Mapping[str, MonthCoverage] | None = None) -> Table:
    """The monthly statement (columns: month, product, direction, currency, records,
    billed_duration_secs, parts, cost) and the partial months -> the latest months, newest first,
    each in full and followed by its total per currency, a partial month labelled as one."""
    columns = (
        ("Month", False), ("Product", False), ("Direction", False), ("Currency", False),
        ("Records", True), ("Billed minutes", True), ("Parts", True), ("Cost", True),
    )
    title = "Monthly statement"
    if frame.is_empty():
        return _table(title, columns, [])
    partial = partial or {}
    labelled = frame.with_columns(pl.col("month").map_elements(_month, return_dtype=pl.String()).alias("month"))
    months = sorted(set(labelled["month"].to_list()), reverse=True)
    measures = ("records", "billed_duration_secs", "parts", "cost")
    rows: list[tuple[Cell, ...]] = []
    shown = []
    for month in months[:STATEMENT_MONTHS]:
        in_month = labelled.filter(pl.col("month") == month)
        size = in_month.height + in_month["currency"].n_unique()
        if shown and len(rows) + size > MAX_STATEMENT_ROWS:
            break
        shown.append(month)
        label = month_label(month, partial)
        css = "partial" if month in partial else ""
        for product, direction, currency, records, billed, parts, cost in (
            in_month.sort("product", "direction", "currency")
            .select("product", "direction", "currency", *measures).iter_rows()
        ):
            voice = is_voice(product)
            rows.append((
                Cell(label, css=css), Cell(str(product)), Cell(str(direction)), Cell(str(currency)),
                Cell(format_count(records), True), Cell(format_billed_minutes(billed, calls=voice), True),
                Cell(format_count(parts) if not voice else MISSING, True), Cell(format_money(cost), True),
            ))
        # Totals from the exact amounts, then rounded: a total may differ from its rounded rows by cents.
        totals = in_month.group_by("currency").agg(pl.col(*measures).sum()).sort("currency")
        for currency, records, billed, parts, cost in totals.select("currency", *measures).iter_rows():
            rows.append((
                Cell(f"Total {label}", css=f"total {css}".strip()), Cell("", css="total"), Cell("", css="total"),
                Cell(str(currency), css="total"), Cell(format_count(records), True, "total"),
                Cell(format_minutes(billed), True, "total"), Cell(format_count(parts), True, "total"),
                Cell(format_money(cost), True, "total"),
            ))
    note = (
        "Cost in the row's currency, rounded to the cent (totals from the exact amounts); "
        "`cdr report finance --month YYYY-MM` exports a month exactly. Billed minutes are billed seconds / 60; "
        "— marks what does not apply: minutes to messages, parts to calls."
    )
    if len(shown) < len(months):
        note += f" Showing the latest {len(shown)} of {len(months)} months, each in full."
    shown_partial = [month for month in shown if month in partial]
    if shown_partial:
        note += "".join(f" {month_label(month, partial)}: {partial[month].reason()}." for month in shown_partial)
        note += " A partial month holds only the days named and does not compare with whole months."
    return _table(title, columns, rows, note)


# rpt_reconciliation_daily's statuses: a match, a difference the quarantined records explain,
# and the unexplained rest.
MATCH = "match"
EXPLAINED = "explained_by_quarantine"
STATUS_LABELS = {
    MATCH: "match",
    EXPLAINED: "explained",
    "mismatch": "mismatch",
    "missing_in_api": "missing in API",
    "missing_in_lake": "missing in lake",
}


def reconciliation_table(frame: pl.DataFrame) -> Table:
    """Reconciliation rows (columns: day, product, currency, pipeline_records, quarantined_records,
    api_records, pipeline_cost, quarantined_cost, api_cost, cost_difference, status) -> every row
    not matching: the unexplained first, then those the quarantine explains, newest first in each."""
    columns = (
        ("UTC day", False), ("Product", False), ("Currency", False), ("Status", False),
        ("Pipeline records", True), ("Quarantined", True), ("API records", True),
        ("Pipeline cost", True), ("Quarantined cost", True), ("API cost", True), ("Difference", True),
    )
    title = "Differences between the pipeline and the API's usage totals"
    if frame.is_empty():
        return _table(title, columns, [])
    flagged = (
        frame.filter(pl.col("status") != MATCH)
        .with_columns((pl.col("status") == EXPLAINED).alias("explained"))
        .sort(["explained", "day", "product", "currency"], descending=[False, True, False, False])
    )
    if flagged.is_empty():
        return _table(
            title, columns, [],
            empty_message=f"All {frame.height:,} day × product × currency totals match the API exactly.",
        )
    shown = flagged.head(MAX_TABLE_ROWS)
    money = zip(
        *(
            [format_money(amount) for amount in shown[column].to_list()]
            for column in ("pipeline_cost", "quarantined_cost", "api_cost", "cost_difference")
        ),
        strict=True,
    )
    rows = []
    for (day, product, currency, status, explained, ours, held, theirs), costs in zip(
        shown.select(
            "day", "product", "currency", "status", "explained", "pipeline_records", "quarantined_records",
            "api_records",
        ).iter_rows(),
        money,
        strict=True,
    ):
        css = "explained" if explained else "flag"
        our_cost, held_cost, their_cost, difference = costs
        rows.append((
            Cell(format_day(day)), Cell(product_name(product)), Cell(str(currency)),
            Cell(STATUS_LABELS.get(status, str(status)), css=css),
            Cell(format_count(ours), True), Cell(format_count(held), True), Cell(format_count(theirs), True),
            Cell(our_cost, True), Cell(held_cost, True), Cell(their_cost, True), Cell(difference, True, css),
        ))
    unexplained = flagged.height - int(flagged["explained"].sum())
    note = (
        "Explained: pipeline + quarantined = API on records, billed seconds or parts, and cost "
        "(the API counts the malformed records the sync set aside). Difference = pipeline cost − API cost; "
        "— marks a side without data or a quarantined cost that could not be read. Days are UTC, as the API's."
    )
    if flagged.height > shown.height:
        note += (
            f" Showing {shown.height:,} of {flagged.height:,} rows that differ"
            f" ({unexplained:,} not explained, listed first)."
        )
    return _table(title, columns, rows, note)


def overview_tiles(statement: pl.DataFrame, quality: pl.DataFrame, delivery: pl.DataFrame) -> list[Tile]:
    """The statement (product, currency, records, billed_duration_secs, parts, cost), voice quality
    (calls, answered_calls) and delivery (messages, delivered) -> the headline tiles of the period."""
    tiles = []
    if statement.is_empty():
        tiles.append(Tile("Cost", MISSING, "no data for this period"))
    else:
        costs = statement.group_by("currency").agg(pl.col("cost").sum())
        ranked = costs.sort("cost", "currency", descending=[True, False]).head(MAX_TILE_CURRENCIES)
        for currency, cost in ranked.iter_rows():
            tiles.append(Tile(f"Cost ({currency})", format_money(cost), "calls and messages, to the cent"))
    voice = statement.filter(pl.col("product") == "voice")
    messages = statement.filter(pl.col("product") != "voice")
    tiles.append(Tile(
        "Calls", format_count(_total(voice, "records")),
        f"{format_minutes(_total(voice, 'billed_duration_secs'))} billed minutes",
    ))
    tiles.append(Tile(
        "Messages", format_count(_total(messages, "records")),
        counted(_total(messages, 'parts'), 'billed part'),
    ))
    calls, answered = _total(quality, "calls"), _total(quality, "answered_calls")
    tiles.append(Tile(
        "Answer-seizure ratio", format_rate(answered / calls if calls else None),
        f"{format_count(answered)} answered of {counted(calls, 'call')}",
    ))
    sent, delivered = _total(delivery, "messages"), _total(delivery, "delivered")
    tiles.append(Tile(
        "Delivery rate", format_rate(delivered / sent if sent else None),
        f"{format_count(delivered)} delivered of {counted(sent, 'outbound message')}",
    ))
    return tiles


def reconciliation_tiles(frame: pl.DataFrame) -> list[Tile]:
    """Reconciliation rows (day, currency, status, quarantined_records, cost_difference) -> compared,
    matching, explained by the quarantine, not explained, and the net unexplained difference."""
    days = frame["day"].n_unique()
    matching = frame.filter(pl.col("status") == MATCH).height
    explained = frame.filter(pl.col("status") == EXPLAINED)
    unexplained = frame.filter((pl.col("status") != MATCH) & (pl.col("status") != EXPLAINED))
    held = int(explained["quarantined_records"].sum() or 0)
    tiles = [
        Tile("Totals compared", format_count(frame.height), f"UTC day × product × currency over {counted(days, 'day')}"),
        Tile("Match", format_count(matching), "pipeline = API on every total", css="good" if matching else ""),
        Tile(
            "Explained by quarantine", format_count(explained.height),
            f"{counted(held, 'quarantined malformed record')} account for the difference"
            if explained.height else "no difference needed explaining",
        ),
        Tile(
            "Not explained", format_count(unexplained.height),
            _status_summary(unexplained) if unexplained.height else "every difference is accounted for",
            css="bad" if unexplained.height else "good",
        ),
    ]
    if not unexplained.is_empty():
        net = (
            unexplained.with_columns(pl.col("cost_difference").fill_null(Decimal(0)))
            .group_by("currency").agg(pl.col("cost_difference").sum()).sort("currency")
        )
        for currency, difference in net.head(MAX_TILE_CURRENCIES).iter_rows():
            tiles.append(Tile(
                f"Unexplained difference ({currency})", format_money(difference), "pipeline − API, rows not explained",
                css="bad",
            ))
    return tiles


# --- Alerts --------------------------------------------------------------------------------

ALERT_TIMES_NOTE = "Windows are UTC, the end exclusive."


def alert_tiles(frame: pl.DataFrame, after: datetime | None) -> list[Tile]:
    """rpt_alerts rows and the instant from which an alert is open (None: no data) -> the open
    conditions by severity, and every alert the warehouse holds."""
    alerts = _alerts(frame)
    opened = open_conditions(alerts, after) if after is not None else []
    counts = {severity: sum(run.latest.severity == severity for run in opened) for severity in SEVERITIES}
    worst = "bad" if counts["critical"] or counts["warning"] else ""
    tiles = [
        Tile(
            "Open alerts", format_count(len(opened)),
            ", ".join(f"{counts[severity]:,} {severity}" for severity in reversed(SEVERITIES) if counts[severity])
            if opened else f"no rule fired in the last {OPEN_DAYS} days of data",
            css=worst or "good",
        ),
    ]
    if alerts:
        first = min(alert.window_start for alert in alerts)
        last = max(alert.window_start for alert in alerts)
        rules = len({alert.rule for alert in alerts})
        tiles.append(Tile(
            "Alerts recorded", format_count(len(alerts)),
            f"by {rules:,} rule{'s' if rules != 1 else ''}, "
            f"{format_day(first.date())} to {format_day(last.date())} (UTC)",
        ))
    else:
        tiles.append(Tile("Alerts recorded", "0", "no rule has fired on this data"))
    return tiles


def open_alerts(frame: pl.DataFrame, after: datetime | None) -> Table:
    """rpt_alerts rows and the instant from which an alert is open (None: no data) -> the open
    conditions, worst first, each with since when it is on and its latest alert's message."""
    columns = (
        ("Severity", False), ("Rule", False), ("Scope", False), ("Since", False), ("Latest window", False),
        ("Alerts", True), ("Message", False),
    )
    title = "Open alerts"
    note = f"{OPEN_MEANING} {ALERT_TIMES_NOTE} Alerts: how many windows the current run holds."
    if after is None:
        return _table(title, columns, [], note)
    alerts = _alerts(frame)
    opened = open_conditions(alerts, after)
    several = several_accounts(alert.account for alert in alerts)
    rows = [
        (
            _severity_cell(run.latest.severity), Cell(run.latest.rule),
            Cell(alert_scope(run.latest, several), css="wrap"),
            Cell(format_instant(run.since)), Cell(_window(run.latest)), Cell(format_count(run.alerts), True),
            Cell(run.latest.message, css="message"),
        )
        for run in opened[:MAX_TABLE_ROWS]
    ]
    if len(opened) > len(rows):
        note += f" Showing the worst and newest {len(rows):,} of {len(opened):,} open conditions."
    return _table(
        title, columns, rows, note,
        empty_message=(
            f"No open alerts: no rule fired in the last {OPEN_DAYS} days of data (from {format_instant(after)})."
        ),
    )


def alert_list(frame: pl.DataFrame) -> Table:
    """rpt_alerts rows -> every alert, newest first, with its scope, figures and message (at most
    MAX_TABLE_ROWS, the note saying how to list the rest)."""
    columns = (
        ("Window", False), ("Severity", False), ("Rule", False), ("Scope", False),
        ("Observed", True), ("Baseline", True), ("Threshold", True), ("Message", False),
    )
    title = "Every alert, newest first"
    note = f"{ALERT_TIMES_NOTE} Observed, baseline and threshold are in the unit each rule's message names."
    alerts = sorted(_alerts(frame), key=lambda a: (a.window_start, a.window_end, a.rule, a.alert_key), reverse=True)
    several = several_accounts(alert.account for alert in alerts)
    if not alerts:
        return _table(title, columns, [], note, empty_message="No alert fired in this period.")
    rows = [
        (
            Cell(_window(alert)), _severity_cell(alert.severity), Cell(alert.rule),
            Cell(alert_scope(alert, several), css="wrap"),
            Cell(_number(alert.observed), True), Cell(_number(alert.baseline), True),
            Cell(_number(alert.threshold), True), Cell(alert.message, css="message"),
        )
        for alert in alerts[:MAX_TABLE_ROWS]
    ]
    if len(alerts) > len(rows):
        # Bare dates are midnight in CDR_TIMEZONE: a day either side covers every UTC window.
        start = (min(a.window_start for a in alerts) - timedelta(days=1)).date()
        end = (max(a.window_end for a in alerts) + timedelta(days=1)).date()
        note += (
            f" Showing the newest {len(rows):,} of {len(alerts):,} alerts; "
            f"`cdr alerts --start {start} --end {end} --format csv` lists every one."
        )
    return _table(title, columns, rows, note)


def alert_scope(alert: Alert, name_account: bool = False) -> str:
    """An alert -> where it fired, in words: 'voice outbound, country DE, connection Trunk 1, USD' or
    'messages, USD' (after 'account acme: ' with `name_account`, on the pages of several accounts)."""
    if name_account:
        return f"account {alert.account}: {alert_scope(alert)}"
    # An alert's product is voice, sms or mms, or null when it concerns messages of every type (README, Alerts;
    # queries/tests/alerts_values_valid.sql): no rule's scope is a whole account.
    parts = [" ".join(part for part in (product_name(alert.product), alert.direction) if part)]
    if alert.country_code:
        parts.append(f"country {alert.country_code}")
    if alert.connection_id or alert.connection_name:
        parts.append(f"connection {alert.connection_name or alert.connection_id}")
    if alert.carrier:
        parts.append(f"carrier {alert.carrier}")
    if alert.currency:
        parts.append(alert.currency)
    return ", ".join(parts)


def several_accounts(accounts: Iterable[object]) -> bool:
    """The accounts of the alerts a block shows -> whether it names each alert's account (the all-accounts pages:
    their messages do not say whose they are)."""
    return len(set(accounts)) > 1


def _alerts(frame: pl.DataFrame) -> list[Alert]:
    return [Alert(**row) for row in frame.iter_rows(named=True)]


def _severity_cell(severity: str) -> Cell:
    return Cell(severity, css=f"severity sev-{severity}" if severity in SEVERITIES else "severity")


def _window(alert: Alert) -> str:
    """An alert's window -> '2026-10-01 00:00 UTC, 24 h' (its start, in UTC, and its length)."""
    hours = (alert.window_end - alert.window_start).total_seconds() / 3600
    length = f"{hours:,.0f} h" if hours == int(hours) else f"{hours:,.2f} h"
    return f"{format_instant(alert.window_start)}, {length}"


def _number(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.2f}"


def _status_summary(flagged: pl.DataFrame) -> str:
    counts = flagged.group_by("status").len().sort("status")
    return ", ".join(f"{count:,} {STATUS_LABELS.get(status, status)}" for status, count in counts.iter_rows())


def _total(frame: pl.DataFrame, column: str) -> int:
    if frame.is_empty():
        return 0
    total = frame[column].sum()
    return int(total or 0)
