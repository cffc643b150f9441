"""The sync flow: a date literal, an explicit range or neither (incremental) -> the lake, and a markdown artifact.

One coarse task per run: the client already parallelises the paging and retries HTTP requests.
A run of several accounts is one task too: the accounts share one event loop, so their clients
share one request budget (an asyncio semaphore), and the data dir's lock and log entry are held
once around them. With CDR_TASK_RUNNER=dask that task still holds the lock, the log entry and
the checkpoints, and hands the slices out to a Dask cluster's workers as tasks of their own
(`pipelines.flows.distributed`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, time as clock_time, timezone
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import acreate_markdown_artifact, acreate_progress_artifact, aupdate_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging.handlers import APILogHandler

from pipelines.dates import Window, format_utc
from pipelines.accounts import DEFAULT_ACCOUNT, Account, account_api_key, load_accounts, select_accounts
from pipelines.errors import CdrError, counted, few
from pipelines.flows import run_arguments
from pipelines.flows.distributed import ClusterUnavailable, slice_dispatch
from pipelines.flows.secrets import read_secret_block
from pipelines.opentact import api
from pipelines.lake import Lake
from pipelines.runs import (
    log_failed_start, log_stopped_between_attempts, parse_types, resolve_sync_window, run_clock,
)
from pipelines.settings import Settings, load_settings
from pipelines.summary import (
    accounts_lines, accounts_markdown, accounts_result, sync_lines, sync_markdown, sync_result, task_runner_label,
)
from pipelines.sync import (
    AccountsReport, Dispatch, ProgressCallback, SyncProgress, SyncReport, rerun_advice, sync, sync_accounts,
)

log = logging.getLogger(__name__)


class SyncIncomplete(CdrError):
    """Some slices still failed after every retry; the rest landed and the next run redoes only those."""

    def __init__(self, report: SyncReport) -> None:
        self.report = report
        super().__init__(f"{report.failures_text}; {rerun_advice(report.retryable)}")


class AccountsIncomplete(CdrError):
    """A sync of several accounts where some failed (the others landed): one line naming each and its cause."""

    def __init__(self, report: AccountsReport) -> None:
        self.report = report
        super().__init__(report.failure_line())


async def _settings(
    data_dir: str | None, tz: str | None, week_start: str | None, api_key_block: str | None
) -> Settings:
    """The flow's settings; with `api_key_block`, OPENTACT_API_KEY (the default account's key) read from that block."""
    settings = load_settings(data_dir=data_dir, timezone=tz, week_start=week_start)
    if api_key_block:
        # Read and checked as an account's block is; blocking (Prefect's API), so off the flow's event loop.
        block = Account(DEFAULT_ACCOUNT, None, api_key_block, settings.opentact_base_url)
        key = await asyncio.to_thread(account_api_key, block, settings, read_secret_block)
        settings = settings.with_overrides(opentact_api_key=key)
    return settings


# The package whose stdlib loggers the pipeline's modules log to (`logging.getLogger(__name__)`).
PIPELINE_LOGGER = "pipelines"


@contextmanager
def pipeline_logs_to_run() -> Iterator[None]:
    """Within the block, the pipeline's log records also go to the Prefect run's log, at the level Prefect logs runs at.

    Prefect sends only its own loggers to its API, and the pipeline logs through stdlib loggers
    that know nothing of Prefect. Attached here, inside the run, it holds for `cdr sync`,
    `cdr serve` and a worker alike, with no setting to remember. The records hold no key: the
    client masks whatever it quotes.
    """
    logger = logging.getLogger(PIPELINE_LOGGER)
    if any(isinstance(handler, APILogHandler) for handler in logger.handlers):  # PREFECT_LOGGING_EXTRA_LOGGERS did it
        yield
        return
    handler, level = APILogHandler(), logger.level
    logger.addHandler(handler)
    if level == logging.NOTSET:
        logger.setLevel(logging.getLogger("prefect.flow_runs").getEffectiveLevel())
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# At most one progress artifact update per this many seconds: each is a call to Prefect's API.
PROGRESS_EVERY_SECS = 5.0


class RunProgress:
    """A sync's progress ticks -> the caller's callback (every tick) and a progress artifact's percent (now and then).

    `update` sends a percent to the artifact. Ticks come on the sync's event loop, so an update
    is started there and not awaited: the sync never waits for Prefect, and a tick arriving
    while one is on its way only moves the figure the next one sends.
    """

    def __init__(
        self,
        update: Callable[[float], Awaitable[object]],
        caller: ProgressCallback | None = None,
        *,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._update = update
        self._caller = caller
        self._timer = timer
        self._sent_at = timer()
        self.sent = 0.0  # the percent the artifact shows, as far as this object knows
        self.latest = 0.0
        self._pending: asyncio.Task[None] | None = None

    def __call__(self, tick: SyncProgress) -> None:
        if self._caller is not None:
            self._caller(tick)
        self.latest = round(100.0 * tick.slices_done / tick.slices_total, 1) if tick.slices_total else 100.0
        due = self._timer() - self._sent_at >= PROGRESS_EVERY_SECS
        if due and self.latest != self.sent and (self._pending is None or self._pending.done()):
            self._pending = asyncio.get_running_loop().create_task(self._send(self.latest))

    async def finish(self) -> None:
        """Send the last percent, once any update on its way has landed; nothing more if the run is being cancelled."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            if self._pending is not None:
                self._pending.cancel()
            return
        if self._pending is not None:
            await self._pending
        if self.latest != self.sent:
            await self._send(self.latest)

    async def _send(self, percent: float) -> None:
        self.sent, self._sent_at = percent, self._timer()
        try:
            await self._update(percent)
        except Exception as exc:  # the figure is a courtesy: the sync goes on without it
            log.warning("could not update the sync's progress artifact: %s", exc)


