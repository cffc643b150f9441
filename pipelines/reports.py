"""Reports stage: exports of `rpt_` tables for people outside the dashboards (the finance statement).

A month is a report month, local to the warehouse's reporting zone; a month the lake does not
wholly hold is refused unless a partial statement is allowed. Files appear all at once or not at all.

A warehouse of one account exports that account's statement as it always has; its XLSX ends with a
total row per currency (product TOTAL) below the table, its CSV holds the rows alone. Over several
accounts, the statement of all of them (the combined statement) has `account` first, each
account's rows, then one total row per currency whose account is ALL_ACCOUNTS: currencies are
never added together, and the total rows are the only rows a reader needs to sum nothing.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from pipelines.dates import Window, consecutive_runs, days_from, parse_bound, utc_midnight
from pipelines.accounts import DEFAULT_ACCOUNT, SHOWN_ACCOUNTS, Accounts
from pipelines.durable import atomic_file
from pipelines.errors import FEW, CdrError, UsageError, bad_value, clip, counted, few, few_counted, one_line
from pipelines.lake import LAKE_DIR, QUARANTINE_DIR, STAGING_DIR, STATE_DIR, Lake
from pipelines.opentact import api
from pipelines.remote import warehouse_name
from pipelines.sql import connect_read_only, csv_rows, spreadsheet_text
from pipelines.state import KindState, covers, lake_holds, merge_windows, read_state

FINANCE_TABLE = "rpt_finance_monthly_statement"
FINANCE_COLUMNS: tuple[str, ...] = (
    "month",
    "product",
    "direction",
    "currency",
    "records",
    "billed_duration_secs",
    "parts",
    "cost",
)
# The combined statement: each account's rows, account first, then the totals per currency.
COMBINED_COLUMNS: tuple[str, ...] = ("account", *FINANCE_COLUMNS)
# The account cell of a combined statement's total rows: parentheses are never in an account's name.
ALL_ACCOUNTS = "(all accounts)"
# The product cell of one account's total rows (in its XLSX only: its CSV keeps the statement's rows alone).
TOTAL = "(total)"
# The columns the total rows add up.
_SUMMED = ("records", "billed_duration_secs", "parts", "cost")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# No CDR is older: an earlier month is a typo, refused before the warehouse is opened.
FIRST_MONTH = "2000-01"
BUILD_INFO_TABLE = "rpt_build_info"
# The per-UTC-day reconciliation with the API's usage (marts/fct_reconciliation_daily.sql says its statuses).
RECONCILIATION_TABLE = "rpt_reconciliation_daily"
# The statuses that leave nothing unexplained on a day: the records agree with the API's usage, or do with the quarantine.
RECONCILED = ("match", "explained_by_quarantine")
# The record types rpt_finance_monthly_statement reads (calls and messages; not the API's usage).
STATEMENT_KINDS: tuple[api.RecordType, ...] = ("cdrs", "mdrs")
# Day ranges named in a one-line message before "and N more".
LISTED_RANGES = 3


@dataclass(frozen=True, slots=True)
class MonthCoverage:
    """How much of a report month the lake holds: what every statement kind landed, up to `now`."""

    month: str
    zone: str
    synced: tuple[Window, ...]
    missing: tuple[date, ...]
    today: date | None
    # The accounts missing a day, named in the sync hint (over FEW, counted and a few named); none named when the
    # lake is the default account alone.
    lacking: tuple[str, ...] = ()
    # Of several accounts not all short alike: the short ones, those holding the same days together, with
    # what they hold; the rows of the others cover the whole month.
    short: tuple[tuple[tuple[str, ...], MonthCoverage], ...] = ()
    # The accounts an accounts file no longer lists that hold nothing of the month: not stated, not judged.
    left_out: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether every local day of the month is synced for every statement kind."""
        return not self.missing

    def note(self) -> str:
        """'' when complete, else 'partial: covers D1 to D2' and any days missing between; of accounts short
        unalike, what each holds: 'partial: globex covers D1 to D2; acme, initech cover D1 to D3'.

        D1 is the local day the synced data begins in, D2 the last local day it holds; either with the
        local time (HH:MM) the data begins or ends at when that day is held only in part, as the day the
        month's data ends in is in a zone west of UTC, or today is.
        """
        if self.complete:
            return ""
        if self.short:
            return "partial: " + "; ".join(
                f"{few(accounts)} {'covers' if len(accounts) == 1 else 'cover'} {own._held()}"
                for accounts, own in self.short
            )
        return f"partial: covers {self._held()}"

    def _held(self) -> str:
        """What `note` says the synced data covers: 'D1 to D2' and any days missing between."""
        if not self.synced:
            return f"no day of {self.month}"
        (first, begins), (last, ends) = self._bounds()
        gaps = [day for day in self.missing if first < day < last]
        return f"{first}{begins} to {last}{ends}" + (f", missing {day_ranges(gaps)}" if gaps else "")

    def label(self) -> str:
        """'' when complete, else the days of the month held, as the dashboards label a month: 'partial: 1–6',
        'partial: 1–31 20:00' (to 20:00 on the 31st), 'partial: 1–30, missing 14' (as `note`, in short); of
        accounts short unalike, each short one's: 'partial: acme 10–31; globex no day'."""
        if self.complete:
            return ""
        if self.short:
            # What all accounts hold together would understate the month: one account's days are another's gap.
            return "partial: " + "; ".join(
                f"{few(accounts)} {own.label().removeprefix('partial: ')}" for accounts, own in self.short
            )
        if not self.synced:
            return "partial: no day"
        (first, begins), (last, ends) = self._bounds()
        runs = consecutive_runs([day for day in self.missing if first < day < last])
        gaps = ", ".join(str(run[0].day) if len(run) == 1 else f"{run[0].day}–{run[-1].day}" for run in runs)
        return f"partial: {first.day}{begins}–{last.day}{ends}" + (f", missing {gaps}" if gaps else "")

    def left_out_note(self, source: object) -> str:
        """'' when no account is left out, else what the statement leaves out and why, for a reader who knows the
        account: 'left out: globex (not in accounts.toml; holds nothing of 2026-12)'. `source`: the accounts file."""
        if not self.left_out:
            return ""
        holds = "holds" if len(self.left_out) == 1 else "hold"
        return (
            f"left out: {', '.join(self.left_out)} (not in {clip(str(source))}; {holds} nothing of {self.month})"
        )

    def reason(self) -> str:
        """'' when complete, else why the month is partial, as the dashboards say it under its `label`:
        'the data begins inside the month', '... ends ...', '... begins and ends ...', each perhaps with
        'and misses days in it', or 'the data misses days inside the month'; of accounts short unalike, each
        short one's: 'the data of acme begins inside the month; the data of globex holds no day of the month'."""
        if self.complete:
            return ""
        if self.short:
            return "; ".join(
                own.reason().replace("the data", f"the data of {few(accounts)}", 1) for accounts, own in self.short
            )
        if not self.synced:
            return "the data holds no day of the month"
        # A missing day up to the first (held) day cuts the month's start, from the last one its end; between, a gap.
        (first, _), (last, _) = self._bounds()
        late, early = any(day <= first for day in self.missing), any(day >= last for day in self.missing)
        gaps = any(first < day < last for day in self.missing)
        cut = " and ".join(word for word, short in (("begins", late), ("ends", early)) if short)
        if not cut:
            return "the data misses days inside the month"
        return f"the data {cut} inside the month" + (" and misses days in it" if gaps else "")

    def _held_in_part(self) -> str:
        """'' unless the synced data begins or ends inside a missing day, else when: '; the data ends 2026-10-31 23:58'.

        Such a day is missing, though `cdr status` shows the data synced into it (a sync's end cut by the settle
        lag, or a report zone off UTC).
        """
        if not self.synced or self.short:
            return ""
        (first, begins), (last, ends) = self._bounds()
        bounds = (("begins", first, begins), ("ends", last, ends))
        cut = " and ".join(f"{word} {day}{time}" for word, day, time in bounds if time)
        return f"; the data {cut}" if cut else ""

    def _bounds(self) -> tuple[tuple[date, str], tuple[date, str]]:
        """The first and last local day the synced data holds, each with ' HH:MM' when held only from or to then."""
        zone = ZoneInfo(self.zone)
        begins, ends = self.synced[0].start.astimezone(zone), self.synced[-1].end.astimezone(zone)
        first = (begins.date(), "" if begins == _midnight(begins.date(), self.zone) else f" {begins:%H:%M}")
        if ends == _midnight(ends.date(), self.zone):
            return first, (ends.date() - timedelta(days=1), "")
        return first, (ends.date(), f" {ends:%H:%M}")

    def refusal(self) -> str:
        """The one-line UsageError message for exporting this month without --allow-partial."""
        if self.today is not None:
            return (
                f"--month {self.month} has not ended (it is {self.today} in {self.zone}): its statement would be "
                f"{self.note()}; pass --allow-partial to export it, or a month that has ended"
            )
        start, end = self.missing[0], self.missing[-1] + timedelta(days=1)
        if len(self.lacking) > FEW:
            # A reseller's dozens of accounts missing the month: how many and a few, and the sync of exactly those
            # (every account the range holds whole is left alone), not a line of their names.
            which, accounts = f" in {few_counted(self.lacking, 'account')}", " --only-missing"
        else:
            which, accounts = "", f" --account {','.join(self.lacking)}" if self.lacking else ""
        return (
            f"--month {self.month} is not fully synced: missing {day_ranges(self.missing)} ({self.zone} days"
            f"{self._held_in_part()}){which}; "
            f"sync them (cdr sync{accounts} --start {start} --end {end} --tz {self.zone}) or pass --allow-partial"
        )


