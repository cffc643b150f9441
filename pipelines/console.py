"""Running flows from the terminal: validate first, then run with a progress bar and a summary.

Everything a user can get wrong is checked before Prefect is imported (it takes seconds to
start), so bad arguments cost one line and exit 2 with nothing written.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pipelines.dates import format_utc
from pipelines.errors import CdrError
from pipelines.runs import SyncRequest, check_sync
from pipelines.sync import SyncProgress


def quiet_prefect() -> None:
    """Keep Prefect's per-run chatter and telemetry out of an interactive run (call before importing it)."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The ephemeral API server needs longer than its 20 s default on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # Prefect's event queue says how many items it still drains when a command exits early
    # (after a failure): progress notes of its own shutdown, nothing for the user to act on.
    logging.getLogger("EventsWorker").setLevel(logging.ERROR)


# Prefect's loggers that report a run's failure (with its traceback) as it happens.
_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class _FailureToldByCommand(logging.Filter):
    """Drops Prefect's own account of a failed run: the command reports the failure itself.

    An expected error (CdrError: a rejected key, a slice that kept failing) becomes one line
    from `cdr`'s entry point, anything else Python's traceback; Prefect's copy of either,
    traceback included, would only bury that line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        if record.exc_info and isinstance(record.exc_info[1], CdrError):
            return False
        return not record.getMessage().startswith("Finished in state Failed")


@contextmanager
def failures_told_by_command() -> Iterator[None]:
    """Within the block, a failing flow is reported by the command alone (see _FailureToldByCommand)."""
    told = _FailureToldByCommand()
    loggers = [logging.getLogger(name) for name in _RUN_LOGGERS]
    for logger in loggers:
        logger.addFilter(told)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(told)


@contextmanager
def sync_progress(console: Console) -> Iterator[None]:
    """Show a progress bar (slices, records, records/s, ETA) for any sync run in this block."""
    from pipelines.progress import progress_sink

    bar = Progress(
        TextColumn("[bold]sync[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("slices  {task.fields[records]:>10,} records  {task.fields[rate]:>8,.0f}/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = bar.add_task("sync", total=None, records=0, rate=0.0)
    started: list[float] = []  # the first tick, not Prefect's start, begins the rate

    def on_progress(tick: SyncProgress) -> None:
        # Ticks carry totals over every record type of the run.
        if not started:
            started.append(time.perf_counter())
        elapsed = max(time.perf_counter() - started[0], 1e-9)
        bar.update(
            task, total=tick.slices_total, completed=tick.slices_done, records=tick.records,
            rate=tick.records / elapsed,
        )

    with bar, progress_sink(on_progress):
        yield


def run_sync(**arguments: object) -> dict[str, object]:
    """`cdr sync`: validate, run the Prefect flow with a progress bar, print a short summary."""
    request = check_sync(**arguments)  # type: ignore[arg-type]
    console = Console(stderr=True)
    for kind in request.kinds:
        window = request.windows[kind]
        console.print(f"{kind}: {format_utc(window.start)} .. {format_utc(window.end)}")
    quiet_prefect()
    from pipelines.flows.sync import sync_flow

    with sync_progress(console), failures_told_by_command():
        result = asyncio.run(sync_flow(**flow_arguments(request, arguments)))
    typer.echo(
        f"synced {result['records']:,} records in {result['duration_secs']:,.1f} s "
        f"({result['records_per_sec']:,.0f}/s) into {request.settings.data_dir}"
    )
    for kind, figures in result["types"].items():
        typer.echo(
            f"  {kind}: {figures['new']:,} new, {figures['updated']:,} updated, "
            f"{figures['quarantined']:,} quarantined"
        )
    return result


def flow_arguments(request: SyncRequest, arguments: dict[str, object]) -> dict[str, object]:
    """A validated request -> the flow's JSON-friendly parameters (never the key)."""
    return {
        "date_range": arguments.get("date_range"),
        "start": arguments.get("start"),
        "end": arguments.get("end"),
        "types": list(request.kinds),
        "tz": request.settings.timezone,
        "week_start": request.settings.week_start,
        # The clock validated here is the run's clock: resolve literals exactly as checked.
        "now": format_utc(request.now),
        "data_dir": str(Path(request.settings.data_dir)),
    }
