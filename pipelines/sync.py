"""Sync (landing stage, plain async Python): API slices -> lake, quarantine and state.

A failing slice does not stop the others: the next run redoes only it. A type's high-water mark
moves once every slice of it landed. `sync` holds the data dir's lock throughout: one sync at a time.
`sync_accounts` syncs several accounts under that one lock, each through its own client, and a
failing account does not stop the others either. Given a `dispatch`, either lands its slices
elsewhere (a Dask cluster's workers run `land_slices`) and folds what comes back into the same
report; the lock, the log entry and the checkpoints stay the run's.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from functools import partial
from typing import Protocol

import httpx
import orjson
import polars as pl
from pydantic import SecretStr

from pipelines.dates import Window, consecutive_runs, parse_datetime, utc_midnight
from pipelines.errors import FEW, CdrError, counted, few_counted, noun, one_line
from pipelines.land import (
    DayCounts,
    DayTotals,
    LandStats,
    Rejected,
    UsageConflictError,
    check_run_id,
    extras_note,
    land_usage,
    land_windows,
    quarantine,
    window_days,
)
from pipelines.accounts import API_KEY_VARIABLE, DEFAULT_ACCOUNT, Account, BlockReader, account_api_key
from pipelines.lake import LAKE_DIR, QUARANTINE_DIR, STAGING_DIR, STATE_DIR, AccountLake, Lake, unreachable_store
from pipelines.opentact import api
from pipelines.opentact.client import (
    ApiKeyRejected,
    ClientConfig,
    OpentactClient,
    RetriesExhausted,
    RetryWarnings,
    SliceChanged,
    connection_pool,
)
from pipelines.opentact.records import empty_frame
from pipelines.opentact.slices import utc_days
from pipelines.runs import RecordedSync, check_sync_span, first_sync_command, recorded_sync
from pipelines.settings import Settings, shown_value
from pipelines.state import NeverSynced, SyncRun, begin_run, covers, incremental_window, kind_dir, read_state, resumed_plan

log = logging.getLogger(__name__)


class SlicePage(Protocol):
    """What the sync needs of a client page."""

    frame: pl.DataFrame
    rejects: list[Rejected]


class SyncClient(Protocol):
    """What the sync needs of the API client (`OpentactClient` is one)."""

    def frozen(self, window: Window, now: datetime | None = None) -> Window:
        """The part of a window settled at `now`."""

    async def plan(self, kind: api.RecordType, window: Window, now: datetime | None = None) -> list[Window]:
        """The slices of the window's settled part, in order (they may depend on what the window holds)."""

    def read_slice(self, kind: api.RecordType, slice_: Window) -> AsyncIterator[SlicePage]:
        """Every page of one slice."""

    async def read_usage(
        self, kind: api.RecordType, window: Window, dimensions: Sequence[str] = ..., now: datetime | None = None
    ) -> pl.DataFrame:
        """The API's usage aggregate of the window's settled part."""


@dataclass(frozen=True, slots=True)
class SliceFailure:
    """A slice (or a type's usage read) that failed after the client's retries, why, and whether a rerun can succeed.

    `retryable` only for failures of the moment (the API kept failing, the data moved while paged):
    bad input or a broken source fails the same way on every rerun.
    """

    kind: str
    slice: Window
    cause: str
    retryable: bool = False
    # set in a sync of several accounts: whose slice it was
    account: str | None = None


class BrokenSlice(CdrError):
    """A slice whose records are mostly malformed: the source is broken, so the slice is not landed."""


@dataclass(frozen=True, slots=True)
class DayReport(DayCounts):
    """What the sync did to one record type's UTC day."""

    quarantined: int = 0


@dataclass(slots=True)
class KindReport(DayTotals):
    """One record type's run: its frozen window, slices by fate, records, days; filled in as the sync runs.

    `extra_fields`: the fields its records held that the lake has no column for (kept in their extras).
    """

    kind: str
    window: Window
    slices: int
    skipped: int
    landed: int = 0
    failed: int = 0
    completed: bool = False
    records: int = 0
    quarantined: int = 0
    usage_rows: int = 0
    days: tuple[DayReport, ...] = ()
    extra_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncReport:
    """The whole sync: per record type, failures with causes, duration and rate."""

    run_id: str
    now: datetime
    kinds: tuple[KindReport, ...]
    failures: tuple[SliceFailure, ...]
    duration_secs: float

    @property
    def ok(self) -> bool:
        """Whether everything landed (the caller exits non-zero otherwise)."""
        return not self.failures

    @property
    def records(self) -> int:
        """Records received (valid and quarantined) from the API."""
        return sum(k.records + k.quarantined for k in self.kinds)

    @property
    def records_per_sec(self) -> float:
        """Records received per second of the sync."""
        return self.records / self.duration_secs if self.duration_secs > 0 else 0.0

    @property
    def failures_text(self) -> str:
        """The failed slices on one line: how many, then each one's type, window and cause."""
        listed = "; ".join(f"{f.kind} {f.slice}: {f.cause}" for f in self.failures)
        return f"{counted(len(self.failures), 'slice')} failed ({listed})"

    @property
    def retryable(self) -> bool:
        """Whether a rerun can succeed as things are: every failed slice failed for the moment."""
        return all(f.retryable for f in self.failures)


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """A progress tick: totals over every record type so far (for a bar with rate and ETA)."""

    kind: str
    slices_total: int
    slices_done: int
    records: int


ProgressCallback = Callable[[SyncProgress], None]


