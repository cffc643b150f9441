"""The pipeline's commands: a thin typer layer over the functions the flows call.

`cdr_app.cli` mounts them in the `cdr` program beside the sandbox's. Heavy imports
(polars, duckdb, prefect) happen inside the commands so that `cdr --help` stays instant.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer._click.parser import _OptionParser, _ParsingState  # typer's own copy of click: already loaded by typer
from typer.core import TyperCommand

# No name and no callback: `cdr_app.cli` merges these commands into the `cdr` root.
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

# Options several commands share, with one help text each.
# Text, not a Path: a path would collapse the `//` of an s3:// URL.
WarehouseDir = Annotated[str | None, typer.Option(
    "--data-dir", help="The data dir holding warehouse.duckdb (default: CDR_DATA_DIR, else ./data).",
)]


def _local_path(value: str | Path) -> Path:
    """An --out value -> its path; UsageError for a URL, which a path would fold into a local folder `s3:`.

    Results are written locally: an object-store data dir keeps only what the sync and build publish.
    """
    from pipelines.errors import UsageError
    from pipelines.remote import is_remote

    if is_remote(value):
        raise UsageError(f"--out {value}: --out takes a local path, not a URL; write the result locally, then copy it")
    return Path(value)


F = TypeVar("F", bound=Callable[..., Any])


def _command(group: typer.Typer, name: str, short_help: str, *examples: str, **settings: Any) -> Callable[[F], F]:
    """A command of `group`: its name, one-line help and the example lines its help ends with."""
    # `\b`: click prints the examples as they are, without rewrapping them.
    epilog = "\b\nExamples:\n" + "\n".join(f"  {command}" for command in examples)
    return group.command(name, short_help=short_help, epilog=epilog, **settings)


class FreeTextCommand(TyperCommand):
    """A command taking free text, such as a query: a token that starts with `-` but cannot name an
    option (a query opening with an SQL comment, `-- note`) is that text, not an unknown option."""

    def make_parser(self, ctx: typer.Context) -> _OptionParser:
        """click's own parser set-up, on the parser that knows free text."""
        parser = _FreeTextParser(ctx)
        for param in self.get_params(ctx):
            param.add_to_parser(parser, ctx)
        return parser


class _FreeTextParser(_OptionParser):
    def _process_opts(self, arg: str, state: _ParsingState) -> None:
        # The name click would read from the token: before any `=` of a `--` token (`--out=my file.csv` is
        # --out), the one character after a lone `-` (`-omy file.csv` is -o). No option name holds whitespace,
        # so such a token is positional text; a mistyped option (`--formt`) stays an error.
        name = arg.partition("=")[0] if arg.startswith("--") else arg[1:2]
        if any(char.isspace() for char in name):
            state.largs.append(arg)
        else:
            super()._process_opts(arg, state)


MaskNumbers = Annotated[bool | None, typer.Option(
    "--mask-numbers/--no-mask-numbers",
    help="Show phone numbers as calling code and last two digits (default: CDR_MASK_NUMBERS, else off).",
)]


@_command(
    app, "dates", "Print the UTC window of a date literal (JSON).",
    "cdr dates last_7_days",
    "cdr dates last_2_weeks --tz Europe/London --now 2026-03-30T12:00:00Z",
)
def dates_command(
    literal: str = typer.Argument(
        ..., metavar="LITERAL", help="A date literal: today, last_week, this_month, last_N_days, next_N_hours ..."
    ),
    now: str | None = typer.Option(
        None, "--now",
        help="The instant to resolve at, e.g. 2024-03-10T12:00:00Z; a bare date is local midnight in --tz "
        "(default: the current time).",
    ),
    tz: str | None = typer.Option(None, "--tz", help="IANA time zone (default: CDR_TIMEZONE, else UTC)."),
    week_start: str | None = typer.Option(
        None, "--week-start", help="monday or sunday (default: CDR_WEEK_START, else monday)."
    ),
) -> None:
    """Print the UTC window of a date literal as one JSON object."""
    import json
    from datetime import datetime, timezone

    from pipelines.dates import format_utc, parse_now, resolve_literal, zone_name
    from pipelines.settings import load_settings

    # Through the settings, as sync reads them: a bad zone or week start is named as the option or
    # variable it came from.
    settings = load_settings(timezone=tz, week_start=week_start)
    tz, week_start = settings.timezone, settings.week_start
    # The clock is read here, at the edge, never inside the date logic.
    instant = datetime.now(timezone.utc) if now is None else parse_now(now, tz=tz)
    window = resolve_literal(literal, now=instant, tz=tz, week_start=week_start, name="LITERAL")
    typer.echo(json.dumps({
        "literal": literal,
        "timezone": zone_name(tz),
        "week_start": week_start,
        "start": format_utc(window.start),
        "end": format_utc(window.end),
    }))