@dataclass(frozen=True, slots=True)
class CurrencyGap:
    """One currency of a month's reconciliation: the records' and the API usage's cost over the month's UTC days,
    and how many of those days the quarantine leaves unexplained."""

    currency: str | None
    records_cost: Decimal
    api_cost: Decimal
    unexplained_days: int


@dataclass(frozen=True, slots=True)
class QuarantineNote:
    """The records the sync quarantined in a statement's month and what they mean for its totals, as the
    reconciliation (RECONCILIATION_TABLE) has them: per UTC day, as the API dates its usage.

    `utc_days`: whether the month's report-zone days are its UTC days, so that the records' cost is the statement's.
    """

    month: str
    zone: str
    utc_days: bool
    # (account, quarantined records) of each account stated that has any; a combined statement's note names each,
    # or over SHOWN_ACCOUNTS of them how many and the few with the most
    quarantined: tuple[tuple[str, int], ...]
    currencies: tuple[CurrencyGap, ...]
    # the --account asked for: the query the note names lists that account's records alone
    account: str | None = None
    # a combined statement: the note names each account's records
    combined: bool = False

    @property
    def records(self) -> int:
        """How many quarantined records the month's UTC days hold, over the accounts stated."""
        return sum(count for _, count in self.quarantined)

    def lines(self) -> tuple[str, ...]:
        """() without a quarantined record, else what a finance reader needs to reconcile the statement with the
        API's usage: the records set aside, then per currency the two costs and what the quarantine explains of
        their difference, then the query that lists the records."""
        if not self.records:
            return ()
        first, after = month_days(self.month)
        last = after - timedelta(days=1)
        if self.utc_days:
            days, basis = f"of {self.month}", "statement"
        else:
            days = (
                f"of the UTC days {first} to {last} (the API dates its usage in UTC, this statement's month is "
                f"{self.zone}'s)"
            )
            basis = "records of those UTC days"
        accounts = ""
        if self.combined and len(self.quarantined) > SHOWN_ACCOUNTS:
            # A reseller's hundreds would make the line kilobytes long: the few with the most, and how many in all.
            most = sorted(self.quarantined, key=lambda pair: (-pair[1], pair[0]))
            accounts = (
                f" in {counted(len(most), 'account')} (most: {few([f'{name} {count:,}' for name, count in most])})"
            )
        elif self.combined:
            accounts = f" ({', '.join(f'{name} {count:,}' for name, count in self.quarantined)})"
        lines = [
            f"quarantined: {counted(self.records, 'record')} {days}{accounts} set aside by the sync as malformed "
            "are not in this statement; the API's usage (the invoice's basis) counts them"
        ]
        for gap in self.currencies:
            costs = (
                f"{gap.currency or 'no currency'}: {basis} {decimal_text(gap.records_cost)}, "
                f"API usage {decimal_text(gap.api_cost)}"
            )
            difference = decimal_text(gap.api_cost - gap.records_cost)
            if gap.unexplained_days:
                lines.append(
                    f"{costs}, difference {difference}: the quarantine does not explain "
                    f"{counted(gap.unexplained_days, 'UTC day')} of it (see {RECONCILIATION_TABLE})"
                )
            elif gap.api_cost == gap.records_cost:
                lines.append(f"{costs}: they agree")
            else:
                lines.append(f"{costs}, difference {difference}: the quarantined records' cost")
        of_account = f" and account = '{self.account}'" if self.account is not None else ""
        lines.append(
            f"the records: cdr sql \"select * from stg_quarantine where utc_date between '{first}' and '{last}' "
            f"and not is_in_lake{of_account}\"; each day's reconciliation: {RECONCILIATION_TABLE}"
        )
        return tuple(lines)