def sync_windows(
    kinds: Sequence[api.RecordType], window: Window | None, lake: AccountLake, settings: Settings, now: datetime
) -> dict[api.RecordType, Window]:
    """The window each record type syncs: the given one, else [high-water mark - lookback, now); UsageError before any work."""
    if window is not None:
        return {kind: window for kind in kinds}
    lookback = timedelta(days=settings.lookback_days)
    windows = {}
    for kind in kinds:
        state = read_state(lake, kind)
        windows[kind] = incremental_window(state, now, lookback)
        check_sync_span(windows[kind], settings, now, kind=kind, mark=state.high_water_mark)
    return windows


async def sync(
    kinds: api.RecordType | Sequence[api.RecordType],
    window: Window | None,
    settings: Settings,
    client: SyncClient,
    now: datetime,
    run_id: str,
    progress: ProgressCallback | None = None,
    *,
    lake: Lake | None = None,
    slice_concurrency: int | None = None,
    dispatch: Dispatch | None = None,
) -> SyncReport:
    """Record types, a window (None: incremental) and a client -> the lake synced, and what happened.

    The account synced is `lake`'s when it is an `AccountLake`, else the default account.
    """
    started = time.perf_counter()
    kinds = api.record_types(kinds)
    now = _run_clock(now, run_id)
    lake = lake if isinstance(lake, AccountLake) else (lake or Lake(settings.data_dir)).for_account(DEFAULT_ACCOUNT)
    windows = _prepare(kinds, window, lake, settings, now)
    # One sync at a time per data dir: another one fails here, before writing anything.
    with lake.sync_lock(run_id), recorded_sync(lake, run_id, kinds) as logged:
        # This process is the data dir's only writer: leftovers of a crashed one can go.
        lake.sweep_temporaries()
        runner = _runner(lake, client, now, run_id, progress, settings, logged, slice_concurrency, dispatch)
        try:
            await runner.run(kinds, windows)
        except* ApiKeyRejected as failed:
            # Every request would fail the same way: stop at once rather than list each slice.
            raise _first(failed) from None
        logged.finish(runner.failures)
    return runner.sync_report(kinds, time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class AccountReport:
    """One account's part of a sync of several: its report, or why it failed as a whole.

    `error` is set when the account could not be synced at all or stopped part-way (its key
    unset or rejected, its lake unusable); `report` is then None. Its slices that landed stay
    landed and checkpointed either way.
    """

    account: str
    report: SyncReport | None
    error: str | None = None
    # where its key is, as its causes name it (`key_name`): accounts failing alike but for it fail with one cause
    key_name: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.report is not None and self.report.ok

    @property
    def cause(self) -> str | None:
        """Why the account failed, on one line (None if it did not); never its key."""
        if self.error is not None:
            return self.error
        if self.report is None or self.report.ok:
            return None
        return self.report.failures_text

    @property
    def retryable(self) -> bool:
        """Whether a rerun can succeed: only slices failed, each for the moment."""
        return self.error is None and self.report is not None and self.report.retryable


@dataclass(frozen=True, slots=True)
class AccountsReport:
    """A sync of several accounts under one lock and one log entry: each account's outcome, in order."""

    run_id: str
    now: datetime
    accounts: tuple[AccountReport, ...]
    duration_secs: float

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.accounts)

    @property
    def failed(self) -> tuple[AccountReport, ...]:
        return tuple(a for a in self.accounts if not a.ok)

    @property
    def records(self) -> int:
        return sum(a.report.records for a in self.accounts if a.report is not None)

    @property
    def records_per_sec(self) -> float:
        return self.records / self.duration_secs if self.duration_secs > 0 else 0.0

    def failure_line(self) -> str:
        """One line naming the failed accounts by cause, each cause once with a few of its accounts (empty when none
        failed), then what to do: a first sync with a range for those never synced, else run the sync again."""
        failed = self.failed
        if not failed:
            return ""
        landed = [a.account for a in self.accounts if a.ok]
        # A reseller's hundreds that landed are counted: the line is for the accounts to act on.
        others = f"; {', '.join(landed) if len(landed) <= FEW else f'the other {len(landed):,}'} landed" if landed else ""
        groups = by_cause((a.account, without_account(a.account, a.cause or ""), a.key_name) for a in failed)
        causes = "; ".join(f"{few_counted(names, 'account')}: {cause}" for names, cause in groups[:FEW])
        if len(groups) > FEW:
            rest = sum(len(names) for names, _ in groups[FEW:])
            causes += f"; {counted(rest, 'more account')} for other causes (`cdr status --json` has each one's)"
        return f"{len(failed)} of {counted(len(self.accounts), 'account')} failed{others}: {causes}; {_advice(failed)}"


# Why an account of an incremental sync with no high-water mark fails (`_advice` says how to give it a first sync).
NEVER_SYNCED = "no earlier sync to continue from"
# Stands for an account's `key_name` in a cause shared by accounts that differ only by it.
_THEIR_KEY = "\0"


def key_name(account: Account) -> str:
    """An account -> where its key is, as a message names it: its variable, or its Prefect Secret block."""
    if account.api_key_block is not None:
        return shown_value(account.api_key_block)
    return account.api_key_env or API_KEY_VARIABLE


