"""Date literals -> exact UTC windows (pendulum); date-time parsing and formatting.

`this_month` or `last_7_days` becomes a half-open UTC window `[start, end)` per the table in
reports_api_contract.md. Days, weeks and months are calendar units in an IANA time zone (bounds are
local midnights); hours are real hours. The clock is a parameter (`now=`), never read here.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

import pendulum

from pipelines.errors import UsageError, bad_value, choice, did_you_mean, hinted

UTC = timezone.utc
# The instants a sync (and so a `--now`) works with: no record predates the Unix epoch, and a
# clock short of the last year datetime holds leaves room for the day and settle-lag arithmetic
# of planning.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LAST_CLOCK = datetime(9999, 1, 1, tzinfo=UTC)

# What a time zone setting or option takes, as every message refusing one says.
ZONES = "an IANA time zone name such as UTC, Europe/London, America/New_York or Asia/Kolkata"

# The week start names -> the Python weekday number the week starts on.
WEEK_STARTS: dict[str, int] = {"monday": 0, "sunday": 6}

# The contract's table for the named literals, in its order: the window runs from `first`
# to `last` units after the start of the current unit (D0, W0 or M0).
_NAMED: dict[str, tuple[str, int, int]] = {
    "today": ("days", 0, 1), "yesterday": ("days", -1, 0), "tomorrow": ("days", 1, 2),
    "this_week": ("weeks", 0, 1), "last_week": ("weeks", -1, 0), "next_week": ("weeks", 1, 2),
    "this_month": ("months", 0, 1), "last_month": ("months", -1, 0), "next_month": ("months", 1, 2),
}

# In the contract's order; N is a positive decimal integer.
LITERAL_FORMS: tuple[str, ...] = (
    *_NAMED, "last_N_hours", "next_N_hours", "last_N_days", "next_N_days", "last_N_weeks", "next_N_weeks"
)

DATETIME_FORMS: tuple[str, ...] = (
    "YYYY-MM-DDThh:mm:ss.fffZ",
    "YYYY-MM-DDThh:mm:ssZ",
    "YYYY-MM-DDThh:mmZ",
    "the same with -00, -0000 or -00:00 (or any offset like +05:30) instead of Z",
    "YYYY-MM-DD",
)

_LITERALS_HELP = "valid date literals: " + ", ".join(LITERAL_FORMS) + " (N a positive integer, e.g. last_7_days)"
_DATETIMES_HELP = "accepted date-time forms: " + "; ".join(DATETIME_FORMS)

# [0-9] rather than \d: \d also matches non-ASCII digits, which int() would accept.
# The zone designator is mandatory whenever a time is given: naive times are refused.
_DATETIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"(?:(Z)|([+-])([0-9]{2})(?::?([0-9]{2}))?))?"
)
_NAIVE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?")

_RELATIVE_RE = re.compile(r"(last|next)_(.*)_(hours|days|weeks)")
_N_RE = re.compile(r"[1-9][0-9]*")
# Far beyond any real window (10^12 hours is 114 million years) yet small enough that
# int() never meets Python's 4300-digit conversion limit; arithmetic catches the rest.
_MAX_N_DIGITS = 12


def format_utc(moment: datetime) -> str:
    """A datetime -> the API's form `YYYY-MM-DDThh:mm:ss.fffZ` (UTC, milliseconds)."""
    utc = moment.astimezone(timezone.utc)
    # Not strftime: its %Y does not zero-pad years before 1000 on glibc.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


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


def parse_datetime(text: str) -> datetime:
    """An API date-time or bare date (its 00:00Z) -> an aware UTC datetime; ValueError if not in DATETIME_FORMS.

    Any offset is unambiguous, so accepted; fractions are truncated to microseconds. A time without
    `Z` or an offset is refused: its instant is unknown.
    """
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        reason = "has no Z or UTC offset" if _NAIVE_RE.fullmatch(text) else "is not in an accepted form"
        raise ValueError(f"date-time {text!r} {reason}; {_DATETIMES_HELP}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        micros = int(fraction[:6].ljust(6, "0")) if fraction else 0
        moment = datetime(*map(int, (year, month, day, hour or 0, minute or 0, second or 0)), micros, tzinfo=UTC)
        if hour is None or zulu or (off_h == "00" and off_m in (None, "00")):
            return moment
        if int(off_h) > 23 or (off_m is not None and int(off_m) > 59):
            raise ValueError("UTC offset out of range")
        offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
        # Local time = UTC + offset, so UTC = local - offset.
        return moment - offset if sign == "+" else moment + offset
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"date-time {text!r} is out of range ({exc}); {_DATETIMES_HELP}") from None


