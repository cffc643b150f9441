"""Sync runs: arguments -> validated values (for the CLI, before Prefect starts, and the flows), and their log.

The log, `state/syncs.json`, holds the newest runs; `cdr status` and the dashboards read it.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import orjson

from pipelines.dates import EPOCH, Window, format_utc, parse_datetime, parse_now, resolve_range
from pipelines.accounts import (
    DEFAULT_ACCOUNT, Account, check_some_key, load_accounts, select_accounts, unsynced_accounts_warning,
)
from pipelines.errors import FEW, CdrError, UsageError, named_accounts, one_line, what_is_wrong
from pipelines.lake import STATE_DIR, Lake
from pipelines.opentact import api
from pipelines.opentact.slices import freeze
from pipelines.settings import Settings, load_settings
from pipelines.state import KindState, NeverSynced, covers, lake_holds
from pipelines.sync_lock import DataDirBusy, alive, check_no_sync

log = logging.getLogger(__name__)


def parse_types(types: list[str] | str) -> list[api.RecordType]:
    """`["cdrs","mdrs"]` or "cdrs,mdrs" -> record types, each once; UsageError listing the valid ones."""
    names = types.split(",") if isinstance(types, str) else types
    return api.record_types([t.strip() for t in names if t.strip()], what="--types (comma-separated)")


def run_clock(now: str | None, settings: Settings) -> datetime:
    """`--now` (a replayed night) or the real clock, read once per run; UsageError outside the sync's years."""
    return datetime.now(timezone.utc) if now is None else parse_now(now, tz=settings.timezone)


def resolve_sync_window(
    settings: Settings, *, date_range: str | None, start: str | None, end: str | None, now: datetime
) -> Window | None:
    """Range arguments -> an explicit window, or None (no range given: an incremental sync)."""
    if date_range is None and start is None and end is None:
        return None
    window = resolve_range(
        literal=date_range, start=start, end=end, now=now, tz=settings.timezone, week_start=settings.week_start
    )
    check_sync_span(window, settings, now)
    return window


def check_sync_span(
    window: Window, settings: Settings, now: datetime, *, kind: str | None = None, mark: datetime | None = None
) -> None:
    """A window to sync -> None if its part up to `now` fits one sync and starts in the sync's years; else UsageError.

    Only the part up to now is read, so a far end costs nothing; a far start would plan a slice
    per day and hold them all. `kind` and `mark` say the window is an incremental one, from
    that record type's high-water mark: the advice differs.
    """
    end = min(window.end, max(now, window.start))
    limit = settings.max_sync_days
    if end - window.start > timedelta(days=limit):
        days = math.ceil((end - window.start) / timedelta(days=1))
        span = f"{format_utc(window.start)} .. {format_utc(end)}, {days:,} days"
        over = f"more than one sync may cover ({limit:,} days, CDR_MAX_SYNC_DAYS)"
        if mark is None:
            raise UsageError(
                f"the window to sync ({span}) is {over}: sync it as several shorter windows "
                f"(--start/--end, at most {limit:,} days each), or raise CDR_MAX_SYNC_DAYS"
            )
        raise UsageError(
            f"{kind} was last synced up to {format_utc(mark)}, so an incremental sync would cover {span}, {over}: "
            f"catch up with syncs of at most {limit:,} days each (--start/--end; each moves the mark), "
            "then sync without a range; or raise CDR_MAX_SYNC_DAYS"
        )
    if window.start < EPOCH:
        raise UsageError(
            f"the window to sync starts at {format_utc(window.start)}, before {format_utc(EPOCH)}, "
            "older than any record: start it later"
        )


@dataclass(frozen=True)
class SyncRequest:
    """A validated sync: settings, the run's clock, record types and the window (None: incremental).

    `accounts` are the accounts to sync; `several` says they come from an accounts file (a run of
    accounts, each with its windows in `account_windows`), else the run is the one `default`
    account of today, whose windows are `windows`.
    """

    settings: Settings
    now: datetime
    kinds: list[api.RecordType]
    window: Window | None
    windows: dict[api.RecordType, Window]
    accounts: tuple[Account, ...] = ()
    several: bool = False
    account_windows: dict[str, dict[api.RecordType, Window]] = field(default_factory=dict)
    # accounts the data dir holds that this configuration never syncs (`unsynced_accounts_warning`)
    warning: str | None = None
    # --only-missing: the accounts chosen that hold the range already, left out of the run (all of them: no run)
    held: tuple[str, ...] = ()


