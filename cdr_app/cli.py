"""The `cdr` console script: `pipelines.cli`'s commands, `cdr sandbox ...` and `cdr demo`.

Heavy imports happen inside the commands so that `cdr --help` stays instant. Expected
failures (`CdrError`) become one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer
from typer.core import TyperGroup

from pipelines import __version__
from pipelines.cli import app as pipeline_app
from pipelines.console import leave_within_grace
from pipelines.errors import CdrError, ReaderGone
from sandbox.cli import app as sandbox_app

if TYPE_CHECKING:  # typer runs on its own copy of click: importing click itself only slows every start
    import click

# `cdr --help` lists the commands in the order of the work: fetch, model, look, serve, then the tools.
WORKFLOW = (
    "sync", "build", "status", "alerts", "report", "dashboards", "sql", "shell", "serve", "dates", "demo", "sandbox",
)


class WorkflowGroup(TyperGroup):
    """The `cdr` root: its commands listed in WORKFLOW's order (any other after them, as registered)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: index for index, name in enumerate(WORKFLOW)}
        return sorted(names, key=lambda name: rank.get(name, len(WORKFLOW)))


app = typer.Typer(
    name="cdr",
    cls=WorkflowGroup,
    # Inherited by every subcommand's context: `-h` works wherever `--help` does.
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(pipeline_app)
app.add_typer(sandbox_app, name="sandbox", help="Run or export the local Opentact-compatible sandbox.", short_help="The local Opentact-compatible sandbox.")


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


@app.command("demo", short_help="Run the whole pipeline on the embedded sandbox.")
def demo_command(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Where the demo writes (default: <CDR_DATA_DIR or ./data>/demo)."
    ),
) -> None:
    """Run the whole pipeline on the embedded sandbox: sync, build, dashboards, finance export."""
    from cdr_app.demo import alerts_line, run_demo
    from pipelines.settings import load_settings

    target = data_dir or load_settings().data_dir / "demo"
    result = run_demo(target)
    typer.echo("")
    for line in result.summary:
        typer.echo(f"  {line}")
    typer.echo("")
    typer.echo(f"dashboards:     {result.site}")
    typer.echo(f"warehouse:      {result.warehouse}   (try: {cdr_command()} shell --data-dir {result.data_dir})")
    typer.echo(f"finance export: {', '.join(str(p) for p in result.finance)}")
    typer.echo(f"alerts:         {alerts_line(result.alerts, cdr_command(), result.data_dir)}")
    typer.echo(f"done in {result.seconds:.0f} s")


def cdr_command() -> str:
    """How this shell runs `cdr`: `cdr` when it is on PATH, else this script's path (`.venv/bin/cdr`
    after `make demo`, which does not put it on PATH)."""
    script = Path(sys.executable).with_name("cdr")
    on_path = shutil.which("cdr")
    if on_path is not None and Path(on_path).resolve() == script.resolve():
        return "cdr"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


# The exit codes of a command a signal stopped (console.Stopped, or typer's own Ctrl-C).
_STOPPED_CODES = (128 + signal.SIGINT, 128 + signal.SIGTERM)


def main() -> None:
    """Console-script entry point: `run`, and a stopped command's process gone within a grace (see
    `console.leave_within_grace`)."""
    try:
        run()
    except SystemExit as exc:
        if exc.code in _STOPPED_CODES:
            leave_within_grace(exc.code)
        raise


class StdoutFailed(BaseException):
    """stdout could not be written (a full disk under `> out.csv`): the command stops, saying why in one line.
    Not an Exception, as ReaderGone."""


class _Stdout:
    """sys.stdout, with a write or flush that fails raised as ReaderGone (its reader went away) or
    StdoutFailed (typer and rich would turn a broken pipe into exit 1, a failure to a script, and
    Python any other failure into a traceback)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise self._failed(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise self._failed(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _failed(self, exc: OSError) -> ReaderGone | StdoutFailed:
        # What is still buffered, and the interpreter's flush at exit, go nowhere instead of failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)
        return ReaderGone() if isinstance(exc, BrokenPipeError) else StdoutFailed(exc.strerror or str(exc))


def run() -> None:
    """`cdr` with this process's arguments: expected failures and bad usage become one line and an exit code."""
    stdout = sys.stdout
    if stdout is not None:  # None: started with stdout closed, which click and rich write nothing to
        sys.stdout = _Stdout(stdout)  # type: ignore[assignment]
    try:
        try:
            _run()
        finally:
            # Here, where a failure is seen, not in the interpreter's flush at exit.
            with suppress(ReaderGone):
                if sys.stdout is not None:
                    sys.stdout.flush()
    except StdoutFailed as exc:  # by a command's write or that flush: what it wrote is lost, whatever its exit code
        typer.echo(f"error: cannot write the output: {exc}", err=True)
        sys.exit(1)
    finally:
        sys.stdout = stdout


def _run() -> None:
    from typer.exceptions import TyperException

    try:
        code = app(prog_name="cdr", standalone_mode=False)
    except ReaderGone:
        code = 0
    except TyperException as exc:  # typer's (vendored click's) usage errors
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `cdr` or `cdr sandbox`: show the help
            typer.echo(message)
            sys.exit(0)
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "cdr"
        typer.echo(f"error: {message} (see '{where} --help')", err=True)
        sys.exit(getattr(exc, "exit_code", 2) or 2)
    except CdrError as exc:
        # A command stopped by a signal says what it left (console.Stopped); anything else is an error.
        typer.echo(getattr(exc, "line", f"error: {exc}"), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        if _interrupted_query(exc):
            code = 130
        else:
            # An object store's client raises its own errors from any request: one that could not reach
            # the store is told like the store's other errors (`pipelines.lake.unreachable_store`).
            from pipelines.lake import unreachable_store

            error = unreachable_store(exc)
            if error is None:
                raise
            typer.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)
    if code == 130:  # Ctrl-C: typer's own handling exits 130 without a word
        typer.echo("interrupted", err=True)
    sys.exit(code if isinstance(code, int) else 0)


def _interrupted_query(exc: BaseException) -> bool:
    """Whether `exc` is Ctrl-C during a DuckDB query: DuckDB takes the KeyboardInterrupt itself and
    raises a plain RuntimeError in its place (`cdr sql`, `cdr build` ...)."""
    return type(exc) is RuntimeError and str(exc) == "Query interrupted"