def by_cause(failures: Iterable[tuple[str, str, str | None]]) -> list[tuple[list[str], str]]:
    """(account, its cause, where its key is: `key_name`) of failed accounts -> (accounts, their cause) per cause,
    in order: accounts whose causes differ only by where their key is (each rejected key names its own variable)
    share one, naming each one's key so."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for account, cause, key in failures:
        shared = cause if not key else re.sub(rf"(?<![\w-]){re.escape(key)}(?![\w-])", _THEIR_KEY, cause)
        groups.setdefault(shared, []).append((account, cause))
    found = []
    for shared, members in groups.items():
        causes = {cause for _, cause in members}
        if len(causes) > 1:
            shared = shared.replace(f"Prefect Secret block {_THEIR_KEY}", "Prefect Secret block each one's api_key_block names")
            causes = {shared.replace(_THEIR_KEY, "each one's api_key_env variable")}
        found.append(([name for name, _ in members], causes.pop()))
    return found


def _advice(failed: Sequence[AccountReport]) -> str:
    """Failed accounts -> what to do: the first sync of those never synced (another run without a range fails them
    again), and for the others run the sync again (once what is named is fixed, unless it failed for the moment)."""
    never = [a.account for a in failed if a.error == NEVER_SYNCED]
    others = [a for a in failed if a.error != NEVER_SYNCED]
    advice = []
    if never:
        whom = ("it" if len(never) == 1 else "them") if not others else f"the {noun(len(never), 'account')} never synced"
        advice.append(f"give {whom} a first sync with a range: {first_sync_command(never)}")
    if others:
        advice.append(rerun_advice(all(a.retryable for a in others)))
    return "; ".join(advice)


def rerun_advice(retryable: bool) -> str:
    """Whether what failed can succeed on a rerun as things are -> what to do: run the sync again, once what is
    named is fixed unless it failed for the moment (a rejected key, a wrong base URL fail every rerun alike)."""
    again = "run the sync again (landed slices are not redone)"
    return again if retryable else f"fix what is named, then {again}"


class SharedByBaseUrl:
    """What the clients of a sync of several accounts share per API base URL: its connection pool, and its
    retry warnings (an outage of that API is then warned of once a minute, not once per account)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pools: dict[str, httpx.AsyncClient] = {}
        self.retries: dict[str, RetryWarnings] = {}

    def pool(self, base_url: str) -> httpx.AsyncClient:
        if base_url not in self.pools:
            # As many connections as the run's request budget: never more requests in flight.
            self.pools[base_url] = connection_pool(self.settings.opentact_concurrency, self.settings.opentact_timeout_secs)
        return self.pools[base_url]

    def retry_warnings(self, base_url: str) -> RetryWarnings:
        return self.retries.setdefault(base_url, RetryWarnings())

    async def aclose(self) -> None:
        for pool in self.pools.values():
            await pool.aclose()


def account_config(account: Account, settings: Settings, key: SecretStr) -> ClientConfig:
    """An account and its key (`account_api_key`) -> its client config: its base URL, and its variable or block
    as the place a rejected key's message tells to check."""
    # Not through `Settings.with_overrides`: reading the environment again for each of many
    # accounts costs more than its sync; the key and URL were checked as the account was read.
    config = ClientConfig.from_settings(settings, api_key=key, base_url=account.base_url)
    source = key_name(account)
    if account.api_key_block is not None:
        source = f"the Prefect Secret block {source}"
    return replace(config, key_source=source)


@asynccontextmanager
async def account_client(
    account: Account,
    budget: asyncio.Semaphore,
    *,
    settings: Settings,
    shared: SharedByBaseUrl,
    read_block: BlockReader | None = None,
) -> AsyncIterator[SyncClient]:
    """An account -> its own API client, at its base URL with its key, its requests within the shared `budget`
    and with what it shares with the other accounts at its base URL."""
    # A Secret block is read over Prefect's API, a blocking call: kept off the event loop.
    key = await asyncio.to_thread(account_api_key, account, settings, read_block)
    config = account_config(account, settings, key)
    pool = shared.pool(config.base_url)
    retries = shared.retry_warnings(config.base_url)
    async with OpentactClient(config, budget=budget, pool=pool, retries=retries) as client:
        yield client