@dataclass(frozen=True, slots=True)
class FinanceExport:
    """What `export_finance` wrote: the month, its statement rows (without total rows), the files, how much of
    the month the lake held, the rows' columns (COMBINED_COLUMNS for several accounts) and the accounts stated."""

    month: str
    rows: tuple[tuple[object, ...], ...]
    files: tuple[Path, ...]
    coverage: MonthCoverage
    columns: tuple[str, ...] = FINANCE_COLUMNS
    accounts: tuple[str, ...] = (DEFAULT_ACCOUNT,)
    quarantine: QuarantineNote | None = None
    # '' unless the statement leaves out an account (`MonthCoverage.left_out_note`)
    left_out: str = ""

    @property
    def partial(self) -> str:
        """'' for a complete month, else 'partial: covers D1 to D2'."""
        return self.coverage.note()

    @property
    def quarantined(self) -> tuple[str, ...]:
        """() when no record of the month was quarantined, else the lines that say what that means for the totals."""
        return () if self.quarantine is None else self.quarantine.lines()

    @property
    def notes(self) -> tuple[str, ...]:
        """What the statement's reader is told beside its rows, a line each (the XLSX below the table, the command's
        output, the finance flow's artifact and log): an account left out, then what the quarantine took out."""
        return (*((self.left_out,) if self.left_out else ()), *self.quarantined)

    def totals(self) -> dict[str, Decimal]:
        """Currency -> the month's total cost (exact)."""
        totals: dict[str, Decimal] = {}
        currency_at, cost_at = self.columns.index("currency"), self.columns.index("cost")
        for row in self.rows:
            currency, cost = str(row[currency_at]), Decimal(row[cost_at])
            totals[currency] = totals.get(currency, Decimal(0)) + cost
        return totals

    def totals_text(self) -> str:
        """The totals as one line, `EUR 1.50; USD 2.000000` by currency ('' for a month without usage)."""
        return "; ".join(f"{currency} {decimal_text(cost)}" for currency, cost in sorted(self.totals().items()))