def sync_run_name(parameters: Mapping[str, Any]) -> str:
    """A sync flow's parameters -> its run's name: `sync 2026-11-01..2026-11-08 cdrs,mdrs`, `sync incremental cdrs`.

    The window as it resolves, end exclusive like every window here: dates where its bounds are
    midnights in the run's time zone, else UTC instants. Arguments that do not resolve name the
    run as given; the flow refuses them itself.
    """
    arguments = run_arguments(sync_flow.fn, parameters)
    types = arguments["types"]
    named = ",".join(types) if isinstance(types, list) else str(types)
    try:
        settings = load_settings(data_dir=arguments["data_dir"], timezone=arguments["tz"], week_start=arguments["week_start"])
        named = ",".join(parse_types(types))
        clock = run_clock(arguments["now"], settings)
        window = resolve_sync_window(
            settings, date_range=arguments["date_range"], start=arguments["start"], end=arguments["end"], now=clock
        )
    except CdrError:
        given = arguments["date_range"] or f"{arguments['start'] or ''}..{arguments['end'] or ''}"
        return f"sync {given} {named}"
    if window is None:
        return f"sync incremental {named}"
    zone = ZoneInfo(settings.timezone)
    return f"sync {_bound_label(window.start, zone)}..{_bound_label(window.end, zone)} {named}"