def resolve_literal(
    literal: str, *, now: datetime, tz: str = "UTC", week_start: str = "monday", name: str | None = None
) -> Window:
    """A date literal at the instant `now` -> its half-open UTC window; UsageError if invalid.

    `name` is the option or argument the literal came from (`--range`): a bad literal's error names it,
    a bad zone or week start's does not, as they came from elsewhere.
    """
    zone = _zone(tz)
    first_weekday = _week_start(week_start)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    try:
        local_now = now.astimezone(zone)
        return _resolve(literal, local_now, zone, first_weekday)
    except (OverflowError, ValueError):
        why = _out_of_range(literal, now)
    except UsageError as exc:
        why = str(exc)
    raise UsageError(why) if name is None else bad_value(name, why)


def resolve_range(
    *,
    literal: str | None = None,
    start: str | None = None,
    end: str | None = None,
    now: datetime,
    tz: str = "UTC",
    week_start: str = "monday",
) -> Window:
    """A literal, or an explicit start/end pair, -> a half-open UTC window; UsageError if invalid.

    A bare date bound is local midnight in `tz`, not midnight UTC, so that
    `--start 2024-03-01 --end 2024-04-01` is the same window as that month's literal.
    """
    zone = _zone(tz)
    _week_start(week_start)
    if literal is not None:
        if start is not None or end is not None:
            raise UsageError("give either --range or --start/--end, not both")
        return resolve_literal(literal, now=now, tz=tz, week_start=week_start, name="--range")
    if start is None or end is None:
        raise UsageError(f"give --range LITERAL, or both --start and --end ({_DATETIMES_HELP}); {_LITERALS_HELP}")
    lower = _bound("--start", start, zone)
    upper = _bound("--end", end, zone)
    if not lower < upper:
        raise UsageError(
            f"the range is empty: --start {start} ({format_utc(lower)}) is not before --end {end} ({format_utc(upper)})"
        )
    return Window(lower, upper)


def parse_bound(text: str, *, tz: str = "UTC", name: str = "date-time") -> datetime:
    """A user's date-time or bare date (local midnight in `tz`) -> aware UTC; UsageError naming `name` if bad."""
    return _bound(name, text, _zone(tz))


def parse_now(text: str, *, tz: str = "UTC") -> datetime:
    """`--now` (an instant to replay) -> aware UTC; UsageError if bad, or outside [EPOCH, LAST_CLOCK)."""
    clock = parse_bound(text, tz=tz, name="--now")
    if not EPOCH <= clock < LAST_CLOCK:
        raise bad_value(
            "--now", f"{text!r} is outside the instants a sync can run at "
            f"({format_utc(EPOCH)} to before {format_utc(LAST_CLOCK)})"
        )
    return clock


def zone_meant(tz: str) -> str:
    """A time zone name not known -> "did you mean 'X'?" with the IANA name closest to it, or ''."""
    return did_you_mean(tz, zoneinfo.available_timezones())


def zone_name(tz: str) -> str:
    """An IANA time zone name -> its canonical spelling ("utc" -> "UTC"); UsageError if unknown."""
    return _zone(tz).name


