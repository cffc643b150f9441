"""Sync state (landing stage): per account and record type, the landed windows, the high-water mark and resume checkpoints.

`state/account=<name>/<kind>/landed.json` holds the landed windows and the high-water mark (the end
of the last completed sync window: never moving back, never past the clock).
`state/account=<name>/<kind>/runs/<start>--<end>.json` checkpoints an unfinished (kind, window) run:
the slices it planned and those it landed, so a rerun keeps the plan and skips the landed ones. Every function takes the account's `AccountLake`.
With no high-water mark yet, a sync needs a range: how much history to fetch is the user's call.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import orjson

from pipelines.dates import Window, utc_midnight
from pipelines.errors import CdrError, UsageError
from pipelines.lake import ACCOUNT_FOLDER, STATE_DIR, AccountLake
from pipelines.opentact import api

STATE_VERSION = 1


class StateError(CdrError):
    """A sync state file cannot be understood."""


@dataclass(frozen=True, slots=True)
class KindState:
    """What one record type has landed: merged windows (ascending, disjoint) and the high-water mark."""

    kind: str
    landed: tuple[Window, ...] = ()
    high_water_mark: datetime | None = None


def kind_dir(account: str, kind: str) -> str:
    """(account, record type) -> the folder of its sync state, relative to the data dir."""
    return f"{STATE_DIR}/{ACCOUNT_FOLDER}{account}/{api.known_record_type(kind)}"


def landed_path(account: str, kind: str) -> str:
    """(account, record type) -> its landed-state file, relative to the data dir."""
    return f"{kind_dir(account, kind)}/landed.json"


def checkpoint_path(account: str, kind: str, window: Window) -> str:
    """(account, kind, window) -> the checkpoint file of that run, relative to the data dir."""
    return f"{kind_dir(account, kind)}/runs/{_stamp(window.start)}--{_stamp(window.end)}.json"


def read_state(lake: AccountLake, kind: api.RecordType) -> KindState:
    """The landed windows and high-water mark of an account's record type (empty before its first sync)."""
    relative = landed_path(lake.account, kind)
    document = _load(lake, relative, kind, "landed")
    if document is None:
        return KindState(kind=kind)
    try:
        landed = tuple(_window(pair) for pair in document["landed"])
        mark = document["high_water_mark"]
        high_water_mark = None if mark is None else _parse(mark)
    except (KeyError, TypeError, ValueError) as exc:
        raise _corrupt(lake, relative, exc, "landed") from exc
    return KindState(kind=kind, landed=merge_windows(landed), high_water_mark=high_water_mark)


class NeverSynced(UsageError):
    """An incremental sync of a record type no sync has landed yet: it has no high-water mark to continue from."""


def incremental_window(state: KindState, now: datetime, lookback: timedelta) -> Window:
    """A record type's state and the clock -> the window of a sync with no range: [HWM - lookback, now)."""
    if state.high_water_mark is None:
        raise NeverSynced(
            f"no earlier sync of {state.kind} in this data dir, so there is nothing to continue from: "
            "give the first sync a range (--range LITERAL, e.g. last_7_days, or --start/--end)"
        )
    start = state.high_water_mark - lookback
    if now <= start:
        raise UsageError(
            f"now ({now.isoformat()}) is before the incremental start of {state.kind} ({start.isoformat()}, "
            "the high-water mark minus the lookback): give --range or --start/--end, or a later --now"
        )
    return Window(start, now)


def merge_windows(windows: Iterable[Window]) -> tuple[Window, ...]:
    """Windows -> the same instants as few disjoint windows, ascending (touching windows join)."""
    merged: list[Window] = []
    for window in sorted((w for w in windows if w.end > w.start), key=lambda w: (w.start, w.end)):
        if merged and window.start <= merged[-1].end:
            if window.end > merged[-1].end:
                merged[-1] = Window(merged[-1].start, window.end)
        else:
            merged.append(window)
    return tuple(merged)


def covers(state: KindState, window: Window) -> bool:
    """Whether the landed windows hold every instant of the window."""
    return window.end <= window.start or any(w.start <= window.start and window.end <= w.end for w in state.landed)


def lost_days(state: KindState, with_data: Collection[date], counted: Collection[date]) -> set[date]:
    """The UTC days a record type landed whose records are gone: no partition file, although the API's usage
    counted records for them (a usage partition).

    A landed day with neither partition held no records: a sync that landed it empty leaves no file.
    `cdr status` names these days missing, and a finance statement does not count them as held.
    """
    return {day for day in set(counted) - set(with_data) if any(_touches(window, day) for window in state.landed)}


