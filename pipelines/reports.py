"""Reports stage: exports of `rpt_` tables for people outside the dashboards (the finance statement).

A month is a report month, local to the warehouse's reporting zone; a month the lake does not
wholly hold is refused unless a partial statement is allowed. Files appear all at once or not at all.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from pipelines.dates import Window, consecutive_runs, parse_bound
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.errors import CdrError, UsageError, one_line
from pipelines.lake import Lake, atomic_file
from pipelines.opentact import api
from pipelines.sql import connect_read_only
from pipelines.state import KindState, covers, merge_windows, read_state

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
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# No CDR is older: an earlier month is a typo, refused before the warehouse is opened.
FIRST_MONTH = "2000-01"
BUILD_INFO_TABLE = "rpt_build_info"
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

    @property
    def complete(self) -> bool:
        """Whether every local day of the month is synced for every statement kind."""
        return not self.missing

    def note(self) -> str:
        """'' when complete, else 'partial: covers D1 to D2' and any days missing between.

        D1 and D2 are the local days the synced data begins and ends in (D2 may be synced only
        in part, as today is).
        """
        if self.complete:
            return ""
        if not self.synced:
            return f"partial: covers no day of {self.month}"
        first = self._local(self.synced[0].start)
        last = self._local(self.synced[-1].end - timedelta(microseconds=1))
        gaps = [day for day in self.missing if first < day < last]
        note = f"partial: covers {first} to {last}"
        return note + (f", missing {day_ranges(gaps)}" if gaps else "")

    def refusal(self) -> str:
        """The one-line UsageError message for exporting this month without --allow-partial."""
        if self.today is not None:
            return (
                f"--month {self.month} has not ended (it is {self.today} in {self.zone}): its statement would be "
                f"{self.note()}; pass --allow-partial to export it, or a month that has ended"
            )
        start, end = self.missing[0], self.missing[-1] + timedelta(days=1)
        return (
            f"--month {self.month} is not fully synced: missing {day_ranges(self.missing)} ({self.zone} days); "
            f"sync them (cdr sync --start {start} --end {end} --tz {self.zone}) or pass --allow-partial"
        )

    def _local(self, moment: datetime) -> date:
        return moment.astimezone(ZoneInfo(self.zone)).date()


@dataclass(frozen=True, slots=True)
class FinanceExport:
    """What `export_finance` wrote: the month, its statement rows, the files and how much of the month the lake held."""

    month: str
    rows: tuple[tuple[object, ...], ...]
    files: tuple[Path, ...]
    coverage: MonthCoverage

    @property
    def partial(self) -> str:
        """'' for a complete month, else 'partial: covers D1 to D2'."""
        return self.coverage.note()

    def totals(self) -> dict[str, Decimal]:
        """Currency -> the month's total cost (exact)."""
        totals: dict[str, Decimal] = {}
        for row in self.rows:
            currency, cost = str(row[3]), Decimal(row[7])
            totals[currency] = totals.get(currency, Decimal(0)) + cost
        return totals

    def totals_text(self) -> str:
        """The totals as one line, `EUR 1.50; USD 2.000000` by currency ('' for a month without usage)."""
        return "; ".join(f"{currency} {decimal_text(cost)}" for currency, cost in sorted(self.totals().items()))


def parse_month(text: str) -> str:
    """`YYYY-MM` text -> the same text; UsageError for anything else."""
    if not _MONTH.match(text):
        raise UsageError(f"--month must be a month as YYYY-MM, e.g. 2026-01 (got {text!r})")
    if text < FIRST_MONTH:
        raise UsageError(f"--month {text} is before {FIRST_MONTH}, older than any CDR: pass a month the warehouse holds")
    return text


def _statement(warehouse: Path, month: str, now: datetime) -> tuple[tuple[tuple[object, ...], ...], str]:
    """The statement rows of a checked month and the warehouse's reporting zone."""
    con = connect_read_only(warehouse)
    try:
        zone = check_month(con, warehouse, month, now=now)
        columns = ", ".join(FINANCE_COLUMNS)
        rows = con.execute(
            f"select {columns} from {FINANCE_TABLE} where month = ? order by product, direction, currency",
            [month],
        ).fetchall()
    except duckdb.CatalogException:
        raise CdrError(f"the warehouse {warehouse} has no {FINANCE_TABLE}: run `cdr build`") from None
    finally:
        con.close()
    return tuple(tuple(row) for row in rows), zone


