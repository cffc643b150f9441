"""Running flows from the terminal: validate first, then run with a progress bar and a summary.

Bad arguments are refused before Prefect is imported (it is slow to start): one line, exit 2,
nothing written. Ctrl-C and SIGTERM stop a run alike (`stoppable`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pipelines.dates import Window, format_utc, parse_datetime
from pipelines.errors import (
    CdrError, UsageError, counted, expected_failure, few_counted, named_accounts, noun, one_line, reader_may_leave,
    shown_url,
)

if TYPE_CHECKING:
    from pipelines.opentact.api import RecordType
    from pipelines.opentact.client import ClientConfig
    from pipelines.runs import SyncRequest
    from pipelines.settings import Settings
    from pipelines.sync import ProgressCallback, SyncProgress


def quiet_prefect() -> None:
    """Keep Prefect's per-run chatter and telemetry out of an interactive run (call before importing it).

    Only the terminal is quieted: the run's log in Prefect keeps every record at Prefect's own
    level (PREFECT_LOGGING_LEVEL), the pipeline's among them (`flows.sync.pipeline_logs_to_run`).
    """
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The ephemeral API server needs longer than its default to start on a busy machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # Prefect's event queue says how many items it still drains when a command exits early
    # (after a failure): progress notes of its own shutdown, nothing for the user to act on.
    logging.getLogger("EventsWorker").setLevel(logging.ERROR)


# Prefect's loggers that report a run's failure (with its traceback) as it happens.
_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class _FailureToldByCommand(logging.Filter):
    """Drops Prefect's own account of a failed or stopped run: the command reports it itself.

    An expected error (CdrError: a rejected key, a slice that kept failing) becomes one line
    from `cdr`'s entry point, anything else Python's traceback; a run stopped by a signal
    becomes one line too. Prefect's copy of any of them (its "Crash detected!" for a stopped
    run), traceback included, would only bury that line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        if _stopping.is_set():
            return False
        if expected_failure(record) is not None:
            return False
        return not record.getMessage().startswith("Finished in state Failed")