def check_sync(
    *, date_range: str | None = None, start: str | None = None, end: str | None = None,
    types: list[str] | str = "cdrs,mdrs", tz: str | None = None, week_start: str | None = None,
    now: str | None = None, data_dir: Path | str | None = None, settings: Settings | None = None,
    account: str | Sequence[str] | None = None, all_accounts: bool = False, only_missing: bool = False,
) -> SyncRequest:
    """A sync's arguments -> a validated request; UsageError, with nothing written, on bad input.

    With an accounts file, an account whose key is missing fails alone, in the run, while the others
    sync; only when none of them has a key is that refused here. `only_missing` (`--only-missing`, with a range)
    keeps of the accounts chosen those the data dir does not hold the range of (`missing_accounts`); with none
    left, the request has no accounts and the run is not started.
    """
    from pipelines.opentact.client import ClientConfig
    from pipelines.sync import sync_windows

    settings = (settings or load_settings()).with_overrides(data_dir=data_dir, timezone=tz, week_start=week_start)
    configured = load_accounts(settings)
    selected = select_accounts(configured, account, all_accounts=all_accounts)
    clock = run_clock(now, settings)
    window = resolve_sync_window(settings, date_range=date_range, start=start, end=end, now=clock)
    kinds = parse_types(types)
    base = Lake(settings.data_dir)
    base.check_root()  # a data dir that is a file (or an S3 bucket that is not there) is refused before Prefect starts
    held: tuple[str, ...] = ()
    if only_missing:
        if window is None:
            raise UsageError(
                "--only-missing needs a range (--range, or --start and --end): without one, each account syncs on "
                "from its own high-water mark already"
            )
        missing = missing_accounts(selected, kinds, window, base, settings, clock)
        held, selected = tuple(a.name for a in selected if a not in missing), missing
        if not selected:
            return SyncRequest(settings=settings, now=clock, kinds=kinds, window=window, windows={}, held=held)
    if configured.source is not None:
        # With no account left to sync, a missing key is bad input, told before Prefect takes seconds to start.
        check_some_key(selected, settings)
    warning = unsynced_accounts_warning(configured, base.accounts())
    if configured.source is not None:
        account_windows: dict[str, dict[api.RecordType, Window]] = {}
        never: dict[str, NeverSynced] = {}
        for chosen in selected:
            try:
                account_windows[chosen.name] = sync_windows(kinds, window, base.for_account(chosen.name), settings, clock)
            except NeverSynced as exc:
                never[chosen.name] = exc
        if not account_windows:  # none has anything to continue from: the first sync needs a range
            raise next(iter(never.values()))
        check_no_sync(base)
        warnings = [line for line in (warning, _never_synced_warning(list(never))) if line]
        return SyncRequest(
            settings=settings, now=clock, kinds=kinds, window=window, windows=next(iter(account_windows.values())),
            accounts=selected, several=True, account_windows=account_windows, warning="\n".join(warnings) or None,
            held=held,
        )
    ClientConfig.from_settings(settings)  # the key is set and the base URL acceptable
    lake = base.for_account(DEFAULT_ACCOUNT)
    windows = sync_windows(kinds, window, lake, settings, clock)
    check_no_sync(lake)  # refused in a moment, before Prefect starts; the sync's lock is the guard
    return SyncRequest(
        settings=settings, now=clock, kinds=kinds, window=window, windows=windows, accounts=selected, warning=warning
    )


def missing_accounts(
    accounts: Sequence[Account], kinds: Sequence[api.RecordType], window: Window, lake: Lake, settings: Settings,
    now: datetime,
) -> tuple[Account, ...]:
    """The accounts chosen and a range -> those the data dir does not hold every instant of for every record type,
    up to where a sync now reads it (its settled part): the accounts never synced, and those missing days in it.

    Held is as `cdr report finance` and `cdr status` judge it (`lake_holds`): a day landed empty is held, one whose
    records are gone is not. So a month some accounts miss is filled in without reading the others again.
    """
    settled = freeze(window, now, timedelta(seconds=settings.opentact_settle_lag_secs))
    return tuple(
        account for account in accounts
        if not all(
            covers(KindState(kind, lake_holds(lake.for_account(account.name), kind)), settled) for kind in kinds
        )
    )