def parse_month(text: str) -> str:
    """`YYYY-MM` text -> the same text; UsageError for anything else."""
    if not _MONTH.match(text):
        raise bad_value("--month", f"{clip(repr(text))} is not a month as YYYY-MM, e.g. 2026-01")
    if text < FIRST_MONTH:
        raise UsageError(f"--month {text} is before {FIRST_MONTH}, older than any CDR: pass a month the warehouse holds")
    return text


@dataclass(frozen=True, slots=True)
class Statement:
    """A checked month's statement: its rows in `columns`' order, the accounts they state, the reporting zone, and
    how much of the month the lake holds of those accounts."""

    rows: tuple[tuple[object, ...], ...]
    columns: tuple[str, ...]
    accounts: tuple[str, ...]
    zone: str
    coverage: MonthCoverage
    quarantine: QuarantineNote | None = None


def _statement(
    warehouse: Path, month: str, now: datetime, *, lake: Lake, account: str | None = None, zone: str | None = None,
    configured: Accounts | None = None,
) -> Statement:
    """The statement of a checked month: of `account`, else of every account the warehouse (or its lake) holds but
    those `coverage_of` leaves out (see `export_finance`).

    UsageError naming the accounts held for an account the warehouse does not hold nor an accounts file lists.
    """
    con = connect_read_only(warehouse)
    try:
        zone = check_month(con, warehouse, month, now=now, zone=zone)
        held = held_accounts(con, lake, FINANCE_TABLE)
        listed = listed_accounts(configured)
        if account is None:
            accounts = held
        else:
            # A listed account never synced has a statement too: of no day, refused with the sync that lands it.
            accounts = (account if account in listed else check_account(account, held),)
            listed = ()  # one account's statement judges that account alone
        # The columns of the warehouse's (and the file's) accounts: a combined statement keeps its `account` column
        # every month.
        columns = COMBINED_COLUMNS if len({*accounts, *listed}) > 1 else FINANCE_COLUMNS
        unlisted = unlisted_touched(lake, accounts, configured) if account is None else None
        coverage = month_coverage(lake, month, zone, now=now, accounts=accounts, unlisted=unlisted, listed=listed)
        accounts = tuple(name for name in accounts if name not in coverage.left_out)
        rows = con.execute(
            f"select {', '.join(columns)} from {FINANCE_TABLE} where month = ? and list_contains(?, account) "
            "order by account, product, direction, currency",
            [month, list(accounts)],
        ).fetchall()
        note = quarantine_note(con, month, zone, accounts, account=account)
    except duckdb.CatalogException as exc:
        table = RECONCILIATION_TABLE if RECONCILIATION_TABLE in str(exc) else FINANCE_TABLE
        raise CdrError(f"the warehouse {warehouse_name(warehouse)} has no {table}: run `cdr build`") from None
    finally:
        con.close()
    return Statement(tuple(tuple(row) for row in rows), columns, accounts, zone, coverage, note)


def quarantine_note(
    con: duckdb.DuckDBPyConnection, month: str, zone: str, accounts: Sequence[str], *, account: str | None = None
) -> QuarantineNote:
    """A warehouse, a report month in `zone` and the accounts stated -> what the reconciliation says of the
    records quarantined in the month's UTC days (its days: the quarantine and the API's usage know no others)."""
    first, after = month_days(month)
    where = "utc_date >= ? and utc_date < ? and list_contains(?, account)"
    params = [first, after, list(accounts)]
    quarantined = con.execute(
        f"select account, sum(quarantined_records)::bigint from {RECONCILIATION_TABLE} where {where} "
        "group by account having sum(quarantined_records) > 0 order by account",
        params,
    ).fetchall()
    # the currencies the API's usage knows in the month: a cost to hold the statement's against
    currencies = con.execute(
        "select currency, coalesce(sum(pipeline_cost), 0), sum(api_cost), "
        "count(distinct utc_date) filter (where not list_contains(?, status)) "
        f"from {RECONCILIATION_TABLE} where {where} group by currency having sum(api_cost) is not null "
        "order by currency",
        [list(RECONCILED), *params],
    ).fetchall()
    utc_days = all(_midnight(day, zone) == utc_midnight(day) for day in days_from(first, after + timedelta(days=1)))
    return QuarantineNote(
        month, zone, utc_days, tuple((name, int(count)) for name, count in quarantined),
        tuple(CurrencyGap(currency, Decimal(records), Decimal(api_cost), int(days))
              for currency, records, api_cost, days in currencies),
        account=account, combined=len(accounts) > 1,
    )


