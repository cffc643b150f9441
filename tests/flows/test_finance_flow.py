"""The monthly finance flow: which month it exports, and what its artifact says of a partial one."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipelines.errors import UsageError
from pipelines.models import build
from tests.fixtures.landed import land
from tests.fixtures.lake import small_world, write_lake


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small world (January and February 2026) built; January synced whole, February to the 20th."""
    data_dir = write_lake(tmp_path_factory.mktemp("world"), *small_world())
    # Without the usage of a message on January 29th no partition holds (reconciliation's missing_in_lake),
    # which would leave January short of a day.
    shutil.rmtree(data_dir / "lake" / "usage_mdrs" / "account=default" / "date=2026-01-29")
    land(data_dir, "2026-01-01T00:00:00Z", "2026-02-21T00:00:00Z")
    build(data_dir)
    return data_dir


def test_outside_a_run_the_scheduled_time_is_the_clock():
    from pipelines.flows.finance import scheduled_time

    before = datetime.now(timezone.utc)
    assert before <= scheduled_time() <= datetime.now(timezone.utc)


def _run_scheduled(scheduled: str, **parameters: object) -> dict:
    """Run monthly_finance as a worker runs a deployment's run: one created Scheduled for `scheduled`."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.states import Scheduled

    from pipelines.dates import parse_datetime
    from pipelines.flows.finance import monthly_finance

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(
            monthly_finance, parameters=parameters, state=Scheduled(scheduled_time=parse_datetime(scheduled))
        )
    return run_flow(monthly_finance, flow_run=run, parameters=parameters)


def test_a_late_run_exports_the_month_before_its_scheduled_start(prefect_harness, world_dir, tmp_path):
    from prefect.client.orchestration import get_client

    common = {"data_dir": str(world_dir), "out_dir": str(tmp_path), "build": False}
    # Scheduled for February 1st, run (by the wall clock) months later: January, complete.
    result = _run_scheduled("2026-02-01T06:00:00Z", **common)
    assert (result["month"], result["partial"], result["totals"]) == ("2026-01", "", {"USD": "0.032000000"})
    assert result["quarantined"] == [] and result["left_out"] == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finance_2026-01.csv", "finance_2026-01.xlsx"]

    # February is synced to the 20th only: refused, then exported as partial when allowed.
    with pytest.raises(UsageError, match=r"^--month 2026-02 is not fully synced: missing 2026-02-21\.\.2026-02-28 "):
        _run_scheduled("2026-03-01T06:00:00Z", **common)
    result = _run_scheduled("2026-03-01T06:00:00Z", **common, allow_partial=True)
    assert (result["month"], result["partial"]) == ("2026-02", "partial: covers 2026-02-01 to 2026-02-20")

    with get_client(sync_client=True) as client:
        artifacts = [a for a in client.read_artifacts() if a.key == "cdr-finance-statement"]
    latest = max(artifacts, key=lambda a: a.created)
    assert latest.type == "table"
    assert latest.description == (
        "Finance statement 2026-02: total cost EUR 0.049500000; USD 0.001222000 "
        "(partial: covers 2026-02-01 to 2026-02-20)"
    )
    table = json.loads(latest.data)
    assert len(table) == 5 and table[0] == {
        "month": "2026-02", "product": "mms", "direction": "outbound", "currency": "EUR", "records": 1,
        "billed_duration_secs": 0, "parts": 1, "cost": "0.020000000",
    }


def test_a_run_says_what_the_quarantine_took_out_of_the_statement(prefect_harness, world_dir, tmp_path):
    from prefect.client.orchestration import get_client

    from pipelines.accounts import DEFAULT_ACCOUNT
    from pipelines.lake import Lake
    from pipelines.land import quarantine
    from pipelines.opentact.records import Rejected
    from tests.test_reconciliation import day_slice, raw_call

    data_dir = shutil.copytree(world_dir, tmp_path / "data")
    raw = raw_call("set-aside", "2026-01-20T12:00:00.000Z", 60, "0.01")
    quarantine(Lake(data_dir).for_account(DEFAULT_ACCOUNT), "cdrs", "run-q", [
        Rejected("bad cld", raw, "cdrs", day_slice("2026-01-20"), 1)
    ])
    result = _run_scheduled("2026-02-01T06:00:00Z", data_dir=str(data_dir), out_dir=str(tmp_path / "out"))
    assert len(result["quarantined"]) >= 3
    assert result["quarantined"][0].startswith("quarantined: 1 record of 2026-01 set aside by the sync as malformed")
    assert result["quarantined"][-1].startswith("the records: cdr sql ")

    with get_client(sync_client=True) as client:
        artifacts = [a for a in client.read_artifacts() if a.key == "cdr-finance-statement"]
    latest = max(artifacts, key=lambda a: a.created)
    assert latest.description == (
        "Finance statement 2026-01: total cost USD 0.032000000" + "".join(f"\n\n{line}" for line in result["quarantined"])
    )


def test_a_run_says_which_retired_account_its_statement_leaves_out(prefect_harness, world_dir, tmp_path, monkeypatch):
    from tests.test_accounts_models import _under_accounts

    # accounts a and b synced January; b then retired (removed from the file), holding nothing of February
    data_dir = _under_accounts(world_dir, tmp_path / "data", ("a", "b"))
    for folder in data_dir.glob("*/*/account=b/date=2026-02-*"):
        shutil.rmtree(folder)
    land(data_dir, "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z", account="a")
    land(data_dir, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", account="b")
    listed = tmp_path / "accounts.toml"
    listed.write_text('[accounts.a]\napi_key_env = "A_KEY"\n')
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(listed))
    result = _run_scheduled("2026-03-01T06:00:00Z", data_dir=str(data_dir), out_dir=str(tmp_path / "out"))
    assert (result["month"], result["partial"]) == ("2026-02", "")
    assert result["left_out"] == f"left out: b (not in {listed}; holds nothing of 2026-02)"