def _never_synced_warning(names: list[str]) -> str | None:
    """The accounts of an incremental sync that no sync has landed yet -> the one-line warning that they fail in
    this run (as in the flow, which syncs every other account) and the command that gives them their first sync."""
    if not names:
        return None
    they, them, their = ("it", "it", "its") if len(names) == 1 else ("they", "them", "their")
    return (
        f"warning: {named_accounts(names)} "
        f"{'has' if len(names) == 1 else 'have'} no earlier sync to continue from: {they} "
        f"{'fails' if len(names) == 1 else 'fail'} in this run, the other accounts sync; to sync {them}, give "
        f"{their} first sync a range: {first_sync_command(names)}"
    )


def first_sync_command(names: Sequence[str]) -> str:
    """Accounts no sync has landed yet -> the command that gives them their first, as the user types it: naming
    them when `few` would name them all, else every account missing some of the range (a reseller's dozens of
    new accounts would make a line of their names)."""
    if len(names) <= FEW:
        return f"cdr sync --account {','.join(names)} --range last_7_days"
    return "cdr sync --only-missing --range last_7_days"


# -- the log of sync runs ------------------------------------------------------------------------

SYNC_LOG = f"{STATE_DIR}/syncs.json"
SYNC_LOG_VERSION = 1
# The newest runs kept: enough to tell which sync a build read, and how the last few nights went.
SYNC_LOG_RUNS = 20
# How a run ended; `stopped`: by a signal (Ctrl-C, SIGTERM), in its work or while waiting to retry it;
# a run still `running` whose process is gone reads as `interrupted`.
RUN_STATUSES = ("running", "completed", "incomplete", "failed", "stopped", "interrupted")


class SyncLogError(CdrError):
    """The log of sync runs cannot be understood."""


class FailedSlice(Protocol):
    """What the log keeps of a failed slice (`pipelines.sync.SliceFailure` is one)."""

    kind: str
    slice: Window
    cause: str


@dataclass(frozen=True, slots=True)
class SyncFailure:
    """A slice (or a record type's usage) that a run could not land, and why (and whose, in a run of several accounts)."""

    kind: str
    slice: Window
    cause: str
    account: str | None = None


@dataclass(frozen=True, slots=True)
class AccountRun:
    """How one account of a run of several ended: `completed`, `incomplete` (slices failed) or `failed`, and why."""

    account: str
    status: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SyncRunRecord:
    """One sync run as the log keeps it: when it started and finished, how it ended, what failed."""

    run_id: str
    types: tuple[str, ...]
    started_at: datetime
    status: str = "running"
    finished_at: datetime | None = None
    failed_slices: tuple[SyncFailure, ...] = ()
    error: str | None = None
    pid: int | None = None
    host: str | None = None
    changed_days: Mapping[str, tuple[date, ...]] = field(default_factory=dict)
    # a run of several accounts: each one's outcome (a run of the one account of no accounts file logs none)
    accounts: tuple[AccountRun, ...] = ()


class RecordedSync:
    """A running sync's entry in the log; `finish` says which slices failed (none: it completed).

    `changed` gathers, as the run lands them, the UTC days whose partition it wrote or removed,
    per dataset (`cdrs`, `usage_cdrs`, `quarantine_cdrs`, ...): what a build has to redo. It is
    logged however the run ends, since a stopped run has changed the lake too.
    """

    def __init__(self, record: SyncRunRecord) -> None:
        self.record = record
        self.failures: list[FailedSlice] = []
        self.changed: dict[str, set[date]] = {}
        self.accounts: list[AccountRun] = []

    def landed(self, dataset: str, days: Iterable[date]) -> None:
        """The run wrote or removed these days' partitions of the dataset."""
        self.changed.setdefault(dataset, set()).update(days)

    def finish(self, failures: Iterable[FailedSlice]) -> None:
        """The run ended with these slices failed (the rest landed)."""
        self.failures = list(failures)

    def account(self, name: str, status: str, error: str | None = None) -> None:
        """In a run of several accounts: how this one ended (a `failed` one makes the run incomplete)."""
        self.accounts.append(AccountRun(name, status, None if error is None else one_line(error)))


