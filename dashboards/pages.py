"""Dashboards stage: the page specs — which `rpt_` table feeds which figure, table or tile row.

This is the one place that knows the report tables' names and columns: a `Source` maps the
column names a figure function documents to the columns of its `rpt_` table, so a renamed
report column is a one-line change here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from dashboards import figures, tables
from dashboards.plot import Figure
from pipelines.alerts import ALERT_COLUMNS


@dataclass(frozen=True, slots=True)
class Source:
    """Rows of one `rpt_` table: the table and its (frame column, table column) pairs, whether a warehouse
    without it (built by an older version) still renders, the blocks reading it asking for a build, and whether
    its frame keeps the table's account column when it has one (`dashboards.accounts`)."""

    table: str
    columns: tuple[tuple[str, str], ...]
    required: bool = True
    keeps_account: bool = False

    @property
    def mapping(self) -> dict[str, str]:
        """{frame column: table column}."""
        return dict(self.columns)


def source(table: str, *columns: str, **renamed: str) -> Source:
    """A table, its columns kept as named, and frame_name=table_column renames -> a Source."""
    mapping = {column: column for column in columns} | renamed
    return Source(table=table, columns=tuple(mapping.items()))


@dataclass(frozen=True, slots=True)
class FigureSpec:
    """One figure: its anchor, its rows, the function drawing it, whether it spans the page,
    whether it sets months side by side (then `build` also takes `partial`, the partial months),
    whether it draws an amount per day (then `build` also takes `cut`, the last day when it is
    synced only in part, see `figures.CutDay`), whether its axis is of report days, months or hours
    (then `build` also takes `zone`, the report time zone, which the axis names), and the alert rules
    it marks on its days (then `build` also takes `markers`, see `figures.alert_marks`)."""

    key: str
    source: Source
    build: Callable[..., Figure]
    wide: bool = False
    by_month: bool = False
    by_day: bool = False
    by_zone: bool = False
    alert_rules: tuple[str, ...] = ()
    # False: the report's rows of several accounts do not combine (see dashboards.accounts); drawn per account only.
    all_accounts: bool = True


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One HTML table: its anchor, its rows, the function making its cells, whether it lists
    months (then `build` also takes `partial`, the partial months) and whether it tells open
    alerts (then `build` also takes `after`, the instant from which an alert is open)."""

    key: str
    source: Source
    build: Callable[..., tables.Table]
    by_month: bool = False
    by_open: bool = False
    all_accounts: bool = True


@dataclass(frozen=True, slots=True)
class TilesSpec:
    """A row of headline tiles built from one or more sources, passed in order (with `by_open`,
    `build` also takes `after`, the instant from which an alert is open)."""

    sources: tuple[Source, ...]
    build: Callable[..., list[tables.Tile]]
    by_open: bool = False


Block = FigureSpec | TableSpec | TilesSpec


@dataclass(frozen=True, slots=True)
class Page:
    """One HTML page: its file name (slug.html), title, one-line summary and blocks, in order."""

    slug: str
    title: str
    summary: str
    blocks: tuple[Block, ...]

    @property
    def filename(self) -> str:
        """The page's file name in the site."""
        return f"{self.slug}.html"

    @property
    def figures(self) -> tuple[FigureSpec, ...]:
        """The figure blocks of the page, in order."""
        return tuple(block for block in self.blocks if isinstance(block, FigureSpec))

    def sources(self) -> list[Source]:
        """Every source the page reads, each once, in order of first use."""
        found: list[Source] = []
        for block in self.blocks:
            for item in block.sources if isinstance(block, TilesSpec) else (block.source,):
                if item not in found:
                    found.append(item)
        return found


# --- The report tables and the columns the dashboards read ---------------------------------
# Monthly reports are read whole: a page shows the warehouse's whole period.