async def sync_accounts(
    kinds: api.RecordType | Sequence[api.RecordType],
    window: Window | None,
    settings: Settings,
    accounts: Sequence[Account],
    now: datetime,
    run_id: str,
    progress: ProgressCallback | None = None,
    *,
    lake: Lake | None = None,
    read_block: BlockReader | None = None,
    slice_concurrency: int | None = None,
    dispatch: Dispatch | None = None,
) -> AccountsReport:
    """Sync several accounts at once -> each one's outcome; one failing account does not stop the others.

    The data dir's lock, its log entry and the sweep of temporaries are the data dir's, so they
    are taken once for the run; each account lands through its own `AccountLake` with its own
    client, and all the clients' requests share one budget of OPENTACT_CONCURRENCY in flight.
    """
    started = time.perf_counter()
    kinds = api.record_types(kinds)
    now = _run_clock(now, run_id)
    if not accounts:
        raise ValueError("no accounts to sync")
    base = Lake(settings.data_dir) if lake is None else lake
    prepared: dict[str, tuple[AccountLake, dict[api.RecordType, Window]]] = {}
    errors: dict[str, str] = {}
    for account in accounts:
        try:
            account_lake = base.for_account(account.name)
            prepared[account.name] = (account_lake, _prepare(kinds, window, account_lake, settings, now))
        except NeverSynced:
            # Short and the same for each: the run's one line names a reseller's new accounts with it once.
            errors[account.name] = NEVER_SYNCED
        except CdrError as exc:
            errors[account.name] = one_line(exc)
    budget = asyncio.Semaphore(settings.opentact_concurrency)
    shared = SharedByBaseUrl(settings)
    totals = _Totals(progress)

    async def one(account: Account) -> AccountReport:
        account_lake, windows = prepared[account.name]
        account_started = time.perf_counter()
        try:
            async with account_client(account, budget, settings=settings, shared=shared, read_block=read_block) as client:
                runner = _runner(
                    account_lake, client, now, run_id, totals.for_account(account.name), settings, logged,
                    slice_concurrency, dispatch,
                )
                try:
                    await runner.run(kinds, windows)
                except* ApiKeyRejected as failed:
                    raise _first(failed) from None
        except CdrError as exc:
            return AccountReport(account.name, None, one_line(exc), key_name(account))
        except Exception as exc:
            log.error("account %s: the sync failed unexpectedly", account.name, exc_info=exc)
            return AccountReport(account.name, None, f"{type(exc).__name__}: {one_line(exc)}", key_name(account))
        report = runner.sync_report(kinds, time.perf_counter() - account_started)
        return AccountReport(account.name, report, key_name=key_name(account))

    with base.sync_lock(run_id), recorded_sync(base, run_id, kinds) as logged:
        base.sweep_temporaries()
        try:
            async with asyncio.TaskGroup() as group:
                synced = {account.name: group.create_task(one(account)) for account in accounts if account.name in prepared}
        finally:
            await shared.aclose()
        duration = time.perf_counter() - started
        outcomes = tuple(
            synced[account.name].result() if account.name in synced
            else AccountReport(account.name, None, errors[account.name], key_name(account))
            for account in accounts
        )
        logged.finish(
            replace(failure, account=outcome.account)
            for outcome in outcomes if outcome.report is not None for failure in outcome.report.failures
        )
        for outcome in outcomes:
            # the log names the account beside its error (and `cdr status` shows them so)
            error = None if outcome.error is None else without_account(outcome.account, outcome.error)
            logged.account(outcome.account, _account_status(outcome), error)
    return AccountsReport(run_id=run_id, now=now, accounts=outcomes, duration_secs=duration)


# -- landing slices: the work a sync does per slice, here or on a cluster's workers ----------------


@dataclass(frozen=True, slots=True)
class SliceOutcome:
    """What landing one slice did: a value, so a worker of a distributed sync can hand it back.

    `records` and `rejected` count what was read (valid and malformed records); `landed` is what
    landing did (None if it did not land); `filed_at` is the quarantine file its rejects were set
    aside in (None if none, or it could not be written); `failure` says why the slice failed.
    Checkpointing, logging and counting it is the run's (`_Runner.settle`).
    """

    kind: api.RecordType
    slice: Window
    records: int = 0
    rejected: int = 0
    landed: LandStats | None = None
    filed_at: str | None = None
    failure: SliceFailure | None = None
    # the rejects by the UTC day they count in
    filed_days: tuple[tuple[date, int], ...] = ()


# Holds a dataset's UTC days for the block, so two slices landing at once never write one partition together.
DayHold = Callable[[str, list[date]], AbstractAsyncContextManager[None]]


async def land_slice(
    lake: AccountLake, client: SyncClient, kind: api.RecordType, slice_: Window, *, run_id: str, now: datetime,
    max_rejected_percent: float, hold: DayHold, on_page: Callable[[SlicePage], None] | None = None,
) -> SliceOutcome:
    """Read one slice, land its records and quarantine its rejects -> what happened (ApiKeyRejected is raised).

    The one place a slice becomes partitions, for a sync in this process and for the workers
    of a distributed one; `on_page` sees each page as it comes.
    """
    tally = [0, 0]  # records and rejects read (of the last reading, when a slice is read again)
    filed = 0
    filed_at: str | None = None
    filed_days: tuple[tuple[date, int], ...] = ()
    stats: LandStats | None = None
    failure: SliceFailure | None = None
    try:
        frame, rejects = await _read_pages(client, kind, [slice_], tally, on_page)
        if len(window_days(slice_)) > 1:
            placed = _placed(rejects, slice_)
            if placed is None:
                # A reject whose created_at does not read names no day, and reconciliation counts
                # each by the day its request asked for: read the slice day by day.
                log.info("%s %s: reading it day by day, to place its malformed records", kind, slice_)
                del frame, rejects
                frame, placed = await _read_pages(client, kind, utc_days(slice_), tally, on_page)
            rejects = placed
        filed_days = tuple(sorted(_rejected_by_day(rejects).items()))
        if broken := _broken(slice_, frame, rejects, max_rejected_percent):
            # Landing would replace the day's records with the few valid ones: keep the lake as it is.
            del frame
            filed, filed_at, where = _file_rejects(lake, kind, slice_, run_id, now, rejects)
            raise BrokenSlice(_broken_message(kind, *broken, max_rejected_percent, where))
        async with hold(kind, window_days(slice_)):
            stats = await asyncio.to_thread(land_windows, lake, kind, [slice_], frame)
        filed, filed_at, _ = _file_rejects(lake, kind, slice_, run_id, now, rejects)
    except ApiKeyRejected:
        raise
    except Exception as exc:
        failure = slice_failure(kind, slice_, exc)
    return SliceOutcome(kind, slice_, *tally, stats, filed_at, failure, filed_days if filed else ())