def held_windows(state: KindState, with_data: Collection[date], counted: Collection[date]) -> tuple[Window, ...]:
    """The instants whose records the lake holds: the landed windows without their `lost_days`."""
    lost = sorted(lost_days(state, with_data, counted))
    held: list[Window] = []
    for window in state.landed:
        start = window.start
        for day in lost:
            begins, ends = _utc_day(day)
            if begins < window.end and start < ends:
                if start < begins:
                    held.append(Window(start, begins))
                start = max(start, ends)
        if start < window.end:
            held.append(Window(start, window.end))
    return merge_windows(held)


def lake_holds(lake: AccountLake, kind: api.RecordType) -> tuple[Window, ...]:
    """An account's record type -> the instants the lake holds its records for (`held_windows` of its state, its
    partitions' days and its usage partitions' days): the one rule `cdr report finance` and `cdr sync
    --only-missing` judge an account's days by."""
    return held_windows(read_state(lake, kind), lake.partition_days(kind), lake.partition_days(f"usage_{kind}"))


def _utc_day(day: date) -> tuple[datetime, datetime]:
    begins = utc_midnight(day)
    return begins, begins + timedelta(days=1)


def _touches(window: Window, day: date) -> bool:
    begins, ends = _utc_day(day)
    return window.start < ends and begins < window.end


class SyncRun:
    """One (kind, window) run's checkpoint: its planned slices (None in a checkpoint that did not
    record them) and which of them are landed; thread-safe."""

    def __init__(
        self,
        lake: AccountLake,
        kind: api.RecordType,
        window: Window,
        run_ids: Sequence[str],
        done: Iterable[Window],
        planned: Sequence[Window] | None = None,
    ) -> None:
        self.lake = lake
        self.kind = kind
        self.window = window
        self.run_ids = tuple(run_ids)
        self.planned = None if planned is None else tuple(planned)
        self._done = set(done)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SyncRun({self.kind!r}, {self.window}, done={len(self._done)})"

    @property
    def done(self) -> frozenset[Window]:
        """The slices landed by this run or the unfinished runs it resumes."""
        with self._lock:
            return frozenset(self._done)

    def is_done(self, slice_: Window) -> bool:
        """Whether the slice is already landed (skip it)."""
        with self._lock:
            return slice_ in self._done

    def mark_done(self, slice_: Window) -> None:
        """Record that a slice has landed: the landed windows, then the checkpoint, each atomically."""
        _check_inside(slice_, self.window)
        with self._lock:
            # Landed first: a crash in between only makes the next run redo this slice.
            _record_landed(self.lake, self.kind, [slice_], None)
            self._done.add(slice_)
            self._write()

    def complete(self, now: datetime) -> KindState:
        """Finish the run: the whole window landed, the high-water mark advanced, the checkpoint removed."""
        with self._lock:
            state = _record_landed(self.lake, self.kind, [self.window], min(self.window.end, now))
            self.lake.delete(checkpoint_path(self.lake.account, self.kind, self.window))
            return state

    def _write(self) -> None:
        document = {
            "version": STATE_VERSION,
            "kind": self.kind,
            "window": _pair(self.window),
            "run_ids": list(self.run_ids),
            "done": [_pair(w) for w in sorted(self._done, key=lambda w: (w.start, w.end))],
        }
        if self.planned is not None:
            document["slices"] = [_pair(w) for w in self.planned]
        relative = checkpoint_path(self.lake.account, self.kind, self.window)
        self.lake.write_bytes(relative, orjson.dumps(document, option=orjson.OPT_INDENT_2))


def open_checkpoints(lake: AccountLake, kind: api.RecordType) -> list[SyncRun]:
    """The unfinished runs of an account's record type, by window."""
    runs = []
    for relative in lake.list_files(f"{kind_dir(lake.account, kind)}/runs"):
        if not relative.endswith(".json"):
            continue
        document = _load(lake, relative, kind, "checkpoint")
        if document is None:
            continue
        try:
            window = _window(document["window"])
            if checkpoint_path(lake.account, kind, window) != relative:
                raise ValueError("its window does not match its file name")
            run_ids = [str(run_id) for run_id in document["run_ids"]]
            done = [_window(pair) for pair in document["done"]]
            # Absent from the checkpoints of earlier releases: those runs planned by UTC day.
            planned = None if "slices" not in document else [_window(pair) for pair in document["slices"]]
            if any(not (window.start <= s.start and s.end <= window.end) for s in planned or ()):
                raise ValueError("a planned slice is outside the run's window")
        except (KeyError, TypeError, ValueError) as exc:
            raise _corrupt(lake, relative, exc, "checkpoint") from exc
        runs.append(SyncRun(lake, kind, window, run_ids, done, planned))
    return sorted(runs, key=lambda r: (r.window.start, r.window.end))


