"""Dashboards stage: a warehouse of several accounts -> the frames of each account's pages and of the
all-accounts pages.

Each `rpt_` table keeps one row set per account. An account's pages read its rows alone. The
all-accounts pages read every account's rows: the figures and tiles add counts, minutes and cost
(per currency) and weigh ratios by their denominators, so most frames pass as they are; a frame
whose rows are one per key (the statement, month over month) is summed here first, its change
recomputed from the sums. What cannot be combined from the reports (an account's top 10 countries,
a daily peak of concurrent calls) is drawn per account only (`all_accounts=False` in `pages.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import polars as pl

from dashboards.formatting import month_before
from dashboards.pages import BUILD_INFO, DAILY_COST, MONTH_OVER_MONTH, STATEMENT, Source

ACCOUNT = "account"


def accounts_of(frames: Mapping[Source, pl.DataFrame]) -> list[str]:
    """Frames read with their account column -> every account with a row in any of them, sorted."""
    found: set[str] = set()
    for frame in frames.values():
        if ACCOUNT in frame.columns:
            found.update(str(name) for name in frame[ACCOUNT].drop_nulls().unique().to_list())
    return sorted(found)


def account_frames(frames: Mapping[Source, pl.DataFrame], account: str | None) -> dict[Source, pl.DataFrame]:
    """Frames of every account -> one account's rows (None: every row), the account column dropped where the
    source did not ask for it."""
    chosen = {}
    for item, frame in frames.items():
        if account is not None and ACCOUNT in frame.columns:
            frame = frame.filter(pl.col(ACCOUNT) == account)
        chosen[item] = _drop_account(item, frame)
    return chosen


def account_period(frames: Mapping[Source, pl.DataFrame]) -> pl.DataFrame:
    """One account's frames -> its build-info row with the period narrowed to the first and last day its calls
    and messages are dated (rpt_build_info spans every account's: an account synced later, or no longer,
    would claim days it holds nothing for); both null when it has none."""
    info, daily = frames[BUILD_INFO], frames.get(DAILY_COST)
    if daily is None:
        return info
    return info.with_columns(
        pl.lit(daily["day"].min(), dtype=pl.Date).alias("first_report_date"),
        pl.lit(daily["day"].max(), dtype=pl.Date).alias("last_report_date"),
    )


def combined_frames(frames: Mapping[Source, pl.DataFrame]) -> dict[Source, pl.DataFrame]:
    """Frames of every account -> the all-accounts pages' frames: rows of one key per account summed."""
    combined = account_frames(frames, None)
    if STATEMENT in combined:
        combined[STATEMENT] = sum_statement(combined[STATEMENT])
    if MONTH_OVER_MONTH in combined:
        combined[MONTH_OVER_MONTH] = sum_month_over_month(combined[MONTH_OVER_MONTH])
    return combined


def sum_statement(frame: pl.DataFrame) -> pl.DataFrame:
    """Statement rows of several accounts -> one row per month, product, direction and currency, summed."""
    keys = ("month", "product", "direction", "currency")
    measures = [column for column in frame.columns if column not in keys]
    return frame.group_by(*keys).agg(pl.col(*measures).sum()).sort(*keys)


def sum_month_over_month(frame: pl.DataFrame) -> pl.DataFrame:
    """Month-over-month rows (month, product, currency, cost, cost_change_pct) of several accounts -> one row
    per month, product and currency: the cost summed, the change on the calendar month before recomputed from
    the sums (null without that month, or a zero one), as rpt_finance_month_over_month states it."""
    keys = ("month", "product", "currency")
    summed = frame.group_by(*keys).agg(pl.col("cost").sum()).sort(*keys)
    costs = {(month, product, currency): cost for month, product, currency, cost in summed.iter_rows()}
    changes = []
    for month, product, currency, cost in summed.iter_rows():
        previous = costs.get((month_before(month), product, currency))
        if previous is None or previous == 0:
            changes.append(None)
        else:
            change = Decimal(100) * (Decimal(cost) - Decimal(previous)) / Decimal(previous)
            changes.append(float(round(change, 2)))
    return summed.with_columns(pl.Series("cost_change_pct", changes, dtype=pl.Float64))


def _drop_account(item: Source, frame: pl.DataFrame) -> pl.DataFrame:
    wanted = ACCOUNT in item.mapping or item.keeps_account
    return frame if wanted or ACCOUNT not in frame.columns else frame.drop(ACCOUNT)
