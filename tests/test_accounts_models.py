"""Models over a lake of several accounts: every row carries its account, and two accounts' rows never merge.

Each world is built once alone (the layout before accounts: account `default`) and once laid
under two accounts, `a` and `b`, holding the very same files (the same ids in both). Each
account's rows of every model must be the single build's rows exactly.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.lake import LAKE_DIR, QUARANTINE_DIR, Lake
from pipelines.models import build, warehouse_path
from pipelines.models.sources import quarantine_source_sql, source_sql
from sandbox.anomalies import parse_anomalies
from sandbox.world import World
from tests.fixtures.lake import small_world, write_lake
from tests.fixtures.sandbox_lake import write_world as write_sandbox_world
from tests.test_reconciliation import write_world as write_reconciliation_world

ACCOUNTS = ("a", "b")
# the two warehouses, attached side by side
_SINGLE, _ACCOUNTS = "single", "accounts"
# A month of sandbox traffic with incidents the alert rules report, so alerts are compared too.
SANDBOX_START = date(2026, 1, 5)
SANDBOX_DAYS = 35
SANDBOX_ANOMALIES = (
    '[{"kind": "irsf", "start": "2026-02-04T20:00Z", "end": "2026-02-05T04:00Z", "country_code": "LV", "calls": 60},'
    ' {"kind": "short_call_burst", "start": "2026-02-06T10:00Z", "end": "2026-02-06T11:00Z", "country_code": "GB",'
    ' "calls": 300, "max_secs": 6}]'
)


def _small(data_dir: Path) -> Path:
    # re-rated records with their older versions in the lake, usage, a call across midnight
    return write_lake(data_dir, *small_world())


def _sandbox(data_dir: Path) -> Path:
    world = World(
        seed=21, start=SANDBOX_START, calls_per_day=600, messages_per_day=600,
        anomalies=parse_anomalies(SANDBOX_ANOMALIES, "test"),
    )
    return write_sandbox_world(world, SANDBOX_START, SANDBOX_DAYS, data_dir)


WORLDS = {"small": _small, "reconciliation": write_reconciliation_world, "sandbox": _sandbox}


def _under_accounts(single: Path, target: Path, accounts: tuple[str, ...] = ACCOUNTS) -> Path:
    """A data dir of one account (`default`) -> the same files laid under each of `accounts` in `target`."""
    for top, suffix in ((LAKE_DIR, "*.parquet"), (QUARANTINE_DIR, "*.jsonl")):
        for path in sorted((single / top).rglob(suffix)):
            # <top>/<dataset or kind>/account=default/date=.../<file>
            name, folder, *rest = path.relative_to(single / top).parts
            assert folder == f"account={DEFAULT_ACCOUNT}", path
            for account in accounts:
                copy = target / top / name / f"account={account}" / Path(*rest)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, copy)
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture(scope="module", params=sorted(WORLDS))
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A world built alone and under two accounts -> (the single data dir, the two-account data dir)."""
    root = tmp_path_factory.mktemp(request.param)
    single = WORLDS[request.param](root / "single")
    # one clock for both builds: the rules judging staleness read it
    now = datetime.now(UTC)
    build(single, now=now)
    accounts = _under_accounts(single, root / "accounts")
    build(accounts, now=now)
    return single, accounts


def _relations(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """A warehouse -> each of its tables and views and its column names."""
    columns: dict[str, list[str]] = {}
    for table, column in con.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'main' order by table_name, ordinal_position"
    ).fetchall():
        columns.setdefault(table, []).append(column)
    return columns


