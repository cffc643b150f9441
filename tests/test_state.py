"""Sync state: landed windows, high-water mark, incremental window, per-slice checkpoints and resume."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from pipelines.dates import Window
from pipelines.errors import UsageError
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.lake import AccountLake, Lake
from pipelines.state import (
    KindState,
    StateError,
    begin_run,
    checkpoint_path,
    incremental_window,
    landed_path,
    merge_windows,
    open_checkpoints,
    read_state,
    resumed_plan,
)

UTC = timezone.utc


def t(day: int, hour: int = 0) -> datetime:
    """March 2026, UTC."""
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def hours(start: datetime, count: int) -> list[Window]:
    """Consecutive one-hour slices."""
    return [Window(start + timedelta(hours=n), start + timedelta(hours=n + 1)) for n in range(count)]


@pytest.fixture(params=["local", "memory"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> AccountLake:
    """The default account's state on local disk and on fsspec's in-memory object store."""
    if request.param == "local":
        return Lake(tmp_path / "data").for_account(DEFAULT_ACCOUNT)
    return Lake(f"memory://state-{uuid.uuid4().hex}").for_account(DEFAULT_ACCOUNT)


def test_merge_windows_joins_overlapping_and_touching_windows() -> None:
    assert merge_windows([Window(t(3), t(4)), Window(t(1), t(2)), Window(t(2), t(3, 6)), Window(t(5), t(5)), Window(t(6), t(7))]) == (
        Window(t(1), t(4)),
        Window(t(6), t(7)),
    )
    assert merge_windows([Window(t(1), t(5)), Window(t(2), t(3))]) == (Window(t(1), t(5)),)


def test_a_new_data_dir_has_no_state_and_no_incremental_window(lake: AccountLake) -> None:
    assert read_state(lake, "cdrs") == KindState("cdrs")
    with pytest.raises(UsageError, match=r"no earlier sync of cdrs .*--range LITERAL.*--start/--end"):
        incremental_window(read_state(lake, "cdrs"), now=t(10), lookback=timedelta(days=3))


def test_incremental_window_starts_a_lookback_before_the_high_water_mark() -> None:
    state = KindState("mdrs", (Window(t(1), t(8)),), t(8))
    assert incremental_window(state, now=t(9, 2), lookback=timedelta(days=3)) == Window(t(5), t(9, 2))
    assert incremental_window(state, now=t(9, 2), lookback=timedelta(0)) == Window(t(8), t(9, 2))
    with pytest.raises(UsageError, match="before the incremental start of mdrs"):
        incremental_window(state, now=t(4), lookback=timedelta(days=3))


def test_a_fresh_run_records_each_slice_then_completes(lake: AccountLake) -> None:
    window = Window(t(1), t(1, 4))
    slices = hours(t(1), 4)
    run = begin_run(lake, "cdrs", window, slices, "run-1")
    assert run.done == frozenset()
    # Nothing to resume yet: the checkpoint is written with the first slice landed.
    assert open_checkpoints(lake, "cdrs") == []
    run.mark_done(slices[2])
    assert [(r.window, r.done, r.run_ids) for r in open_checkpoints(lake, "cdrs")] == [(window, {slices[2]}, ("run-1",))]
    run.mark_done(slices[0])
    # Landed slices count as landed even before the run completes; the mark does not move.
    assert read_state(lake, "cdrs") == KindState("cdrs", (slices[0], slices[2]), None)
    for slice_ in slices[1::2]:
        run.mark_done(slice_)
    state = run.complete(now=t(2))
    assert state == KindState("cdrs", (window,), t(1, 4)) == read_state(lake, "cdrs")
    assert open_checkpoints(lake, "cdrs") == []
    assert not lake.exists(checkpoint_path(DEFAULT_ACCOUNT, "cdrs", window))
    assert read_state(lake, "mdrs") == KindState("mdrs")


def test_a_rerun_of_the_same_window_skips_exactly_the_done_slices(lake: AccountLake) -> None:
    window = Window(t(1), t(1, 6))
    slices = hours(t(1), 6)
    first = begin_run(lake, "cdrs", window, slices, "run-1")
    for index in (0, 1, 4):
        first.mark_done(slices[index])
    # The first run dies here; the next run of the same window resumes it.
    second = begin_run(lake, "cdrs", window, slices, "run-2")
    assert second.done == {slices[0], slices[1], slices[4]}
    assert [s for s in slices if not second.is_done(s)] == [slices[2], slices[3], slices[5]]
    assert open_checkpoints(lake, "cdrs")[0].run_ids == ("run-1", "run-2")
    assert orjson.loads(lake.read_bytes(checkpoint_path(DEFAULT_ACCOUNT, "cdrs", window)))["done"] == [
        ["2026-03-01T00:00:00.000000Z", "2026-03-01T01:00:00.000000Z"],
        ["2026-03-01T01:00:00.000000Z", "2026-03-01T02:00:00.000000Z"],
        ["2026-03-01T04:00:00.000000Z", "2026-03-01T05:00:00.000000Z"],
    ]


def test_a_checkpoint_records_its_plan_and_a_rerun_of_the_window_resumes_it(lake: AccountLake) -> None:
    window = Window(t(1), t(4))
    plan = [Window(t(1), t(3)), Window(t(3), t(4))]  # a slice may span days
    assert resumed_plan(lake, "cdrs", window) is None
    begin_run(lake, "cdrs", window, plan, "run-1").mark_done(plan[1])
    assert orjson.loads(lake.read_bytes(checkpoint_path(DEFAULT_ACCOUNT, "cdrs", window)))["slices"] == [
        ["2026-03-01T00:00:00.000000Z", "2026-03-03T00:00:00.000000Z"],
        ["2026-03-03T00:00:00.000000Z", "2026-03-04T00:00:00.000000Z"],
    ]
    assert resumed_plan(lake, "cdrs", window) == plan
    # Only a run of the very same window is resumed.
    assert resumed_plan(lake, "cdrs", Window(t(1), t(5))) is None
    assert resumed_plan(lake, "mdrs", window) is None
    second = begin_run(lake, "cdrs", window, plan, "run-2")
    assert [s for s in plan if not second.is_done(s)] == [plan[0]]


def test_a_checkpoint_of_an_earlier_release_has_no_plan_to_resume(lake: AccountLake) -> None:
    window = Window(t(1), t(3))
    days = [Window(t(1), t(2)), Window(t(2), t(3))]
    document = {"version": 1, "kind": "cdrs", "window": ["2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z"],
                "run_ids": ["old"], "done": [["2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"]]}
    lake.write_bytes(checkpoint_path(DEFAULT_ACCOUNT, "cdrs", window), orjson.dumps(document))
    assert resumed_plan(lake, "cdrs", window) is None
    # Its done slices still count where a new plan has them.
    assert begin_run(lake, "cdrs", window, days, "new").done == {days[0]}


def test_a_checkpoint_planning_a_slice_outside_its_window_is_corrupt(lake: AccountLake) -> None:
    window = Window(t(1), t(3))
    document = {"version": 1, "kind": "cdrs", "window": ["2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z"],
                "run_ids": [], "done": [], "slices": [["2026-03-01T00:00:00Z", "2026-03-04T00:00:00Z"]]}
    lake.write_bytes(checkpoint_path(DEFAULT_ACCOUNT, "cdrs", window), orjson.dumps(document))
    with pytest.raises(StateError, match="is corrupt .*outside the run's window"):
        resumed_plan(lake, "cdrs", window)


def test_an_incremental_run_adopts_coinciding_slices_and_supersedes_the_unfinished_run(lake: AccountLake) -> None:
    interrupted_window = Window(t(1), t(1, 3) + timedelta(minutes=20))
    planned_then = [*hours(t(1), 3), Window(t(1, 3), interrupted_window.end)]
    interrupted = begin_run(lake, "cdrs", interrupted_window, planned_then, "night-1")
    for slice_ in planned_then[:2] + planned_then[3:]:
        interrupted.mark_done(slice_)
    later_window = Window(t(1), t(1, 5) + timedelta(minutes=10))
    planned_now = [*hours(t(1), 5), Window(t(1, 5), later_window.end)]
    resumed = begin_run(lake, "cdrs", later_window, planned_now, "night-2")
    # The partial last slice of the interrupted run is not a planned slice now: redone.
    assert resumed.done == {planned_now[0], planned_now[1]}
    assert [r.window for r in open_checkpoints(lake, "cdrs")] == [later_window]
    assert resumed.run_ids == ("night-2",)


def test_unfinished_runs_elsewhere_are_left_alone_but_lend_their_slices(lake: AccountLake) -> None:
    backfill = Window(t(1), t(3))
    days = [Window(t(1), t(2)), Window(t(2), t(3))]
    begin_run(lake, "cdrs", backfill, days, "backfill").mark_done(days[0])
    nightly = begin_run(lake, "cdrs", Window(t(1, 12), t(2)), [Window(t(1, 12), t(2))], "nightly")
    assert nightly.done == frozenset()
    nightly.mark_done(Window(t(1, 12), t(2)))
    assert [r.window for r in open_checkpoints(lake, "cdrs")] == [backfill, Window(t(1, 12), t(2))]
    # This one covers the nightly run's window: it supersedes it, and not the wider backfill.
    narrow = begin_run(lake, "cdrs", Window(t(1), t(2)), [days[0]], "narrow")
    assert narrow.done == {days[0]}
    assert [r.window for r in open_checkpoints(lake, "cdrs")] == [Window(t(1), t(2)), backfill]
    for run in open_checkpoints(lake, "cdrs"):
        run.complete(t(3))
    assert open_checkpoints(lake, "cdrs") == []


def test_a_run_that_lands_nothing_leaves_no_checkpoint_and_clears_the_empty_ones(lake: AccountLake) -> None:
    window = Window(t(1), t(1, 4))
    begin_run(lake, "cdrs", window, hours(t(1), 4), "failed-1")
    assert lake.list_files("state") == []
    # A zero-progress checkpoint of the same window (as earlier versions wrote) is no use to anyone.
    lake.write_bytes(
        checkpoint_path(DEFAULT_ACCOUNT, "cdrs", window),
        orjson.dumps({"version": 1, "kind": "cdrs", "window": [window.start.isoformat(), window.end.isoformat()], "run_ids": ["old"], "done": []}),
    )
    again = begin_run(lake, "cdrs", window, hours(t(1), 4), "failed-2")
    assert lake.list_files("state") == []
    # Its runs are still named once a slice lands.
    again.mark_done(hours(t(1), 4)[1])
    assert open_checkpoints(lake, "cdrs")[0].run_ids == ("old", "failed-2")


def test_the_high_water_mark_never_moves_back_nor_past_the_clock(lake: AccountLake) -> None:
    begin_run(lake, "cdrs", Window(t(5), t(8)), [], "a").complete(now=t(7, 12))
    assert read_state(lake, "cdrs").high_water_mark == t(7, 12)
    begin_run(lake, "cdrs", Window(t(1), t(2)), [], "backfill").complete(now=t(9))
    state = read_state(lake, "cdrs")
    assert state.high_water_mark == t(7, 12)
    assert state.landed == (Window(t(1), t(2)), Window(t(5), t(8)))


def test_windows_round_trip_to_the_microsecond(lake: AccountLake) -> None:
    now = t(4, 10) + timedelta(microseconds=123456)
    window = Window(t(1), now)
    run = begin_run(lake, "cdrs", window, [Window(t(1), now)], "run-1")
    run.mark_done(Window(t(1), now))
    assert open_checkpoints(lake, "cdrs")[0].window == window
    assert begin_run(lake, "cdrs", window, [Window(t(1), now)], "run-2").done == {Window(t(1), now)}
    assert checkpoint_path(DEFAULT_ACCOUNT, "cdrs", window) == (
        "state/account=default/cdrs/runs/20260301T000000000000Z--20260304T100000123456Z.json"
    )
    # A slice outside the window is a programming error, not state.
    with pytest.raises(ValueError, match="outside the run's window"):
        run.mark_done(Window(t(4), t(5)))


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"{not json", "unexpected character"),
        (b"[]", "not a JSON object"),
        (b'{"version": 99}', "unknown version 99"),
        (b'{"version": 1, "kind": "cdrs", "landed": [["2026-03-01T00:00:00Z"]], "high_water_mark": null}', "expected a \\[start, end\\] pair"),
        (b'{"version": 1, "kind": "cdrs", "landed": [], "high_water_mark": "yesterday"}', "Invalid isoformat"),
        (b'{"version": 1, "kind": "mdrs", "landed": [], "high_water_mark": null}', "it is for 'mdrs'"),
        (b'{"version": 1, "kind": "cdrs"}', "'landed'"),
    ],
)
def test_a_corrupt_landed_file_is_an_error_naming_it(lake: AccountLake, content: bytes, detail: str) -> None:
    lake.write_bytes(landed_path(DEFAULT_ACCOUNT, "cdrs"), content)
    with pytest.raises(StateError, match=rf"sync state file .*state/account=default/cdrs/landed\.json is corrupt \(.*{detail}.*delete it"):
        read_state(lake, "cdrs")


def test_a_corrupt_checkpoint_is_an_error_naming_it(lake: AccountLake) -> None:
    window = Window(t(1), t(2))
    begin_run(lake, "cdrs", window, [window], "run-1")
    lake.write_bytes(checkpoint_path(DEFAULT_ACCOUNT, "cdrs", window), b'{"version": 1, "kind": "cdrs", "window": 7}')
    with pytest.raises(StateError, match=r"runs/20260301T000000000000Z--20260302T000000000000Z\.json is corrupt .*redo all its slices"):
        begin_run(lake, "cdrs", window, [window], "run-2")
    renamed = checkpoint_path(DEFAULT_ACCOUNT, "cdrs", Window(t(5), t(6)))
    lake.write_bytes(renamed, orjson.dumps({"version": 1, "kind": "cdrs", "window": ["2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"], "run_ids": [], "done": []}))
    lake.delete(checkpoint_path(DEFAULT_ACCOUNT, "cdrs", window))
    with pytest.raises(StateError, match="does not match its file name"):
        open_checkpoints(lake, "cdrs")
