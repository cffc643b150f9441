"""Reports, exports and alerts over a warehouse of two accounts: each account's as if it were alone, and
the combined statement exactly the sum of the accounts'.

Account `a` holds the hand-made small world, account `b` the sandbox lake of the finance tests: each is
also built alone (as the default account), so every account's statement has a reference.
"""

from __future__ import annotations

import csv
import re
import shutil
import zipfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from dashboards.accounts import sum_month_over_month
from dashboards.formatting import format_count, format_money
from dashboards.pages import MONTH_OVER_MONTH, PAGES
from dashboards.render import ACCOUNTS_DIR, INDEX, load_frames, render_site
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.errors import UsageError
from pipelines.lake import Lake
from pipelines.models import build, warehouse_path
from pipelines.reports import ALL_ACCOUNTS, COMBINED_COLUMNS, FINANCE_COLUMNS, export_finance
from pipelines.runs import check_sync
from tests.dashboards.dashboard_fixtures import NOW
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


def _export(data_dir: Path, month: str, out: Path, account: str | None = None, allow_partial: bool = False):
    return export_finance(
        warehouse_path(data_dir), month, out, lake=Lake(data_dir), account=account, allow_partial=allow_partial
    )


# Account a's January lacks a message the API counted on the 29th (the small world's missing_in_lake):
# statements are compared as partial ones there.
PARTIAL = {"2026-01": "partial: covers 2026-01-01 to 2026-01-31, missing 2026-01-29", "2026-02": ""}
# The combined statement names the account short of days: b's rows cover the whole month.
COMBINED_PARTIAL = {"2026-01": "partial: a covers 2026-01-01 to 2026-01-31, missing 2026-01-29", "2026-02": ""}


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
    alone = _export(worlds[account], month, tmp_path / "alone", allow_partial=True)
    one = _export(worlds["both"], month, tmp_path / "one", account=account, allow_partial=True)
    assert one.rows and one.rows == alone.rows and one.columns == FINANCE_COLUMNS
    assert one.partial == alone.partial == (PARTIAL[month] if account == "a" else "")
    # the account's own file, named after it; the same bytes as the statement of its world alone
    named, alone_name = f"finance_{month}_{account}", f"finance_{month}"
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [f"{named}.csv", f"{named}.xlsx"]
    assert (tmp_path / "one" / f"{named}.csv").read_bytes() == (tmp_path / "alone" / f"{alone_name}.csv").read_bytes()
    assert _sheet(tmp_path / "one" / f"{named}.xlsx") == _sheet(tmp_path / "alone" / f"{alone_name}.xlsx")
    assert one.totals() == alone.totals()


@pytest.mark.parametrize("month", MONTHS)
def test_the_combined_statement_has_account_first_and_totals_per_currency_summing_the_accounts(
    worlds, tmp_path, month
):
    combined = _export(worlds["both"], month, tmp_path / "all", allow_partial=True)
    assert combined.columns == COMBINED_COLUMNS and combined.accounts == ACCOUNTS and combined.partial == COMBINED_PARTIAL[month]
    rows = _read_csv(tmp_path / "all" / f"finance_{month}.csv")
    assert list(rows[0]) == list(COMBINED_COLUMNS)
    accounts = [row for row in rows if row["account"] != ALL_ACCOUNTS]
    totals = [row for row in rows if row["account"] == ALL_ACCOUNTS]
    # each account's rows, in order, are its statement alone with the account in front
    for account in ACCOUNTS:
        alone = _read_csv(_export(worlds[account], month, tmp_path / account, allow_partial=True).files[0])
        assert [row for row in accounts if row["account"] == account] == [{"account": account, **row} for row in alone]
    assert [row["account"] for row in accounts] == sorted(row["account"] for row in accounts)
    # one total row per currency, after every account's rows, equal to the sum of the accounts' totals to the cent
    expected: dict[str, list] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for account in ACCOUNTS:
        for row in _export(worlds[account], month, tmp_path / f"{account}-totals", allow_partial=True).rows:
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
    land(both, "2026-01-01T00:00:00Z", "2026-02-15T00:00:00Z", account="b")
    build(both)
    with pytest.raises(UsageError) as caught:
        _export(both, "2026-02", tmp_path)
    assert "sync them (cdr sync --account b --start 2026-02-15 --end 2026-03-01 --tz UTC)" in str(caught.value)
    assert _export(both, "2026-02", tmp_path, account="a").partial == ""
    with pytest.raises(UsageError, match="missing 2026-02-15..2026-02-28"):
        _export(both, "2026-02", tmp_path, account="b")


