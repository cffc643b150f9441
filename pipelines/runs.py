"""Run arguments -> validated values, shared by the CLI (before Prefect starts) and the flows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pipelines.dates import Window, parse_bound, resolve_range
from pipelines.errors import UsageError
from pipelines.opentact import api
from pipelines.settings import Settings, load_settings


def parse_types(types: list[str] | str) -> list[api.RecordType]:
    """`["cdrs","mdrs"]` or "cdrs,mdrs" -> record types; UsageError listing the valid ones."""
    names = [t.strip() for t in (types.split(",") if isinstance(types, str) else types) if t.strip()]
    bad = [t for t in names if t not in api.RECORD_TYPES]
    if bad or not names:
        raise UsageError(f"--types takes a comma-separated list of {', '.join(api.RECORD_TYPES)}; got {types!r}")
    return list(dict.fromkeys(names))  # type: ignore[arg-type]


def run_clock(now: str | None, settings: Settings) -> datetime:
    """`--now` (a replayed night) or the real clock, read once per run."""
    if now is None:
        return datetime.now(timezone.utc)
    return parse_bound(now, tz=settings.timezone, name="--now")


def resolve_sync_window(
    settings: Settings, *, date_range: str | None, start: str | None, end: str | None, now: datetime
) -> Window | None:
    """Range arguments -> an explicit window, or None (no range given: an incremental sync)."""
    if date_range is None and start is None and end is None:
        return None
    return resolve_range(
        literal=date_range, start=start, end=end, now=now, tz=settings.timezone, week_start=settings.week_start
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
