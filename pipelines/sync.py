"""Sync (landing stage, plain async Python): API slices -> lake, quarantine and state.

A failing slice does not stop the others: the next run redoes only it. A type's high-water mark
moves once every slice of it landed. `sync` holds the data dir's lock throughout: one sync at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Protocol

import polars as pl

from pipelines.dates import Window, consecutive_runs
from pipelines.errors import CdrError
from pipelines.land import (
    DayCounts,
    DayTotals,
    Rejected,
    UsageConflictError,
    check_run_id,
    extras_note,
    land_usage,
    land_windows,
    quarantine,
    window_days,
)
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.lake import LAKE_DIR, QUARANTINE_DIR, STAGING_DIR, STATE_DIR, AccountLake, Lake
from pipelines.opentact import api
from pipelines.opentact.client import ApiKeyRejected, RetriesExhausted, SliceChanged
from pipelines.runs import RecordedSync, check_sync_span, recorded_sync
from pipelines.settings import Settings
from pipelines.state import SyncRun, begin_run, covers, incremental_window, kind_dir, read_state

log = logging.getLogger(__name__)


class SlicePage(Protocol):
    """What the sync needs of a client page."""

    frame: pl.DataFrame
    rejects: list[Rejected]


class SyncClient(Protocol):
    """What the sync needs of the API client (`OpentactClient` is one)."""

    def frozen(self, window: Window, now: datetime | None = None) -> Window:
        """The part of a window settled at `now`."""

    def plan_slices(self, kind: api.RecordType, window: Window, now: datetime | None = None) -> list[Window]:
        """The slices of the window's settled part."""

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
) -> SyncReport:
    """Record types, a window (None: incremental) and a client -> the lake synced, and what happened.

    The account synced is `lake`'s when it is an `AccountLake`, else the default account.
    """
    started = time.perf_counter()
    kinds = api.record_types(kinds)
    check_run_id(run_id)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(timezone.utc)
    lake = lake if isinstance(lake, AccountLake) else (lake or Lake(settings.data_dir)).for_account(DEFAULT_ACCOUNT)
    # Read before the lock, so bad input writes nothing (not even the lock file): a mark read
    # just before another sync moved it only widens this run's window.
    windows = sync_windows(kinds, window, lake, settings, now)
    # A file where the data dir needs a directory, or a state file that cannot be read, would
    # fail every slice alike: said once, before any work.
    lake.check_directories(_directories(lake, kinds))
    if window is not None:
        for kind in kinds:
            read_state(lake, kind)
    concurrency = slice_concurrency or 1 + settings.opentact_prefetch_slices
    # One sync at a time per data dir: another one fails here, before writing anything.
    with lake.sync_lock(run_id), recorded_sync(lake, run_id, kinds) as logged:
        # This process is the data dir's only writer: leftovers of a crashed one can go.
        lake.sweep_temporaries()
        runner = _Runner(
            lake, client, now, run_id, progress, asyncio.Semaphore(concurrency), settings.opentact_max_rejected_percent,
            logged,
        )
        todo = {kind: runner.plan(kind, windows[kind]) for kind in kinds}
        try:
            async with asyncio.TaskGroup() as group:
                for kind in kinds:
                    group.create_task(runner.run_kind(kind, todo[kind]))
        except* ApiKeyRejected as failed:
            # Every request would fail the same way: stop at once rather than list each slice.
            raise _first(failed) from None
        logged.finish(runner.failures)
    for kind in kinds:
        if runner.reports[kind].extra_fields:
            # Once a run, not once a slice: the same new fields come in every slice.
            log.warning("%s", extras_note(kind, runner.reports[kind].extra_fields))
    return SyncReport(
        run_id=run_id,
        now=now,
        kinds=tuple(runner.report(kind) for kind in kinds),
        failures=tuple(sorted(runner.failures, key=lambda f: (f.kind, f.slice.start, f.slice.end))),
        duration_secs=time.perf_counter() - started,
    )