@contextmanager
def failures_told_by_command() -> Iterator[None]:
    """Within the block, a failing or stopped flow is reported by the command alone (see _FailureToldByCommand)."""
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
def sync_progress(console: Console) -> Iterator[ProgressCallback]:
    """A progress bar (slices, records, records/s, ETA) shown in the block -> the callback a sync moves it with."""
    bar = Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        # Whole words, padded: the bar keeps its width as "1 record" becomes "2 records".
        TextColumn("{task.fields[slices]:<6}  {task.fields[records]:>18}  {task.fields[rate]:>8,.0f}/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    # Until the first tick Prefect is starting (its temporary API server takes a while): said so, the
    # bar would otherwise sit at 0 as if the API did not answer.
    task = bar.add_task(
        "sync (starting Prefect)", total=None, slices=noun(0, "slice"), records=counted(0, "record"), rate=0.0
    )
    started: list[float] = []  # the first tick, not Prefect's start, begins the rate

    def on_progress(tick: SyncProgress) -> None:
        # Ticks carry totals over every record type of the run.
        if not started:
            started.append(time.perf_counter())
        elapsed = max(time.perf_counter() - started[0], 1e-9)
        bar.update(
            task, description="sync", total=tick.slices_total, completed=tick.slices_done,
            slices=noun(tick.slices_total, "slice"), records=counted(tick.records, "record"), rate=tick.records / elapsed,
        )

    with bar:
        yield on_progress


class Stopped(CdrError):
    """A signal (Ctrl-C, SIGTERM) stopped the command: its one line and exit code (128 + the signal).

    A CdrError, not a KeyboardInterrupt: typer turns the latter into a silent exit 130.
    """

    def __init__(self, signum: int, what: str) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        self.line = f"{'interrupted' if signum == signal.SIGINT else 'terminated'}: {what}"
        super().__init__(self.line)


# Set while a signal stops a run: Prefect's account of the cancelled run is not the user's news.
_stopping = threading.Event()
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How long a stopped flow may take to unwind: Prefect's start-up (its temporary API server) is
# not cancellable and slow on a busy machine; the sync itself stops at once.
STOP_GRACE_SECS = 5.0
# `cdr serve`'s: its runs in flight are cancelled as it stops, their processes given Prefect's own kill
# grace (30 s) to exit before their states are set; left sooner, a run stays Running in Prefect.
SERVE_STOP_GRACE_SECS = 40.0
# How long a stopped command's exit may wait for Prefect to hand over its last logs and events.
EXIT_GRACE_SECS = 2.0
T = TypeVar("T")


def leave_within_grace(code: int) -> None:
    """Make sure this process, exiting with `code` as a signal stopped it, is gone within EXIT_GRACE_SECS.

    At exit Prefect hands its last logs and events to its API server, retrying while it cannot
    reach it, and Ctrl-C stops a temporary server too (it is in the terminal's process group):
    past the grace the process leaves without them. The command has said its line: what Prefect
    logs meanwhile is not the user's news. Only for a process about to exit (the console script).
    """
    logging.disable(logging.CRITICAL)

    def leave() -> None:
        time.sleep(EXIT_GRACE_SECS)
        for stream in (sys.stdout, sys.stderr):
            with suppress(Exception):
                stream.flush()
        os._exit(code)

    threading.Thread(target=leave, name="cdr-stopped-exit", daemon=True).start()


@contextmanager
def stoppable(what: str, grace: float | None = None) -> Iterator["_Stoppable"]:
    """Within the block, Ctrl-C or SIGTERM stops the command: Stopped(signal, `what`) is raised.

    Run the flow with the yielded object's `run`: it runs in a worker thread, where Prefect
    installs no SIGTERM handler of its own (its handler raises wherever the main thread happens
    to be, so a signal could surface as a traceback, or land in a task nobody awaits and be
    lost). Here a signal cancels the flow, which unwinds at its next await (the sync's landed
    slices stay checkpointed, its lock is released); the command waits for that at most `grace`
    seconds (None: STOP_GRACE_SECS), or until a second signal, then leaves anyway, as a crash would: the sync
    resumes from its checkpoints either way.

    Work the block runs itself (a build) is stopped where it is, and unwinds as from any error; a second
    signal stops the unwinding too. Whatever that work raises on its way out once a signal came is the
    Stopped: DuckDB takes the signal in a query and raises its own "Query interrupted".
    """
    runner = _Stoppable(what, STOP_GRACE_SECS if grace is None else grace)
    # Only the main thread may handle signals; called elsewhere, the block runs as it is.
    in_main = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, runner.on_signal) for signum in _STOP_SIGNALS} if in_main else {}
    try:
        yield runner
    except Exception as exc:
        if runner.signum is None or isinstance(exc, Stopped):
            raise
        raise Stopped(runner.signum, what) from exc
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if runner.abandoned:  # the flow still unwinding may yet log its crash: the command has said it
            logging.disable(logging.CRITICAL)
        else:
            _stopping.clear()