# What a build stopped by Ctrl-C or SIGTERM leaves, and what to do.
BUILD_STOPPED = "the build stopped; the previous warehouse stays as it was: run `cdr build` again"


@_command(
    app, "build", "Build the DuckDB warehouse from the lake.",
    "cdr build",
    "cdr build --full --data-dir data/demo",
)
def build_command(
    data_dir: str | None = typer.Option(
        None, "--data-dir", help="The data dir holding lake/ (default: CDR_DATA_DIR, else ./data)."
    ),
    full: bool = typer.Option(
        False, "--full", help="Rebuild every model from the whole lake, not only the days changed since the last build."
    ),
) -> None:
    """Rebuild <data dir>/warehouse.duckdb from the lake: every SQL model, then every data test.

    Only the days the lake changed since the last build are recomputed, unless a full build is
    needed (first build, changed models or report time zone, another release) or --full is given.
    """
    from pipelines.settings import load_settings

    settings = load_settings(data_dir=data_dir)
    from pipelines.console import stoppable

    # A stopped build removes its temporary warehouse; the one in place is replaced only once the build is done.
    with stoppable(BUILD_STOPPED):
        from pipelines.models import build  # after the settings: a bad one is refused before DuckDB loads

        report = build(
            settings.data_dir, report_timezone=settings.report_timezone, alerts_config=settings.alerts_config,
            full=full, memory_limit=settings.build_memory_limit,
        )
    typer.echo(report.summary())
    if not any(report.sources.values()):
        # An empty warehouse is a valid build, but most often of a data dir never synced or not the
        # one meant (after `make demo`, ./data rather than data/demo): say so, or every count reads 0.
        typer.echo(
            f"warning: the lake in {settings.data_dir} is empty, so is the warehouse: sync it first "
            "(`cdr sync --range last_7_days`) or pass the --data-dir you synced (the demo's: data/demo)",
            err=True,
        )