async def _read_pages(
    client: SyncClient, kind: api.RecordType, queries: Sequence[Window], tally: list[int],
    on_page: Callable[[SlicePage], None] | None,
) -> tuple[pl.DataFrame, list[Rejected]]:
    """Every page of the windows, one after another -> (their valid records, their rejects), counted in `tally` as they come."""
    tally[:] = [0, 0]
    frames: list[pl.DataFrame] = []
    pages: list[pl.DataFrame] = []
    rejects: list[Rejected] = []
    for query in queries:
        async for page in client.read_slice(kind, query):
            pages.append(page.frame)
            if len(pages) == _PAGES_PER_BLOCK:
                frames.append(_block(pages))
                pages = []
            rejects.extend(page.rejects)
            tally[0] += page.frame.height
            tally[1] += len(page.rejects)
            if on_page is not None:
                on_page(page)
    if pages:
        frames.append(_block(pages))
    del pages
    frame = pl.concat(frames, how="vertical") if frames else empty_frame(kind)
    return frame, rejects


def _broken(slice_: Window, frame: pl.DataFrame, rejects: list[Rejected], max_percent: float) -> tuple[int, int] | None:
    """A slice's records -> (valid, rejected) of its first UTC day whose source is broken, or None.

    Day by day, as a slice of one day each would be judged: a day of a slice spanning
    several is never let through by the good records of the others.
    """
    if not rejects:
        return None
    days = window_days(slice_)
    if len(days) == 1:
        return (frame.height, len(rejects)) if _is_broken(frame.height, len(rejects), max_percent) else None
    valid = Counter(frame.get_column(api.CREATED_AT).dt.date().to_list())
    rejected = _rejected_by_day(rejects)
    for day in days:
        if _is_broken(valid[day], rejected[day], max_percent):
            return valid[day], rejected[day]
    return None


def _rejected_by_day(rejects: list[Rejected]) -> Counter[date]:
    """Rejects -> how many count in each UTC day: the day of the query that read each (`_placed`)."""
    return Counter(reject.slice.start.astimezone(timezone.utc).date() for reject in rejects)


async def land_slices(
    lake: AccountLake, client: SyncClient, kind: api.RecordType, slices: Sequence[Window], *, run_id: str,
    now: datetime, settings: Settings, slice_concurrency: int | None = None,
) -> list[SliceOutcome]:
    """Some slices of one account's record type, landed as a sync lands them -> their outcomes, in order.

    A worker's share of a distributed sync: no lock, checkpoint or log entry here, since the run
    that handed the slices out holds and writes those, and folds the outcomes in.
    """
    slots = asyncio.Semaphore(_slice_slots(settings, slice_concurrency))
    locks: dict[tuple[str, date], asyncio.Lock] = {}

    async def one(slice_: Window) -> SliceOutcome:
        async with slots:
            return await land_slice(
                lake, client, kind, slice_, run_id=run_id, now=now,
                max_rejected_percent=settings.opentact_max_rejected_percent, hold=partial(_hold_days, locks),
            )

    try:
        async with asyncio.TaskGroup() as group:
            landing = [group.create_task(one(slice_)) for slice_ in slices]
    except* ApiKeyRejected as failed:
        raise _first(failed) from None
    return [task.result() for task in landing]


# Lands a record type's slices of one account elsewhere (a cluster's workers) -> their outcomes as they
# come back; given the account's lake and its client (whose config the workers' clients are made of).
# An ApiKeyRejected is raised as landing them here would.
Dispatch = Callable[[AccountLake, SyncClient, api.RecordType, list[Window]], AsyncIterator[SliceOutcome]]


def slice_failure(kind: str, window: Window, exc: BaseException, what: str = "slice") -> SliceFailure:
    """Why a slice (or a type's `what`: usage, completing the run) failed -> its failure, the unexpected ones logged."""
    # The object store's client raises its own errors for AWS variables it cannot use (a Dask worker
    # started without them) or a store it cannot reach: told as every command tells them.
    exc = unreachable_store(exc) or exc
    cause = str(exc) if isinstance(exc, CdrError) else f"{type(exc).__name__}: {exc}"
    if not isinstance(exc, CdrError):
        log.error("%s %s %s failed unexpectedly", kind, what, window, exc_info=exc)
    if what != "slice":
        cause = f"{what}: {cause}"
    return SliceFailure(kind, window, cause, retryable=_retryable(exc))


def _file_rejects(
    lake: AccountLake, kind: api.RecordType, slice_: Window, run_id: str, now: datetime, rejects: list[Rejected]
) -> tuple[int, str | None, str | None]:
    """File a slice's rejects -> how many, their file (relative) and where it is as shown to a user (None: nowhere)."""
    if not rejects:
        return 0, None, None
    relative = where = None
    try:
        relative = quarantine(lake, kind, run_id, rejects, now=now)
        where = None if relative is None else lake.display(relative)
        # A record of its own, so a run's log (and Prefect's) says what was set aside and why; the
        # terminal's summary counts them (a malformed record is the API's, not for the user to fix).
        log.info(
            "quarantined %d malformed %s records of %s in %s (first: %s)",
            len(rejects), kind, slice_, where, rejects[0].reason,
        )
    except Exception as exc:
        # The records are counted as quarantined in the report; only their copy is lost.
        log.error("could not write %d quarantined %s records of %s: %s", len(rejects), kind, slice_, exc)
    return len(rejects), relative, where


@asynccontextmanager
async def _hold_days(locks: dict[tuple[str, date], asyncio.Lock], dataset: str, days: list[date]) -> AsyncIterator[None]:
    # Sorted acquisition: two slices sharing days can never wait on each other in a cycle.
    held = [locks.setdefault((dataset, day), asyncio.Lock()) for day in sorted(days)]
    for lock in held:
        await lock.acquire()
    try:
        yield
    finally:
        for lock in reversed(held):
            lock.release()