def month_days(month: str) -> tuple[date, date]:
    """A checked 'YYYY-MM' -> its first day and the first day of the month after."""
    year, number = (int(part) for part in month.split("-"))
    return date(year, number, 1), date(year + number // 12, number % 12 + 1, 1)


def held_accounts(con: duckdb.DuckDBPyConnection, lake: Lake, table: str) -> tuple[str, ...]:
    """The accounts a warehouse holds: those with rows in `table` (an account-keyed rpt_ table) and those with a
    folder in the lake (synced, even without a record); the default account for neither."""
    try:
        stated = {name for (name,) in con.execute(f"select distinct account from {table}").fetchall()}
    except duckdb.CatalogException:
        stated = set()
    return tuple(sorted(stated | set(lake.accounts()))) or (DEFAULT_ACCOUNT,)


def check_account(account: str, held: Sequence[str]) -> str:
    """An --account value and the accounts held -> the account; UsageError naming the accounts held otherwise."""
    if account not in held:
        raise UsageError(f"--account {clip(repr(account))} is not an account of this warehouse: it holds {', '.join(held)}")
    return account


def check_month(
    con: duckdb.DuckDBPyConnection, warehouse: Path, month: str, *, now: datetime, zone: str | None = None
) -> str:
    """The warehouse's reporting zone, once it can state `month` as of `now`; UsageError naming the months it holds,
    or the zone it was built for when that is not `zone` (the one asked for)."""
    try:
        first, last, built = con.execute(
            f"select first_report_date, last_report_date, report_timezone from {BUILD_INFO_TABLE}"
        ).fetchall()[0]
    except duckdb.CatalogException:
        raise CdrError(f"the warehouse {warehouse_name(warehouse)} has no {BUILD_INFO_TABLE}: run `cdr build`") from None
    check_zone(warehouse, built, zone)
    zone = built
    current = now.astimezone(ZoneInfo(zone)).strftime("%Y-%m")
    if first is None:
        raise UsageError(
            f"the warehouse {warehouse_name(warehouse)} holds no calls or messages, so none for --month {month}: "
            "sync the month (`cdr sync`), then `cdr build`"
        )
    held = f"the warehouse holds {first:%Y-%m} to {last:%Y-%m}"
    if month < f"{first:%Y-%m}":
        raise UsageError(
            f"--month {month} is before any data: {held}; pass a month from {first:%Y-%m} to {current}, "
            "or sync that month first"
        )
    if month > current:
        raise UsageError(f"--month {month} has not begun ({current} in {zone}): {held}; pass a month up to {current}")
    return str(zone)


def check_zone(warehouse: Path, built: str | None, wanted: str | None) -> None:
    """UsageError when the warehouse's days are another zone's than the report time zone asked for (None: any).

    Its months, days and totals are that zone's: another's would have to be built, never relabelled.
    """
    if wanted is not None and built is not None and built != wanted:
        raise UsageError(
            f"the warehouse {warehouse_name(warehouse)} was built for {built} days, not {wanted} (CDR_REPORT_TIMEZONE): "
            f"run `cdr build` to rebuild it for {wanted}, or set CDR_REPORT_TIMEZONE={built}"
        )


def warehouse_zone(warehouse: Path) -> str | None:
    """A warehouse -> the report time zone it was built for (None without its build info)."""
    with connect_read_only(warehouse) as con:
        try:
            row = con.execute(f"select report_timezone from {BUILD_INFO_TABLE}").fetchone()
        except duckdb.CatalogException:
            return None
    return None if row is None else row[0]


def month_coverage(
    lake: Lake, month: str, zone: str, *, now: datetime, accounts: Sequence[str] = (DEFAULT_ACCOUNT,),
    unlisted: Mapping[str, Sequence[Window]] | None = None, listed: Sequence[str] = (),
) -> MonthCoverage:
    """A lake, a report month in `zone` and the clock -> what of the month every statement kind of every one of
    `accounts` has landed and the lake still holds (`lake_held`); `unlisted` and `listed` as `coverage_of`.

    Nothing after `now` is synced, so the month in progress is never complete.
    """
    return coverage_of(lake_held(lake, accounts), month, zone, now=now, unlisted=unlisted, listed=listed)


def lake_held(lake: Lake, accounts: Sequence[str]) -> dict[str, tuple[Window, ...]]:
    """Each of `accounts` -> the instants the lake holds every statement kind of it for.

    The sync state counts, as it records the days a sync landed empty too, less the landed days whose
    records are gone (`pipelines.state.held_windows`, the rule `cdr status` names missing days by).
    """
    held = {}
    for account in accounts:
        own: Sequence[Window] = lake_holds(lake.for_account(account), STATEMENT_KINDS[0])
        for kind in STATEMENT_KINDS[1:]:
            own = _intersect(own, lake_holds(lake.for_account(account), kind))
        held[account] = merge_windows(own)
    return held


def listed_accounts(configured: Accounts | None) -> tuple[str, ...]:
    """The configured accounts -> the names an accounts file lists; () without one (`coverage_of` then judges the
    accounts the lake holds alone: zero-config has no account it could be missing)."""
    if configured is None or configured.source is None:
        return ()
    return configured.names


def unlisted_touched(
    lake: Lake, accounts: Sequence[str], configured: Accounts | None
) -> dict[str, tuple[Window, ...]]:
    """The accounts stated and the configured ones -> each stated account an accounts file does not list, with the
    instants it holds anything of (`lake_touched`); {} without an accounts file (`coverage_of` leaves none out)."""
    listed = listed_accounts(configured)
    if not listed:
        return {}
    return lake_touched(lake, [account for account in accounts if account not in listed])


def lake_touched(lake: Lake, accounts: Sequence[str]) -> dict[str, tuple[Window, ...]]:
    """Each of `accounts` -> the instants it holds anything of, of any statement kind: every window a sync landed
    and every UTC day with records (a month none of them meets holds no record of the account)."""
    touched = {}
    for account in accounts:
        own = lake.for_account(account)
        windows: list[Window] = []
        for kind in STATEMENT_KINDS:
            windows += read_state(own, kind).landed
            windows += [Window(utc_midnight(day), utc_midnight(day + timedelta(days=1)))
                        for day in own.partition_days(kind)]
        touched[account] = merge_windows(windows)
    return touched


def coverage_of(
    held: Mapping[str, Sequence[Window]],
    month: str,
    zone: str,
    *,
    now: datetime,
    unlisted: Mapping[str, Sequence[Window]] | None = None,
    listed: Sequence[str] = (),
) -> MonthCoverage:
    """The instants held per account (`lake_held`), a report month in `zone` and the clock -> what of the month
    every account holds; the accounts missing a day of it are named.

    `unlisted`: the accounts an accounts file no longer lists, each with the instants it holds anything of
    (`unlisted_touched`). One holding no instant of the month is left out (`left_out`): a churned account would
    otherwise make every later month partial, with a sync hint its absence from the file refuses. A listed
    account never is: one that failed to sync the month must still make it partial. Nor is every account.
    `listed`: the accounts the file lists (`listed_accounts`); one `held` lacks (never synced, so the lake holds
    nothing of it) holds no instant of the month, or the statement would read as every account's without it.
    """
    held = {account: held.get(account, ()) for account in sorted({*held, *listed})}
    first, after = month_days(parse_month(month))
    start, end = _midnight(first, zone), _midnight(after, zone)
    unlisted = unlisted or {}
    left_out = tuple(
        account for account in held if account in unlisted and not _intersect([Window(start, end)], unlisted[account])
    )
    if len(left_out) < len(held):
        held = {account: windows for account, windows in held.items() if account not in left_out}
    else:
        left_out = ()
    synced = [Window(start, max(start, min(end, now)))]
    today = now.astimezone(ZoneInfo(zone)).date() if now < end else None
    short: dict[MonthCoverage, list[str]] = {}
    for account, windows in held.items():
        own = _intersect([Window(start, max(start, min(end, now)))], windows)
        missing = _missing_days(own, first, after, zone)
        if missing:
            short.setdefault(MonthCoverage(month, zone, merge_windows(own), missing, today), []).append(account)
        synced = _intersect(synced, own)
    landed = merge_windows(synced)
    lacking = tuple(account for account in held if any(account in accounts for accounts in short.values()))
    # all short alike (one account, or a month not over yet for all): what they all hold says it
    alike = len(short) == 1 and len(lacking) == len(held)
    # `default` among other accounts is named like any: a sync of the accounts file's accounts leaves it out.
    named = () if list(held) == [DEFAULT_ACCOUNT] else lacking
    return MonthCoverage(
        month, zone, landed, _missing_days(landed, first, after, zone), today, named,
        () if alike else tuple((tuple(accounts), own) for own, accounts in short.items()), left_out,
    )


def partial_months(
    held: Mapping[str, Sequence[Window]],
    months: Iterable[str],
    zone: str,
    *,
    now: datetime,
    unlisted: Mapping[str, Sequence[Window]] | None = None,
    listed: Sequence[str] = (),
) -> dict[str, MonthCoverage]:
    """The instants held per account, report months and the clock -> {'YYYY-MM': its coverage} for each month
    not wholly held: the months a statement of them is refused for (`unlisted`, `listed`: as `coverage_of`)."""
    coverages = (coverage_of(held, month, zone, now=now, unlisted=unlisted, listed=listed) for month in months)
    return {coverage.month: coverage for coverage in coverages if not coverage.complete}


def _missing_days(synced: Sequence[Window], first: date, after: date, zone: str) -> tuple[date, ...]:
    """Synced windows -> the local days from `first` up to `after` they do not wholly hold."""
    held = KindState(kind="+".join(STATEMENT_KINDS), landed=merge_windows(list(synced)))
    return tuple(
        day for day in days_from(first, after)
        if not covers(held, Window(_midnight(day, zone), _midnight(day + timedelta(days=1), zone)))
    )


def day_ranges(days: Sequence[date], limit: int = LISTED_RANGES) -> str:
    """Ascending days -> '2026-11-07..2026-11-09, 2026-11-30', runs of consecutive days joined, 'and N more' past `limit`."""
    texts = [str(run[0]) if len(run) == 1 else f"{run[0]}..{run[-1]}" for run in consecutive_runs(days)]
    more = len(texts) - limit
    return ", ".join(texts[:limit]) + (f" and {more} more" if more > 0 else "")


def _midnight(day: date, zone: str) -> datetime:
    return parse_bound(day.isoformat(), tz=zone)


def _intersect(windows: Sequence[Window], others: Sequence[Window]) -> list[Window]:
    """Two sets of disjoint windows -> the instants both hold, as windows."""
    return [
        Window(max(a.start, b.start), min(a.end, b.end))
        for a in windows
        for b in others
        if max(a.start, b.start) < min(a.end, b.end)
    ]


def export_finance(
    warehouse: Path,
    month: str,
    out_dir: Path,
    *,
    lake: Lake,
    allow_partial: bool = False,
    xlsx: bool = True,
    now: datetime | None = None,
    account: str | None = None,
    zone: str | None = None,
    configured: Accounts | None = None,
) -> FinanceExport:
    """A warehouse, its lake, a report month and a folder -> `finance_<month>.csv` (and `.xlsx`) written there;
    `finance_<month>_<account>.csv` for `account`'s, so that accounts' statements never overwrite each other.

    The statement of `account`, else of every account the warehouse holds: one account's as ever,
    several accounts' combined (COMBINED_COLUMNS, then the totals per currency, see the module).
    UsageError, before anything is written, for an account the warehouse does not hold, and for a
    month the lake does not wholly hold (for every account stated), unless `allow_partial`: then the
    XLSX says how much of the month it covers. `zone`: the report time zone asked for (CDR_REPORT_TIMEZONE):
    UsageError, before anything is written, when the warehouse was built for another (None: its own).
    `configured`: the configured accounts; with an accounts file, the statement of every account leaves out one
    the file does not list that holds nothing of the month (`coverage_of`), and says so.
    """
    out_dir = check_out_dir(out_dir, Path(lake.url) if lake.is_local else None)
    month = parse_month(month)
    now = now or datetime.now(timezone.utc)
    statement = _statement(warehouse, month, now, lake=lake, account=account, zone=zone, configured=configured)
    coverage = statement.coverage
    if not coverage.complete and not allow_partial:
        raise UsageError(coverage.refusal())
    rows, columns = statement.rows, statement.columns
    combined = columns == COMBINED_COLUMNS
    totals = statement_totals(rows, columns, month)
    left_out = coverage.left_out_note(configured.source if configured is not None else None)
    stem = f"finance_{month}" if account is None else f"finance_{month}_{account}"
    # its files once written; its notes are the XLSX's
    export = FinanceExport(month, rows, (), coverage, columns, statement.accounts, statement.quarantine, left_out)
    contents = {out_dir / f"{stem}.csv": finance_csv(rows, columns, totals if combined else ()).encode("utf-8")}
    if xlsx:
        contents[out_dir / f"{stem}.xlsx"] = finance_xlsx(
            rows, month, partial=coverage.note(), columns=columns, totals=totals, notes=export.notes
        )
    return replace(export, files=tuple(write_outputs(out_dir, contents)))


def statement_totals(
    rows: Sequence[Sequence[object]], columns: Sequence[str], month: str
) -> tuple[tuple[object, ...], ...]:
    """A statement's rows (in `columns`) -> one total row per currency, in its columns: the records, billed
    seconds, parts and exact cost of every row of that currency, no direction, and labelled ALL_ACCOUNTS
    (a combined statement's account) or TOTAL (one account's product)."""
    at = {name: list(columns).index(name) for name in ("currency", *_SUMMED)}
    sums: dict[str, dict[str, int | Decimal]] = {}
    for row in rows:
        total = sums.setdefault(str(row[at["currency"]]), dict.fromkeys(_SUMMED, 0))
        for name in _SUMMED:
            value = row[at[name]]
            total[name] += Decimal(str(value)) if name == "cost" else int(str(value))
    fixed = {"account": ALL_ACCOUNTS} if "account" in columns else {"product": TOTAL}
    return tuple(
        tuple({**fixed, "month": month, "currency": currency, **sums[currency]}.get(column, "") for column in columns)
        for currency in sorted(sums)
    )


def check_out_dir(out_dir: Path, data_dir: Path | None = None) -> Path:
    """An output folder -> the same path, once it is a writable folder or can be created as one (nothing is created).

    UsageError for a file, a missing parent folder, a path through a file, or a folder inside one
    the sync writes in `data_dir` (the lake, quarantine, state); CdrError for a folder this
    process may not write into. `data_dir`: a local one.
    """
    out = Path(out_dir)
    for folder in (LAKE_DIR, QUARANTINE_DIR, STATE_DIR, STAGING_DIR) if data_dir is not None else ():
        try:
            inside = out.resolve().is_relative_to((data_dir / folder).resolve())
        except (OSError, RuntimeError) as exc:  # a name too long, a symlink loop
            raise UsageError(f"--out {out}: {clip(getattr(exc, 'strerror', None) or str(exc))}") from None
        if inside:
            raise UsageError(f"--out {out} is inside {data_dir / folder}, which the sync writes: pass a folder outside it")
    if out.is_dir():
        writable = out
    elif os.path.lexists(out):
        raise UsageError(f"--out {out} is a file, not a folder: pass a folder to write into")
    elif not out.parent.is_dir():
        raise UsageError(f"--out {out}: {out.parent} is not a folder; create it first or pass another folder")
    else:
        writable = out.parent
    if not os.access(writable, os.W_OK | os.X_OK):
        raise CdrError(f"cannot write into {writable} (permission denied): pass --out a folder you can write into")
    return out


def write_outputs(out_dir: Path, contents: Mapping[Path, bytes]) -> list[Path]:
    """A checked output folder and {file in it: bytes} -> those files written; CdrError naming the one that failed.

    Every file is written to its temporary (`atomic_file`) before any is renamed into place, so a
    failure (a full disk, a folder made read-only) leaves the previous files. The renames go
    last to first: the first file (a site's index) is replaced once what it links to is.
    """
    out = Path(out_dir)
    created = not out.is_dir()
    current = out
    # Folders made inside `out` for files below it (a site's per-account pages), removed again on a failure.
    folders: list[Path] = []
    try:
        with ExitStack() as files:
            if created:
                out.mkdir()
            for target, data in contents.items():
                current = target
                missing = [parent for parent in Path(target).parents if parent != out and out in parent.parents
                           and not parent.is_dir()]
                for folder in reversed(missing):
                    folder.mkdir()
                    folders.append(folder)
                temp = Path(files.enter_context(atomic_file(target)))
                temp.write_bytes(data)
                os.chmod(temp, 0o644)
            current = out
    except BaseException as exc:
        for folder in reversed(folders):
            with suppress(OSError):
                folder.rmdir()
        if created:
            with suppress(OSError):
                out.rmdir()
        if isinstance(exc, OSError):
            raise CdrError(f"cannot write {current} ({exc.strerror or one_line(exc)})") from None
        raise
    return list(contents)


def finance_csv(
    rows: Sequence[Sequence[object]],
    columns: Sequence[str] = FINANCE_COLUMNS,
    totals: Sequence[Sequence[object]] = (),
) -> str:
    """Statement rows (and any total rows after them) -> CSV text (`csv_rows`): the header `columns`, the text
    columns (all but the last four) through `spreadsheet_text`, cost (last) as an exact decimal string."""
    texts = len(columns) - 4

    def line(row: Sequence[object]) -> list[str]:
        cells = ["" if cell is None else str(cell) for cell in row[:-1]]
        return [*map(spreadsheet_text, cells[:texts]), *cells[texts:], decimal_text(row[-1])]

    buffer = io.StringIO()
    csv_rows(buffer)([columns, *map(line, (*rows, *totals))])
    return buffer.getvalue()


def finance_xlsx(
    rows: Sequence[Sequence[object]],
    month: str,
    *,
    partial: str = "",
    columns: Sequence[str] = FINANCE_COLUMNS,
    totals: Sequence[Sequence[object]] = (),
    notes: Sequence[str] = (),
) -> bytes:
    """Statement rows -> an XLSX workbook (one sheet, the same columns, any total rows in bold a row below the
    table, any `partial` note under them and then `notes`, a line a row) as bytes."""
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False})
    sheet = book.add_worksheet(f"Statement {month}")
    header = book.add_format({"bold": True, "bottom": 1})
    integer = book.add_format({"num_format": "#,##0"})
    # Spreadsheets hold IEEE doubles: exact for these costs to the cent and far below; the CSV
    # remains the exact record.
    money = book.add_format({"num_format": "#,##0.000000"})
    texts = len(columns) - 4
    bold = {"bold": True}
    formats = (None, integer, money), (book.add_format(bold), book.add_format({**bold, "num_format": "#,##0"}),
                                       book.add_format({**bold, "num_format": "#,##0.000000"}))
    for col, name in enumerate(columns):
        sheet.write_string(0, col, name, header)
    # Totals a row below the table, outside its filter: filtering or sorting the rows leaves them be.
    placed = [(r, row, formats[0]) for r, row in enumerate(rows, start=1)]
    placed += [(r, row, formats[1]) for r, row in enumerate(totals, start=max(len(rows), 1) + 2)]
    for r, row, (text, whole, amount) in placed:
        for col in range(texts):
            # Text cells as text: a name like "=1+1" must never become a formula. A total's missing product
            # or direction is an empty cell, not an empty text (which COUNTA and ISBLANK would not see as one).
            if row[col] == "":
                sheet.write_blank(r, col, None, text)
            else:
                sheet.write_string(r, col, str(row[col]), text)
        for col in range(texts, texts + 3):
            sheet.write_number(r, col, int(row[col]), whole)
        sheet.write_number(r, texts + 3, float(Decimal(row[texts + 3])), amount)
    sheet.set_column(0, texts - 1, 12)
    sheet.set_column(texts, texts + 3, 20)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(len(rows), 1), len(columns) - 1)
    # Below the table (and its totals) and outside the filter, so the rows stay the CSV's.
    below = max(len(rows), 1) + (len(totals) + 1 if totals else 0) + 2
    if partial:
        sheet.write_string(below, 0, f"{month} {partial}", book.add_format({"bold": True}))
        book.set_properties({"subject": f"Finance statement {month}, {partial}"})
        below += 1
    for offset, line in enumerate(notes):
        sheet.write_string(below + offset, 0, line)
    book.close()
    return buffer.getvalue()


def decimal_text(value: object) -> str:
    """An exact decimal -> its plain text (`0.000000000`, never `0E-9` or a float)."""
    return format(Decimal(value), "f")
