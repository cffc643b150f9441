"""The monthly finance flow: a fresh build, then last month's statement as CSV and XLSX."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pendulum
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from pipelines.accounts import load_accounts
from pipelines.dates import resolve_literal
from pipelines.flows.build import build_warehouse
from pipelines.settings import load_settings


def previous_month(now: datetime, tz: str) -> str:
    """An instant and the reporting zone -> the month before it as YYYY-MM (the month of `last_month`)."""
    start = resolve_literal("last_month", now=now, tz=tz).start
    return pendulum.instance(start).in_timezone(tz).format("YYYY-MM")


def scheduled_time() -> datetime:
    """The flow run's scheduled start (the clock outside a run): a late run still exports its own month."""
    scheduled = flow_run.scheduled_start_time
    return datetime.now(timezone.utc) if scheduled is None else scheduled


@task(name="export-finance", cache_policy=NO_CACHE, persist_result=False)
def export_statement(
    data_dir: Path, month: str, out_dir: Path, allow_partial: bool, zone: str | None = None, configured: Any = None
) -> Any:
    """Write finance_<month>.csv and .xlsx from rpt_finance_monthly_statement, if the lake holds the month (and the
    warehouse's days are `zone`'s); `configured`: the configured accounts (`export_finance`)."""
    from pipelines.lake import Lake
    from pipelines.models import warehouse_path
    from pipelines.reports import export_finance

    return export_finance(
        warehouse_path(data_dir), month, out_dir, lake=Lake(data_dir), allow_partial=allow_partial, zone=zone,
        configured=configured,
    )


@flow(name="cdr-monthly-finance")
def monthly_finance(
    month: str | None = None,
    data_dir: str | None = None,
    out_dir: str | None = None,
    build: bool = True,
    allow_partial: bool = False,
) -> dict[str, Any]:
    """Export a month's finance statement (default: the month before the run's scheduled start, in the reporting zone)."""
    from pipelines.reports import decimal_text, parse_month

    logger = get_run_logger()
    settings = load_settings(data_dir=data_dir)
    month = parse_month(month) if month else previous_month(scheduled_time(), settings.report_timezone)
    if build:
        logger.info(build_warehouse(settings).summary())
    from pipelines.remote import local_folder

    # On an object store, in the data dir's local work folder (pipelines/remote.py).
    target = Path(out_dir) if out_dir else local_folder(settings.data_dir, "exports")
    export = export_statement(
        settings.data_dir, month, target, allow_partial, settings.report_timezone, load_accounts(settings)
    )
    totals = export.totals_text()
    description = f"Finance statement {month}: " + (f"total cost {totals}" if totals else "no charges")
    if export.partial:
        description += f" ({export.partial})"
    # Over several accounts the rows are the combined statement's, account first.
    table = [dict(zip(export.columns, (*row[:-1], decimal_text(row[-1])), strict=True)) for row in export.rows]
    # What the statement leaves out and what the quarantine took out of the totals, where finance reads the run:
    # the artifact and the log.
    notes = "".join(f"\n\n{line}" for line in export.notes)
    create_table_artifact(table, key="cdr-finance-statement", description=description + notes)
    logger.info(f"{description}; wrote {', '.join(str(p) for p in export.files)}")
    for line in export.notes:
        logger.info(line)
    return {
        "month": month,
        "files": [str(p) for p in export.files],
        "totals": {k: decimal_text(v) for k, v in export.totals().items()},
        "partial": export.partial,
        "left_out": export.left_out,
        "quarantined": list(export.quarantined),
    }
