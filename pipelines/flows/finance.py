"""The monthly finance flow: a fresh build, then last month's statement as CSV and XLSX."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pendulum
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipelines.dates import resolve_literal
from pipelines.flows.build import build_warehouse
from pipelines.settings import load_settings


def previous_month(now: datetime, tz: str) -> str:
    """The clock and the reporting zone -> last month as YYYY-MM (the month of `last_month`)."""
    start = resolve_literal("last_month", now=now, tz=tz).start
    return pendulum.instance(start).in_timezone(tz).format("YYYY-MM")


@task(name="export-finance", cache_policy=NO_CACHE, persist_result=False)
def export_statement(warehouse: Path, month: str, out_dir: Path) -> Any:
    """Write finance_<month>.csv and .xlsx from rpt_finance_monthly_statement."""
    from pipelines.reports import export_finance

    return export_finance(warehouse, month, out_dir)


@flow(name="cdr-monthly-finance")
def monthly_finance(
    month: str | None = None, data_dir: str | None = None, out_dir: str | None = None, build: bool = True
) -> dict[str, Any]:
    """Export a month's finance statement (default: last month in the reporting time zone)."""
    from pipelines.models import warehouse_path
    from pipelines.reports import parse_month

    logger = get_run_logger()
    settings = load_settings(data_dir=data_dir)
    month = parse_month(month) if month else previous_month(datetime.now(timezone.utc), settings.report_timezone)
    if build:
        logger.info(build_warehouse(settings.data_dir, settings.report_timezone).summary())
    target = Path(out_dir) if out_dir else settings.data_dir / "exports"
    export = export_statement(warehouse_path(settings.data_dir), month, target)
    totals = ", ".join(f"{currency} {total}" for currency, total in sorted(export.totals().items())) or "no charges"
    lines = [
        f"# Finance statement {month}",
        "",
        f"Total cost: {totals}",
        "",
        "| product | direction | currency | records | billed secs | parts | cost |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {r[1]} | {r[2]} | {r[3]} | {r[4]:,} | {r[5]:,} | {r[6]:,} | {r[7]} |" for r in export.rows]
    lines += ["", "Files: " + ", ".join(f"`{p}`" for p in export.files)]
    create_markdown_artifact("\n".join(lines), key="cdr-finance-statement", description=f"Finance {month}")
    return {"month": month, "files": [str(p) for p in export.files], "totals": {k: str(v) for k, v in export.totals().items()}}