def test_the_default_account_among_others_is_named_in_the_sync_hint(worlds, tmp_path_factory, tmp_path):
    # A data dir synced before its accounts file holds `default` beside the file's accounts: a sync with no
    # --account syncs the file's accounts alone, so a hint without `--account default` never lands its days.
    both = tmp_path_factory.mktemp("migrated")
    _under_accounts(worlds["a"], both, ("a",))
    _under_accounts(worlds["b"], both, (DEFAULT_ACCOUNT,))
    land(both, *SYNCED, account="a")
    land(both, "2026-01-01T00:00:00Z", "2026-02-15T00:00:00Z", account=DEFAULT_ACCOUNT)
    build(both)
    with pytest.raises(UsageError) as caught:
        _export(both, "2026-02", tmp_path)
    assert "sync them (cdr sync --account default --start 2026-02-15 --end 2026-03-01 --tz UTC)" in str(caught.value)


# -- an account removed from the accounts file (churned): its data stays, later months go on without it -------


@pytest.fixture(scope="module")
def churned(worlds, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Accounts a and b both synced for January; b then churned: it holds nothing of February (its February
    partitions gone, its sync stopped at February's start), while a is synced through February."""
    data_dir = tmp_path_factory.mktemp("churned")
    for account in ACCOUNTS:
        _under_accounts(worlds[account], data_dir, (account,))
    for folder in data_dir.glob("*/*/account=b/date=2026-02-*"):
        shutil.rmtree(folder)
    land(data_dir, *SYNCED, account="a")
    land(data_dir, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", account="b")
    build(data_dir)
    return data_dir


def _accounts_file(folder: Path, *names: str) -> Path:
    path = folder / "accounts.toml"
    path.write_text("".join(f'[accounts.{name}]\napi_key_env = "{name.upper()}_KEY"\n' for name in names))
    return path


def _warehouse_sums(data_dir: Path, month: str, account: str) -> dict[str, list]:
    """Currency -> [records, billed seconds, parts, cost] of an account's month, as the warehouse holds them."""
    with duckdb.connect(str(warehouse_path(data_dir)), read_only=True) as con:
        rows = con.execute(
            "select currency, sum(records), sum(billed_duration_secs), sum(parts), sum(cost) "
            "from rpt_finance_monthly_statement where month = ? and account = ? group by currency",
            [month, account],
        ).fetchall()
    return {currency: [int(records), int(secs), int(parts), Decimal(cost)] for currency, records, secs, parts, cost in rows}


def test_a_month_an_unlisted_account_holds_nothing_of_is_stated_without_it(churned, tmp_path, capsys, monkeypatch):
    listed = _accounts_file(tmp_path, "a")
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(listed))
    report = ("report", "finance", "--data-dir", str(churned))
    code, out, err = run_cdr(capsys, monkeypatch, *report, "--month", "2026-02", "--out", str(tmp_path / "feb"))
    assert code == 0, err
    assert f"left out: b (not in {listed}; holds nothing of 2026-02)" in out.splitlines()
    assert "partial" not in out
    rows = _read_csv(tmp_path / "feb" / "finance_2026-02.csv")
    assert list(rows[0]) == list(COMBINED_COLUMNS)
    own = [row for row in rows if row["account"] != ALL_ACCOUNTS]
    assert own and {row["account"] for row in own} == {"a"}
    # the total rows: a's rows summed, and the warehouse's sums of a's month
    sums: dict[str, list] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for row in own:
        for index, name in enumerate(("records", "billed_duration_secs", "parts", "cost")):
            sums[row["currency"]][index] += Decimal(row[name]) if name == "cost" else int(row[name])
    totals = {
        row["currency"]: [int(row["records"]), int(row["billed_duration_secs"]), int(row["parts"]), Decimal(row["cost"])]
        for row in rows if row["account"] == ALL_ACCOUNTS
    }
    assert totals == dict(sums) == _warehouse_sums(churned, "2026-02", "a")
    _, strings = _sheet(tmp_path / "feb" / "finance_2026-02.xlsx")
    assert f"left out: b (not in {listed}; holds nothing of 2026-02)" in strings
    # January, which b holds, still states both accounts (a's is partial: a message missing on the 29th)
    code, out, err = run_cdr(
        capsys, monkeypatch, *report, "--month", "2026-01", "--allow-partial", "--out", str(tmp_path / "jan")
    )
    assert code == 0, err
    assert "left out" not in out and " of 2 accounts, " in out
    january = _read_csv(tmp_path / "jan" / "finance_2026-01.csv")
    assert {row["account"] for row in january} == {"a", "b", ALL_ACCOUNTS}
    assert _warehouse_sums(churned, "2026-01", "b")
    # b's own statement, asked for by name, is as before
    code, out, err = run_cdr(
        capsys, monkeypatch, *report, "--month", "2026-01", "--account", "b", "--out", str(tmp_path / "b")
    )
    assert code == 0, err
    assert (tmp_path / "b" / "finance_2026-01_b.csv").exists() and "left out" not in out


@pytest.mark.parametrize("listed", [("a", "b"), None], ids=["still-listed", "no-accounts-file"])
def test_a_month_a_listed_account_holds_nothing_of_is_still_refused(churned, tmp_path, capsys, monkeypatch, listed):
    # A configured account that failed to sync a whole month must stop the statement, not silently drop out.
    if listed is not None:
        monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(_accounts_file(tmp_path, *listed)))
    code, out, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", "2026-02", "--data-dir", str(churned),
        "--out", str(tmp_path / "out"),
    )
    assert (code, out) == (2, "")
    assert "sync them (cdr sync --account b --start 2026-02-01 --end 2026-03-01 --tz UTC)" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("listed", [("a",), ("a", "b")], ids=["b-unlisted", "b-listed"])