# -- internals ---------------------------------------------------------------------------------


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
    locks: dict[tuple[str, date], asyncio.Lock] = field(default_factory=dict)
    reports: dict[str, KindReport] = field(default_factory=dict)
    runs: dict[str, SyncRun] = field(default_factory=dict)
    days: dict[str, dict[date, DayReport]] = field(default_factory=dict)
    failures: list[SliceFailure] = field(default_factory=list)

    def plan(self, kind: api.RecordType, window: Window) -> list[Window]:
        """Freeze the window, plan its slices and open (or resume) the run's checkpoint -> the slices to land."""
        frozen = self.client.frozen(window, self.now)
        slices = self.client.plan_slices(kind, window, self.now)
        self.runs[kind] = run = begin_run(self.lake, kind, frozen, slices, self.run_id)
        todo = [s for s in slices if not run.is_done(s)]
        self.reports[kind] = KindReport(kind, frozen, slices=len(slices), skipped=len(slices) - len(todo))
        self.days[kind] = {}
        return todo

    async def run_kind(self, kind: api.RecordType, todo: list[Window]) -> None:
        """Land every slice still to do, then (if all landed) usage, and complete the run."""
        report = self.reports[kind]
        self._tick(kind)
        async with asyncio.TaskGroup() as group:
            for slice_ in todo:
                group.create_task(self._slice(kind, slice_))
        if report.failed:
            return
        try:
            await asyncio.to_thread(self.runs[kind].complete, self.now)
        except Exception as exc:
            self._fail(kind, report.window, exc, what="completing the run")
            return
        report.completed = True
        await self._usage(kind)

    async def _slice(self, kind: api.RecordType, slice_: Window) -> None:
        report = self.reports[kind]
        async with self.slots:
            try:
                frames: list[pl.DataFrame] = []
                pages: list[pl.DataFrame] = []
                rejects: list[Rejected] = []
                valid = 0
                async for page in self.client.read_slice(kind, slice_):
                    pages.append(page.frame)
                    if len(pages) == _PAGES_PER_BLOCK:
                        frames.append(_block(pages))
                        pages = []
                    rejects.extend(page.rejects)
                    valid += page.frame.height
                    report.records += page.frame.height
                    report.quarantined += len(page.rejects)
                    self._tick(kind)
                if _is_broken(valid, len(rejects), self.max_rejected_percent):
                    # Landing would replace the day's records with the few valid ones: keep the lake as it is.
                    del frames, pages
                    where = self._quarantine(kind, slice_, rejects)
                    raise BrokenSlice(_broken_message(kind, valid, len(rejects), self.max_rejected_percent, where))
                if pages:
                    frames.append(_block(pages))
                frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=api.LAKE_SCHEMAS[kind])
                del frames, pages
                async with self._days(kind, window_days(slice_)):
                    stats = await asyncio.to_thread(land_windows, self.lake, kind, [slice_], frame)
                    self.logged.landed(kind, stats.changed_days)
                self._quarantine(kind, slice_, rejects)
                await asyncio.to_thread(self.runs[kind].mark_done, slice_)
            except ApiKeyRejected:
                raise
            except Exception as exc:
                self._fail(kind, slice_, exc)
                return
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
        settled = self.client.frozen(Window(_midnight(days[0]), _midnight(days[-1]) + _DAY), self.now).end
        landed = read_state(self.lake, kind)
        held = [
            day
            for day in days
            if covers(landed, Window(_midnight(day), max(_midnight(day), min(_midnight(day) + _DAY, settled))))
        ]
        for run in consecutive_runs(held):
            whole = Window(_midnight(run[0]), _midnight(run[-1]) + _DAY)
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

    def _quarantine(self, kind: api.RecordType, slice_: Window, rejects: list[Rejected]) -> str | None:
        """File the slice's rejects -> where they are (as shown to a user), or None if nowhere."""
        if not rejects:
            return None
        where = None
        try:
            relative = quarantine(self.lake, kind, self.run_id, rejects, now=self.now)
            where = None if relative is None else self.lake.display(relative)
            if relative is not None:
                self.logged.landed(f"quarantine_{kind}", window_days(slice_))
            # A record of its own, so a run's log (and Prefect's) says what was set aside and why.
            log.warning(
                "quarantined %d malformed %s records of %s in %s (first: %s)",
                len(rejects), kind, slice_, where, rejects[0].reason,
            )
        except Exception as exc:
            # The records are counted as quarantined in the report; only their copy is lost.
            log.error("could not write %d quarantined %s records of %s: %s", len(rejects), kind, slice_, exc)
        self._add(kind, slice_.start.astimezone(timezone.utc).date(), {"quarantined": len(rejects)})
        return where

    def _add(self, kind: str, day: date, counts: dict[str, int]) -> None:
        """Add counts to a record type's tally of one UTC day."""
        old = self.days[kind].get(day) or DayReport(day)
        self.days[kind][day] = replace(old, **{name: getattr(old, name) + n for name, n in counts.items()})

    def _fail(self, kind: str, window: Window, exc: BaseException, what: str = "slice") -> None:
        cause = str(exc) if isinstance(exc, CdrError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, CdrError):
            log.error("%s %s %s failed unexpectedly", kind, what, window, exc_info=exc)
        if what != "slice":
            cause = f"{what}: {cause}"
        self.reports[kind].failed += 1
        self.failures.append(SliceFailure(kind, window, cause, retryable=_retryable(exc)))

    @asynccontextmanager
    async def _days(self, dataset: str, days: list[date]) -> AsyncIterator[None]:
        # Sorted acquisition: two slices sharing days can never wait on each other in a cycle.
        locks = [self.locks.setdefault((dataset, day), asyncio.Lock()) for day in sorted(days)]
        for lock in locks:
            await lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(locks):
                lock.release()

    def _tick(self, kind: str) -> None:
        if self.progress is None:
            return
        reports = self.reports.values()
        self.progress(SyncProgress(
            kind=kind,
            slices_total=sum(k.slices for k in reports),
            slices_done=sum(k.skipped + k.landed + k.failed for k in reports),
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
        f"{rejected} of {valid + rejected} records malformed (more than {max_percent:g}%, the "
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


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _directories(lake: AccountLake, kinds: Sequence[api.RecordType]) -> list[str]:
    """An account and record types -> the data dir's directories a sync of them writes below."""
    per_kind = [
        folder
        for kind in kinds
        for folder in (lake.dataset_dir(kind), lake.dataset_dir(f"usage_{kind}"), lake.quarantine_dir(kind),
                       kind_dir(lake.account, kind), f"{kind_dir(lake.account, kind)}/runs")
    ]
    return [STAGING_DIR, LAKE_DIR, QUARANTINE_DIR, STATE_DIR, *per_kind]