class _Stoppable:
    def __init__(self, what: str, grace: float) -> None:
        self.what = what
        self.grace = grace
        self.signum: int | None = None
        self.deadline: float | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.running = False
        self.abandoned = False  # a stopped flow was left unwinding after the grace

    def on_signal(self, signum: int, frame: object) -> None:
        if self.signum is not None:  # a second signal: wait no longer
            self.deadline = time.monotonic()
            if not self.running:  # the block's own work unwinding: stop that too
                raise Stopped(self.signum, self.what)
            return
        self.signum = signum
        self.deadline = time.monotonic() + self.grace
        _stopping.set()
        if not self.running:  # no flow runs: stop right here
            raise Stopped(signum, self.what)
        loop, task = self.loop, self.task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop has just closed: the flow is over
                pass

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine (a flow) to its end in a worker thread -> its result; Stopped if a signal came."""
        outcome: dict[str, Any] = {}

        async def guarded() -> T:
            self.loop, self.task = asyncio.get_running_loop(), asyncio.current_task()
            if self.signum is not None:  # the signal came as the thread started
                work.close()
                raise asyncio.CancelledError
            return await work

        def worker() -> None:
            try:
                outcome["result"] = asyncio.run(guarded())
            except BaseException as exc:  # handed to the main thread as it is
                outcome["error"] = exc

        # The caller's context (Prefect's settings among it) goes with the flow. A daemon: a
        # flow that outlives the grace must not keep the process from exiting.
        thread = threading.Thread(
            target=contextvars.copy_context().run, args=(worker,), name="cdr-flow", daemon=True
        )
        self.running = True
        thread.start()
        while thread.is_alive() and (self.deadline is None or time.monotonic() < self.deadline):
            thread.join(0.1)  # short waits: the main thread must be free to run on_signal
        self.running = False
        self.abandoned = thread.is_alive()
        if self.signum is not None:
            raise Stopped(self.signum, self.what)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]


def run_sync(**arguments: object) -> dict[str, object]:
    """`cdr sync`: validate, run the Prefect flow with a progress bar, print a short summary.

    A run of several accounts prints each one's summary, then (if some failed) exits 1 with one
    line naming each failed account: the others have landed.
    """
    with stoppable("the sync stopped; run it again to resume") as runner:
        from pipelines.runs import check_sync

        request = check_sync(**arguments)  # type: ignore[arg-type]
        console = Console(stderr=True)
        if not request.accounts:  # --only-missing, and every account chosen holds the range
            typer.echo(f"nothing to sync: {_held_text(request)} (--only-missing)")
            return {}
        if request.held:
            others = f"the other {len(request.accounts):,}" if len(request.accounts) > 1 else request.accounts[0].name
            console.print(f"--only-missing: {_held_text(request)}; syncing {others}", soft_wrap=True)
        if request.warning:
            console.print(request.warning, markup=False, highlight=False, soft_wrap=True)
        if request.several:
            for line in _account_window_lines(request):
                console.print(line, soft_wrap=True)
        else:
            for kind in request.kinds:
                window = request.windows[kind]
                console.print(f"{kind}: {format_utc(window.start)} .. {format_utc(window.end)}")
        for warning in runner.run(check_api_key(request)) or ():
            console.print(warning, markup=False, highlight=False, soft_wrap=True)
        quiet_prefect()
        from pipelines.flows.sync import AccountsIncomplete, SyncIncomplete, sync_flow

        with sync_progress(console) as progress, failures_told_by_command():
            try:
                result = runner.run(sync_flow(**flow_arguments(request, arguments), progress=progress))
            except SyncIncomplete as incomplete:
                # The slices that landed kept the API's new fields all the same: said as on success.
                with reader_may_leave():  # the run's exit 1 stands
                    for kind in incomplete.report.kinds:
                        _print_extras(kind.kind, kind.extra_fields, "")
                raise
            except AccountsIncomplete as incomplete:
                from pipelines.summary import accounts_result, task_runner_label

                runner = task_runner_label(request.settings)
                with reader_may_leave():  # the run's exit 1 stands
                    _print_accounts(accounts_result(incomplete.report, runner=runner), request)
                raise
            except Exception as exc:
                raise prefect_failure(exc) or exc
    if request.several:
        _print_accounts(result, request)
        return result
    typer.echo(
        f"synced {counted(result['records'], 'record')} in {result['duration_secs']:,.1f} s "
        f"({result['records_per_sec']:,.0f}/s) into {request.settings.data_dir}"
    )
    _print_runner(result)
    _print_types(result["types"], "  ", request.windows)
    return result


def _held_text(request: SyncRequest) -> str:
    """`--only-missing`'s accounts that hold the range already -> what they hold, naming them (or a few)."""
    window = request.window
    assert window is not None  # --only-missing needs a range
    names = request.held
    return (
        f"{named_accounts(names)} {'holds' if len(names) == 1 else 'hold'} {format_utc(window.start)} .. "
        f"{format_utc(window.end)} of {','.join(request.kinds)} already"
    )