@_command(
    app, "alerts", "List the alerts of a range; send new ones to a webhook.",
    "cdr alerts --range last_30_days --min-severity warning",
    "cdr alerts --notify https://hooks.example.com/cdr --fail-on critical",
)
def alerts_command(
    date_range: str | None = typer.Option(None, "--range", help="A date literal (default: last_7_days)."),
    start: str | None = typer.Option(None, "--start", help="Explicit range start (ISO date-time, or a date: local midnight)."),
    end: str | None = typer.Option(None, "--end", help="Explicit range end, exclusive."),
    min_severity: str = typer.Option("info", "--min-severity", help="info (default), warning or critical."),
    fmt: str = typer.Option("table", "--format", "-f", help="table (default), csv or json (rpt_alerts' fields)."),
    notify: str | None = typer.Option(
        None, "--notify", help="POST each alert never sent before as JSON to this webhook URL (recorded in "
        "<data dir>/alerts/sent.json).",
    ),
    fail_on: str | None = typer.Option(
        None, "--fail-on", help="Exit 3 when an alert of this severity (info, warning, critical) or worse is in "
        "the range, even one --min-severity does not list (a failed --notify delivery exits 1 all the same).",
    ),
    account: str | None = typer.Option(
        None, "--account", help="Only this account's alerts (default: every account's; the table then names the "
        "account when the warehouse holds several).",
    ),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Data dir (default: CDR_DATA_DIR, else ./data)."),
) -> None:
    """The alerts (rpt_alerts) whose windows overlap the range, oldest first; with --notify, send the new ones."""
    import sys
    from datetime import datetime, timedelta, timezone
    from functools import partial

    from pipelines.alerts import (
        ACCOUNT_TABLE_COLUMNS, ALERT_COLUMNS, DEFAULT_RANGE, TABLE_COLUMNS, alerts_result, at_or_above, check_severity,
        notify_webhook, read_alerts, webhook_origin,
    )
    from pipelines.dates import resolve_range
    from pipelines.errors import one_of, reader_may_leave
    from pipelines.lake import Lake
    from pipelines.models import warehouse_path
    from pipelines.reports import check_account, held_accounts
    from pipelines.settings import load_settings
    from pipelines.sql import WRITERS, connect_read_only, write_csv

    settings = load_settings(data_dir=data_dir)
    now = datetime.now(timezone.utc)
    if date_range is None and start is None and end is None:
        date_range = DEFAULT_RANGE
    window = resolve_range(
        literal=date_range, start=start, end=end, now=now, tz=settings.timezone, week_start=settings.week_start
    )
    minimum = check_severity(min_severity, "--min-severity")
    failing = None if fail_on is None else check_severity(fail_on, "--fail-on")
    fmt = one_of(fmt, tuple(WRITERS), "--format")
    if notify is not None:
        webhook_origin(notify)

    warehouse = warehouse_path(settings.data_dir)
    with connect_read_only(warehouse) as con:
        held = held_accounts(con, Lake(settings.data_dir), "rpt_alerts")
    if account is not None:
        check_account(account, held)
    # --fail-on judges every alert of the range, also those --min-severity leaves out of the listing.
    lowest = minimum if failing is None or at_or_above(failing, minimum) else failing
    in_range = read_alerts(warehouse, window, min_severity=lowest, account=account)
    alerts = [alert for alert in in_range if at_or_above(alert.severity, minimum)]
    several = account is None and len(held) > 1
    columns = (ACCOUNT_TABLE_COLUMNS if several else TABLE_COLUMNS) if fmt == "table" else ALERT_COLUMNS
    # The csv is for a spreadsheet: a name in it must never run as a formula.
    write = partial(write_csv, for_spreadsheets=True) if fmt == "csv" else WRITERS[fmt]
    with reader_may_leave():  # `| head -1` still sends, and still exits 3 on an alert --fail-on names
        write(alerts_result(alerts, columns=columns), sys.stdout)
    if notify is not None:
        snooze = timedelta(hours=settings.alerts_snooze_hours)
        # A failed delivery raises here, before --fail-on: exit 1, which a scheduler cannot take for the usual 3.
        delivery = notify_webhook(alerts, settings.data_dir, notify, snooze=snooze, now=now)
        typer.echo(delivery.summary(webhook_origin(notify)), err=True)
    if failing is not None and any(at_or_above(alert.severity, failing) for alert in in_range):
        raise typer.Exit(3)


report_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
app.add_typer(report_app, name="report", help="Export report tables for finance (the monthly statement).", short_help="Finance exports.")


@_command(
    report_app, "finance", "Export a month's finance statement (CSV, XLSX).",
    "cdr report finance --month 2026-10 --out ./exports",
    "cdr report finance --month 2026-11 --allow-partial --no-xlsx",
)
def report_finance_command(
    month: str = typer.Option(..., "--month", help="The report month, YYYY-MM."),
    out: Path = typer.Option(
        Path("."), "--out", parser=_local_path, help="Folder to write finance_YYYY-MM.csv/.xlsx into.",
    ),
    xlsx: bool = typer.Option(True, "--xlsx/--no-xlsx", help="Also write the statement as XLSX."),
    allow_partial: bool = typer.Option(
        False, "--allow-partial",
        help="Export a month the lake does not wholly hold (not fully synced, or not over) as partial.",
    ),
    account: str | None = typer.Option(
        None, "--account", help="The statement of this account only (default: every account the warehouse holds).",
    ),
    data_dir: WarehouseDir = None,
) -> None:
    """Write the month's finance statement: finance_YYYY-MM.csv (exact costs) and .xlsx.

    Columns: month, product, direction, currency, records, billed_duration_secs, parts, cost; one row per
    product, direction and currency. With --account, or on a warehouse of one account, that account's
    statement. On a warehouse of several accounts, the combined statement: the column account first, each
    account's rows (by account, product, direction, currency), then one total row per currency whose account
    is "(all accounts)" and product and direction empty: currencies are never added together. Sum either
    the account rows or the total rows, not both. In the XLSX the total rows stand in bold one row below
    the table, outside its filter. When the sync quarantined records of the month, the XLSX and the output
    say how many, and per currency the statement's cost against the API's usage (over the month's UTC days).
    """
    from pipelines.accounts import load_accounts
    from pipelines.errors import counted
    from pipelines.lake import Lake
    from pipelines.models import warehouse_path
    from pipelines.reports import export_finance, parse_month
    from pipelines.settings import load_settings

    parse_month(month)
    settings = load_settings(data_dir=data_dir)
    export = export_finance(
        warehouse_path(settings.data_dir), month, out, lake=Lake(settings.data_dir), allow_partial=allow_partial,
        xlsx=xlsx, account=account, zone=settings.report_timezone, configured=load_accounts(settings),
    )
    totals = export.totals_text()
    accounts = f" of {len(export.accounts)} accounts" if len(export.accounts) > 1 else ""
    typer.echo(
        f"wrote {', '.join(str(path) for path in export.files)}: {counted(len(export.rows), 'row')}{accounts}, "
        + (f"total cost {totals}" if totals else f"no usage in {month}")
        + (f"; {export.partial}" if export.partial else "")
    )
    for line in export.notes:
        typer.echo(line)