def resumed_plan(lake: AccountLake, kind: api.RecordType, window: Window) -> list[Window] | None:
    """The slices an unfinished run of exactly this window planned (None if there is none, or it did not say).

    A rerun keeps them: its done slices count only where the plans agree, and a plan made again
    may cut the window otherwise (it can depend on how many records the window holds).
    """
    for run in open_checkpoints(lake, kind):
        if run.window == window and run.planned is not None:
            return list(run.planned)
    return None


def begin_run(lake: AccountLake, kind: api.RecordType, window: Window, slices: Sequence[Window], run_id: str) -> SyncRun:
    """Start or resume the (kind, window) run -> its checkpoint, with the planned slices already landed marked done.

    Done slices of any unfinished run of the kind count when they equal a planned slice. Unfinished
    runs inside this window are superseded (this run redoes them): their checkpoints go. With no slice
    done yet, the checkpoint is first written when one lands, so a run landing nothing leaves none.
    """
    for slice_ in slices:
        _check_inside(slice_, window)
    planned = set(slices)
    previous = open_checkpoints(lake, kind)
    done: set[Window] = set()
    run_ids: list[str] = []
    superseded = []
    same = []
    for run in previous:
        done |= run.done & planned
        if run.window == window:
            run_ids = list(run.run_ids)
            same.append(run)
        elif window.start <= run.window.start and run.window.end <= window.end:
            superseded.append(run)
    if run_id not in run_ids:
        run_ids.append(run_id)
    run = SyncRun(lake, kind, window, run_ids, done, slices)
    if done:
        with run._lock:
            run._write()
    else:
        # This run's own checkpoint would hold nothing either: none of it can be resumed.
        superseded += same
    for old in superseded:
        lake.delete(checkpoint_path(lake.account, kind, old.window))
    return run


# -- internals ---------------------------------------------------------------------------------


def _check_inside(slice_: Window, window: Window) -> None:
    if not (window.start <= slice_.start and slice_.end <= window.end):
        raise ValueError(f"programming error: slice {slice_} is outside the run's window {window}")


# One process writes a data dir's state at a time; the lock orders this process's writers.
_LANDED_LOCK = threading.Lock()


def _record_landed(lake: AccountLake, kind: str, windows: Sequence[Window], high_water_mark: datetime | None) -> KindState:
    with _LANDED_LOCK:
        current = read_state(lake, kind)  # type: ignore[arg-type]
        mark = max((m for m in (current.high_water_mark, high_water_mark) if m is not None), default=None)
        state = KindState(kind=kind, landed=merge_windows([*current.landed, *windows]), high_water_mark=mark)
        document = {
            "version": STATE_VERSION,
            "kind": kind,
            "high_water_mark": None if mark is None else _format(mark),
            "landed": [_pair(w) for w in state.landed],
        }
        lake.write_bytes(landed_path(lake.account, kind), orjson.dumps(document, option=orjson.OPT_INDENT_2))
        return state


def _load(lake: AccountLake, relative: str, kind: str, what: str) -> dict[str, Any] | None:
    data = lake.read_bytes(relative)
    if data is None:
        return None
    try:
        document = orjson.loads(data)
        if not isinstance(document, dict):
            raise ValueError("it is not a JSON object")
        if document.get("version") != STATE_VERSION:
            raise ValueError(f"unknown version {document.get('version')!r}, expected {STATE_VERSION}")
        if document.get("kind") != kind:
            raise ValueError(f"it is for {document.get('kind')!r}")
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise _corrupt(lake, relative, exc, what) from exc
    return document


def _corrupt(lake: AccountLake, relative: str, exc: BaseException, what: str) -> StateError:
    consequence = (
        "deleting it forgets what was landed (the next sync then needs --range or --start/--end)"
        if what == "landed"
        else "deleting it makes the next run of that window redo all its slices"
    )
    return StateError(f"sync state file {lake.display(relative)} is corrupt ({exc}); fix or delete it: {consequence}")


def _format(moment: datetime) -> str:
    # Microseconds: a window given with `--now` must round-trip exactly to identify its run.
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    if not isinstance(text, str):
        raise TypeError(f"expected a date-time string, got {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"date-time {text!r} has no time zone")
    return moment.astimezone(timezone.utc)


def _pair(window: Window) -> list[str]:
    return [_format(window.start), _format(window.end)]


def _window(pair: object) -> Window:
    if not isinstance(pair, list) or len(pair) != 2:
        raise ValueError(f"expected a [start, end] pair, got {pair!r}")
    return Window(_parse(pair[0]), _parse(pair[1]))


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