BUILD_INFO = source("rpt_build_info", "first_report_date", "last_report_date", "report_timezone")
STATEMENT = source(
    "rpt_finance_monthly_statement", "month", "product", "direction", "currency", "records",
    "billed_duration_secs", "parts", "cost",
)
DAILY_COST = source("rpt_finance_daily_cost", "product", "currency", "records", "cost", day="report_date")
COST_BY_COUNTRY = source(
    "rpt_finance_cost_by_country", "month", "currency", "country_rank", "country_label", "records", "calls",
    "billed_duration_secs", "cost",
)
# Each account's connections and profiles are its own: the all-accounts rankings name their accounts.
COST_BY_CONNECTION = replace(
    source("rpt_finance_cost_by_connection", "connection_id", "connection_name", "currency", "cost"), keeps_account=True
)
COST_BY_PROFILE = replace(
    source("rpt_finance_cost_by_messaging_profile", "messaging_profile_id", "messaging_profile_name", "currency", "cost"),
    keeps_account=True,
)
COST_BY_TAG = source("rpt_finance_cost_by_tag", "tag", "currency", "cost")
MONTH_OVER_MONTH = source("rpt_finance_month_over_month", "month", "product", "currency", "cost", "cost_change_pct")
VOICE_QUALITY_DAILY = source(
    "rpt_voice_quality_daily", "calls", "answered_calls", "asr", "ner", "short_call_share", "acd_secs",
    day="report_date",
)
VOICE_QUALITY_BY_COUNTRY = source(
    "rpt_voice_quality_by_country", "country_code", "calls", "answered_calls", "asr", "ner", "acd_secs"
)
CALL_OUTCOMES = source("rpt_call_outcomes_daily", "hangup_cause", "sip_response_code", "calls")
CALLS_BY_HOUR = source("rpt_calls_by_weekday_hour", "weekday", "hour", "calls")
CONCURRENCY = source("rpt_peak_concurrent_calls_daily", "peak_concurrent_calls", day="report_date")
DELIVERY_BY_CARRIER = source("rpt_message_delivery_by_carrier", "carrier", "messages", "delivered")
DELIVERY_BY_COUNTRY = source("rpt_message_delivery_by_country", "country_code", "messages", "delivered")
MESSAGE_PARTS = source("rpt_message_parts", "message_type", "encoding", "parts", "messages")
MESSAGE_FAILURES = source("rpt_message_failure_reasons", "error_code", "error_title", "messages")
RECONCILIATION = source(
    "rpt_reconciliation_daily", "product", "currency", "pipeline_records", "quarantined_records", "api_records",
    "pipeline_cost", "quarantined_cost", "api_cost", "status", day="utc_date", cost_difference="cost_diff",
)

# Built since alerts exist: an older warehouse renders every other page and asks for a build.
ALERTS = replace(source("rpt_alerts", *ALERT_COLUMNS), required=False)

# The period a site covers and the calendar its days are in.
PERIOD = BUILD_INFO

# The rules each trend marks on the days they fired: cost and volume on the overview, call
# quality on its own trend.
OVERVIEW_ALERT_RULES = (
    "cost_spike", "after_hours", "high_risk_destination", "new_destination", "message_volume_spike",
)
VOICE_QUALITY_ALERT_RULES = ("asr_drop", "short_call_burst")