def _print_runner(result: dict[str, Any]) -> None:
    if "task_runner" in result:
        typer.echo(f"  task runner: {result['task_runner']}")


def _print_types(types: dict[str, Any], indent: str, asked: Mapping[str, Window]) -> None:
    """Each record type's figures; `asked`: the windows the header printed, which reading stops short of by the
    settle lag when they reach (nearly) up to now: said, so the newest records are not thought missing."""
    for kind, figures in types.items():
        read = figures.get("window")
        short = read is not None and kind in asked and parse_datetime(read[1]) < asked[kind].end
        typer.echo(
            f"{indent}{kind}: {figures['new']:,} new, {figures['updated']:,} updated, "
            f"{figures['quarantined']:,} quarantined"
            + (f"; read up to {read[1]} (newer records settle first: OPENTACT_SETTLE_LAG_SECS)" if short else "")
        )
        _print_extras(kind, figures.get("extra_fields"), indent)


def _print_extras(kind: str, fields: Sequence[str] | None, indent: str) -> None:
    """The fields a record type's records held that the lake has no column for -> the note saying so, if any."""
    if fields:
        from pipelines.land import extras_note

        typer.echo(f"{indent}{extras_note(kind, fields)}")


def _account_window_lines(request: SyncRequest) -> list[str]:
    """A run of several accounts -> per record type, a line per window its accounts read, naming them (a
    reseller's hundreds of accounts mostly read the same window: one line, not one per account)."""
    lines = []
    for kind in request.kinds:
        readers: dict[Window, list[str]] = {}
        for name, windows in request.account_windows.items():
            readers.setdefault(windows[kind], []).append(name)
        for window, names in readers.items():
            every = len(names) == len(request.accounts) > 1  # (an account never synced reads none)
            who = f"all {len(names):,} accounts" if every else few_counted(names, "account")
            lines.append(f"{kind}: {format_utc(window.start)} .. {format_utc(window.end)} for {who}")
    return lines


def _print_accounts(result: dict[str, Any], request: SyncRequest) -> None:
    """A run of several accounts' result -> the run's line, then per account its records and types (or its failure);
    over SHOWN_ACCOUNTS accounts, the types' totals and the failed accounts instead."""
    from pipelines.accounts import SHOWN_ACCOUNTS

    accounts, failed = result["accounts"], result["failed"]
    typer.echo(
        f"synced {counted(result['records'], 'record')} in {result['duration_secs']:,.1f} s "
        f"({result['records_per_sec']:,.0f}/s) into {request.settings.data_dir} "
        f"from {len(request.accounts) - len(failed)} of {counted(len(request.accounts), 'account')}"
    )
    _print_runner(result)
    if len(request.accounts) > SHOWN_ACCOUNTS:
        asked = {
            kind: Window(min(w[kind].start for w in request.account_windows.values()),
                         max(w[kind].end for w in request.account_windows.values()))
            for kind in request.kinds
        }
        _print_types(result["types"], "  ", asked)
        if failed:
            # a reseller's accounts failing alike (an outage) are a few names and a count, as in the error line
            typer.echo(f"  FAILED: {few_counted([a.name for a in request.accounts if a.name in failed], 'account')}")
        return
    for account in request.accounts:
        if account.name in accounts:
            typer.echo(f"  {account.name}: {counted(accounts[account.name]['records'], 'record')}")
            _print_types(accounts[account.name]["types"], "    ", request.account_windows[account.name])
        if account.name in failed:
            typer.echo(f"  {account.name}: FAILED")