def check_month(con: duckdb.DuckDBPyConnection, warehouse: Path, month: str, *, now: datetime) -> str:
    """The warehouse's reporting zone, once it can state `month` as of `now`; UsageError naming the months it holds."""
    try:
        first, last, zone = con.execute(
            f"select first_report_date, last_report_date, report_timezone from {BUILD_INFO_TABLE}"
        ).fetchall()[0]
    except duckdb.CatalogException:
        raise CdrError(f"the warehouse {warehouse} has no {BUILD_INFO_TABLE}: run `cdr build`") from None
    current = now.astimezone(ZoneInfo(zone)).strftime("%Y-%m")
    if first is None:
        raise UsageError(
            f"the warehouse {warehouse} holds no calls or messages, so none for --month {month}: "
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


def month_coverage(lake: Lake, month: str, zone: str, *, now: datetime) -> MonthCoverage:
    """A lake, a report month in `zone` and the clock -> what of the month every statement kind has landed.

    The sync state counts, not the partitions: it records the days a sync landed empty too.
    Nothing after `now` is synced, so the month in progress is never complete.
    """
    year, number = (int(part) for part in parse_month(month).split("-"))
    first = date(year, number, 1)
    after = date(year + number // 12, number % 12 + 1, 1)
    start, end = _midnight(first, zone), _midnight(after, zone)
    synced = [Window(start, max(start, min(end, now)))]
    for kind in STATEMENT_KINDS:
        synced = _intersect(synced, read_state(lake.for_account(DEFAULT_ACCOUNT), kind).landed)
    held = KindState(kind="+".join(STATEMENT_KINDS), landed=merge_windows(synced))
    missing = []
    day = first
    while day < after:
        following = day + timedelta(days=1)
        if not covers(held, Window(_midnight(day, zone), _midnight(following, zone))):
            missing.append(day)
        day = following
    today = now.astimezone(ZoneInfo(zone)).date() if now < end else None
    return MonthCoverage(month, zone, held.landed, tuple(missing), today)


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
) -> FinanceExport:
    """A warehouse, its lake, a report month and a folder -> `finance_<month>.csv` (and `.xlsx`) written there.

    UsageError, before anything is written, for a month the lake does not wholly hold, unless
    `allow_partial`: then the XLSX says how much of the month it covers.
    """
    out_dir = check_out_dir(out_dir)
    month = parse_month(month)
    now = now or datetime.now(timezone.utc)
    rows, zone = _statement(warehouse, month, now)
    coverage = month_coverage(lake, month, zone, now=now)
    if not coverage.complete and not allow_partial:
        raise UsageError(coverage.refusal())
    contents = {out_dir / f"finance_{month}.csv": finance_csv(rows).encode("utf-8")}
    if xlsx:
        contents[out_dir / f"finance_{month}.xlsx"] = finance_xlsx(rows, month, partial=coverage.note())
    return FinanceExport(month, rows, tuple(write_outputs(out_dir, contents)), coverage)


def check_out_dir(out_dir: Path) -> Path:
    """An output folder -> the same path, once it is a writable folder or can be created as one (nothing is created).

    UsageError for a file, a missing parent folder or a path through a file; CdrError for a
    folder this process may not write into.
    """
    out = Path(out_dir)
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
    try:
        with ExitStack() as files:
            if created:
                out.mkdir()
            for target, data in contents.items():
                current = target
                temp = Path(files.enter_context(atomic_file(target)))
                temp.write_bytes(data)
                os.chmod(temp, 0o644)
            current = out
    except BaseException as exc:
        if created:
            with suppress(OSError):
                out.rmdir()
        if isinstance(exc, OSError):
            raise CdrError(f"cannot write {current} ({exc.strerror or one_line(exc)})") from None
        raise
    return list(contents)


def finance_csv(rows: Sequence[Sequence[object]]) -> str:
    """Statement rows -> CSV text: the header FINANCE_COLUMNS, cost as an exact decimal string."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FINANCE_COLUMNS)
    for row in rows:
        writer.writerow([*row[:7], decimal_text(row[7])])
    return buffer.getvalue()


def finance_xlsx(rows: Sequence[Sequence[object]], month: str, *, partial: str = "") -> bytes:
    """Statement rows -> an XLSX workbook (one sheet, the same columns, and any `partial` note under them) as bytes."""
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False})
    sheet = book.add_worksheet(f"Statement {month}")
    header = book.add_format({"bold": True, "bottom": 1})
    integer = book.add_format({"num_format": "#,##0"})
    # Spreadsheets hold IEEE doubles: exact for these costs to the cent and far below; the CSV
    # remains the exact record.
    money = book.add_format({"num_format": "#,##0.000000"})
    for col, name in enumerate(FINANCE_COLUMNS):
        sheet.write_string(0, col, name, header)
    for r, row in enumerate(rows, start=1):
        for col in range(4):
            # Text cells as text: a name like "=1+1" must never become a formula.
            sheet.write_string(r, col, str(row[col]))
        for col in range(4, 7):
            sheet.write_number(r, col, int(row[col]), integer)
        sheet.write_number(r, 7, float(Decimal(row[7])), money)
    sheet.set_column(0, 3, 12)
    sheet.set_column(4, 7, 20)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(len(rows), 1), len(FINANCE_COLUMNS) - 1)
    if partial:
        # Below the table and outside the filter, so the rows stay the CSV's.
        sheet.write_string(max(len(rows), 1) + 2, 0, f"{month} {partial}", book.add_format({"bold": True}))
        book.set_properties({"subject": f"Finance statement {month}, {partial}"})
    book.close()
    return buffer.getvalue()


def decimal_text(value: object) -> str:
    """An exact decimal -> its plain text (`0.000000000`, never `0E-9` or a float)."""
    return format(Decimal(value), "f")
