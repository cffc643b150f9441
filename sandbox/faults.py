"""Sandbox faults: reproducible 5xx, dropped connections, latency and rate limiting.

Every request gets one `Draw`, a pure function of (seed, path + canonical query, how many
times this exact request was seen before). Retrying a URL therefore meets a fresh draw,
the same sequence of requests always meets the same faults, and the order in which
concurrent clients arrive does not matter. Rate limiting is the one time-based fault:
N requests per second per key, in fixed one-second windows.

The server checks, in order: route (404/405), key (401), rate limit (429), injected
failure (5xx), the request itself (200/400); a drop then applies to whichever response
that is. Requests without a valid key meet no fault but the added latency.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sandbox.query import canonical_query

FAIL_STATUSES: tuple[int, ...] = (500, 502, 503)
# Nominal limit announced in the x-ratelimit-* headers when no --rate-limit is set.
UNLIMITED = 1_000_000
# Share of 429s that omit Retry-After (clients must then use x-ratelimit-reset).
NO_RETRY_AFTER_SHARE = 1 / 3
# Distinct URLs remembered for the retry count; the oldest are forgotten beyond this.
_MAX_REMEMBERED = 1_000_000
_UNIT = float(2**64)

DropKind = Literal["reset", "truncate"]


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """The fault flags of `cdr sandbox serve`."""

    seed: int = 0
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    latency_ms: int = 0
    rate_limit: int | None = None

    def __post_init__(self) -> None:
        for name in ("fail_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms}")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError(f"rate_limit must be >= 1, got {self.rate_limit}")


@dataclass(frozen=True, slots=True)
class Draw:
    """The faults decided for one request."""

    fail_status: int | None
    drop: DropKind | None
    # Share of the body sent before a truncating close, in [0, 1).
    truncate_at: float
    omit_retry_after: bool


@dataclass(frozen=True, slots=True)
class RateState:
    """The rate-limit verdict and headers for one request."""

    allowed: bool
    limit: int
    remaining: int
    reset_secs: int


def uniforms(seed: int, request: str, nth: int) -> tuple[float, ...]:
    """(seed, request, nth) -> five independent uniforms in [0, 1), the same on every run."""
    digest = hashlib.blake2b(f"{seed}\x00{request}\x00{nth}".encode(), digest_size=40).digest()
    return tuple(int.from_bytes(digest[i : i + 8], "big") / _UNIT for i in range(0, 40, 8))


def decide(config: FaultConfig, request: str, nth: int) -> Draw:
    """The faults of the `nth` (0-based) sighting of a request, under a configuration."""
    u_fail, u_status, u_drop, u_how, u_retry = uniforms(config.seed, request, nth)
    fail_status = FAIL_STATUSES[int(u_status * len(FAIL_STATUSES))] if u_fail < config.fail_rate else None
    drop: DropKind | None = None
    truncate_at = 0.0
    if u_drop < config.drop_rate:
        # Half reset the connection, half truncate; the rest of u_how places the cut.
        drop = "reset" if u_how < 0.5 else "truncate"
        truncate_at = (u_how - 0.5) * 2 if drop == "truncate" else 0.0
    return Draw(fail_status, drop, truncate_at, u_retry < NO_RETRY_AFTER_SHARE)


class Faults:
    """Per-server fault state: how often each request was seen, and rate-limit windows."""

    def __init__(self, config: FaultConfig, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._monotonic = monotonic
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._windows: dict[str, tuple[int, int]] = {}

    def draw(self, path: str, query_string: str | bytes) -> Draw:
        """The faults for this arrival of a request (counts it as seen)."""
        request = f"{path}?{canonical_query(query_string)}"
        nth = self._seen.pop(request, 0)
        self._seen[request] = nth + 1
        if len(self._seen) > _MAX_REMEMBERED:
            self._seen.popitem(last=False)
        return decide(self.config, request, nth)

    def peek(self, principal: str) -> RateState:
        """The rate-limit headers for a request that is not counted (401, 404, 405)."""
        limit, window, reset_secs = self._now()
        current, used = self._windows.get(principal, (window, 0))
        used = used if current == window else 0
        return RateState(used < limit, limit, max(0, limit - used), reset_secs)

    def _now(self) -> tuple[int, int, int]:
        """(limit, current window, seconds until it resets)."""
        limit = self.config.rate_limit or UNLIMITED
        moment = self._monotonic()
        window = math.floor(moment)
        return limit, window, max(1, math.ceil(window + 1 - moment))

    def admit(self, principal: str) -> RateState:
        """Count a request of one key in the current one-second window; is it allowed?"""
        limit, window, reset_secs = self._now()
        current, used = self._windows.get(principal, (window, 0))
        if current != window:
            used = 0
        if used >= limit:
            self._windows[principal] = (window, used)
            return RateState(False, limit, 0, reset_secs)
        used += 1
        self._windows[principal] = (window, used)
        return RateState(True, limit, limit - used, reset_secs)