@pytest.mark.slow
def test_each_accounts_rows_of_every_model_are_the_single_accounts(built):
    single, accounts = built
    with (
        duckdb.connect(str(warehouse_path(single)), read_only=True) as one,
        duckdb.connect(str(warehouse_path(accounts)), read_only=True) as two,
        duckdb.connect() as both,
    ):
        both.execute(f"attach '{warehouse_path(single)}' as {_SINGLE} (read_only)")
        both.execute(f"attach '{warehouse_path(accounts)}' as {_ACCOUNTS} (read_only)")
        relations = _relations(one)
        assert relations == _relations(two)
        keyed = sorted(name for name, columns in relations.items() if "account" in columns)
        # every model but the build's own one-row summaries and censuses
        assert sorted(set(relations) - set(keyed)) == [
            "alert_config", "alert_thresholds", "build_manifest", "rpt_build_info", "seed_high_risk_destinations",
            "stg_cdrs_day_spans", "stg_cdrs_id_census", "stg_cdrs_id_index", "stg_mdrs_id_census", "stg_mdrs_id_index",
        ]
        compared = 0
        for name in keyed:
            columns = relations[name]
            assert columns[0] == "account", name
            # an alert's key tells the accounts apart: it is compared below
            shown = ", ".join(f'"{c}"' for c in columns[1:] if c != "alert_key")
            assert one.execute(f"select distinct account from {name}").fetchall() in ([], [(DEFAULT_ACCOUNT,)]), name
            assert {row[0] for row in two.execute(f"select distinct account from {name}").fetchall()} <= set(ACCOUNTS)
            for account in ACCOUNTS:
                # the rows as multisets, both ways, compared by DuckDB
                single_rows = f"select {shown} from {_SINGLE}.{name}"
                account_rows = f"select {shown} from {_ACCOUNTS}.{name} where account = $account"
                differing = both.execute(
                    f"({single_rows} except all {account_rows}) union all ({account_rows} except all {single_rows}) "
                    "limit 5",
                    {"account": account},
                ).fetchall()
                assert differing == [], (name, account, differing)
            compared += one.execute(f"select count(*) from {name}").fetchone()[0]
        assert compared > 0

        keys = {
            account: {k for (k,) in two.execute("select alert_key from rpt_alerts where account = ?", [account]).fetchall()}
            for account in ACCOUNTS
        }
        single_keys = {k for (k,) in one.execute("select alert_key from rpt_alerts").fetchall()}
        assert len(keys["a"]) == len(keys["b"]) == len(single_keys)
        assert not keys["a"] & keys["b"] and not keys["a"] & single_keys

        # the same ids in two accounts are two records each, none a repeat of the other
        for census in ("stg_cdrs_id_census", "stg_mdrs_id_census"):
            totals = f"select sum(records), sum(distinct_id_hashes), sum(len(repeated_id_hashes)) from {census}"
            records, distinct, repeated = one.execute(totals).fetchone()
            doubled = two.execute(totals).fetchone()
            assert doubled == (2 * records, 2 * distinct, 2 * repeated)
        calls, messages = one.execute("select calls, messages from rpt_build_info").fetchone()
        assert two.execute("select calls, messages from rpt_build_info").fetchone() == (2 * calls, 2 * messages)


@pytest.mark.parametrize("built", ["sandbox"], indirect=True)
def test_the_sandbox_world_raises_alerts_in_each_account(built):
    # the sandbox world is the one with incidents
    _, accounts = built
    with duckdb.connect(str(warehouse_path(accounts)), read_only=True) as two:
        rules = two.execute(
            "select account, list(distinct rule order by rule) from rpt_alerts group by all order by 1"
        ).fetchall()
    assert [account for account, _ in rules] == list(ACCOUNTS)
    assert {"high_risk_destination", "short_call_burst", "sync_stale"} <= set(rules[0][1]) and rules[0][1] == rules[1][1]


def test_the_source_views_read_the_account_from_its_folder(tmp_path):
    single = write_reconciliation_world(tmp_path / "single")
    mixed = _under_accounts(single, tmp_path / "mixed")
    # the default account's cdrs and quarantined mdrs beside the two accounts
    shutil.copytree(single / LAKE_DIR / "cdrs", mixed / LAKE_DIR / "cdrs", dirs_exist_ok=True)
    shutil.copytree(single / QUARANTINE_DIR / "mdrs", mixed / QUARANTINE_DIR / "mdrs", dirs_exist_ok=True)
    with duckdb.connect() as con:
        for dataset in ("cdrs", "mdrs", "usage_cdrs"):
            old, _ = source_sql(single, dataset)
            new, files = source_sql(mixed, dataset)
            alone = con.execute(f"select count(*) from ({old})").fetchone()[0]
            counts = dict(con.execute(f"select account, count(*) from ({new}) group by all").fetchall())
            expected = {account: alone for account in ACCOUNTS}
            if dataset == "cdrs":
                expected[DEFAULT_ACCOUNT] = alone
            assert alone > 0 and counts == expected, dataset
            assert files == len(Lake(mixed).partition_files(dataset))
            assert con.execute(f"select count(*) from ({new}) where account is null").fetchone() == (0,)
            # an incremental window's view reads its days' files of every account
            day = Lake.partition_day(Lake(single).partition_files(dataset)[0])
            window, _ = source_sql(mixed, dataset, {day})
            alone_day = con.execute(f"select count(*) from ({source_sql(single, dataset, {day})[0]})").fetchone()[0]
            assert dict(con.execute(f"select account, count(*) from ({window}) group by all").fetchall()) == {
                account: alone_day for account in expected
            }
        old, _ = quarantine_source_sql(single)
        new, _ = quarantine_source_sql(mixed)
        alone = dict(con.execute(f"select kind, count(*) from ({old}) group by all").fetchall())
        rows = con.execute(f"select account, kind, count(*) from ({new}) group by all").fetchall()
        counts = {(account, kind): count for account, kind, count in rows}
        expected = {(account, kind): count for account in ACCOUNTS for kind, count in alone.items()}
        assert counts == expected | {(DEFAULT_ACCOUNT, "mdrs"): alone["mdrs"]}
        assert "account" == con.execute(f"select column_name from (describe {new})").fetchone()[0]