# The key check's one request gets no retries and at most this long: it only saves a wrong key
# the wait for Prefect, and an API that is slow or down is the flow's to retry and report.
KEY_CHECK_SECS = 5.0


async def check_api_key(request: SyncRequest) -> list[str]:
    """One cheap authenticated request per key (a listing's first page, one second of the window), the keys of
    several accounts at once -> ApiKeyRejected when no key can sync; else the warning lines to print (none: go on).

    Prefect takes many seconds to start, and a wrong key would fail the run's first request
    anyway. Any other outcome (the network down, the API failing or slow, an odd answer) lets
    the sync go ahead: the flow retries it and reports it as it always has. A connection refused
    or a name that does not resolve may be an outage, but is more often a wrong base URL: the
    warning says so at once, instead of after the retries.

    With an accounts file, only the accounts whose key is in a variable are tried (only the flow
    reads Prefect Secret blocks); the run is refused only when every account would fail on its key
    (rejected, or its variable unset), as one rejected account must not stop the others.
    """
    from pipelines.accounts import account_api_key
    from pipelines.opentact.client import ApiKeyRejected, ApiUnreachable, ClientConfig
    from pipelines.sync import account_config, without_account

    settings = request.settings
    kind = request.kinds[0]
    if not request.several:
        config = ClientConfig.from_settings(settings)
        outcome = (await _try_keys({None: (config, request.windows[kind].start)}, kind, 1)).get(None)
        if isinstance(outcome, ApiKeyRejected):
            raise outcome
        if isinstance(outcome, ApiUnreachable):
            return [_unreachable_warning(f"{shown_url(config.base_url)}: {outcome.cause}", settings,
                                         "the URL is wrong", "OPENTACT_BASE_URL")]
        return []
    tried: dict[str | None, tuple[ClientConfig, datetime]] = {}
    keyless: dict[str, str] = {}
    for account in request.accounts:
        # an account read from a Secret block, or with no earlier sync to continue from (it fails alone), is not tried
        if account.api_key_block is not None or account.name not in request.account_windows:
            continue
        try:
            key = account_api_key(account, settings)
        except UsageError as exc:
            keyless[account.name] = str(exc)
            continue
        start = request.account_windows[account.name][kind].start
        tried[account.name] = (account_config(account, settings, key), start)
    outcomes = await _try_keys(tried, kind, settings.opentact_concurrency)
    rejected = {name: one_line(o) for name, o in outcomes.items() if isinstance(o, ApiKeyRejected)}
    if rejected and len(rejected) + len(keyless) == len(request.account_windows):
        # Every account that could land fails on its key: nothing would land, so not worth Prefect's start.
        raise ApiKeyRejected(_causes(request, {
            a.name: without_account(a.name, keyless[a.name]) if a.name in keyless else rejected[a.name]
            for a in request.accounts if a.name in request.account_windows
        }))
    warnings = []
    if rejected:
        they = "it fails" if len(rejected) == 1 else "they fail"
        warnings.append(f"warning: {_causes(request, rejected)}; {they} in this run, the other accounts sync")
    unreachable: dict[str, list[str]] = {}
    for name, outcome in outcomes.items():
        if isinstance(outcome, ApiUnreachable):
            place = f"{shown_url(tried[name][0].base_url)}: {outcome.cause}"
            unreachable.setdefault(place, []).append(name)
    if unreachable:
        places = "; ".join(
            f"{named_accounts(names)} at {place}"
            for place, names in unreachable.items()
        )
        warnings.append(_unreachable_warning(places, settings, "a URL is wrong", "the account's base_url "
                                             "(or OPENTACT_BASE_URL)"))
    return warnings


