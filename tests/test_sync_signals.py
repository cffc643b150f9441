"""`cdr sync` under SIGTERM, as a service manager sends it: one line, exit 143, resumable, lake exact."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from pipelines.dates import format_utc
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.lake import Lake
from pipelines.opentact import api
from pipelines.state import open_checkpoints
from sandbox.testing import TEST_API_KEY, running_sandbox
from tests.test_sync import LAG, NOW, START, WINDOW_LONG, WORLD, assert_lake_is_the_export, export, run_sync

ROOT = Path(__file__).resolve().parents[1]
# Slow pages (small, each answered late) keep the sync running for a while after its first
# slice lands, so the signal falls inside it.
SLOW = {"latency_ms": 400}
STARTUP_SECS = 300.0  # Prefect's start-up on a busy machine
STOPPED_WITHIN_SECS = 20.0


def _checkpointed(data: Path) -> int:
    """Slices that unfinished runs of the data dir have landed and checkpointed."""
    done = 0
    for path in data.glob("state/account=*/*/runs/*.json"):
        try:
            done += len(orjson.loads(path.read_bytes())["done"])
        except (OSError, ValueError, KeyError):
            pass  # being replaced right now
    return done


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigterm_stops_cdr_sync_in_one_line_and_the_next_run_resumes_to_the_exact_lake(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_sandbox(start=START.isoformat(), now=format_utc(NOW), **WORLD, **SLOW) as url:
        env = {
            **os.environ,
            "OPENTACT_API_KEY": TEST_API_KEY,
            "OPENTACT_BASE_URL": url,
            "OPENTACT_PAGE_SIZE": "10",
            "OPENTACT_SETTLE_LAG_SECS": str(LAG.total_seconds()),
        }
        child = subprocess.Popen(
            [sys.executable, "-c", "from cdr_app.cli import main; main()", "sync",
             "--start", format_utc(WINDOW_LONG.start), "--end", format_utc(WINDOW_LONG.end),
             "--now", format_utc(NOW), "--data-dir", str(data)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + STARTUP_SECS
            while _checkpointed(data) == 0 and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert child.poll() is None, child.communicate()
            child.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            out, err = child.communicate(timeout=STOPPED_WITHIN_SECS + 30)
            stopped_after = time.monotonic() - signalled
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
        assert child.returncode == 143, err
        assert stopped_after < STOPPED_WITHIN_SECS
        assert out == ""
        # Besides the windows announced, the progress bar and the pipeline's own warnings (the
        # sandbox's faults quarantine records): one line, no traceback.
        said = [
            line for line in err.splitlines()
            if line.strip()
            and not line.startswith(("cdrs: ", "mdrs: ", "sync "))
            and " | WARNING | pipelines." not in line
        ]
        assert said == ["terminated: the sync stopped; run it again to resume"], err
        assert "Traceback" not in err and "TerminationSignal" not in err

        # The lock is released (its file gone: a killed sync would leave it), no temporary is
        # left, and what landed is checkpointed: the next run does only the rest.
        assert not (data / ".sync.lock").exists()
        assert [p for p in (data / ".staging").rglob("*") if p.is_file()] == []
        landed = sum(len(run.done) for kind in api.RECORD_TYPES for run in open_checkpoints(Lake(data).for_account(DEFAULT_ACCOUNT), kind))
        assert landed >= 1
    # The same world, answered without delay: the next run resumes against it.
    with running_sandbox(start=START.isoformat(), now=format_utc(NOW), **WORLD) as url:
        report = asyncio.run(run_sync(url, data, WINDOW_LONG, NOW, "resumed"))
    assert report.ok, report.failures
    assert sum(k.skipped for k in report.kinds) == landed < sum(k.slices for k in report.kinds)
    assert_lake_is_the_export(Lake(data).for_account(DEFAULT_ACCOUNT), export(tmp_path, NOW, WINDOW_LONG))
