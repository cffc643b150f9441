"""`cdr sync` on a local Dask cluster of two worker processes (CDR_TASK_RUNNER=dask).

The same three accounts on one sandbox under faults as tests/test_sync_accounts.py, one of them
with a rejected key: the slices land as Prefect tasks on the workers, the flow keeps the lock,
the log entry and the checkpoints, and each good account's lake equals its export exactly.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.lake import Lake
from pipelines.opentact import api
from pipelines.runs import read_sync_runs
from pipelines.settings import Settings
from pipelines.state import read_state
from tests.fixtures.cli import run_cdr
from tests.test_sync import assert_lake_is_the_export
from tests.test_sync_accounts import (  # noqa: F401 - fixtures
    ACCOUNTS,
    REJECTED,
    SERVED,
    _account_folders,
    _sync_args,
    accounts_env,
    assert_only_initech_failed,
    sandbox,
    truths,
)


def _lake_files(data: Path) -> dict[str, bytes]:
    return {str(path.relative_to(data)): path.read_bytes() for path in sorted((data / "lake").rglob("*")) if path.is_file()}


def _land_task_runs(run_id: str) -> list[tuple[str, str]]:
    """The flow run's `land-slices` task runs: (name, state)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> list[tuple[str, str]]:
        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        return sorted((run.name, run.state_name) for run in runs if run.name.startswith("land "))

    return asyncio.run(read())


def _stored_by_prefect(run_id: str) -> str:
    """Everything Prefect's API holds of the flow run, as JSON: the run, its task runs, logs and artifacts."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def read() -> str:
        async with get_client() as client:
            flow_run = await client.read_flow_run(run_id)
            tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )
        return "\n".join(item.model_dump_json() for item in [flow_run, *tasks, *logs, *artifacts])

    return asyncio.run(read())


def test_three_accounts_on_two_dask_workers_land_exactly_their_exports(
    prefect_harness, accounts_env, truths, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CDR_TASK_RUNNER", "dask")
    monkeypatch.setenv("CDR_DASK_WORKERS", "2")
    # Windows of more than a page are planned by UTC day, not read whole: several slices to hand out.
    monkeypatch.setenv("OPENTACT_SLICE_MAX_PAGES", "1")
    data = tmp_path / "data"
    code, out, err = run_cdr(capsys, monkeypatch, *_sync_args(data))
    assert_only_initech_failed(code, out, err)
    assert "\n  task runner: dask, 2 workers\n" in out
    # The bar moved in this process as the workers' tasks ended: every slice of the good accounts
    # (initech's key is refused as its windows are sized, so none of its slices is planned).
    assert "12/12 slices" in err, err

    lake = Lake(data)
    for name in ("acme", "globex"):
        assert_lake_is_the_export(lake.for_account(name), truths[ACCOUNTS[name][1]])
        assert all(read_state(lake.for_account(name), kind).high_water_mark is not None for kind in api.RECORD_TYPES)
    assert _account_folders(data, "initech") == []

    # The flow's one log entry, as a sync in one process writes it.
    (run,) = read_sync_runs(lake)
    assert run.status == "incomplete" and run.error.startswith("account initech: ") and "401" in run.error
    assert [(a.account, a.status) for a in run.accounts] == [
        ("acme", "completed"), ("globex", "completed"), ("initech", "failed")
    ]
    assert sorted(run.changed_days) == ["cdrs", "mdrs", "quarantine_cdrs", "quarantine_mdrs", "usage_cdrs", "usage_mdrs"]
    # The slices landed as Prefect tasks of the run, a share of an account's record type each.
    landed = _land_task_runs(run.run_id)
    assert {name for name, state in landed if state == "Completed"} == {
        f"land {kind} of {name}" for kind in api.RECORD_TYPES for name in ("acme", "globex")
    }
    # The keys went to the workers with the tasks, and Prefect stored none of them.
    stored = _stored_by_prefect(run.run_id)
    assert "land cdrs of acme" in stored and not any(key in stored for key in (*SERVED, REJECTED))

    # Synced again: the lake does not change by a byte.
    before = _lake_files(data)
    code, again, err = run_cdr(capsys, monkeypatch, *_sync_args(data))
    assert code == 1 and "  task runner: dask, 2 workers" in again, err
    assert _lake_files(data) == before
    assert read_sync_runs(lake)[0].changed_days.keys() <= {"quarantine_cdrs", "quarantine_mdrs"}
    for name in ("acme", "globex"):
        assert_lake_is_the_export(lake.for_account(name), truths[ACCOUNTS[name][1]], quarantine_log=True)


def test_a_scheduler_without_workers_is_named_at_once_not_waited_on_in_silence(prefect_harness, tmp_path):
    # Its tasks wait for a worker (an adaptive cluster starts them on demand): the bar alone would sit at 0 for good.
    from distributed import LocalCluster

    from pipelines.flows.distributed import slice_dispatch

    async def join(address: str) -> None:
        settings = Settings(data_dir=tmp_path, task_runner="dask", dask_address=address)
        async with slice_dispatch(settings, "run-1", datetime(2026, 10, 5, tzinfo=UTC)) as dispatch:
            assert dispatch is not None

    # Prefect's logging setup may stop the pipeline's records short of pytest's handler: one of our own.
    warnings: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("pipelines.flows.distributed")
    logger.addHandler(handler)
    try:
        with LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None) as cluster:
            address = cluster.scheduler_address
            asyncio.run(join(address))
            assert warnings == [
                f"the Dask scheduler at {address} has no workers: the slices wait until one joins (start them with "
                f"`dask worker {address}`; Ctrl-C stops the sync)"
            ]
            cluster.scale(1)
            cluster.wait_for_workers(1)
            asyncio.run(join(address))
            assert len(warnings) == 1
    finally:
        logger.removeHandler(handler)


def test_a_run_whose_scheduler_is_out_of_reach_is_logged_failed(prefect_harness, tmp_path, monkeypatch):
    # As a run whose API is out of reach: `cdr status` must not show the last good run as the last sync.
    from pipelines.flows.distributed import ClusterUnavailable
    from pipelines.flows.sync import sync_flow

    monkeypatch.setenv("OPENTACT_API_KEY", "never-sent")  # the run stops before any request
    monkeypatch.setenv("CDR_TASK_RUNNER", "dask")
    data = tmp_path / "data"
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound, not listening: a connection to it is refused
        monkeypatch.setenv("CDR_DASK_ADDRESS", f"tcp://127.0.0.1:{bound.getsockname()[1]}")
        with pytest.raises(ClusterUnavailable) as caught:
            asyncio.run(sync_flow(start="2026-10-01", end="2026-10-02", now="2026-10-05T00:00:00Z", data_dir=str(data)))
    (run,) = read_sync_runs(Lake(data))
    assert (run.status, run.error, run.types) == ("failed", str(caught.value), ("cdrs", "mdrs"))
    assert run.started_at <= run.finished_at