@contextmanager
def recorded_sync(
    lake: Lake, run_id: str, kinds: Sequence[str], *,
    clock: Callable[[], datetime] = partial(datetime.now, timezone.utc),
) -> Iterator[RecordedSync]:
    """Log a sync run for the block: `running` now, then how the block ended; call only holding the sync lock.

    A rerun of the same run id (the flow's retry) keeps the run's first start. The end is
    logged without raising: a run whose work is done is not failed by its log entry.
    """
    runs = _readable_runs(lake)
    started = next((run.started_at for run in runs[:1] if run.run_id == run_id), None) or clock()
    entry = RecordedSync(_this_run(run_id, kinds, started))
    _write_runs(lake, [entry.record, *(run for run in runs if run.run_id != run_id)])
    try:
        yield entry
    except BaseException as exc:
        stopped = not isinstance(exc, Exception)  # a cancellation or an interrupt
        error = one_line(exc) if isinstance(exc, CdrError) else f"{type(exc).__name__} (see the log)"
        _end(lake, entry, clock(), "stopped" if stopped else "failed", None if stopped else error)
        raise
    failed = [run for run in entry.accounts if run.status == "failed"]
    if entry.accounts and len(failed) == len(entry.accounts):
        status = "failed"  # no account synced
    else:
        status = "incomplete" if entry.failures or failed else "completed"
    error = "; ".join(f"account {run.account}: {run.error}" for run in failed) or None
    _end(lake, entry, clock(), status, error)


def log_stopped_between_attempts(
    lake: Lake, run_id: str, *, clock: Callable[[], datetime] = partial(datetime.now, timezone.utc),
) -> None:
    """A run stopped (Ctrl-C, SIGTERM) while waiting to try again -> its entry says `stopped`, as it would had
    the signal come while it synced; the slices its last attempt failed stay listed.

    Its last attempt logged itself `incomplete` or `failed` and let go of the data dir: the lock is
    taken again to write, and if another sync holds it by now, the entry is left as it is.
    """
    try:
        with lake.sync_lock(run_id):
            runs = _readable_runs(lake)
            mine = next((n for n, run in enumerate(runs) if run.run_id == run_id), None)
            if mine is None or runs[mine].status not in ("incomplete", "failed"):
                return
            runs[mine] = replace(runs[mine], status="stopped", finished_at=clock())
            _write_runs(lake, runs)
    except DataDirBusy:
        pass
    except Exception as exc:
        log.error("could not log sync run %s as stopped in %s: %s", run_id, lake.display(SYNC_LOG), exc)


def log_failed_start(
    lake: Lake, run_id: str, kinds: Sequence[str], error: CdrError, *, started: datetime,
    clock: Callable[[], datetime] = partial(datetime.now, timezone.utc),
) -> None:
    """A run that failed before it could sync (its Dask cluster out of reach) -> its entry, `failed` with the error,
    as a run failing while it syncs logs itself. Never raises; no entry while another sync holds the data dir."""
    try:
        with lake.sync_lock(run_id):
            _end(lake, RecordedSync(_this_run(run_id, kinds, started)), clock(), "failed", one_line(error))
    except DataDirBusy:
        pass
    except Exception as exc:
        log.error("could not log sync run %s as failed in %s: %s", run_id, lake.display(SYNC_LOG), exc)


def read_sync_runs(lake: Lake) -> list[SyncRunRecord]:
    """The data dir's log -> its sync runs, newest first (none before the first); SyncLogError if it is unreadable."""
    data = lake.read_bytes(SYNC_LOG)
    if data is None:
        return []
    try:
        document = orjson.loads(data)
        if not isinstance(document, dict) or document.get("version") != SYNC_LOG_VERSION:
            raise ValueError(f"it is not a version {SYNC_LOG_VERSION} log of sync runs")
        runs = [_run(entry) for entry in document["runs"]]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SyncLogError(
            f"the log of sync runs {lake.display(SYNC_LOG)} is corrupt ({what_is_wrong(exc)}); "
            "delete it: the next sync starts a new one (nothing synced is lost)"
        ) from exc
    return [_interrupted(run) for run in runs]


def _this_run(run_id: str, kinds: Sequence[str], started: datetime) -> SyncRunRecord:
    """A run of this process -> its entry, `running`, naming the process (so `_interrupted` can tell it died)."""
    return SyncRunRecord(
        run_id=run_id, types=tuple(kinds), started_at=started, pid=os.getpid(), host=socket.gethostname()
    )


