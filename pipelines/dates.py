"""Date literals -> exact UTC windows (pendulum); date-time parsing and formatting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


def format_utc(moment: datetime) -> str:
    """A datetime -> the API's form `YYYY-MM-DDThh:mm:ss.fffZ` (UTC, milliseconds)."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open UTC interval [start, end)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Window bounds must be timezone-aware")
        if self.end < self.start:
            raise ValueError(f"Window ends before it starts: {self}")

    def __str__(self) -> str:
        return f"[{format_utc(self.start)}, {format_utc(self.end)})"
