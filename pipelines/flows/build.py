"""The build flow: lake -> DuckDB warehouse (models in dependency order, data tests), then dashboards."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipelines.accounts import load_accounts
from pipelines.flows import run_arguments
from pipelines.runs import run_clock
from pipelines.settings import Settings, load_settings


@task(name="build-warehouse", cache_policy=NO_CACHE, persist_result=False)
def build_warehouse(settings: Settings, full: bool = False, now: datetime | None = None) -> Any:
    """Run every model and data test into <data dir>/warehouse.duckdb (only the changed days' facts, unless `full`),
    the alert rules judging as of `now` (None: the real clock)."""
    from pipelines.models import build

    return build(
        settings.data_dir, report_timezone=settings.report_timezone, alerts_config=settings.alerts_config, full=full,
        memory_limit=settings.build_memory_limit, now=now,
    )


@task(name="render-dashboards", cache_policy=NO_CACHE, persist_result=False)
def render_dashboards(data_dir: Path | str, out_dir: Path | None, now: datetime, configured: Any = None) -> list[Path]:
    """Render the offline HTML dashboards from the warehouse's rpt_ tables (out_dir None: <data dir>/site);
    `configured`: the configured accounts (`render_data_dir_site`)."""
    from dashboards.render import render_data_dir_site

    return render_data_dir_site(data_dir, out_dir, now=now, configured=configured)


def build_run_name(parameters: Mapping[str, Any]) -> str:
    """A build flow's parameters -> its run's name: `build warehouse and dashboards` or `build warehouse`."""
    return "build warehouse and dashboards" if run_arguments(build_flow.fn, parameters)["dashboards"] else "build warehouse"


@flow(name="cdr-build", flow_run_name=lambda: build_run_name(runtime.flow_run.parameters))
def build_flow(
    data_dir: str | None = None, report_timezone: str | None = None, dashboards: bool = True, full: bool = False,
    now: str | None = None,
) -> dict[str, Any]:
    """Rebuild the warehouse from the lake (and, by default, the dashboards from the warehouse).

    Incremental unless `full` or a full build is needed; the result's `how` says which. `now`: the clock the
    alert rules and the dashboards judge by, as a sync's `now` (a replayed night, the demo's pinned world;
    default: the real clock).
    """
    logger = get_run_logger()
    settings = load_settings(data_dir=data_dir, report_timezone=report_timezone)
    clock = run_clock(now, settings)
    report = build_warehouse(settings, full, clock)
    logger.info(report.summary())
    lines = [
        "# Warehouse build",
        "",
        f"- {report.summary()}",
        "",
        "| model | layer | rows | seconds |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {m.name} | {m.layer.name.lower()} | {'' if m.rows is None else f'{m.rows:,}'} | {m.seconds:.2f} |"
        for m in report.models
    ]
    result: dict[str, Any] = {
        "warehouse": str(report.warehouse),
        "models": len(report.models),
        "tests": len(report.tests),
        "seconds": round(report.seconds, 3),
        "how": report.how,
    }
    if dashboards:
        written = render_dashboards(settings.data_dir, None, clock, load_accounts(settings))
        result["site"] = str(written[0])
        lines += ["", f"Dashboards: {written[0]}"]
    create_markdown_artifact("\n".join(lines), key="cdr-build-report", description="Warehouse build")
    return result
