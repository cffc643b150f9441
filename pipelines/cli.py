"""The `cdr` command line: a thin typer layer over the functions the flows call.

Heavy imports (polars, duckdb, prefect, the sandbox) happen inside the commands so
that `cdr --help` stays instant. Expected failures (`CdrError`) become one line on
stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

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