def _slice_slots(settings: Settings, slice_concurrency: int | None) -> int:
    """How many slices one client lands at once."""
    return slice_concurrency or 1 + settings.opentact_prefetch_slices


# -- internals ---------------------------------------------------------------------------------


def _run_clock(now: datetime, run_id: str) -> datetime:
    """The run's id and clock checked -> the clock in UTC."""
    check_run_id(run_id)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(timezone.utc)


def _prepare(
    kinds: Sequence[api.RecordType], window: Window | None, lake: AccountLake, settings: Settings, now: datetime
) -> dict[api.RecordType, Window]:
    """An account's windows, and its paths checked -> UsageError/LakeError before any work, nothing written."""
    # Read before the lock, so bad input writes nothing (not even the lock file): a mark read
    # just before another sync moved it only widens this run's window.
    windows = sync_windows(kinds, window, lake, settings, now)
    # A file where the data dir needs a directory, or a state file that cannot be read, would
    # fail every slice alike: said once, before any work.
    lake.check_directories(_directories(lake, kinds))
    if window is not None:
        for kind in kinds:
            read_state(lake, kind)
    return windows


def _runner(
    lake: AccountLake, client: SyncClient, now: datetime, run_id: str, progress: ProgressCallback | None,
    settings: Settings, logged: RecordedSync, slice_concurrency: int | None, dispatch: Dispatch | None = None,
) -> _Runner:
    return _Runner(
        lake, client, now, run_id, progress, asyncio.Semaphore(_slice_slots(settings, slice_concurrency)),
        settings.opentact_max_rejected_percent, logged, dispatch,
    )


def _account_status(outcome: AccountReport) -> str:
    """An account's outcome -> how the log says it ended (the run statuses' words)."""
    if outcome.error is not None:
        return "failed"
    return "completed" if outcome.ok else "incomplete"


def without_account(name: str, cause: str) -> str:
    """A cause that names its account first (`account acme: ...`) -> the rest, where the account is named already."""
    return cause.removeprefix(f"account {name}: ")