@_command(
    app, "sql", "Run one read-only SQL query on the warehouse.",
    'cdr sql "select count(*) from calls"',
    'cdr sql "select * from rpt_finance_monthly_statement" --format csv --out statement.csv',
    cls=FreeTextCommand,
)
def sql_command(
    query: str = typer.Argument(..., metavar="QUERY", help='One read-only query, e.g. "select count(*) from calls".'),
    fmt: str = typer.Option("table", "--format", "-f", help="table (default), csv or json."),
    out: Path | None = typer.Option(
        None, "--out", "-o", parser=_local_path, help="Write the result to this file instead of stdout.",
    ),
    mask: MaskNumbers = None,
    data_dir: WarehouseDir = None,
) -> None:
    """Run one read-only SQL query on the warehouse (views calls and messages, fct_/dim_/rpt_ tables);
    `cdr shell` for many."""
    from pipelines.errors import counted
    from pipelines.models import warehouse_path
    from pipelines.settings import load_settings
    from pipelines.sql import run_sql

    settings = load_settings(data_dir=data_dir, mask_numbers=mask)
    rows = run_sql(warehouse_path(settings.data_dir), query, fmt=fmt, out=out, masked=settings.mask_numbers)
    if out is not None:
        typer.echo(f"wrote {counted(rows, 'row')} to {out}", err=True)


@_command(
    app, "shell", "An interactive read-only SQL shell on the warehouse.",
    "cdr shell --data-dir data/demo",
    "cdr shell < queries.sql",
)
def shell_command(
    mask: MaskNumbers = None,
    data_dir: WarehouseDir = None,
) -> None:
    """An interactive SQL shell on the warehouse, read-only and confined like `cdr sql`: statements end
    with ;, .help lists the dot commands. Piped input runs and exits with the worst error's code."""
    from pipelines.models import warehouse_path
    from pipelines.settings import load_settings
    from pipelines.shell import run_shell

    settings = load_settings(data_dir=data_dir, mask_numbers=mask)
    raise typer.Exit(run_shell(warehouse_path(settings.data_dir), masked=settings.mask_numbers))


@_command(
    app, "dashboards", "Render the offline HTML dashboards.",
    "cdr dashboards",
    "cdr dashboards --out /tmp/site --data-dir data/demo",
)
def dashboards_command(
    out: Path | None = typer.Option(
        None, "--out", parser=_local_path, help="Where to write the site (default: <data dir>/site/).",
    ),
    data_dir: WarehouseDir = None,
) -> None:
    """Render the offline HTML dashboards from the warehouse's rpt_ tables."""
    from datetime import datetime, timezone

    from dashboards.render import render_data_dir_site
    from pipelines.accounts import load_accounts
    from pipelines.errors import counted
    from pipelines.remote import is_remote, local_folder
    from pipelines.settings import load_settings
    from pipelines.status import SITE_DIR

    settings = load_settings(data_dir=data_dir)
    written = render_data_dir_site(
        settings.data_dir, out, now=datetime.now(timezone.utc), zone=settings.report_timezone,
        configured=load_accounts(settings),
    )
    pages = [path for path in written if path.suffix == ".html"]
    site = local_folder(settings.data_dir, SITE_DIR) if out is None else out
    remote = out is None and is_remote(settings.data_dir)
    uploaded = f" (uploaded to {str(settings.data_dir).rstrip('/')}/{SITE_DIR})" if remote else ""
    typer.echo(f"wrote {counted(len(pages), 'page')} to {site}{uploaded}: open {written[0]}")


