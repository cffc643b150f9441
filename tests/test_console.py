"""`cdr sync` reports a failed or stopped flow once, as its own line: Prefect's copy is dropped."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from pipelines import console
from pipelines.console import PrefectUnavailable, Stopped, failures_told_by_command, prefect_failure, stoppable
from pipelines.dates import parse_datetime
from pipelines.errors import CdrError, ReaderGone
from pipelines.sync import SyncProgress
from tests.fixtures.cli import run_cdr

ROOT = Path(__file__).resolve().parents[1]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _exc_info(exc: BaseException):
    try:
        raise exc
    except BaseException:
        return sys.exc_info()


@pytest.fixture
def flow_log():
    # Prefect's own handlers (its API handler among them) are set aside: only what passes the
    # logger's filters reaches the collector.
    logger = logging.getLogger("prefect.flow_runs")
    collect, handlers, level, propagate = _Collect(), logger.handlers[:], logger.level, logger.propagate
    logger.handlers = [collect]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, collect.messages
    logger.handlers = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_prefects_account_of_an_expected_failure_is_dropped_inside_the_block(flow_log) -> None:
    logger, messages = flow_log
    with failures_told_by_command():
        logger.error("Encountered exception during execution:", exc_info=_exc_info(CdrError("API key rejected (401)")))
        logger.error("Finished in state Failed('Flow run encountered an exception: ApiKeyRejected: ...')")
        logger.warning("retrying cdrs page 1 in 0.2s")
        logger.error("Encountered exception during execution:", exc_info=_exc_info(ZeroDivisionError("a bug")))
    assert messages == ["retrying cdrs page 1 in 0.2s", "Encountered exception during execution:"]


def test_an_expected_failure_the_flows_logged_without_its_traceback_is_still_dropped_inside_the_block(flow_log) -> None:
    # Every process running a flow takes the traceback off an expected failure's record (pipelines.flows) before
    # `cdr sync` looks at it: the command, which says it in one line, must still know it for one.
    import pipelines.flows  # noqa: F401 - its filter sits on Prefect's run loggers from now on

    logger, messages = flow_log
    with failures_told_by_command():
        logger.error("Encountered exception during execution:", exc_info=_exc_info(CdrError("1 slice failed (cdrs ...)")))
        logger.error("Encountered exception during execution:", exc_info=_exc_info(ZeroDivisionError("a bug")))
    assert messages == ["Encountered exception during execution:"]


def test_outside_the_block_prefect_reports_everything(flow_log) -> None:
    logger, messages = flow_log
    with failures_told_by_command():
        pass
    logger.error("Finished in state Failed('x')")
    logger.error("Encountered exception during execution:", exc_info=_exc_info(CdrError("no")))
    assert messages == ["Finished in state Failed('x')", "Encountered exception during execution:"]


# -- signals: Ctrl-C and SIGTERM cancel the flow, which unwinds; the command says so in one line ----


def _signal_self(signum: int) -> None:
    """Send a signal to this process, as `kill` or Ctrl-C would (its handler runs in the main thread)."""
    os.kill(os.getpid(), signum)


@pytest.mark.parametrize(("signum", "code", "line"), [(signal.SIGTERM, 143, "terminated: x"), (signal.SIGINT, 130, "interrupted: x")])
def test_a_signal_cancels_the_running_flow_which_unwinds_before_the_command_stops(signum, code, line) -> None:
    unwound = threading.Event()

    async def flow() -> None:
        try:
            _signal_self(signum)
            await asyncio.sleep(60)
        finally:
            unwound.set()  # where the sync releases its lock and keeps its checkpoints

    # What the block must restore: a job started in the background inherits SIGINT ignored.
    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    started = time.monotonic()
    with pytest.raises(Stopped) as stopped, stoppable("x") as runner:
        runner.run(flow())
    assert unwound.is_set() and time.monotonic() - started < 5
    assert (stopped.value.exit_code, stopped.value.line) == (code, line)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # restored after the block
    assert not console._stopping.is_set() and logging.root.manager.disable == logging.NOTSET


def test_a_flow_that_does_not_unwind_is_left_after_the_grace(monkeypatch) -> None:
    monkeypatch.setattr(console, "STOP_GRACE_SECS", 0.3)
    release = threading.Event()

    async def stuck() -> None:
        _signal_self(signal.SIGTERM)
        release.wait(10)  # blocks its loop: the cancellation cannot land (as in Prefect's start-up)

    started = time.monotonic()
    try:
        with pytest.raises(Stopped), stoppable("x") as runner:
            runner.run(stuck())
        assert time.monotonic() - started < 5
        assert logging.root.manager.disable == logging.CRITICAL  # its late crash report stays unsaid
    finally:
        release.set()
        logging.disable(logging.NOTSET)
        console._stopping.clear()


def test_a_signal_before_the_flow_starts_stops_at_once() -> None:
    with pytest.raises(Stopped, match="terminated: x"), stoppable("x"):
        _signal_self(signal.SIGTERM)
        time.sleep(5)


def test_the_blocks_own_work_stopped_is_the_stopped_whatever_it_raises_on_its_way_out() -> None:
    with pytest.raises(Stopped, match="^interrupted: x$"), stoppable("x"):
        try:
            _signal_self(signal.SIGINT)
            time.sleep(5)
        except Stopped:
            raise RuntimeError("Query interrupted") from None  # what DuckDB raises in its place


def test_a_second_signal_stops_the_blocks_own_work_unwinding_too() -> None:
    started = time.monotonic()
    with pytest.raises(Stopped, match="^interrupted: x$"), stoppable("x"):
        try:
            _signal_self(signal.SIGINT)
            time.sleep(5)
        finally:
            _signal_self(signal.SIGINT)  # Ctrl-C again during a slow clean-up
            time.sleep(5)
    assert time.monotonic() - started < 4


def test_a_flow_that_ends_or_fails_unsignalled_gives_its_result_or_error() -> None:
    async def fine() -> int:
        return 7

    async def failing() -> None:
        raise CdrError("no")

    with stoppable("x") as runner:
        assert runner.run(fine()) == 7
        with pytest.raises(CdrError, match="no"):
            runner.run(failing())


def test_outside_the_main_thread_the_block_runs_without_signal_handling() -> None:
    async def fine() -> int:
        return 7

    results: list[int] = []

    def elsewhere() -> None:
        with stoppable("x") as runner:
            results.append(runner.run(fine()))

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert results == [7]


def test_cdr_prints_a_stopped_commands_line_and_exits_128_plus_the_signal(capsys, monkeypatch) -> None:
    def stopped(**arguments: object) -> None:
        raise Stopped(signal.SIGTERM, "the sync stopped; run it again to resume")

    monkeypatch.setattr(console, "run_sync", stopped)
    code, out, err = run_cdr(capsys, monkeypatch, "sync", "--range", "yesterday")
    assert (code, out, err) == (143, "", "terminated: the sync stopped; run it again to resume\n")


def test_a_stopped_command_exits_though_something_waits_at_exit() -> None:
    """Prefect drains its events at exit, retrying while its API server (stopped by the same Ctrl-C)
    cannot be reached: the stopped `cdr` leaves anyway, with its exit code."""
    script = (
        "import sys, threading, time\n"
        "from cdr_app import cli\n"
        "from pipelines.console import Stopped\n"
        "threading._register_atexit(lambda: time.sleep(60))  # as Prefect's services register their drain\n"
        "def stopped(): raise Stopped(2, 'the sync stopped; run it again to resume')\n"
        "cli.app = lambda **_: stopped()\n"
        "cli.main()\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=50)
    assert (done.returncode, done.stderr) == (130, b"interrupted: the sync stopped; run it again to resume\n")
    assert time.monotonic() - started < 30


# -- Prefect's own failures: one line, not its traceback ------------------------------------------


def _raised(function, *args):
    try:
        function(*args)
    except Exception as exc:
        return exc
    raise AssertionError("nothing raised")


def _prefect_like() -> None:
    raise RuntimeError("Failed to reach API at http://127.0.0.1:9/api/\nmore")


def test_an_error_none_of_the_flows_code_raised_is_prefects_and_becomes_one_line() -> None:
    told = prefect_failure(_raised(_prefect_like))
    assert isinstance(told, PrefectUnavailable)
    assert str(told).startswith("Prefect could not run the flow (RuntimeError: Failed to reach API at http://127.0.0.1:9/api/)")
    assert "\n" not in str(told) and "PREFECT_API_URL" in str(told)
    # Raised by the pipeline's own code (a bug, or its expected errors): left as it is.
    assert prefect_failure(_raised(parse_datetime, "x")) is None
    assert prefect_failure(CdrError("no")) is None


def test_cdr_sync_with_prefects_api_unreachable_is_one_line_and_exit_1(tmp_path) -> None:
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENTACT_API_KEY": "k", "OPENTACT_BASE_URL": "http://127.0.0.1:9",
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
    }
    proc = subprocess.run(
        [sys.executable, "-c", "from cdr_app.cli import main; main()", "sync", "--range", "yesterday",
         "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, check=False, env=env, cwd=Path(__file__).resolve().parents[1], timeout=240,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("error: Prefect could not run the flow (RuntimeError: Failed to reach API at")
    assert not (tmp_path / "d").exists()


# -- progress: the console's bar is a value handed to the flow, which hands it to the sync --------


def test_cdr_sync_hands_its_progress_bar_to_the_flow_and_prints_the_flows_summary(capsys, monkeypatch, tmp_path) -> None:
    import pipelines.flows.sync as flows

    async def flow(progress=None, **parameters: object) -> dict[str, object]:
        assert parameters["types"] == ["cdrs", "mdrs"] and parameters["now"] == "2026-10-03T00:00:00.000Z"
        progress(SyncProgress("cdrs", slices_total=2, slices_done=1, records=600))
        progress(SyncProgress("cdrs", slices_total=2, slices_done=2, records=1234))
        # the windows the sync read: the asked one short of its end by the settle lag, and the whole one
        types = {"cdrs": {"new": 1200, "updated": 0, "quarantined": 34,
                          "window": ["2026-10-02T00:00:00.000Z", "2026-10-02T23:58:00.000Z"]},
                 "mdrs": {"new": 0, "updated": 0, "quarantined": 0,
                          "window": ["2026-10-02T00:00:00.000Z", "2026-10-03T00:00:00.000Z"]}}
        return {"records": 1234, "duration_secs": 2.0, "records_per_sec": 617.0, "types": types}

    async def key_accepted(request: object) -> None:
        """The key check's request (tests/test_console_key_check.py) is not this test's business."""

    monkeypatch.setenv("OPENTACT_API_KEY", "k")
    monkeypatch.setattr(console, "check_api_key", key_accepted)
    monkeypatch.setattr(flows, "sync_flow", flow)
    console.run_sync(date_range="yesterday", now="2026-10-03T00:00:00Z", types="cdrs,mdrs", data_dir=tmp_path / "d")
    out, err = capsys.readouterr()
    assert "cdrs: 2026-10-02T00:00:00.000Z .. 2026-10-03T00:00:00.000Z" in err
    assert "2/2 slices" in err and "1,234 records" in err
    assert out == (
        f"synced 1,234 records in 2.0 s (617/s) into {tmp_path / 'd'}\n  cdrs: 1,200 new, 0 updated, 34 quarantined; "
        "read up to 2026-10-02T23:58:00.000Z (newer records settle first: OPENTACT_SETTLE_LAG_SECS)\n"
        "  mdrs: 0 new, 0 updated, 0 quarantined\n"
    )


def test_the_bar_says_prefect_is_starting_until_the_sync_first_moves_it() -> None:
    shown = io.StringIO()
    with console.sync_progress(Console(file=shown, force_terminal=True, width=120)) as progress:
        progress(SyncProgress("cdrs", slices_total=2, slices_done=2, records=5))
    first, *_, last = [line for line in re.split(r"[\r\n]", shown.getvalue()) if "slices" in line]
    assert "sync (starting Prefect)" in first and "0/?" in first
    assert "starting" not in last and "2/2" in last


def test_cdr_sync_that_fails_in_part_still_says_which_fields_the_landed_slices_kept_in_extras(
    capsys, monkeypatch, tmp_path
) -> None:
    import pipelines.flows.sync as flows
    from pipelines.dates import Window
    from pipelines.sync import KindReport, SliceFailure, SyncReport

    window = Window(parse_datetime("2026-10-02T00:00:00Z"), parse_datetime("2026-10-03T00:00:00Z"))
    report = SyncReport(
        run_id="r", now=window.end, duration_secs=1.0,
        kinds=(
            KindReport("cdrs", window, slices=1, skipped=0, failed=1),
            KindReport("mdrs", window, slices=1, skipped=0, landed=1, extra_fields=("region",)),
        ),
        failures=(SliceFailure("cdrs", window, "the lake file is broken"),),
    )

    async def flow(progress=None, **parameters: object) -> dict[str, object]:
        raise flows.SyncIncomplete(report)

    async def key_accepted(request: object) -> None:
        """The key check's request (tests/test_console_key_check.py) is not this test's business."""

    monkeypatch.setenv("OPENTACT_API_KEY", "k")
    monkeypatch.setattr(console, "check_api_key", key_accepted)
    monkeypatch.setattr(flows, "sync_flow", flow)
    code, out, err = run_cdr(
        capsys, monkeypatch, "sync", "--range", "yesterday", "--now", "2026-10-03T00:00:00Z", "--data-dir", str(tmp_path / "d")
    )
    assert code == 1 and err.splitlines()[-1].startswith("error: 1 slice failed (cdrs")
    assert out == "mdrs: kept 1 field the lake does not know in extras: region\n"

    # `cdr sync | head -1` whose reader leaves during that line: the run's failure and exit 1 stand.
    def reader_gone(*_: object) -> None:
        raise ReaderGone

    monkeypatch.setattr(console, "_print_extras", reader_gone)
    code, _, err = run_cdr(
        capsys, monkeypatch, "sync", "--range", "yesterday", "--now", "2026-10-03T00:00:00Z", "--data-dir", str(tmp_path / "d")
    )
    assert code == 1 and err.splitlines()[-1].startswith("error: 1 slice failed (cdrs")


@pytest.mark.parametrize(("total", "records", "words"), [(1, 1, ("1/1 slice ", " 1 record ")), (4, 2500, ("1/4 slices", " 2,500 records"))])
def test_the_progress_bar_says_its_counts_with_their_nouns(total, records, words):
    from rich.console import Console

    screen = Console(record=True, width=120, force_terminal=True, color_system=None)
    with console.sync_progress(screen) as on_progress:
        on_progress(SyncProgress("cdrs", slices_total=total, slices_done=1, records=records))
    shown = screen.export_text()
    assert all(word in shown for word in words), shown
