"""Reports, exports and alerts over a warehouse of two accounts: each account's as if it were alone, and
the combined statement exactly the sum of the accounts'.

Account `a` holds the hand-made small world, account `b` the sandbox lake of the finance tests: each is
also built alone (as the default account), so every account's statement has a reference.
"""

from __future__ import annotations

import csv
import zipfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.errors import UsageError
from pipelines.lake import Lake
from pipelines.models import build, warehouse_path
from pipelines.reports import ALL_ACCOUNTS, COMBINED_COLUMNS, FINANCE_COLUMNS, export_finance
from tests.fixtures.cli import run_cdr
from tests.fixtures.lake import small_world, write_lake
from tests.fixtures.landed import land
from tests.test_accounts_models import _under_accounts
from tests.test_reports import _sandbox_lake

ACCOUNTS = ("a", "b")
MONTHS = ("2026-01", "2026-02")
SYNCED = ("2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{account: its world built alone, "both": the two laid under accounts a and b and built together}."""
    root = tmp_path_factory.mktemp("accounts")
    alone = {"a": write_lake(root / "a", *small_world()), "b": root / "b"}
    _sandbox_lake(alone["b"])
    both = root / "both"
    for account, data_dir in alone.items():
        land(data_dir, *SYNCED)
        build(data_dir)
        _under_accounts(data_dir, both, (account,))
        land(both, *SYNCED, account=account)
    build(both)
    return alone | {"both": both}


def _export(data_dir: Path, month: str, out: Path, account: str | None = None):
    return export_finance(warehouse_path(data_dir), month, out, lake=Lake(data_dir), account=account)


def _sheet(path: Path) -> tuple[str, str]:
    """A workbook -> its sheet and strings (its properties hold the moment it was made)."""
    with zipfile.ZipFile(path) as book:
        return book.read("xl/worksheets/sheet1.xml").decode(), book.read("xl/sharedStrings.xml").decode()


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("month", MONTHS)
@pytest.mark.parametrize("account", ACCOUNTS)
def test_each_accounts_statement_is_its_statement_alone(worlds, tmp_path, account, month):
    alone = _export(worlds[account], month, tmp_path / "alone")
    one = _export(worlds["both"], month, tmp_path / "one", account=account)
    assert one.rows and one.rows == alone.rows and one.columns == FINANCE_COLUMNS
    name = f"finance_{month}.csv"
    assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes()
    assert _sheet(tmp_path / "one" / f"finance_{month}.xlsx") == _sheet(tmp_path / "alone" / f"finance_{month}.xlsx")
    assert one.totals() == alone.totals()


@pytest.mark.parametrize("month", MONTHS)
def test_the_combined_statement_has_account_first_and_totals_per_currency_summing_the_accounts(
    worlds, tmp_path, month
):
    combined = _export(worlds["both"], month, tmp_path / "all")
    assert combined.columns == COMBINED_COLUMNS and combined.accounts == ACCOUNTS
    rows = _read_csv(tmp_path / "all" / f"finance_{month}.csv")
    assert list(rows[0]) == list(COMBINED_COLUMNS)
    accounts = [row for row in rows if row["account"] != ALL_ACCOUNTS]
    totals = [row for row in rows if row["account"] == ALL_ACCOUNTS]
    # each account's rows, in order, are its statement alone with the account in front
    for account in ACCOUNTS:
        alone = _read_csv(_export(worlds[account], month, tmp_path / account).files[0])
        assert [row for row in accounts if row["account"] == account] == [{"account": account, **row} for row in alone]
    assert [row["account"] for row in accounts] == sorted(row["account"] for row in accounts)
    # one total row per currency, after every account's rows, equal to the sum of the accounts' totals to the cent
    expected: dict[str, list] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for account in ACCOUNTS:
        for row in _export(worlds[account], month, tmp_path / f"{account}-totals").rows:
            sums = expected[row[3]]
            for index, value in enumerate(row[4:]):
                sums[index] += value
    assert rows[-len(totals):] == totals and len({row["currency"] for row in totals}) == len(totals)
    assert {
        row["currency"]: [int(row["records"]), int(row["billed_duration_secs"]), int(row["parts"]), Decimal(row["cost"])]
        for row in totals
    } == dict(expected)
    assert all((row["month"], row["product"], row["direction"]) == (month, "", "") for row in totals)
    assert combined.totals() == {currency: sums[3] for currency, sums in expected.items()}
    # the workbook holds the same rows, the totals among its strings
    _, strings = _sheet(tmp_path / "all" / f"finance_{month}.xlsx")
    assert f">{ALL_ACCOUNTS}<" in strings and ">account<" in strings


def test_cli_report_finance_names_the_accounts_and_refuses_an_unknown_one(worlds, tmp_path, capsys, monkeypatch):
    both = str(worlds["both"])
    code, out, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", "2026-02", "--data-dir", both, "--out", str(tmp_path)
    )
    assert code == 0, err
    assert " of 2 accounts, total cost EUR " in out
    code, out, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", "2026-02", "--account", "c", "--data-dir", both,
        "--out", str(tmp_path / "c"),
    )
    assert (code, out) == (2, "")
    assert err.splitlines() == ["error: --account 'c' is not an account of this warehouse: it holds a, b"]
    assert not (tmp_path / "c").exists()
    code, out, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", "2026-02", "--account", "b", "--data-dir", both,
        "--out", str(tmp_path / "b"),
    )
    assert code == 0, err
    assert "accounts" not in out


def test_a_month_one_account_has_not_synced_names_it_in_the_sync_hint(worlds, tmp_path_factory, tmp_path):
    both = tmp_path_factory.mktemp("gappy")
    for account in ACCOUNTS:
        _under_accounts(worlds[account], both, (account,))
    land(both, *SYNCED, account="a")
    land(both, "2026-01-01T00:00:00Z", "2026-01-20T00:00:00Z", account="b")
    build(both)
    with pytest.raises(UsageError) as caught:
        _export(both, "2026-01", tmp_path)
    assert "sync them (cdr sync --account b --start 2026-01-20 --end 2026-02-01 --tz UTC)" in str(caught.value)
    assert _export(both, "2026-01", tmp_path, account="a").partial == ""
    with pytest.raises(UsageError, match="missing 2026-01-20..2026-01-31"):
        _export(both, "2026-01", tmp_path, account="b")


def test_cli_alerts_account_filters_and_the_table_names_the_account(worlds, capsys, monkeypatch):
    both = str(worlds["both"])
    listing = ("alerts", "--start", "2026-01-01", "--end", "2030-01-01", "--data-dir", both)
    code, out, err = run_cdr(capsys, monkeypatch, *listing, "--format", "csv")
    assert code == 0, err
    every = list(csv.DictReader(out.splitlines()))
    assert {row["account"] for row in every} == set(ACCOUNTS)
    for account in ACCOUNTS:
        code, out, err = run_cdr(capsys, monkeypatch, *listing, "--format", "csv", "--account", account)
        assert code == 0, err
        assert list(csv.DictReader(out.splitlines())) == [row for row in every if row["account"] == account]
    code, out, _ = run_cdr(capsys, monkeypatch, *listing)
    assert out.splitlines()[0].split()[0] == "account"
    code, out, _ = run_cdr(capsys, monkeypatch, *listing, "--account", "a")
    assert "account" not in out.splitlines()[0]
    code, out, err = run_cdr(capsys, monkeypatch, *listing, "--account", "zz")
    assert (code, out) == (2, "")
    assert err.splitlines() == ["error: --account 'zz' is not an account of this warehouse: it holds a, b"]