def _bound_label(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return local.date().isoformat() if local.time() == clock_time(0) else format_utc(moment)


def _slices_failed(task: object, task_run: object, state: Any) -> bool:
    """Retry only slices that failed for the moment (saying so in a warning): bad input or a broken source fails
    the same way every time.

    A run of several accounts is retried only if every failed account failed that way (a rejected
    or missing key does not come right by itself); its accounts that landed land again as no-ops.
    """
    failure = state.data
    if isinstance(failure, AccountsIncomplete) and all(a.retryable for a in failure.report.failed):
        failed = failure.report.failed
        what = f"{counted(len(failed), 'account')} failed for the moment ({few([a.account for a in failed])})"
    elif isinstance(failure, SyncIncomplete) and failure.report.retryable:
        first = failure.report.failures[0]
        what = (
            f"{counted(len(failure.report.failures), 'slice')} failed for the moment "
            f"(first: {first.kind} {first.slice}: {first.cause})"
        )
    else:
        return False
    # Prefect says so only at INFO: the terminal would go quiet for the wait with no word why.
    run = max(getattr(task_run, "run_count", 1), 1)
    delays = getattr(task, "retry_delay_seconds", None) or [0]
    delay = delays[min(run, len(delays)) - 1] if isinstance(delays, list) else delays
    log.warning("%s; the sync tries again in %g s (retry %d of %d)", what, delay, run, getattr(task, "retries", 0))
    return True


@task(
    name="sync-records",
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_condition_fn=_slices_failed,
    cache_policy=NO_CACHE,
    persist_result=False,
)
async def sync_records(
    types: list[api.RecordType], window: Window | None, now: datetime, run_id: str, settings: Settings,
    accounts: list[Account] | None, progress: ProgressCallback | None, dispatch: Dispatch | None = None,
) -> SyncReport | AccountsReport:
    """Page the API into the lake: OPENTACT_API_KEY's account (`accounts` None: no accounts file), or the
    accounts of the file at once. Raises SyncIncomplete / AccountsIncomplete (after landing the rest) when
    slices or accounts failed."""
    from pipelines.opentact.client import ClientConfig, OpentactClient

    artifact = await acreate_progress_artifact(
        0.0, key="cdr-sync-progress", description="CDR/MDR sync: the share of the run's slices done"
    )
    tracker = RunProgress(lambda percent: aupdate_progress_artifact(artifact, percent), progress)
    report: SyncReport | AccountsReport
    try:
        if accounts is None:
            async with OpentactClient(ClientConfig.from_settings(settings)) as client:
                report = await sync(types, window, settings, client, now, run_id, tracker, dispatch=dispatch)
        else:
            report = await sync_accounts(
                types, window, settings, accounts, now, run_id, tracker, read_block=read_secret_block,
                dispatch=dispatch,
            )
    finally:
        await tracker.finish()
    if isinstance(report, AccountsReport) and not report.ok:
        raise AccountsIncomplete(report)
    if isinstance(report, SyncReport) and not report.ok:
        raise SyncIncomplete(report)
    return report


@flow(name="cdr-sync", flow_run_name=lambda: sync_run_name(runtime.flow_run.parameters), log_prints=False)
async def sync_flow(
    date_range: str | None = None,
    start: str | None = None,
    end: str | None = None,
    types: list[str] = ["cdrs", "mdrs"],  # noqa: B006 - Prefect parameters must be JSON-friendly
    tz: str | None = None,
    week_start: str | None = None,
    now: str | None = None,
    data_dir: str | None = None,
    api_key_block: str | None = None,
    accounts: list[str] | None = None,
    all_accounts: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Sync a date literal, an explicit range, or (neither) incrementally from the high-water mark.

    `accounts` names accounts of the accounts file to sync; neither it nor `all_accounts`: every
    configured account (with no accounts file, the `default` account of OPENTACT_API_KEY, or of
    the Secret block `api_key_block`). `progress` is for a caller in this process (the
    terminal's bar); Prefect stores no function, so a deployment leaves it unset.
    """
    with pipeline_logs_to_run():
        logger = get_run_logger()
        settings = await _settings(data_dir, tz, week_start, api_key_block)
        configured = load_accounts(settings)
        selected = select_accounts(configured, accounts, all_accounts=all_accounts)
        clock = run_clock(now, settings)
        window = resolve_sync_window(settings, date_range=date_range, start=start, end=end, now=clock)
        kinds = parse_types(types)
        run_id = str(runtime.flow_run.id or uuid.uuid4())
        # With an accounts file, its accounts (even one); without, today's single key.
        chosen = list(selected) if configured.source is not None else None
        named = f" for accounts {', '.join(a.name for a in selected)}" if chosen is not None else ""
        logger.info("syncing %s %s as of %s%s", ",".join(kinds), window or "incrementally", format_utc(clock), named)
        started = datetime.now(timezone.utc)
        try:
            # The cluster, if any, stays up through the task's retries.
            async with slice_dispatch(settings, run_id, clock) as dispatch:
                try:
                    state = await sync_records(
                        kinds, window, clock, run_id, settings, chosen, progress, dispatch, return_state=True
                    )
                except BaseException as exc:
                    if not isinstance(exc, Exception):
                        # A signal while the task waited to retry: its last attempt logged how it ended.
                        log_stopped_between_attempts(Lake(settings.data_dir), run_id)
                    raise
        except ClusterUnavailable as exc:
            # A run whose cluster is out of reach failed as one whose API is: `cdr status` must not show the last
            # good run as the last.
            log_failed_start(Lake(settings.data_dir), run_id, kinds, exc, started=started)
            raise
        outcome = await state.aresult(raise_on_failure=False)
        report = outcome.report if isinstance(outcome, SyncIncomplete | AccountsIncomplete) else outcome
        runner = task_runner_label(settings)
        if isinstance(report, SyncReport):
            markdown, lines = sync_markdown(report, runner=runner), sync_lines(report, runner=runner)
            result = sync_result(report, runner=runner)
        elif isinstance(report, AccountsReport):
            markdown, lines = accounts_markdown(report, runner=runner), accounts_lines(report, runner=runner)
            result = accounts_result(report, runner=runner)
        if isinstance(report, SyncReport | AccountsReport):
            await acreate_markdown_artifact(markdown, key="cdr-sync-report", description="CDR/MDR sync")
            for line in lines:
                logger.info(line)
        if isinstance(outcome, BaseException):
            raise outcome
        return result
