"""Sandbox clock: the instant the server shows the world as of (real, pinned or live).

The world is a pure function of its parameters; the clock decides which part of it is
visible. `--now` pins the clock (a reproducible world), `--now` with `--live` starts
there and advances in real time (records appear while a client pages), and without
`--now` the server follows the real clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Protocol

UTC = timezone.utc


class Clock(Protocol):
    """Something that tells the server's current instant."""

    @property
    def pinned(self) -> bool:
        """Whether `now()` never changes (results may then be cached for good)."""
        ...

    def now(self) -> datetime:
        """The current instant, an aware UTC datetime."""
        ...


class RealClock:
    """The machine's clock."""

    pinned = False

    def now(self) -> datetime:
        """The real current instant in UTC."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "RealClock()"


class PinnedClock:
    """A clock stopped at one instant."""

    pinned = True

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a pinned clock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        """The pinned instant."""
        return self._at

    def __repr__(self) -> str:
        return f"PinnedClock({self._at.isoformat()})"


class LiveClock:
    """A clock that starts at a given instant and advances in real (monotonic) time."""

    pinned = False

    def __init__(self, start: datetime, monotonic: Callable[[], float] = time.monotonic) -> None:
        if start.tzinfo is None:
            raise ValueError("a live clock needs an aware start")
        self._start = start.astimezone(UTC)
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        """The start instant plus the real time elapsed since the clock was made."""
        return self._start + timedelta(seconds=self._monotonic() - self._origin)

    def __repr__(self) -> str:
        return f"LiveClock(start={self._start.isoformat()})"


def make_clock(now: datetime | None, live: bool) -> Clock:
    """The `--now`/`--live` options -> the clock they describe."""
    if now is None:
        return RealClock()
    return LiveClock(now) if live else PinnedClock(now)
