"""Run arguments -> validated values, shared by the CLI (before Prefect starts) and the flows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pipelines.dates import Window, format_utc, parse_bound, resolve_range
from pipelines.errors import UsageError
from pipelines.opentact import api
from pipelines.settings import Settings, load_settings


def parse_types(types: list[str] | str) -> list[api.RecordType]:
    """`["cdrs","mdrs"]` or "cdrs,mdrs" -> record types, each once; UsageError listing the valid ones."""
    names = types.split(",") if isinstance(types, str) else types
    return api.record_types([t.strip() for t in names if t.strip()], what="--types (comma-separated)")


# The instants a sync works with: no record predates the Unix epoch, and a clock short of the
# last year datetime holds leaves room for the day and settle-lag arithmetic of planning.
SYNC_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
SYNC_LAST_CLOCK = datetime(9999, 1, 1, tzinfo=timezone.utc)


def run_clock(now: str | None, settings: Settings) -> datetime:
    """`--now` (a replayed night) or the real clock, read once per run; UsageError outside the sync's years."""
    if now is None:
        return datetime.now(timezone.utc)
    clock = parse_bound(now, tz=settings.timezone, name="--now")
    if not SYNC_EPOCH <= clock < SYNC_LAST_CLOCK:
        raise UsageError(
            f"bad --now: {now!r} is outside the instants a sync can run at "
            f"({format_utc(SYNC_EPOCH)} to before {format_utc(SYNC_LAST_CLOCK)})"
        )
    return clock


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
    if window.start < SYNC_EPOCH:
        raise UsageError(
            f"the window to sync starts at {format_utc(window.start)}, before {format_utc(SYNC_EPOCH)}, "
            "older than any record: start it later"
        )


@dataclass(frozen=True)
class SyncRequest:
    """A validated sync: settings, the run's clock, record types and the window (None: incremental)."""

    settings: Settings
    now: datetime
    kinds: list[api.RecordType]
    window: Window | None
    windows: dict[api.RecordType, Window]


def check_sync(
    *, date_range: str | None = None, start: str | None = None, end: str | None = None,
    types: list[str] | str = "cdrs,mdrs", tz: str | None = None, week_start: str | None = None,
    now: str | None = None, data_dir: Path | str | None = None, settings: Settings | None = None,
) -> SyncRequest:
    """A sync's arguments -> a validated request; UsageError, with nothing written, on bad input."""
    from pipelines.lake import Lake
    from pipelines.opentact.client import ClientConfig
    from pipelines.sync import sync_windows

    settings = (settings or load_settings()).with_overrides(data_dir=data_dir, timezone=tz, week_start=week_start)
    clock = run_clock(now, settings)
    window = resolve_sync_window(settings, date_range=date_range, start=start, end=end, now=clock)
    kinds = parse_types(types)
    ClientConfig.from_settings(settings)  # the key is set and the base URL acceptable
    lake = Lake(settings.data_dir)
    windows = sync_windows(kinds, window, lake, settings, clock)
    lake.check_no_sync()  # refused in a moment, before Prefect starts; the sync's lock is the guard
    return SyncRequest(settings=settings, now=clock, kinds=kinds, window=window, windows=windows)