def _readable_runs(lake: Lake) -> list[SyncRunRecord]:
    """The log's runs; a corrupt log is started afresh, since it only describes runs and holds no data."""
    try:
        return read_sync_runs(lake)
    except SyncLogError as exc:
        log.warning("%s", exc)
        return []


def _end(lake: Lake, entry: RecordedSync, now: datetime, status: str, error: str | None) -> None:
    failed = tuple(
        SyncFailure(f.kind, f.slice, one_line(f.cause), getattr(f, "account", None)) for f in entry.failures
    )
    changed = {dataset: tuple(sorted(days)) for dataset, days in sorted(entry.changed.items()) if days}
    ended = replace(
        entry.record, status=status, finished_at=now, failed_slices=failed, error=error, changed_days=changed,
        accounts=tuple(entry.accounts),
    )
    try:
        runs = _readable_runs(lake)
        _write_runs(lake, [ended, *(run for run in runs if run.run_id != ended.run_id)])
    except Exception as exc:
        log.error("could not log the end of sync run %s in %s: %s", ended.run_id, lake.display(SYNC_LOG), exc)


def _write_runs(lake: Lake, runs: list[SyncRunRecord]) -> None:
    document = {"version": SYNC_LOG_VERSION, "runs": [_entry(run) for run in runs[:SYNC_LOG_RUNS]]}
    lake.write_bytes(SYNC_LOG, orjson.dumps(document, option=orjson.OPT_INDENT_2))


def _interrupted(run: SyncRunRecord) -> SyncRunRecord:
    """A run logged as running whose process on this machine is gone was killed: it never logged its end."""
    if run.status == "running" and run.host == socket.gethostname() and run.pid is not None and not alive(run.pid):
        return replace(run, status="interrupted")
    return run


def failed_slices_json(failed: Iterable[SyncFailure]) -> list[dict[str, str]]:
    """Failed slices -> their JSON objects, as the log and `cdr status --json` write them."""
    return [
        {"type": f.kind, "start": format_utc(f.slice.start), "end": format_utc(f.slice.end), "cause": f.cause}
        | ({} if f.account is None else {"account": f.account})
        for f in failed
    ]


def _entry(run: SyncRunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "types": list(run.types),
        "started_at": format_utc(run.started_at),
        "finished_at": None if run.finished_at is None else format_utc(run.finished_at),
        "status": run.status,
        "failed_slices": failed_slices_json(run.failed_slices),
        "error": run.error,
        "pid": run.pid,
        "host": run.host,
        "changed_days": changed_days_json(run.changed_days),
    } | ({"accounts": accounts_json(run.accounts)} if run.accounts else {})


def accounts_json(accounts: Iterable[AccountRun]) -> list[dict[str, str | None]]:
    """A run's accounts -> their JSON objects, as the log writes them."""
    return [{"account": a.account, "status": a.status, "error": a.error} for a in accounts]


def changed_days_json(changed: Mapping[str, Sequence[date]]) -> dict[str, list[str]]:
    """Changed days per dataset -> their JSON object, as the log and `cdr status --json` write them."""
    return {dataset: [day.isoformat() for day in days] for dataset, days in changed.items()}


def _run(entry: dict[str, Any]) -> SyncRunRecord:
    status = entry["status"]
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}")
    return SyncRunRecord(
        run_id=str(entry["run_id"]),
        types=tuple(str(kind) for kind in entry["types"]),
        started_at=parse_datetime(entry["started_at"]),
        finished_at=None if entry["finished_at"] is None else parse_datetime(entry["finished_at"]),
        status=status,
        failed_slices=tuple(
            SyncFailure(
                str(f["type"]), Window(parse_datetime(f["start"]), parse_datetime(f["end"])), str(f["cause"]),
                None if f.get("account") is None else str(f["account"]),
            )
            for f in entry["failed_slices"]
        ),
        error=None if entry["error"] is None else str(entry["error"]),
        pid=None if entry["pid"] is None else int(entry["pid"]),
        host=None if entry["host"] is None else str(entry["host"]),
        # Logs written before runs recorded their changed days read as changing none.
        changed_days={
            str(dataset): tuple(date.fromisoformat(day) for day in days)
            for dataset, days in entry.get("changed_days", {}).items()
        },
        accounts=tuple(
            AccountRun(str(a["account"]), str(a["status"]), None if a["error"] is None else str(a["error"]))
            for a in entry.get("accounts", [])
        ),
    )