class _Totals:
    """Progress ticks of several accounts' runners -> ticks of the run's totals (what the bar shows)."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.latest: dict[str, SyncProgress] = {}

    def for_account(self, name: str) -> ProgressCallback | None:
        if self.progress is None:
            return None

        def tick(progress: SyncProgress) -> None:
            self.latest[name] = progress
            ticks = self.latest.values()
            assert self.progress is not None
            self.progress(SyncProgress(
                kind=progress.kind,
                slices_total=sum(t.slices_total for t in ticks),
                slices_done=sum(t.slices_done for t in ticks),
                records=sum(t.records for t in ticks),
            ))

        return tick


@dataclass(eq=False)
class _Runner:
    """The shared machinery of one sync: slice slots, day locks, progress and tallies."""

    lake: AccountLake
    client: SyncClient
    now: datetime
    run_id: str
    progress: ProgressCallback | None
    slots: asyncio.Semaphore
    max_rejected_percent: float
    # the run's log entry: told each day whose partition the run writes or removes
    logged: RecordedSync
    # None: slices land in this process; else where they are sent to land
    dispatch: Dispatch | None = None
    locks: dict[tuple[str, date], asyncio.Lock] = field(default_factory=dict)
    reports: dict[str, KindReport] = field(default_factory=dict)
    runs: dict[str, SyncRun] = field(default_factory=dict)
    days: dict[str, dict[date, DayReport]] = field(default_factory=dict)
    failures: list[SliceFailure] = field(default_factory=list)

    async def run(self, kinds: Sequence[api.RecordType], windows: Mapping[api.RecordType, Window]) -> None:
        """Plan and land every record type at once (an ApiKeyRejected ends it: see `sync`)."""
        plans = await self.plans(kinds, windows)
        todo = {kind: self.begin(kind, windows[kind], plans[kind]) for kind in kinds}
        async with asyncio.TaskGroup() as group:
            for kind in kinds:
                if todo[kind] is not None:
                    group.create_task(self.run_kind(kind, todo[kind]))

    def sync_report(self, kinds: Sequence[api.RecordType], duration_secs: float) -> SyncReport:
        """The finished run -> its report; the fields kept in extras logged once."""
        for kind in kinds:
            if self.reports[kind].extra_fields:
                # Once a run, not once a slice: the same new fields come in every slice. For the run's
                # log (and Prefect's), below the terminal's level: the summary says it there, per account.
                log.info("%s", extras_note(kind, self.reports[kind].extra_fields))
        return SyncReport(
            run_id=self.run_id,
            now=self.now,
            kinds=tuple(self.report(kind) for kind in kinds),
            failures=tuple(sorted(self.failures, key=lambda f: (f.kind, f.slice.start, f.slice.end))),
            duration_secs=duration_secs,
        )

    async def plans(
        self, kinds: Sequence[api.RecordType], windows: Mapping[api.RecordType, Window]
    ) -> dict[api.RecordType, list[Window] | BaseException]:
        """Each record type's slices: an unfinished run's plan of the same window, else the client's
        (asked for every type at once); for a type the client could not plan, why."""
        resumed = {kind: resumed_plan(self.lake, kind, self.client.frozen(windows[kind], self.now)) for kind in kinds}
        asked = [kind for kind in kinds if resumed[kind] is None]
        answers = await asyncio.gather(
            *(self.client.plan(kind, windows[kind], self.now) for kind in asked), return_exceptions=True
        )
        for answer in answers:
            if isinstance(answer, ApiKeyRejected) or not isinstance(answer, (list, Exception)):
                raise answer
        return {**resumed, **dict(zip(asked, answers))}  # type: ignore[dict-item]

    def begin(self, kind: api.RecordType, window: Window, plan: list[Window] | BaseException) -> list[Window] | None:
        """Freeze the window and open (or resume) the run's checkpoint of its plan -> the slices to land
        (None when the plan failed: the type fails, its checkpoint as it was)."""
        frozen = self.client.frozen(window, self.now)
        self.days[kind] = {}
        if isinstance(plan, BaseException):
            # Its whole window is the one slice it failed on (as the run's failures list it).
            self.reports[kind] = KindReport(kind, frozen, slices=1, skipped=0)
            self._fail(kind, frozen, plan, what="planning")
            self._tick(kind)
            return None
        self.runs[kind] = run = begin_run(self.lake, kind, frozen, plan, self.run_id)
        todo = [s for s in plan if not run.is_done(s)]
        self.reports[kind] = KindReport(kind, frozen, slices=len(plan), skipped=len(plan) - len(todo))
        return todo

    async def run_kind(self, kind: api.RecordType, todo: list[Window]) -> None:
        """Land every slice still to do, then (if all landed) usage, and complete the run."""
        report = self.reports[kind]
        self._tick(kind)
        # A run's only slice is not checkpointed: its completion, which follows, records the whole
        # window, and a crash before it only makes the next run redo the slice.
        checkpoint = len(todo) > 1
        if self.dispatch is None:
            async with asyncio.TaskGroup() as group:
                for slice_ in todo:
                    group.create_task(self._slice(kind, slice_, checkpoint=checkpoint))
        else:
            async with aclosing(self.dispatch(self.lake, self.client, kind, todo)) as outcomes:
                async for outcome in outcomes:
                    await self.settle(outcome, checkpoint=checkpoint)
        if report.failed:
            return
        try:
            await asyncio.to_thread(self.runs[kind].complete, self.now)
        except Exception as exc:
            self._fail(kind, report.window, exc, what="completing the run")
            return
        report.completed = True
        await self._usage(kind)

    async def _slice(self, kind: api.RecordType, slice_: Window, checkpoint: bool = True) -> None:
        report = self.reports[kind]

        seen = [0, 0]

        def counted(page: SlicePage) -> None:
            report.records += page.frame.height
            report.quarantined += len(page.rejects)
            seen[0] += page.frame.height
            seen[1] += len(page.rejects)
            self._tick(kind)

        async with self.slots:
            outcome = await land_slice(
                self.lake, self.client, kind, slice_, run_id=self.run_id, now=self.now,
                max_rejected_percent=self.max_rejected_percent, hold=self._days, on_page=counted,
            )
            # A slice read again day by day counts its second reading only.
            report.records += outcome.records - seen[0]
            report.quarantined += outcome.rejected - seen[1]
            await self.settle(outcome, counted=True, checkpoint=checkpoint)

    async def settle(self, outcome: SliceOutcome, *, counted: bool = False, checkpoint: bool = True) -> None:
        """Fold a slice's outcome into the run: the run's log, the checkpoint, the tallies and progress.

        `counted`: its records were counted page by page already (landed in this process);
        `checkpoint`: whether to record it in the run's checkpoint (not a run's only slice).
        """
        kind, slice_ = outcome.kind, outcome.slice
        report = self.reports[kind]
        if not counted:
            report.records += outcome.records
            report.quarantined += outcome.rejected
        if outcome.landed is not None:
            self.logged.landed(kind, outcome.landed.changed_days)
        if outcome.filed_at is not None:
            self.logged.landed(f"quarantine_{kind}", window_days(slice_))
        for day, count in outcome.filed_days:
            self._add(kind, day, {"quarantined": count})
        failure = outcome.failure
        if failure is None:
            try:
                if checkpoint:
                    await asyncio.to_thread(self.runs[kind].mark_done, slice_)
            except Exception as exc:
                failure = slice_failure(kind, slice_, exc)
        if failure is not None:
            self._failed(failure)
            self._tick(kind)
            return
        stats = outcome.landed
        assert stats is not None
        report.landed += 1
        if stats.extra_fields:
            report.extra_fields = tuple(sorted({*report.extra_fields, *stats.extra_fields}))
        for day in stats.days:
            self._add(kind, day.day, {count: getattr(day, count) for count in _LANDED_COUNTS})
        self._tick(kind)

    async def _usage(self, kind: api.RecordType) -> None:
        """Land the API's usage for each synced UTC day whose records the lake now holds in full."""
        report = self.reports[kind]
        days = window_days(report.window)
        if not days:
            return
        # Usage is read up to the settled present, so a day counts as held when the lake has
        # every record of it up to that instant (a day started before the window may be).
        settled = self.client.frozen(Window(utc_midnight(days[0]), utc_midnight(days[-1]) + _DAY), self.now).end
        landed = read_state(self.lake, kind)
        held = [
            day
            for day in days
            if covers(landed, Window(utc_midnight(day), max(utc_midnight(day), min(utc_midnight(day) + _DAY, settled))))
        ]
        for run in consecutive_runs(held):
            whole = Window(utc_midnight(run[0]), utc_midnight(run[-1]) + _DAY)
            try:
                frame = await self.client.read_usage(kind, whole, now=self.now)
                async with self._days(f"usage_{kind}", run):
                    stats = await asyncio.to_thread(land_usage, self.lake, kind, whole, frame)
                    self.logged.landed(stats.kind, stats.changed_days)
            except ApiKeyRejected:
                raise
            except Exception as exc:
                self._fail(kind, whole, exc, what="usage")
                continue
            report.usage_rows += frame.height

    def _add(self, kind: str, day: date, counts: dict[str, int]) -> None:
        """Add counts to a record type's tally of one UTC day."""
        old = self.days[kind].get(day) or DayReport(day)
        self.days[kind][day] = replace(old, **{name: getattr(old, name) + n for name, n in counts.items()})

    def _fail(self, kind: str, window: Window, exc: BaseException, what: str = "slice") -> None:
        self._failed(slice_failure(kind, window, exc, what))

    def _failed(self, failure: SliceFailure) -> None:
        self.reports[failure.kind].failed += 1
        self.failures.append(failure)

    def _days(self, dataset: str, days: list[date]) -> AbstractAsyncContextManager[None]:
        return _hold_days(self.locks, dataset, days)

    def _tick(self, kind: str) -> None:
        if self.progress is None:
            return
        reports = self.reports.values()
        self.progress(SyncProgress(
            kind=kind,
            slices_total=sum(k.slices for k in reports),
            # A type's usage or completion failing after its slices leaves no slice more done.
            slices_done=sum(min(k.skipped + k.landed + k.failed, k.slices) for k in reports),
            records=sum(k.records + k.quarantined for k in reports),
        ))

    def report(self, kind: str) -> KindReport:
        """One record type's tallies, its days in order."""
        report, days = self.reports[kind], self.days[kind]
        report.days = tuple(days[d] for d in sorted(days))
        return report