@_command(
    app, "sync", "Sync CDRs/MDRs from the API into the lake.",
    "cdr sync --range last_7_days",
    "cdr sync",
    "cdr sync --start 2026-10-01 --end 2026-11-01 --types cdrs",
)
def sync_command(
    date_range: str | None = typer.Option(
        None, "--range", help="A date literal to sync, e.g. yesterday, last_7_days, this_month."
    ),
    start: str | None = typer.Option(None, "--start", help="Explicit range start (ISO date-time, or a date: local midnight)."),
    end: str | None = typer.Option(None, "--end", help="Explicit range end, exclusive."),
    types: str = typer.Option("cdrs,mdrs", "--types", help="Record types: cdrs, mdrs or cdrs,mdrs."),
    tz: str | None = typer.Option(None, "--tz", help="IANA time zone for literals and dates (default: CDR_TIMEZONE, else UTC)."),
    week_start: str | None = typer.Option(None, "--week-start", help="monday or sunday (default: CDR_WEEK_START, else monday)."),
    now: str | None = typer.Option(None, "--now", help="Resolve literals as of this instant (replay a past night)."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Data dir (default: CDR_DATA_DIR, else ./data)."),
    account: list[str] | None = typer.Option(
        None, "--account", help="Sync only these accounts of the accounts file: NAME[,NAME...] (default: every account).",
    ),
    all_accounts: bool = typer.Option(False, "--all-accounts", help="Sync every account of the accounts file (the default)."),
    only_missing: bool = typer.Option(
        False, "--only-missing", help="With a range: sync only the accounts the data dir does not hold all of it of.",
    ),
) -> None:
    """Sync CDRs/MDRs from the Opentact API into the Parquet lake (no range: incremental).

    With an accounts file (CDR_ACCOUNTS_FILE, else ./accounts.toml), its accounts sync at once within
    one OPENTACT_CONCURRENCY budget; a failing account does not stop the others (exit 1 naming it).
    """
    from pipelines.console import run_sync

    run_sync(
        date_range=date_range, start=start, end=end, types=types, tz=tz, week_start=week_start, now=now,
        data_dir=data_dir, **({"account": account, "all_accounts": all_accounts} if account or all_accounts else {}),
        **({"only_missing": True} if only_missing else {}),
    )


@_command(
    app, "status", "Say what the data dir holds: synced days, last sync, build, dashboards.",
    "cdr status",
    "cdr status --json --data-dir data/demo",
)
def status_command(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the aligned block."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Data dir (default: CDR_DATA_DIR, else ./data)."),
) -> None:
    """Per record type the UTC days synced, the high-water mark, missing days, records and quarantined records;
    the last sync run, the last build and when the dashboards were made."""
    import json

    from pipelines.accounts import load_accounts
    from pipelines.reports import listed_accounts
    from pipelines.settings import load_settings
    from pipelines.status import read_status, status_document, status_lines

    settings = load_settings(data_dir=data_dir)
    configured = load_accounts(settings)
    status = read_status(settings.data_dir, listed_accounts(configured))
    typer.echo(json.dumps(status_document(status), indent=2) if as_json
               else "\n".join(status_lines(status, configured.accounts)))


@app.command("serve", short_help="Run the nightly and monthly schedules.")
def serve_command() -> None:
    """Run prefect.yaml's schedules (nightly-sync, monthly-finance) in this process until stopped."""
    from pipelines.console import SERVE_STOP_GRACE_SECS, prefect_failure, quiet_prefect, stoppable

    quiet_prefect()
    from pipelines.flows.serve import deployments, serve_deployments

    # Ctrl-C at a terminal stops Prefect's temporary API server too (it is in the same process
    # group): served as a stoppable flow, the command leaves with one line, not the runner's
    # minute of failed reconnects and their tracebacks.
    with stoppable("the schedules stopped", SERVE_STOP_GRACE_SECS) as runner:
        built = deployments()
        try:
            runner.run(serve_deployments(built))
        except Exception as exc:  # an API it cannot reach is one line, as for `cdr sync`
            raise prefect_failure(exc, "serve the schedules") or exc