PAGES: tuple[Page, ...] = (
    Page(
        slug="overview",
        title="Overview",
        summary="Headline totals of the period and the daily trend of volume and cost.",
        blocks=(
            TilesSpec((STATEMENT, VOICE_QUALITY_DAILY, DELIVERY_BY_CARRIER), tables.overview_tiles),
            FigureSpec(
                "daily-volume", DAILY_COST, figures.daily_volume, wide=True, by_day=True, by_zone=True,
                alert_rules=OVERVIEW_ALERT_RULES,
            ),
            FigureSpec(
                "daily-cost", DAILY_COST, figures.daily_cost, wide=True, by_day=True, by_zone=True,
                alert_rules=OVERVIEW_ALERT_RULES,
            ),
        ),
    ),
    Page(
        slug="finance",
        title="Finance",
        summary="The monthly statement, cost by product, country, connection, profile and tag, month over month.",
        blocks=(
            TableSpec("statement", STATEMENT, tables.finance_statement, by_month=True),
            FigureSpec(
                "month-over-month", MONTH_OVER_MONTH, figures.month_over_month, wide=True, by_month=True, by_zone=True
            ),
            FigureSpec("cost-by-product", STATEMENT, figures.cost_by_product),
            # Each account's top 10 countries and the rest: a country in one account's rest cannot be added up.
            FigureSpec("cost-by-country", COST_BY_COUNTRY, figures.cost_by_country, all_accounts=False),
            FigureSpec("cost-by-connection", COST_BY_CONNECTION, figures.cost_by_connection),
            FigureSpec("cost-by-messaging-profile", COST_BY_PROFILE, figures.cost_by_messaging_profile),
            FigureSpec("cost-by-tag", COST_BY_TAG, figures.cost_by_tag, wide=True),
        ),
    ),
    Page(
        slug="voice-quality",
        title="Voice quality",
        summary="ASR, ACD and NER by day and country, hangup causes, busy hours and peak concurrency.",
        blocks=(
            FigureSpec(
                "call-quality-daily", VOICE_QUALITY_DAILY, figures.call_quality_daily, wide=True, by_zone=True,
                alert_rules=VOICE_QUALITY_ALERT_RULES,
            ),
            FigureSpec("quality-by-country", VOICE_QUALITY_BY_COUNTRY, figures.quality_by_country),
            FigureSpec("hangup-causes", CALL_OUTCOMES, figures.hangup_causes),
            FigureSpec("calls-heatmap", CALLS_BY_HOUR, figures.calls_heatmap, by_zone=True),
            # Accounts' peaks need not coincide: neither their sum nor their maximum is the combined peak.
            FigureSpec(
                "peak-concurrency", CONCURRENCY, figures.peak_concurrency, by_day=True, by_zone=True,
                all_accounts=False,
            ),
        ),
    ),
    Page(
        slug="messaging",
        title="Messaging",
        summary="Delivery by carrier and country, parts per message and failure reasons.",
        blocks=(
            FigureSpec("delivery-by-carrier", DELIVERY_BY_CARRIER, figures.delivery_by_carrier),
            FigureSpec("delivery-by-country", DELIVERY_BY_COUNTRY, figures.delivery_by_country),
            FigureSpec("parts", MESSAGE_PARTS, figures.parts_distribution),
            FigureSpec("failure-reasons", MESSAGE_FAILURES, figures.failure_reasons),
        ),
    ),
    Page(
        slug="reconciliation",
        title="Reconciliation",
        summary="The pipeline's daily totals against the API's own usage: what the quarantine explains and what not.",
        blocks=(
            TilesSpec((RECONCILIATION,), tables.reconciliation_tiles),
            FigureSpec("reconciliation-differences", RECONCILIATION, figures.reconciliation_differences, wide=True),
            # One account's day × product × currency per row: the rows of several would read as repeats.
            TableSpec("differences", RECONCILIATION, tables.reconciliation_table, all_accounts=False),
        ),
    ),
    Page(
        slug="alerts",
        title="Alerts",
        summary="What the alert rules found: the alerts still open, then every alert over time, each with its message.",
        blocks=(
            TilesSpec((ALERTS,), tables.alert_tiles, by_open=True),
            TableSpec("open-alerts", ALERTS, tables.open_alerts, by_open=True),
            FigureSpec("alerts-timeline", ALERTS, figures.alerts_timeline, wide=True),
            TableSpec("all-alerts", ALERTS, tables.alert_list),
        ),
    ),
)


def all_sources(pages: tuple[Page, ...] = PAGES) -> list[Source]:
    """Every source of the pages (and the period), each once."""
    found: list[Source] = [PERIOD]
    for page in pages:
        for item in page.sources():
            if item not in found:
                found.append(item)
    return found