def _first(group: BaseExceptionGroup) -> BaseException:
    """The first exception of a (possibly nested) group."""
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


# A slice is a broken source, not a bad day, only when its rejects are more than the allowed
# share AND either this many or all its records: in a small slice, a few rejects more than
# usual are chance, and failing it would stall its record type until the limit is raised.
MIN_BROKEN_REJECTS = 20


def _is_broken(valid: int, rejected: int, max_percent: float) -> bool:
    """A slice's valid and rejected record counts -> whether its source is broken (see MIN_BROKEN_REJECTS)."""
    over_share = rejected * 100 > max_percent * (valid + rejected)
    return over_share and (rejected >= MIN_BROKEN_REJECTS or valid == 0)


def _broken_message(kind: str, valid: int, rejected: int, max_percent: float, where: str | None) -> str:
    kept = f"the rejects are in {where}" if where else "the rejects could not be quarantined (see the log)"
    return (
        f"{rejected} of {counted(valid + rejected, 'record')} malformed (more than {max_percent:g}%, the "
        f"OPENTACT_MAX_REJECTED_PERCENT limit): the API served a broken {kind} slice, so the lake keeps what it had for it; "
        f"{kept}; run the sync again once the API serves valid records, or raise OPENTACT_MAX_REJECTED_PERCENT "
        "to land the valid ones"
    )


# Failures of the moment: the API kept failing, timing out or refusing for a while, or the data
# moved while being paged. Anything else fails the same way on a rerun.
_TRANSIENT = (RetriesExhausted, SliceChanged, UsageConflictError)


def _retryable(exc: BaseException) -> bool:
    """An exception -> whether a rerun of what failed can succeed (the exception's own `retryable` when it has one)."""
    flag = getattr(exc, "retryable", None)
    return flag if isinstance(flag, bool) else isinstance(exc, _TRANSIENT)


_DAY = timedelta(days=1)
# The counts landing reports per day; quarantine adds its own.
_LANDED_COUNTS = ("new", "updated", "unchanged", "stale", "removed")
# Page frames come in small chunks that take more memory than the same rows in one chunk: a
# slice's pages are merged into one chunk every this many pages, so a day held while its slice
# is read costs about its own size.
_PAGES_PER_BLOCK = 32


def _block(pages: list[pl.DataFrame]) -> pl.DataFrame:
    """Page frames -> one frame in one chunk."""
    return pl.concat(pages, how="vertical", rechunk=True)


def _placed(rejects: list[Rejected], slice_: Window) -> list[Rejected] | None:
    """A slice's rejects -> each as if read with its UTC day's part of the slice (as a slice of one day
    would have read it), placed by its `created_at`; None if one's does not read or lies outside the slice."""
    pieces = {piece.start.astimezone(timezone.utc).date(): piece for piece in utc_days(slice_)}
    placed = []
    for reject in rejects:
        try:
            created = parse_datetime(orjson.loads(reject.raw_json)[api.CREATED_AT])
        except (orjson.JSONDecodeError, TypeError, KeyError, IndexError, ValueError):
            return None
        if not slice_.start <= created < slice_.end:
            return None
        placed.append(replace(reject, slice=pieces[created.astimezone(timezone.utc).date()]))  # type: ignore[type-var]
    return placed


def _directories(lake: AccountLake, kinds: Sequence[api.RecordType]) -> list[str]:
    """An account and record types -> the data dir's directories a sync of them writes below."""
    per_kind = [
        folder
        for kind in kinds
        for folder in (lake.dataset_dir(kind), lake.dataset_dir(f"usage_{kind}"), lake.quarantine_dir(kind),
                       kind_dir(lake.account, kind), f"{kind_dir(lake.account, kind)}/runs")
    ]
    return [STAGING_DIR, LAKE_DIR, QUARANTINE_DIR, STATE_DIR, *per_kind]

