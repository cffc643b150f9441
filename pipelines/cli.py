"""The `cdr` command line: a thin typer layer over the functions the flows call.

Heavy imports (polars, duckdb, prefect, the sandbox) happen inside the commands so
that `cdr --help` stays instant. Expected failures (`CdrError`) become one line on
stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from pipelines import __version__
from pipelines.errors import CdrError

app = typer.Typer(
    name="cdr",
    help="Opentact CDR/MDR pipeline: sync, model, report, and serve ad-hoc SQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cdr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Opentact CDR/MDR pipeline: sync, model, report, and serve ad-hoc SQL."""


# The sandbox ships beside the pipeline; the pipeline itself never depends on it.
try:
    from sandbox.cli import app as _sandbox_app
except ImportError:  # pragma: no cover - installed without the sandbox
    _sandbox_app = None
if _sandbox_app is not None:
    app.add_typer(_sandbox_app, name="sandbox", help="Run or export the local Opentact-compatible sandbox.")


@app.command("dates")
def dates_command(
    literal: str = typer.Argument(
        ..., help="A date literal: today, last_week, this_month, last_N_days, next_N_hours ..."
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

    from pipelines.dates import format_utc, parse_bound, resolve_literal, zone_name
    from pipelines.settings import load_settings

    if tz is None or week_start is None:
        settings = load_settings()
        tz = settings.timezone if tz is None else tz
        week_start = settings.week_start if week_start is None else week_start
    # The clock is read here, at the edge, never inside the date logic.
    instant = datetime.now(timezone.utc) if now is None else parse_bound(now, tz=tz, name="--now")
    window = resolve_literal(literal, now=instant, tz=tz, week_start=week_start)
    typer.echo(json.dumps({
        "literal": literal,
        "timezone": zone_name(tz),
        "week_start": week_start.lower(),
        "start": format_utc(window.start),
        "end": format_utc(window.end),
    }))


@app.command("dashboards")
def dashboards_command(
    out: Path | None = typer.Option(None, "--out", help="Where to write the site (default: <data dir>/site/)."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="The data dir holding warehouse.duckdb (default: CDR_DATA_DIR, else ./data)."
    ),
) -> None:
    """Render the offline HTML dashboards from the warehouse's rpt_ tables."""
    from datetime import datetime, timezone

    from dashboards.render import render_site
    from pipelines.lake import Lake
    from pipelines.models import warehouse_path
    from pipelines.opentact.api import RECORD_TYPES
    from pipelines.settings import load_settings
    from pipelines.state import read_state

    settings = load_settings(data_dir=data_dir)
    site = settings.data_dir / "site" if out is None else out
    # The data is as fresh as its least recently synced record type (never synced: None).
    lake = Lake(settings.data_dir)
    marks = [mark for kind in RECORD_TYPES if (mark := read_state(lake, kind).high_water_mark) is not None]
    synced_at = min(marks, default=None)
    written = render_site(
        warehouse_path(settings.data_dir), site, synced_at=synced_at, now=datetime.now(timezone.utc)
    )
    pages = [path for path in written if path.suffix == ".html"]
    typer.echo(f"wrote {len(pages)} pages to {site}: open {written[0]}")


def fail(message: str, exit_code: int = 1) -> None:
    """Print one line to stderr and exit with the code."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(exit_code)


def main() -> None:
    """Console-script entry point: turns expected failures into one line and an exit code."""
    try:
        app()
    except CdrError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
