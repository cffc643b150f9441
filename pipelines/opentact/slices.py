"""API client stage: a requested window -> the frozen window and the slices it is read in.

Pure functions (the clock comes in as `now`): the sync checkpoints per slice, so the same
window and instant must always give the same slices.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pipelines.dates import Window


def floor_ms(moment: datetime) -> datetime:
    """An instant -> the same instant truncated to whole milliseconds (the API's precision)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def freeze(window: Window, now: datetime, settle_lag: timedelta) -> Window:
    """A window -> the part of it that has settled: its end is at most `now - settle_lag`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    settled = floor_ms(now - settle_lag).astimezone(timezone.utc)
    return Window(window.start, max(min(window.end, settled), window.start))


def _split(window: Window, unit: timedelta) -> list[Window]:
    """Cut a window at every UTC multiple of `unit` (a divisor of a day) inside it."""
    start = window.start.astimezone(timezone.utc)
    end = window.end.astimezone(timezone.utc)
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    boundary = midnight + ((start - midnight) // unit + 1) * unit
    pieces = []
    while start < end:
        stop = min(boundary, end)
        pieces.append(Window(start, stop))
        start, boundary = stop, boundary + unit
    return pieces


def utc_days(window: Window) -> list[Window]:
    """A window -> its pieces within each UTC day, in order; none if it is empty."""
    return _split(window, timedelta(days=1))


def utc_hours(window: Window) -> list[Window]:
    """A window -> its pieces within each UTC hour, in order; none if it is empty."""
    return _split(window, timedelta(hours=1))