def test_the_dashboards_judge_a_month_without_an_unlisted_account_as_the_statement(
    churned, tmp_path, capsys, monkeypatch, listed
):
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(_accounts_file(tmp_path, *listed)))
    code, _, err = run_cdr(capsys, monkeypatch, "dashboards", "--data-dir", str(churned), "--out", str(tmp_path / "site"))
    assert code == 0, err
    finance = (tmp_path / "site" / "finance.html").read_text("utf-8")
    assert "2026-02" in finance
    # January is partial either way (a misses a message on the 29th); February only while b is listed
    assert "2026-01 (partial: " in finance
    if listed == ("a", "b"):
        assert "2026-02 (partial: b no day)" in finance
    else:
        assert "2026-02 (partial" not in finance


@pytest.fixture(scope="module")
def never_synced(worlds, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Account b synced for January and February; account a, which the accounts file lists beside it, never synced
    (its first sync failed): the data dir holds nothing of a, not even a folder."""
    data_dir = _under_accounts(worlds["b"], tmp_path_factory.mktemp("never-synced"), ("b",))
    land(data_dir, *SYNCED, account="b")
    build(data_dir)
    return data_dir


def test_a_listed_account_never_synced_makes_every_month_partial(never_synced, tmp_path, capsys, monkeypatch):
    # A listed account that failed its first sync must stop the statement as one that synced part of the month does,
    # not leave a statement of the other accounts that reads as every account's.
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(_accounts_file(tmp_path, "a", "b")))
    report = ("report", "finance", "--month", "2026-02", "--data-dir", str(never_synced))
    hint = "sync them (cdr sync --account a --start 2026-02-01 --end 2026-03-01 --tz UTC) or pass --allow-partial"
    for account in ((), ("--account", "a")):
        code, out, err = run_cdr(capsys, monkeypatch, *report, *account, "--out", str(tmp_path / "out"))
        assert (code, out) == (2, "")
        missing = "missing 2026-02-01..2026-02-28 (UTC days)"
        assert err.splitlines() == [f"error: --month 2026-02 is not fully synced: {missing}; {hint}"]
        assert not (tmp_path / "out").exists()
    # allowed partial, it states b's rows under the combined statement's columns and names a as holding no day
    code, out, err = run_cdr(capsys, monkeypatch, *report, "--allow-partial", "--out", str(tmp_path / "partial"))
    assert code == 0, err
    assert out.splitlines()[0].endswith("; partial: a covers no day of 2026-02")
    rows = _read_csv(tmp_path / "partial" / "finance_2026-02.csv")
    assert list(rows[0]) == list(COMBINED_COLUMNS) and {row["account"] for row in rows} == {"b", ALL_ACCOUNTS}
    # the dashboards label the month as the statement refuses it
    site = ("dashboards", "--data-dir", str(never_synced), "--out", str(tmp_path / "site"))
    code, _, err = run_cdr(capsys, monkeypatch, *site)
    assert code == 0, err
    assert "2026-02 (partial: a no day)" in (tmp_path / "site" / "finance.html").read_text("utf-8")
    # an account neither held nor listed is still refused naming those the warehouse holds
    code, _, err = run_cdr(capsys, monkeypatch, *report, "--account", "c", "--out", str(tmp_path / "c"))
    assert (code, err.splitlines()) == (2, ["error: --account 'c' is not an account of this warehouse: it holds b"])


def test_many_accounts_missing_a_month_are_counted_and_their_sync_is_of_exactly_them(
    never_synced, tmp_path, capsys, monkeypatch
):
    # A reseller's dozens of accounts never synced: how many and a few of them, not a line of every name, and a
    # sync hint that works and leaves alone the accounts that hold the month (b).
    names = ("a", "b", "c", "d", "e")
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(_accounts_file(tmp_path, *names)))
    for name in names:
        monkeypatch.setenv(f"{name.upper()}_KEY", f"key-of-{name}")
    code, out, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", "2026-02", "--data-dir", str(never_synced),
        "--out", str(tmp_path / "out"),
    )
    assert (code, out) == (2, "")
    hint = "cdr sync --only-missing --start 2026-02-01 --end 2026-03-01 --tz UTC"
    assert err.splitlines() == [
        "error: --month 2026-02 is not fully synced: missing 2026-02-01..2026-02-28 (UTC days) in a, c, d, ... "
        f"(4 accounts); sync them ({hint}) or pass --allow-partial"
    ]
    request = check_sync(start="2026-02-01", end="2026-03-01", tz="UTC", now="2026-03-02T00:00:00Z",
                         data_dir=never_synced, only_missing=True)
    assert [a.name for a in request.accounts] == ["a", "c", "d", "e"] and request.held == ("b",)


def test_without_an_accounts_file_the_accounts_held_alone_are_stated(never_synced, tmp_path, capsys, monkeypatch):
    code, out, err = run_cdr(
        capsys, monkeypatch, "report", "finance", "--month", "2026-02", "--data-dir", str(never_synced),
        "--out", str(tmp_path),
    )
    assert code == 0, err
    assert "partial" not in out and list(_read_csv(tmp_path / "finance_2026-02.csv")[0]) == list(FINANCE_COLUMNS)


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


# -- dashboards: an all-accounts overview and each account's pages ------------------------------------------


def _tiles(html: str) -> dict[str, str]:
    """A page -> {tile label: tile value}."""
    pairs = re.findall(r'<div class="tile-label">([^<]*)</div>\s*<div class="tile-value">([^<]*)</div>', html)
    return dict(pairs)


def _sums(data_dir: Path, account: str | None) -> dict[str, str]:
    """The overview's cost and count tiles as the rpt_ tables' sums over one account (None: every account)."""
    where, args = ("where account = ?", [account]) if account else ("", [])
    with duckdb.connect(str(warehouse_path(data_dir)), read_only=True) as con:
        costs = con.execute(
            f"select currency, sum(cost) from rpt_finance_monthly_statement {where} group by all", args
        ).fetchall()
        calls, messages = con.execute(
            "select sum(records) filter (product = 'voice'), sum(records) filter (product <> 'voice') "
            f"from rpt_finance_monthly_statement {where}", args,
        ).fetchone()
    return {f"Cost ({currency})": format_money(cost) for currency, cost in costs} | {
        "Calls": format_count(calls), "Messages": format_count(messages),
    }


@pytest.fixture(scope="module")
def sites(worlds, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[Path]]]:
    """{"both": the two accounts' site, account: its world's site built alone}."""
    root = tmp_path_factory.mktemp("sites")
    return {
        name: (root / name, render_site(warehouse_path(worlds[name]), root / name, synced_at=None, now=NOW))
        for name in ("both", *ACCOUNTS)
    }


def test_the_site_of_two_accounts_has_an_overview_and_each_accounts_pages(sites):
    out, written = sites["both"]
    pages = [INDEX, *(page.filename for page in PAGES)]
    assert written[0] == out / INDEX
    assert {path.relative_to(out).as_posix() for path in written} >= {
        *pages, *(f"{ACCOUNTS_DIR}/{account}/{name}" for account in ACCOUNTS for name in pages)
    }
    top = (out / "overview.html").read_text("utf-8")
    assert 'href="accounts/a/overview.html"' in top and "Overview · all accounts" in top
    page = (out / ACCOUNTS_DIR / "a" / "finance.html").read_text("utf-8")
    assert 'href="../../style.css"' in page and "Finance · account a" in page
    # the switcher keeps the page: another account's Finance, or the all-accounts one
    assert 'href="../../finance.html"' in page and 'href="../../accounts/b/finance.html"' in page
    assert 'href="../../index.html"' in (out / ACCOUNTS_DIR / "a" / INDEX).read_text("utf-8")
    # a ranking of each account's own top countries does not combine: the overview sends to the accounts
    finance = (out / "finance.html").read_text("utf-8")
    assert 'id="per-account-cost-by-country"' in finance and 'id="fig-cost-by-country"' not in finance
    assert "Cost by country: shown per account only" in finance
    assert 'id="fig-cost-by-country"' in page
    # one account alone: no account anywhere
    alone = (sites["a"][0] / "overview.html").read_text("utf-8")
    assert "accounts/" not in alone and "all accounts" not in alone
    assert not (sites["a"][0] / ACCOUNTS_DIR).exists()


def test_pages_of_an_account_no_longer_held_are_removed_and_nothing_else(worlds, tmp_path: Path):
    out = tmp_path / "site"
    render_site(warehouse_path(worlds["both"]), out, synced_at=None, now=NOW)
    mine = out / ACCOUNTS_DIR / "b" / "notes.txt"
    mine.write_text("kept")
    render_site(warehouse_path(worlds["a"]), out, synced_at=None, now=NOW)
    # the one-account site: no account's pages left to lead to figures of a lake that no longer holds it
    assert not (out / ACCOUNTS_DIR / "a").exists()
    assert sorted(path.name for path in (out / ACCOUNTS_DIR / "b").iterdir()) == ["notes.txt"]
    assert mine.read_text() == "kept"


def test_the_overviews_totals_are_the_report_tables_sums(worlds, sites):
    out, _ = sites["both"]
    overall = _tiles((out / "overview.html").read_text("utf-8"))
    expected = _sums(worlds["both"], None)
    assert {label: overall[label] for label in expected} == expected
    for account in ACCOUNTS:
        own = _tiles((out / ACCOUNTS_DIR / account / "overview.html").read_text("utf-8"))
        expected = _sums(worlds["both"], account)
        assert {label: own[label] for label in expected} == expected
        # and an account's pages show what its world alone shows
        assert own == _tiles((sites[account][0] / "overview.html").read_text("utf-8"))
    # the statement: one row per month, product, direction and currency, its totals the accounts' sums
    with duckdb.connect(str(warehouse_path(worlds["both"])), read_only=True) as con:
        rows = con.execute(
            "select month, currency, sum(cost) from rpt_finance_monthly_statement group by all"
        ).fetchall()
    finance = (out / "finance.html").read_text("utf-8")
    for month, currency, cost in rows:
        assert re.search(
            rf"Total {month}[^<]*</td>(?:(?!Total ).)*?<td class=\"total\">{currency}</td>(?:(?!Total ).)*?"
            rf">{re.escape(format_money(cost))}</td>",
            finance, re.S,
        ), (month, currency)


def test_month_over_month_of_several_accounts_is_recomputed_from_the_sums(worlds):
    frames = load_frames(warehouse_path(worlds["both"]), [MONTH_OVER_MONTH], with_account=True)
    combined = sum_month_over_month(frames[MONTH_OVER_MONTH].drop("account"))
    with duckdb.connect(str(warehouse_path(worlds["both"])), read_only=True) as con:
        expected = con.execute(
            "with m as (select month, product, currency, sum(cost) as cost from rpt_finance_monthly_statement "
            "group by all) select m.month, m.product, m.currency, m.cost, "
            "round(100 * (m.cost - p.cost) / nullif(p.cost, 0), 2)::double from m left join m as p "
            "on p.month = strftime(strptime(m.month, '%Y-%m') - interval 1 month, '%Y-%m') "
            "and p.product = m.product and p.currency = m.currency order by 1, 2, 3"
        ).fetchall()
    got = combined.select("month", "product", "currency", "cost", "cost_change_pct").sort("month", "product", "currency")
    assert got.rows() == expected
    assert any(pct is not None for *_, pct in expected)
