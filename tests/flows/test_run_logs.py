"""What a Prefect user sees of a sync run: its name, the pipeline's own log records, its progress artifact."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pipelines.errors import CdrError
from pipelines.flows.sync import sync_flow
from sandbox.testing import running_sandbox

KEY = "run-logs-secret-key-51e0"
NOW = "2026-10-04T00:00:00Z"
# 10% malformed records: the cdrs days (hundreds of records) are broken sources and fail, the
# mdrs days (a few dozen) land with their rejects quarantined. 5xx answers (seeded: at least one
# with this seed) make the client retry.
WORLD = dict(seed=5, start="2026-10-01", calls_per_day=300, messages_per_day=30, malformed_rate=0.1, fail_rate=0.6)


@pytest.fixture
def prefect_logs_info():
    """Prefect's run loggers at INFO (the suite runs them at WARNING), as a deployment has them.

    Prefect sets its loggers' levels when first imported: this module imports it first.
    """
    logger = logging.getLogger("prefect")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


def test_a_sync_runs_under_its_windows_name_with_the_pipelines_records_in_its_log_and_a_progress_artifact(
    prefect_harness, prefect_logs_info, monkeypatch, tmp_path
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    with running_sandbox(**WORLD, api_key=KEY, now=NOW) as url:
        monkeypatch.setenv("OPENTACT_BASE_URL", url)
        monkeypatch.setenv("OPENTACT_API_KEY", KEY)
        monkeypatch.setenv("OPENTACT_BACKOFF_BASE_SECS", "0.01")
        monkeypatch.setenv("OPENTACT_SETTLE_LAG_SECS", "0")
        state = asyncio.run(
            sync_flow(start="2026-10-01", end="2026-10-03", now=NOW, data_dir=str(tmp_path / "d"), return_state=True)
        )
    assert state.is_failed()
    with pytest.raises(CdrError, match=r"1 slice failed \(cdrs"):
        state.result()
    APILogHandler().flush()  # the records still queued for the API
    run_id = state.state_details.flow_run_id

    async def stored():
        async with get_client() as client:
            run = await client.read_flow_run(run_id)
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
            artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
        return run, logs, artifacts

    run, logs, artifacts = asyncio.run(stored())
    assert run.name == "sync 2026-10-01..2026-10-03 cdrs,mdrs"
    said = {(log.name, log.message.split(" ", 1)[0]) for log in logs}
    assert ("pipelines.opentact.client", "retrying") in said, sorted(said)  # the client's own record
    messages = "\n".join(log.message for log in logs)
    assert "FAILED cdrs" in messages and "/quarantine/cdrs/account=default/date=" in messages
    assert any(" quarantined) over " in line and not line.endswith("0 quarantined") for line in messages.splitlines())
    assert KEY not in messages
    progress = [a for a in artifacts if a.type == "progress"]
    assert [(a.key, a.data) for a in progress] == [("cdr-sync-progress", 100.0)]


class _Formatted(logging.Handler):
    """Prefect's run records as a handler (its console's, its API's) writes them: message and traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.mark.parametrize(
    ("error", "traceback_kept"),
    [(CdrError("API key rejected (401) by http://127.0.0.1:9: check OPENTACT_API_KEY"), False), (ZeroDivisionError("a bug"), True)],
)
def test_a_run_failed_by_an_expected_error_is_logged_without_its_traceback(prefect_harness, error, traceback_kept):
    # What `cdr serve` and a worker print, and the run's log in Prefect, for a rejected key: the cause in one
    # line, not two screens of frames; a bug keeps its traceback.
    from prefect import flow

    @flow(name="cdr-failing")
    def failing() -> None:
        raise error

    handler = _Formatted()
    logger = logging.getLogger("prefect.flow_runs")
    logger.addHandler(handler)
    try:
        state = failing(return_state=True)
    finally:
        logger.removeHandler(handler)
    assert state.is_failed()
    told = [line for line in handler.lines if line.startswith("ERROR Encountered exception during execution")]
    assert len(told) == 1 and type(error).__name__ in told[0]
    assert ("Traceback" in told[0]) is traceback_kept
    assert ("\n" in told[0]) is traceback_kept