def utc_midnight(day: date) -> datetime:
    """A UTC calendar day (a lake partition's) -> its first instant."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def days_from(first: date, after: date) -> list[date]:
    """The calendar days from `first` up to `after` (excluded)."""
    return [first + timedelta(days=offset) for offset in range((after - first).days)]


def consecutive_runs(days: Iterable[date]) -> list[list[date]]:
    """Ascending days -> runs of consecutive days."""
    runs: list[list[date]] = []
    for day in days:
        if runs and day == runs[-1][-1] + timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def _bound(name: str, text: str, zone: tzinfo) -> datetime:
    """One user-given bound -> UTC; a bare date is local midnight in the zone."""
    try:
        moment = parse_datetime(text)
    except ValueError as exc:
        raise bad_value(name, str(exc)) from None
    if len(text) == 10:  # a bare YYYY-MM-DD: re-read it as a local calendar day
        try:
            return _day_start(moment.date(), zone)
        except (OverflowError, ValueError):
            raise bad_value(name, f"{text!r} is out of range in this time zone") from None
    return moment


def _zone(tz: str) -> pendulum.Timezone | pendulum.FixedTimezone:
    """An IANA zone name -> its tzinfo; UsageError if unknown."""
    try:
        return pendulum.timezone(tz)
    except Exception:  # pendulum raises InvalidTimezone, zoneinfo ValueError/OSError for odd keys
        raise UsageError(f"unknown time zone {tz!r}{hinted(zone_meant(tz))}: use {ZONES}") from None


def _week_start(week_start: str) -> int:
    """'monday' or 'sunday' (any case) -> the Python weekday number the week starts on."""
    name = choice(week_start, tuple(WEEK_STARTS))
    if name is not None:
        return WEEK_STARTS[name]
    raise UsageError(f"unknown week start {week_start!r}: valid week starts are {', '.join(WEEK_STARTS)}")


def _resolve(literal: str, local_now: datetime, zone: tzinfo, first_weekday: int) -> Window:
    """The contract's table at `local_now`; arithmetic may overflow (caught by the caller)."""
    if literal in _NAMED:
        unit, first, last = _NAMED[literal]
    else:
        relative = _RELATIVE_RE.fullmatch(literal)
        if relative is None:
            raise UsageError(f"unknown date literal {literal!r}{hinted(_meant(literal))}; {_LITERALS_HELP}")
        direction, count_text, unit = relative.groups()
        n = _count(literal, count_text)
        # Only next_N_days includes the current unit (today); next hours and weeks start after it.
        first, last = (-n, 0) if direction == "last" else (0, n) if unit == "days" else (1, n + 1)
    if unit == "hours":
        # Keep the fold: in a repeated hour the current hour began on its second pass.
        wall = local_now.replace(minute=0, second=0, microsecond=0, tzinfo=None)
        hour0 = _wall_to_utc(wall, zone, fold=local_now.fold)
        return Window(hour0 + timedelta(hours=first), hour0 + timedelta(hours=last))
    # Calendar units are counted on local dates, so a DST change never shifts a bound:
    # each is its date's local midnight.
    anchor = pendulum.Date(local_now.year, local_now.month, local_now.day)
    if unit == "weeks":
        anchor = anchor.subtract(days=(anchor.weekday() - first_weekday) % 7)
    elif unit == "months":
        anchor = anchor.start_of("month")
    return Window(*(_day_start(anchor.add(**{unit: k}), zone) for k in (first, last)))


def _meant(literal: str) -> str:
    """A literal mistyped (its case, a letter or an underscore) -> "did you mean 'X'?" with the valid one it is
    closest to ('yesterdy': 'yesterday', 'last7days': 'last_7_days'), or ''."""
    count = re.search(r"[0-9]+", literal)
    relative = (
        [f"{direction}_{count.group()}_{unit}" for direction in ("last", "next") for unit in ("hours", "days", "weeks")]
        if count is not None and _N_RE.fullmatch(count.group()) else []
    )
    # Close enough for one or two typed letters, not for another unit: last_3_months is no last_month.
    return did_you_mean(literal, [*_NAMED, *relative], cutoff=0.88)


def _count(literal: str, text: str) -> int:
    """The N of a relative literal -> int; UsageError unless a plain positive decimal integer."""
    if _N_RE.fullmatch(text) is None:
        if not text:
            reason = "N is missing"
        elif text.isascii() and text.isdigit():
            reason = "N must be at least 1" if int(text) == 0 else "N must not have leading zeros"
        else:
            reason = "N must be a positive decimal integer (digits only, no sign)"
        raise UsageError(f"date literal {literal!r}: {reason}; {_LITERALS_HELP}")
    if len(text) > _MAX_N_DIGITS:
        raise UsageError(_out_of_range(literal, None))
    return int(text)


def _out_of_range(literal: str, now: datetime | None) -> str:
    """The message for a window that would end outside the years datetime can hold."""
    at = f" at {now.isoformat()}" if now is not None else ""
    advice = ": use a smaller N" if _RELATIVE_RE.fullmatch(literal) else ""
    return f"date literal {literal!r}{at} reaches outside the years 1-9999{advice}; {_LITERALS_HELP}"


def _day_start(day: date, zone: tzinfo) -> datetime:
    """The first instant of a local calendar day, in UTC (its local midnight)."""
    # fold=0: where midnight happens twice (a fall-back at 01:00 -> 00:00) the day
    # starts at the first one; where it never happens, at the end of the gap.
    return _wall_to_utc(datetime(day.year, day.month, day.day), zone, fold=0)


def _wall_to_utc(wall: datetime, zone: tzinfo, *, fold: int) -> datetime:
    """A naive local wall time -> UTC; a time skipped by DST maps to the end of the gap.

    Not pendulum's: it moves a skipped time by the gap's length, which misses the transition when
    the time lies inside the gap (Toronto's midnight on 1919-03-31), and a day start would need
    fold=1 at Havana's skipped midnight but 0 at its repeated one.
    """
    candidate = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
    if candidate.astimezone(zone).replace(tzinfo=None) == wall:
        return candidate
    # In a gap, zoneinfo maps the wall time with the new offset (fold=1) before the
    # transition and with the old one (fold=0) after it. Offsets and transitions are
    # whole seconds, so bisecting on seconds finds the transition exactly.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    while (span := (after - before).total_seconds()) > 1:
        middle = before + timedelta(seconds=span // 2)
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return after