def _causes(request: SyncRequest, causes: Mapping[str, str]) -> str:
    """Accounts' causes (each without its account's name) -> each cause once, naming its accounts (a few of them):
    `account acme: ...; accounts a, b, c, ... (40 accounts): ...` (`pipelines.sync.by_cause`)."""
    from pipelines.sync import by_cause, key_name

    chosen = {account.name: account for account in request.accounts}
    groups = by_cause((name, cause, key_name(chosen[name])) for name, cause in causes.items())
    return "; ".join(f"{named_accounts(names)}: {cause}" for names, cause in groups)


async def _try_keys(
    configs: Mapping[str | None, tuple[ClientConfig, datetime]], kind: RecordType, concurrency: int
) -> dict[str | None, Exception | None]:
    """Names -> (client config, window start): each key tried with one request, `concurrency` at once (the
    sync's own budget of requests in flight: a reseller's hundreds of accounts are no burst), no retries, all
    within KEY_CHECK_SECS -> each one's ApiKeyRejected or ApiUnreachable, or None (accepted, or anything else)."""
    from pipelines.opentact.client import ApiKeyRejected, ApiUnreachable, OpentactClient

    budget = asyncio.Semaphore(concurrency)

    async def one(config: ClientConfig, start: datetime) -> Exception | None:
        config = replace(config, concurrency=1, retry_max_secs=0.0,
                         timeout_secs=min(config.timeout_secs, KEY_CHECK_SECS))
        try:
            async with budget, OpentactClient(config) as client:
                pages = client.read_slice(kind, Window(start, start + timedelta(seconds=1)))
                try:
                    await anext(pages)
                finally:
                    await pages.aclose()
        except (ApiKeyRejected, ApiUnreachable) as outcome:
            return outcome
        except CdrError:
            pass
        return None

    tasks = {name: asyncio.ensure_future(one(*args)) for name, args in configs.items()}
    if not tasks:
        return {}
    # A key whose answer is late is left to the run, as a slow API is.
    await asyncio.wait(tasks.values(), timeout=KEY_CHECK_SECS)
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    return {name: task.result() for name, task in tasks.items() if not task.cancelled()}


def _unreachable_warning(places: str, settings: Settings, wrong: str, check: str) -> str:
    """Where no connection could be made, and why -> the warning that the sync retries it, and what to check."""
    return (
        f"warning: {places}; the sync retries each request for up to {settings.opentact_retry_max_secs:g} s "
        f"(OPENTACT_RETRY_MAX_SECS), then the sync itself: if {wrong}, stop it (Ctrl-C) and check {check}"
    )


class PrefectUnavailable(CdrError):
    """Prefect's own machinery failed (its API unreachable, its server not starting), not the flow."""


# This package's files: an error raised with none of them on its way (but those that only hand
# flows to Prefect: this module, and `cdr serve`'s) comes from Prefect's own machinery, not from a flow.
_PACKAGE = Path(__file__).resolve().parent
_HANDING_TO_PREFECT = (Path(__file__).resolve(), _PACKAGE / "flows" / "serve.py")


def prefect_failure(exc: Exception, doing: str = "run the flow") -> PrefectUnavailable | None:
    """An error out of a flow run (or `cdr serve`'s serving, `doing`) -> one line if Prefect failed before
    any of the flow's code ran, else None.

    Anything the flow's code raised keeps its own handling: a CdrError is its one line, a bug
    its traceback. The traceback's first frame is the caller's, which caught `exc`: not on its way.
    """
    if isinstance(exc, CdrError):
        return None
    for frame in traceback.extract_tb(exc.__traceback__)[1:]:
        path = Path(frame.filename).resolve()
        if path.is_relative_to(_PACKAGE) and path not in _HANDING_TO_PREFECT:
            return None
    return PrefectUnavailable(
        f"Prefect could not {doing} ({type(exc).__name__}: {one_line(exc, first=True)}): check PREFECT_API_URL "
        "(unset, a temporary local server is started) and that its server is up, then run it again"
    )


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
        "data_dir": str(request.settings.data_dir),
    } | ({"accounts": [account.name for account in request.accounts]} if request.several else {})
