"""End to end under Prefect: one smoke run per flow on the sandbox, artifacts, and secrecy."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pytest

from sandbox.testing import running_sandbox

KEY = "e2e-secret-key-7d1c"
NOW = "2026-10-06T00:00:00Z"
WORLD = dict(seed=11, start="2026-10-01", calls_per_day=300, messages_per_day=150, rerate_rate=0.05)


@pytest.fixture(scope="module")
def sandbox_url():
    with running_sandbox(**WORLD, api_key=KEY, now=NOW, fail_rate=0.05, drop_rate=0.02, malformed_rate=0.01) as url:
        yield url


@pytest.fixture()
def api_env(monkeypatch, sandbox_url):
    monkeypatch.setenv("OPENTACT_BASE_URL", sandbox_url)
    monkeypatch.setenv("OPENTACT_API_KEY", KEY)
    monkeypatch.setenv("OPENTACT_BACKOFF_BASE_SECS", "0.01")
    monkeypatch.setenv("OPENTACT_SETTLE_LAG_SECS", "0")


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    from sandbox.export import export_window
    from sandbox.world import World
    from pipelines.dates import parse_datetime

    out = tmp_path_factory.mktemp("export")
    world = World(
        seed=WORLD["seed"], start=parse_datetime(WORLD["start"]).date(), calls_per_day=WORLD["calls_per_day"],
        messages_per_day=WORLD["messages_per_day"], rerate_rate=WORLD["rerate_rate"], malformed_rate=0.01,
    )
    export_window(world, parse_datetime(NOW), parse_datetime("2026-10-01"), parse_datetime(NOW), out)
    return out


def _records(path: Path) -> dict[str, Decimal]:
    return {r["id"]: Decimal(r["cost"]) for r in map(orjson.loads, path.read_bytes().splitlines())}


def _rules(data_dir: Path) -> set[str]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return {rule for (rule,) in con.execute("select distinct rule from rpt_alerts").fetchall()}


def _lake(data_dir: Path, kind: str) -> pl.DataFrame:
    return pl.read_parquet(data_dir / "lake" / kind / "*" / "*" / "*.parquet")


def test_sync_build_and_dashboards_flows_land_exactly_the_export(prefect_harness, api_env, truth, tmp_path):
    from pipelines.flows.build import build_flow
    from pipelines.flows.sync import sync_flow

    data_dir = tmp_path / "data"
    result = asyncio.run(sync_flow(start="2026-10-01", end="2026-10-06", now=NOW, data_dir=str(data_dir)))

    for kind in ("cdrs", "mdrs"):
        expected = _records(truth / f"{kind}.jsonl")
        lake = _lake(data_dir, kind)
        assert lake["id"].n_unique() == lake.height
        assert dict(zip(lake["id"], lake["cost"])) == expected
        assert result["types"][kind]["new"] == len(expected)
    quarantined = sum(r["types"][k]["quarantined"] for r in [result] for k in ("cdrs", "mdrs"))
    assert quarantined == len((truth / "malformed.jsonl").read_bytes().splitlines())

    again = asyncio.run(sync_flow(start="2026-10-01", end="2026-10-06", now=NOW, data_dir=str(data_dir)))
    assert {k: (v["new"], v["updated"]) for k, v in again["types"].items()} == {"cdrs": (0, 0), "mdrs": (0, 0)}

    built = build_flow(data_dir=str(data_dir))
    assert Path(built["warehouse"]).exists() and built["models"] > 0 and built["tests"] > 0
    assert Path(built["site"]).name == "index.html" and Path(built["site"]).exists()
    assert built["how"] == "full build: first build"
    assert build_flow(data_dir=str(data_dir), dashboards=False)["how"] == "incremental build: 0 changed day(s) rebuilt"
    assert build_flow(data_dir=str(data_dir), dashboards=False, full=True)["how"] == "full build: asked for (--full)"
    # The alert rules judge as of the build's clock: by the real one the data is stale, as of the
    # sync's it is not (the demo builds its pinned world so)
    assert _rules(data_dir) >= {"sync_stale"}
    build_flow(data_dir=str(data_dir), dashboards=False, now=NOW)
    assert "sync_stale" not in _rules(data_dir)

    from pipelines.flows.finance import monthly_finance

    # Synced to October 6th only: a partial month, exported only when allowed.
    exported = monthly_finance(month="2026-10", data_dir=str(data_dir), build=False, allow_partial=True)
    assert exported["partial"] == "partial: covers 2026-10-01 to 2026-10-05"
    csv_lines = Path(exported["files"][0]).read_text().splitlines()
    assert csv_lines[0] == "month,product,direction,currency,records,billed_duration_secs,parts,cost"
    voice = sum(Decimal(line.split(",")[-1]) for line in csv_lines[1:] if ",voice," in line)
    assert voice == sum(_records(truth / "cdrs.jsonl").values())


def test_nightly_flow_continues_from_the_high_water_mark(prefect_harness, api_env, tmp_path):
    from pipelines.flows.nightly import nightly_sync
    from pipelines.flows.sync import sync_flow

    data_dir = str(tmp_path / "data")
    asyncio.run(sync_flow(date_range="last_2_days", now="2026-10-04T00:00:00Z", data_dir=data_dir, types=["cdrs"]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDR_LOOKBACK_DAYS", "1")
        result = asyncio.run(nightly_sync(types=["cdrs"], data_dir=data_dir, dashboards=False))
    window = result["sync"]["types"]["cdrs"]["window"]
    # The sandbox clock is pinned at NOW; the run's own clock is the real one, so the window
    # starts one day (the lookback) before the last high-water mark.
    assert window[0] == "2026-10-03T00:00:00.000Z"
    assert result["build"]["models"] > 0


def test_nightly_flow_builds_and_alerts_on_the_accounts_that_landed_then_fails_naming_the_one_that_did_not(
    prefect_harness, api_env, monkeypatch, tmp_path
):
    from pipelines.flows.nightly import nightly_sync
    from pipelines.flows.sync import AccountsIncomplete, sync_flow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACME_KEY", KEY)
    (tmp_path / "accounts.toml").write_text(
        '[accounts.acme]\napi_key_env = "ACME_KEY"\n[accounts.revoked]\napi_key_env = "REVOKED_KEY"\n'
    )
    data_dir = tmp_path / "data"
    asyncio.run(sync_flow(
        date_range="last_2_days", now="2026-10-04T00:00:00Z", data_dir=str(data_dir), types=["cdrs"], accounts=["acme"]
    ))
    with pytest.raises(AccountsIncomplete, match=r"1 of 2 accounts failed; acme landed: revoked: "):
        asyncio.run(nightly_sync(types=["cdrs"], data_dir=str(data_dir), dashboards=False))
    assert (data_dir / "warehouse.duckdb").exists()  # acme's records were built, its alerts read


def test_nightly_flow_with_its_only_key_rejected_still_builds_and_alerts_then_fails(
    prefect_harness, api_env, monkeypatch, tmp_path
):
    from pipelines.flows.nightly import nightly_sync
    from pipelines.flows.sync import sync_flow
    from pipelines.opentact.client import ApiKeyRejected

    data_dir = tmp_path / "data"
    asyncio.run(sync_flow(date_range="last_2_days", now="2026-10-04T00:00:00Z", data_dir=str(data_dir), types=["cdrs"]))
    monkeypatch.setenv("OPENTACT_API_KEY", "revoked-key-0000")
    with pytest.raises(ApiKeyRejected, match=r"API key rejected \(401\)"):
        asyncio.run(nightly_sync(types=["cdrs"], data_dir=str(data_dir), dashboards=False))
    # what landed before was built, and its alerts (a stale sync's among them) read
    assert (data_dir / "warehouse.duckdb").exists()


def test_no_secret_reaches_prefect_artifacts_or_parameters(prefect_harness, api_env, tmp_path):
    from prefect.client.orchestration import get_client

    from pipelines.flows.sync import sync_flow

    asyncio.run(sync_flow(date_range="yesterday", now="2026-10-03T00:00:00Z", data_dir=str(tmp_path / "d")))

    async def everything() -> str:
        async with get_client() as client:
            runs = await client.read_flow_runs()
            artifacts = await client.read_artifacts()
        return json.dumps(
            [r.model_dump(mode="json") for r in runs] + [a.model_dump(mode="json") for a in artifacts]
        )

    stored = asyncio.run(everything())
    assert "cdr-sync-report" in stored  # the artifact exists, so the scan below can fail
    assert KEY not in stored


def test_cdr_sync_with_a_rejected_key_fails_in_one_line_without_prefects_traceback(
    prefect_harness, api_env, monkeypatch, tmp_path, capfd
):
    from pipelines import console
    from pipelines.console import run_sync
    from pipelines.opentact.client import ApiKeyRejected

    async def passed(request: object) -> None:
        """As if the key was revoked after the check before Prefect started: the flow meets the 401."""

    monkeypatch.setattr(console, "check_api_key", passed)
    monkeypatch.setenv("OPENTACT_API_KEY", "not-the-key")
    with pytest.raises(ApiKeyRejected, match=r"API key rejected \(401\)"):
        run_sync(date_range="yesterday", now=NOW, types="cdrs", data_dir=tmp_path / "data")
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Finished in state Failed" not in err, err
    assert "not-the-key" not in err


def test_the_sync_flow_moves_its_callers_progress_callback(prefect_harness, api_env, tmp_path):
    from pipelines.flows.sync import sync_flow

    ticks = []
    result = asyncio.run(
        sync_flow(date_range="yesterday", now=NOW, data_dir=str(tmp_path / "d"), types=["cdrs"], progress=ticks.append)
    )
    assert ticks[-1].slices_done == ticks[-1].slices_total == 1
    assert ticks[-1].records == result["records"] > 0
