"""A distributed sync's folding, without a cluster: slices landed elsewhere and handed back as values
make the same lake, report and progress as a sync in one process; shares never split a UTC day."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.accounts import load_accounts
from pipelines.dates import Window
from pipelines.flows.distributed import PROBE_SECS, ClusterUnavailable, shares, slice_dispatch
from pipelines.lake import AccountLake, Lake
from pipelines.opentact import api
from pipelines.settings import Settings
from pipelines.sync import AccountsReport, Dispatch, SliceOutcome, SyncClient, SyncProgress, land_slices, sync_accounts
from tests.test_sync import assert_lake_is_the_export
from tests.test_sync_accounts import (  # noqa: F401 - fixtures
    ACCOUNTS,
    WINDOW,
    accounts_env,
    sandbox,
    truths,
)

NOW = datetime(2026, 10, 5, tzinfo=UTC)


def _elsewhere(settings: Settings, run_id: str, handed: list[list[Window]]) -> Dispatch:
    """A dispatch that lands each share as a worker's task does, in this process, and hands the outcomes back."""

    async def dispatch(
        lake: AccountLake, client: SyncClient, kind: api.RecordType, slices: list[Window]
    ) -> AsyncIterator[SliceOutcome]:
        for share in shares(slices, 2):
            handed.append(share)
            for outcome in await land_slices(lake, client, kind, share, run_id=run_id, now=NOW, settings=settings):
                yield outcome

    return dispatch


def _outcomes(report: AccountsReport) -> list[tuple]:
    return [
        (a.account, a.error, None if a.report is None else (a.report.kinds, a.report.failures)) for a in report.accounts
    ]


def test_slices_handed_back_fold_into_the_report_and_lake_of_a_sync_in_one_process(accounts_env, truths, tmp_path, monkeypatch):
    # Windows of more than a page are planned by UTC day, not read whole: several slices to hand out.
    monkeypatch.setenv("OPENTACT_SLICE_MAX_PAGES", "1")
    kinds = list(api.RECORD_TYPES)
    here_settings, there_settings = Settings(data_dir=tmp_path / "here"), Settings(data_dir=tmp_path / "there")
    accounts = load_accounts(here_settings).accounts
    here = asyncio.run(sync_accounts(kinds, WINDOW, here_settings, accounts, NOW, "run-1"))
    handed: list[list[Window]] = []
    ticks: list[SyncProgress] = []
    there = asyncio.run(sync_accounts(
        kinds, WINDOW, there_settings, accounts, NOW, "run-1", ticks.append,
        dispatch=_elsewhere(there_settings, "run-1", handed),
    ))
    assert _outcomes(there) == _outcomes(here)
    assert [a.account for a in there.failed] == ["initech"] and "401" in (there.failed[0].cause or "")
    for name in ("acme", "globex"):
        assert_lake_is_the_export(Lake(tmp_path / "there").for_account(name), truths[ACCOUNTS[name][1]])
    # Each good account's record types went out in shares (3 days: 2 + 1); the bar moved as they came back.
    assert sum(len(share) for share in handed) >= 12 and max(len(share) for share in handed) == 2
    done = [t for t in ticks if t.slices_done == 12]
    assert done and ticks[-1].records == there.records


def _day(day: int, start_hour: int = 0, end_hour: int = 24) -> Window:
    midnight = datetime(2026, 10, day, tzinfo=UTC)
    return Window(midnight + timedelta(hours=start_hour), midnight + timedelta(hours=end_hour))


def test_shares_keep_the_order_and_never_split_a_utc_day():
    days = [_day(d) for d in range(1, 6)]
    assert shares(days, 2) == [days[0:2], days[2:4], days[4:5]]
    assert shares(list(reversed(days)), 5) == [days]
    # Two slices of one day (read hour by hour, or a resumed run's part) always go together.
    split = [_day(1), _day(2, 0, 12), _day(2, 12), _day(3)]
    assert shares(split, 1) == [[split[0]], split[1:3], [split[3]]]
    assert shares([], 2) == []


class _Ended:
    """A Prefect future of a task on the cluster that has ended with `outcome` (raised if an exception)."""

    def __init__(self, outcome: object) -> None:
        self.wrapped_future = self
        self.outcome = outcome

    def add_done_callback(self, callback) -> None:
        callback(self)

    def cancel(self) -> None:
        pass

    def result(self, raise_on_failure: bool = True) -> object:
        if isinstance(self.outcome, RuntimeError):
            raise self.outcome
        return self.outcome


class _Cluster:
    """A task runner whose every task ends with the given outcome."""

    def __init__(self, outcome: object) -> None:
        self.outcome = outcome
        self.submitted: list[dict] = []

    def submit(self, task: object, parameters: dict) -> _Ended:
        self.submitted.append(parameters)
        return _Ended(self.outcome)


class _Client:
    config = "the account's client config"


def _handed_back(outcome: object, tmp_path) -> tuple[list[SliceOutcome], _Cluster]:
    from pipelines.flows.distributed import _DaskDispatch

    cluster = _Cluster(outcome)
    dispatch = _DaskDispatch(cluster, Settings(data_dir=tmp_path), "run-1", NOW, "http://127.0.0.1:1/api")
    lake = Lake(tmp_path).for_account("acme")

    async def collect() -> list[SliceOutcome]:
        return [o async for o in dispatch(lake, _Client(), "cdrs", [_day(1), _day(2), _day(3)])]

    return asyncio.run(collect()), cluster


def test_a_task_lost_on_the_cluster_fails_its_slices_in_one_line(tmp_path, caplog):
    # What a scheduler without the project installed says.
    lost = RuntimeError("Error during deserialization of the task graph. This frequently\noccurs if the Scheduler and "
                        "Client have different environments.")
    outcomes, cluster = _handed_back(lost, tmp_path)
    assert [share["slices"] for share in cluster.submitted] == [[_day(1), _day(2)], [_day(3)]]
    assert {share["config"] for share in cluster.submitted} == {"the account's client config"}
    assert sorted(o.slice.start for o in outcomes) == [_day(d).start for d in (1, 2, 3)]  # as tasks end
    causes = {o.failure.cause for o in outcomes if o.failure is not None}
    assert causes == {
        "its task on the Dask cluster failed: RuntimeError: Error during deserialization of the task graph. This frequently"
    }
    assert not any(o.failure.retryable for o in outcomes if o.failure is not None)
    assert caplog.text.count("on the Dask cluster failed") == 2  # once a task, with its traceback


def test_a_rejected_key_on_a_worker_stops_the_account_as_in_one_process(tmp_path):
    import pytest

    from pipelines.opentact.client import ApiKeyRejected

    with pytest.raises(ApiKeyRejected, match="401"):
        _handed_back(ApiKeyRejected("HTTP 401: the API key was rejected"), tmp_path)


def test_a_scheduler_address_nothing_listens_on_fails_at_once_in_one_line(tmp_path):
    # Dask retries a refused connection for its whole connect timeout before it says so.
    async def join(settings: Settings) -> None:
        async with slice_dispatch(settings, "run-1", NOW):
            pass

    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound, not listening: a connection to it is refused
        address = f"tcp://127.0.0.1:{bound.getsockname()[1]}"
        began = time.monotonic()
        with pytest.raises(ClusterUnavailable) as caught:
            asyncio.run(join(Settings(data_dir=tmp_path, task_runner="dask", dask_address=address)))
        took = time.monotonic() - began
    assert took < PROBE_SECS, f"took {took:.0f} s"
    message = str(caught.value)
    assert message.startswith(f"cannot reach the Dask scheduler at {address}: ConnectionRefusedError: ")
    assert "\n" not in message
