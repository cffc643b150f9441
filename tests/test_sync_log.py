"""The log of sync runs: each run as it started and ended, newest first, read back exactly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import orjson
import polars as pl
import pytest

from pipelines.lake import Lake
from pipelines.runs import SYNC_LOG, log_stopped_between_attempts, read_sync_runs, recorded_sync
from pipelines.settings import Settings
from pipelines.sync import SliceFailure, sync
from tests.test_sync import RECORDS, FakeClient, at, day_window

UTC = timezone.utc


def test_runs_are_logged_newest_first_with_how_they_ended_and_what_failed(tmp_path):
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    failing = FakeClient(RECORDS, fail=[("cdrs", day_window(2, 2))])
    asyncio.run(sync("cdrs", day_window(1, 3), settings, failing, at(6), "run-1"))
    asyncio.run(sync("cdrs", day_window(1, 3), settings, FakeClient(RECORDS), at(6), "run-2"))
    with pytest.raises(Exception, match="API key rejected"):
        asyncio.run(sync("cdrs", day_window(1, 3), settings, FakeClient(RECORDS, key_rejected=True), at(6), "run-3"))
    runs = read_sync_runs(Lake(data))
    assert [(r.run_id, r.status) for r in runs] == [("run-3", "failed"), ("run-2", "completed"), ("run-1", "incomplete")]
    assert runs[0].error.startswith("API key rejected (401)")
    assert [(f.kind, f.slice) for f in runs[2].failed_slices] == [("cdrs", day_window(2, 2))]
    assert runs[2].failed_slices[0].cause.startswith("gave up on cdrs")
    assert all(r.started_at <= r.finished_at for r in runs)
    assert runs[0].started_at >= runs[1].finished_at


def test_a_rerun_of_a_run_keeps_its_first_start_and_a_killed_run_reads_as_interrupted(tmp_path):
    lake = Lake(tmp_path)
    clock = iter(datetime(2026, 10, 6, 0, minute, tzinfo=UTC) for minute in range(10))
    with recorded_sync(lake, "run-1", ["cdrs"], clock=lambda: next(clock)) as logged:
        logged.finish([])
    with recorded_sync(lake, "run-1", ["cdrs"], clock=lambda: next(clock)):
        pass
    (run,) = read_sync_runs(lake)
    assert (run.started_at.minute, run.finished_at.minute, run.status) == (0, 2, "completed")

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    document = orjson.loads(lake.read_bytes(SYNC_LOG))
    document["runs"][0] |= {"status": "running", "finished_at": None, "pid": int(dead.stdout), "host": socket.gethostname()}
    lake.write_bytes(SYNC_LOG, orjson.dumps(document))
    assert read_sync_runs(lake)[0].status == "interrupted"
    document["runs"][0]["pid"] = os.getpid()
    lake.write_bytes(SYNC_LOG, orjson.dumps(document))
    assert read_sync_runs(lake)[0].status == "running"



def test_a_corrupt_log_is_one_line_for_readers_and_started_afresh_by_the_next_sync(tmp_path):
    lake = Lake(tmp_path)
    lake.write_bytes(SYNC_LOG, b'{"version": 1, "runs": [{"run_id": "x"}]}')
    with pytest.raises(Exception, match=r"^the log of sync runs .*/state/syncs.json is corrupt \(it has no 'status'\); delete it"):
        read_sync_runs(lake)
    with recorded_sync(lake, "run-2", ["mdrs"]) as logged:
        logged.finish([])
    assert [(r.run_id, r.types, r.status) for r in read_sync_runs(lake)] == [("run-2", ("mdrs",), "completed")]


@pytest.mark.parametrize(
    ("raised", "status", "error"),
    [(asyncio.CancelledError(), "stopped", None), (KeyboardInterrupt(), "stopped", None), (OSError("disk"), "failed", "OSError (see the log)")],
)
def test_a_run_ended_by_a_signal_is_stopped_and_by_an_unexpected_error_failed(tmp_path, raised, status, error):
    lake = Lake(tmp_path)
    with pytest.raises(type(raised)), recorded_sync(lake, "run-1", ["cdrs"]):
        raise raised
    (run,) = read_sync_runs(lake)
    assert (run.status, run.error, run.finished_at is not None) == (status, error, True)


@pytest.mark.parametrize(("last_attempt", "logged"), [("incomplete", "stopped"), ("failed", "stopped"), ("completed", "completed")])
def test_a_run_stopped_while_waiting_to_try_again_is_logged_stopped(tmp_path, last_attempt, logged):
    lake = Lake(tmp_path)
    _logged_as(lake, "run-1", last_attempt)
    log_stopped_between_attempts(lake, "run-1", clock=lambda: datetime(2026, 10, 6, 0, 30, tzinfo=UTC))
    (run,) = read_sync_runs(lake)
    assert run.status == logged
    assert (run.finished_at == datetime(2026, 10, 6, 0, 30, tzinfo=UTC)) == (logged != last_attempt)


def test_a_run_stopped_while_another_sync_holds_the_data_dir_is_left_as_its_last_attempt_logged_it(tmp_path, caplog):
    lake = Lake(tmp_path)
    _logged_as(lake, "run-1", "incomplete")
    with lake.sync_lock("run-2"):
        log_stopped_between_attempts(lake, "run-1")  # neither waits for the other sync nor disturbs it
    assert [run.status for run in read_sync_runs(lake)] == ["incomplete"]
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]  # nothing went wrong


def _logged_as(lake: Lake, run_id: str, status: str) -> None:
    """Log a run ended by its last attempt as `status` (completed, incomplete or failed)."""
    failed = [SliceFailure("cdrs", day_window(2, 2), "gave up")] if status == "incomplete" else []
    with pytest.raises(OSError) if status == "failed" else contextlib.nullcontext(), recorded_sync(lake, run_id, ["cdrs"]) as run:
        if status == "failed":
            raise OSError("disk")
        run.finish(failed)
    assert read_sync_runs(lake)[0].status == status


def test_each_run_logs_the_days_whose_partitions_it_wrote_or_removed(tmp_path):
    """What a build must redo: new, re-rated and emptied days, and days given quarantined records;
    a day landed exactly as the lake held it is not a change, and a run with a failed slice logs the rest."""
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    asyncio.run(sync("cdrs", day_window(1, 3), settings, FakeClient(RECORDS), at(6), "run-1"))
    asyncio.run(sync("cdrs", day_window(1, 3), settings, FakeClient(RECORDS), at(6), "run-2"))
    frame = RECORDS["cdrs"]
    re_rated = frame.with_columns(
        cost=pl.when(pl.col("id") == "c2-1").then(pl.col("cost") * 2).otherwise(pl.col("cost")),
        updated_at=pl.when(pl.col("id") == "c2-1").then(pl.col("updated_at") + timedelta(hours=1)).otherwise(pl.col("updated_at")),
    ).filter(~pl.col("id").str.starts_with("c3-"))
    rejects = {("cdrs", day_window(1, 1)): ["bad cost"]}
    asyncio.run(sync("cdrs", day_window(1, 3), settings, FakeClient({"cdrs": re_rated}, rejects=rejects), at(6), "run-3"))
    failing = FakeClient({"cdrs": frame}, fail=[("cdrs", day_window(2, 2))])
    asyncio.run(sync("cdrs", day_window(1, 3), settings, failing, at(6), "run-4"))
    runs = {run.run_id: run for run in read_sync_runs(Lake(data))}
    days = lambda *numbers: tuple(date(2026, 10, n) for n in numbers)  # noqa: E731
    assert runs["run-1"].changed_days["cdrs"] == days(1, 2, 3)
    assert runs["run-2"].changed_days == {}
    # the fake API's usage follows its records
    assert runs["run-3"].changed_days == {"cdrs": days(2, 3), "quarantine_cdrs": days(1), "usage_cdrs": days(2, 3)}
    assert (runs["run-4"].status, runs["run-4"].changed_days) == ("incomplete", {"cdrs": days(3)})
    document = orjson.loads(Lake(data).read_bytes(SYNC_LOG))
    assert document["runs"][1]["changed_days"]["quarantine_cdrs"] == ["2026-10-01"]


def test_a_log_written_before_runs_logged_their_changed_days_reads_as_changing_none(tmp_path):
    lake = Lake(tmp_path)
    with recorded_sync(lake, "run-1", ["cdrs"]) as logged:
        logged.finish([])
    document = orjson.loads(lake.read_bytes(SYNC_LOG))
    del document["runs"][0]["changed_days"]
    lake.write_bytes(SYNC_LOG, orjson.dumps(document))
    assert read_sync_runs(lake)[0].changed_days == {}
