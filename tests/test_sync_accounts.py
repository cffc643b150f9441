"""`cdr sync` over several accounts: one lock and one log entry, one request budget, failures kept apart.

Three accounts against ONE sandbox serving three keys under fault injection (the i-th key sees
its own world, seeded SEED + i); one account's key is not one of them (401). Each good account's
lake equals `cdr sandbox export --api-key KEY` exactly; the failed one is named in one line.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from pipelines.accounts import DEFAULT_ACCOUNT, load_accounts
from pipelines.dates import Window, format_utc
from pipelines.lake import Lake
from pipelines.opentact import api
from pipelines.opentact.client import OpentactClient
from pipelines.reports import ALL_ACCOUNTS
from pipelines.runs import SYNC_LOG, check_sync, read_sync_runs
from pipelines.settings import Settings
from pipelines.state import read_state
from pipelines.sync import sync_accounts
from sandbox.testing import running_sandbox
from tests.fixtures.cli import run_cdr
from tests.test_sync import assert_lake_is_the_export

SEED = 41
START = "2026-10-01"
NOW = "2026-10-05T00:00:00Z"
WINDOW = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 4, tzinfo=UTC))
WORLD = {"seed": SEED, "start": START, "calls_per_day": 60, "messages_per_day": 30, "rerate_rate": 0.1,
         "malformed_rate": 0.02}
FAULTS = {"fail_rate": 0.15, "drop_rate": 0.05, "latency_ms": 10}
SERVED = ("acme-served-key-0", "globex-served-key-1", "hooli-served-key-2")
REJECTED = "initech-unknown-key-9"
# account -> (its key variable, its key): globex is the third world, to show the index picks the world
ACCOUNTS = {"acme": ("ACME_KEY", SERVED[0]), "globex": ("GLOBEX_KEY", SERVED[2]), "initech": ("INITECH_KEY", REJECTED)}
TOML = "".join(f'[accounts.{name}]\napi_key_env = "{variable}"\n' for name, (variable, _) in ACCOUNTS.items())


@pytest.fixture(scope="module")
def sandbox() -> str:
    with running_sandbox(api_key=list(SERVED), now=NOW, **WORLD, **FAULTS) as url:
        yield url


@pytest.fixture
def accounts_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox: str) -> Path:
    """The three accounts' file and keys, a sandbox base URL and short waits."""
    path = tmp_path / "accounts.toml"
    path.write_text(TOML)
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(path))
    for variable, key in ACCOUNTS.values():
        monkeypatch.setenv(variable, key)
    monkeypatch.setenv("OPENTACT_BASE_URL", sandbox)
    monkeypatch.setenv("OPENTACT_BACKOFF_BASE_SECS", "0.01")
    monkeypatch.setenv("OPENTACT_BACKOFF_MAX_SECS", "0.2")
    monkeypatch.setenv("OPENTACT_SETTLE_LAG_SECS", "0")
    monkeypatch.setenv("OPENTACT_PAGE_SIZE", "40")
    return path


@pytest.fixture(scope="module")
def truths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list]]:
    """`cdr sandbox export --api-key KEY` of each served key, as assert_lake_is_the_export reads it."""
    found = {}
    for key in SERVED:
        out = tmp_path_factory.mktemp("export")
        with pytest.MonkeyPatch.context() as patch:
            code = _export(patch, key, out)
        assert code == 0
        found[key] = {
            name: [orjson.loads(line) for line in (out / f"{name}.jsonl").read_bytes().splitlines()]
            for name in ("cdrs", "mdrs", "malformed")
        }
    return found


def _export(patch: pytest.MonkeyPatch, key: str, out: Path) -> int:
    import sys

    from cdr_app.cli import main

    argv = ["cdr", "sandbox", "export", "--seed", str(SEED), "--start", START, "--calls-per-day", "60",
            "--messages-per-day", "30", "--rerate-rate", "0.1", "--malformed-rate", "0.02", "--now", NOW,
            "--window-start", format_utc(WINDOW.start), "--window-end", format_utc(WINDOW.end), "--out", str(out),
            "--api-key", key]
    for served in SERVED:
        argv += ["--served-key", served]
    patch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0)


def _sync_args(data: Path, *more: str) -> tuple[str, ...]:
    return ("sync", "--start", format_utc(WINDOW.start), "--end", format_utc(WINDOW.end), "--now", NOW,
            "--data-dir", str(data), *more)


def _account_folders(data: Path, name: str) -> list[Path]:
    """Every lake and quarantine folder of an account."""
    return [*data.glob(f"lake/*/account={name}"), *data.glob(f"quarantine/*/account={name}")]


# -- end to end: `cdr sync` under Prefect ------------------------------------------------------------


def assert_only_initech_failed(code: int, out: str, err: str) -> None:
    """`cdr sync` of the three accounts -> exit 1 and one line naming the rejected account and its cause,
    after the others landed; no key shown."""
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 3 accounts failed; acme, globex landed: initech: "), err
    assert "401" in last and "check INITECH_KEY" in last and "Traceback" not in err
    assert not any(key in out + err for key in (*SERVED, REJECTED))
    assert "from 2 of 3 accounts" in out and "  initech: FAILED" in out


def test_three_accounts_one_rejected_the_others_land_exactly_their_exports(
    prefect_harness, accounts_env, truths, tmp_path, capsys, monkeypatch
):
    data = tmp_path / "data"
    code, out, err = run_cdr(capsys, monkeypatch, *_sync_args(data))
    assert_only_initech_failed(code, out, err)
    assert "  acme: " in out

    lake = Lake(data)
    for name in ("acme", "globex"):
        assert_lake_is_the_export(lake.for_account(name), truths[ACCOUNTS[name][1]])
    assert _account_folders(data, "initech") == []
    assert all(read_state(lake.for_account("initech"), kind).high_water_mark is None for kind in api.RECORD_TYPES)
    assert lake.accounts() in (["acme", "globex"], ["acme", "globex", "initech"])  # a begun checkpoint at most

    # One log entry for the whole run, with every account's outcome.
    (run,) = read_sync_runs(lake)
    assert run.status == "incomplete" and run.error.startswith("account initech: ") and "401" in run.error
    assert [(a.account, a.status) for a in run.accounts] == [
        ("acme", "completed"), ("globex", "completed"), ("initech", "failed")
    ]
    assert sorted(run.changed_days) == ["cdrs", "mdrs", "quarantine_cdrs", "quarantine_mdrs", "usage_cdrs", "usage_mdrs"]
    entry = orjson.loads(lake.read_bytes(SYNC_LOG))["runs"][0]
    assert entry["accounts"][2] == {"account": "initech", "status": "failed", "error": run.accounts[2].error}
    code, status, _ = run_cdr(capsys, monkeypatch, "status", "--json", "--data-dir", str(data))
    assert code == 0 and json.loads(status)["last_sync"]["status"] == "incomplete"

    # Built, each account's finance statement is an independent sum of its export, to the cent,
    # and the combined one's totals per currency are the sum of the accounts' (initech's: none).
    code, _, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(data))
    assert code == 0, err
    expected = {name: _statement_of(truths[ACCOUNTS[name][1]]) for name in ("acme", "globex")}
    for name, rows in expected.items():
        assert _report(capsys, monkeypatch, data, tmp_path / name, "--account", name) == rows
    combined = _report(capsys, monkeypatch, data, tmp_path / "all")
    totals: dict[tuple, list] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for rows in expected.values():
        for (month, _, _, currency), figures in rows.items():
            total = (ALL_ACCOUNTS, month, "", "", currency)
            totals[total] = [a + b for a, b in zip(totals[total], figures)]
    assert combined == {(name, *key): figures for name, rows in expected.items() for key, figures in rows.items()} | totals
    assert len(totals) >= 1 and all(figures[3] > 0 for figures in totals.values())


def _statement_of(truth: dict[str, list]) -> dict[tuple, list]:
    """An account's export -> its statement rows, computed from the served JSON alone (no lake, no SQL)."""
    rows: dict[tuple, list] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for record in truth["cdrs"] + truth["mdrs"]:
        product = "voice" if record["record_type"] == "call" else record["message_type"]
        figures = rows[(record["created_at"][:7], product, record["direction"], record["currency"])]
        figures[0] += 1
        figures[1] += record.get("billed_duration_secs", 0)
        figures[2] += record.get("parts", 0)
        figures[3] += Decimal(record["cost"])
    return dict(rows)


def _report(capsys, monkeypatch, data: Path, out: Path, *more: str) -> dict[tuple, list]:
    """`cdr report finance` of the sync's (partial) month -> its CSV rows: key columns -> [records, secs, parts, cost]."""
    code, _, err = run_cdr(capsys, monkeypatch, "report", "finance", "--month", "2026-10", "--allow-partial",
                           "--no-xlsx", "--out", str(out), "--data-dir", str(data), *more)
    assert code == 0, err
    # one account's statement is named after it; the combined one is not
    account = more[more.index("--account") + 1] if "--account" in more else None
    with open(out / ("finance_2026-10.csv" if account is None else f"finance_2026-10_{account}.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    keys = [c for c in rows[0] if c not in ("records", "billed_duration_secs", "parts", "cost")]
    return {
        tuple(row[c] for c in keys): [int(row["records"]), int(row["billed_duration_secs"]), int(row["parts"]),
                                      Decimal(row["cost"])]
        for row in rows
    }


def test_account_option_syncs_only_the_named_accounts(prefect_harness, accounts_env, truths, tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    code, out, err = run_cdr(capsys, monkeypatch, *_sync_args(data, "--account", "globex"))
    assert code == 0, err
    assert out.startswith("synced ") and "from 1 of 1 account" in out and "  globex: " in out
    assert Lake(data).accounts() == ["globex"]
    assert_lake_is_the_export(Lake(data).for_account("globex"), truths[SERVED[2]])


# -- refused before anything runs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--account", "acme,umbrella"), "unknown account umbrella; "),
        (("--account", "acme", "--all-accounts"), "--account and --all-accounts together"),
        (("--account", ","), "--account needs account names"),
    ],
)
def test_bad_account_options_are_one_line_exit_2_and_write_nothing(accounts_env, tmp_path, capsys, monkeypatch,
                                                                   options, message):
    data = tmp_path / "data"
    code, out, err = run_cdr(capsys, monkeypatch, *_sync_args(data, *options))
    assert code == 2 and out == "" and not data.exists()
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_a_bad_accounts_file_is_one_line_exit_2(accounts_env, tmp_path, capsys, monkeypatch):
    accounts_env.write_text('[accounts.acme]\napi_key = "sk-live-secret"\n')
    data = tmp_path / "data"
    code, out, err = run_cdr(capsys, monkeypatch, *_sync_args(data))
    assert code == 2 and out == "" and not data.exists()
    assert err.count("\n") == 1 and "[accounts.acme]: unknown key api_key " in err and "sk-live" not in err


def test_an_unknown_account_with_no_accounts_file_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENTACT_API_KEY", "k")
    code, _, err = run_cdr(capsys, monkeypatch, *_sync_args(tmp_path / "data", "--account", "acme"))
    assert code == 2 and "unknown account acme; the accounts configured with no accounts file: default" in err


@pytest.mark.parametrize("options", [{}, {"account": "default"}, {"all_accounts": True}])
def test_with_no_accounts_file_the_sync_is_todays_single_account_one(tmp_path, monkeypatch, options):
    from pipelines.console import flow_arguments

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENTACT_API_KEY", "k")
    arguments = {"start": "2026-10-01", "end": "2026-10-02", "now": NOW, "data_dir": tmp_path / "d"}
    request = check_sync(**arguments, **options)
    assert not request.several and [a.name for a in request.accounts] == [DEFAULT_ACCOUNT]
    assert "accounts" not in flow_arguments(request, arguments)
    assert not (tmp_path / "d").exists()


def test_with_an_accounts_file_the_key_variables_are_not_read_before_the_run(accounts_env, tmp_path, monkeypatch):
    from pipelines.console import flow_arguments

    monkeypatch.delenv("ACME_KEY")
    arguments = {"start": "2026-10-01", "end": "2026-10-02", "now": NOW, "data_dir": tmp_path / "d"}
    request = check_sync(**arguments)
    assert request.several and [a.name for a in request.accounts] == ["acme", "globex", "initech"]
    assert flow_arguments(request, arguments)["accounts"] == ["acme", "globex", "initech"]
    assert check_sync(**arguments, account=["initech,acme"]).account_windows.keys() == {"acme", "initech"}


@pytest.mark.parametrize("options", [(), ("--account", "acme")])
def test_when_no_account_to_sync_has_its_key_the_sync_is_refused_at_once(
    accounts_env, tmp_path, capsys, monkeypatch, options
):
    # Nothing would land: one line and exit 2 now, not a run that starts Prefect to fail every account.
    for variable, _ in ACCOUNTS.values():
        monkeypatch.delenv(variable)
    data = tmp_path / "data"
    code, out, err = run_cdr(capsys, monkeypatch, *_sync_args(data, *options))
    named = ("acme", "globex", "initech") if not options else ("acme",)
    causes = "; ".join(
        f"account {name}: {ACCOUNTS[name][0]} is not set (or is empty): export it with the account's API key"
        for name in named
    )
    assert (code, out, err) == (2, "", f"error: {causes}\n") and not data.exists()
    monkeypatch.setenv("INITECH_KEY", REJECTED)  # one account with a key: it runs, the others fail alone
    assert check_sync(**{"start": "2026-10-01", "end": "2026-10-02", "now": NOW, "data_dir": data}).several


def test_a_data_dir_synced_before_its_accounts_file_warns_that_default_is_no_longer_synced(
    accounts_env, tmp_path, monkeypatch
):
    # The migration of a single-account data dir: the file's accounts sync, `default` silently would not.
    from tests.fixtures.landed import land

    data = tmp_path / "d"
    land(data, "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z")
    arguments = {"start": "2026-10-01", "end": "2026-10-02", "now": NOW, "data_dir": data}
    assert check_sync(**arguments).warning == (
        f"warning: this data dir also holds account default, which {accounts_env} does not list: no sync reaches "
        'it and reports still include its data; to sync it, add [accounts.default] to it (default: api_key_env = '
        '"OPENTACT_API_KEY", the key of before the file)'
    )
    accounts_env.write_text(TOML + '[accounts.default]\napi_key_env = "OPENTACT_API_KEY"\n')
    assert check_sync(**arguments).warning is None


def test_a_sync_that_finds_no_accounts_file_warns_of_the_accounts_it_leaves_out(tmp_path, monkeypatch):
    # A cron job run from another folder than the one holding accounts.toml syncs `default` alone.
    from tests.fixtures.landed import land

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENTACT_API_KEY", "k")
    data = tmp_path / "d"
    for account in ("acme", "globex"):
        land(data, "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z", account=account)
    request = check_sync(start="2026-10-01", end="2026-10-02", now=NOW, data_dir=data)
    assert request.warning == (
        "warning: this data dir also holds accounts acme, globex, which only an accounts file syncs, and none was "
        f"found (CDR_ACCOUNTS_FILE is unset and there is no accounts.toml in {tmp_path}): this sync is of the "
        "account default alone"
    )


# -- the run: isolation and the shared budget -------------------------------------------------------------


def _settings(data: Path) -> Settings:
    return Settings(data_dir=data)


def test_an_unset_key_variable_fails_only_its_account(accounts_env, truths, tmp_path, monkeypatch):
    monkeypatch.delenv("GLOBEX_KEY")
    monkeypatch.setenv("INITECH_KEY", SERVED[1])
    data = tmp_path / "data"
    settings = _settings(data)
    accounts = load_accounts(settings).accounts
    now = datetime(2026, 10, 5, tzinfo=UTC)
    report = asyncio.run(sync_accounts(list(api.RECORD_TYPES), WINDOW, settings, accounts, now, "run-1"))
    assert [(a.account, a.ok) for a in report.accounts] == [("acme", True), ("globex", False), ("initech", True)]
    assert report.failed[0].cause == "account globex: GLOBEX_KEY is not set (or is empty): export it with the account's API key"
    assert report.failure_line() == (
        "1 of 3 accounts failed; acme, initech landed: globex: GLOBEX_KEY is not set (or is empty): export it "
        "with the account's API key; fix what is named, then run the sync again (landed slices are not redone)"
    )
    assert_lake_is_the_export(Lake(data).for_account("acme"), truths[SERVED[0]])
    assert_lake_is_the_export(Lake(data).for_account("initech"), truths[SERVED[1]])
    assert _account_folders(data, "globex") == [] and not (data / "state" / "account=globex").exists()


def test_every_accounts_client_shares_one_request_budget(accounts_env, tmp_path, monkeypatch):
    """The clients get the same semaphore, and requests in flight across them never pass OPENTACT_CONCURRENCY."""
    monkeypatch.setenv("INITECH_KEY", SERVED[1])
    monkeypatch.setenv("OPENTACT_CONCURRENCY", "2")
    budgets: list[asyncio.Semaphore | None] = []
    flight = {"now": 0, "most": 0}

    class Counting(OpentactClient):
        def __init__(self, *args: object, **kwargs: object) -> None:
            budgets.append(kwargs.get("budget"))  # type: ignore[arg-type]
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

        async def _receive(self, *args: object, **kwargs: object):  # type: ignore[override]
            flight["now"] += 1
            flight["most"] = max(flight["most"], flight["now"])
            try:
                return await super()._receive(*args, **kwargs)
            finally:
                flight["now"] -= 1

    monkeypatch.setattr("pipelines.sync.OpentactClient", Counting)
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    assert settings.opentact_concurrency == 2
    report = asyncio.run(sync_accounts(
        list(api.RECORD_TYPES), WINDOW, settings, load_accounts(settings).accounts, datetime(2026, 10, 5, tzinfo=UTC),
        "run-1",
    ))
    assert report.ok, report.failure_line()
    assert len(budgets) == 3 and budgets[0] is budgets[1] is budgets[2] and isinstance(budgets[0], asyncio.Semaphore)
    assert flight["most"] == 2  # the three accounts together, with each client's own gate allowing 2


# -- the Prefect flow: Secret blocks, in an async flow ---------------------------------------------------


def test_the_flows_api_key_block_is_the_default_accounts_key(prefect_harness, accounts_env, truths, tmp_path,
                                                              monkeypatch):
    """Read inside the async flow (Secret.load(...).get() there returned a coroutine), for today's one account."""
    from prefect.blocks.system import Secret

    from pipelines.flows.sync import sync_flow

    monkeypatch.delenv("CDR_ACCOUNTS_FILE")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    Secret(value=SERVED[0]).save("default-opentact-key", overwrite=True)
    data = tmp_path / "data"
    result = asyncio.run(sync_flow(
        start=format_utc(WINDOW.start), end=format_utc(WINDOW.end), now=NOW, data_dir=str(data),
        api_key_block="default-opentact-key",
    ))
    assert "accounts" not in result and result["types"]["cdrs"]["new"] == len(truths[SERVED[0]]["cdrs"])
    assert_lake_is_the_export(Lake(data).for_account(DEFAULT_ACCOUNT), truths[SERVED[0]])
    assert read_sync_runs(Lake(data))[0].accounts == ()  # logged as before accounts


def test_an_accounts_secret_block_is_read_by_the_flow(prefect_harness, accounts_env, truths, tmp_path):
    from prefect.blocks.system import Secret

    from pipelines.flows.sync import sync_flow

    accounts_env.write_text(TOML.replace('api_key_env = "GLOBEX_KEY"', 'api_key_block = "globex-opentact-key"'))
    Secret(value=SERVED[2]).save("globex-opentact-key", overwrite=True)
    data = tmp_path / "data"
    result = asyncio.run(sync_flow(
        start=format_utc(WINDOW.start), end=format_utc(WINDOW.end), now=NOW, data_dir=str(data),
        accounts=["globex", "acme"],
    ))
    assert list(result["accounts"]) == ["acme", "globex"] and result["failed"] == {}
    assert result["types"]["mdrs"]["new"] == len(truths[SERVED[0]]["mdrs"]) + len(truths[SERVED[2]]["mdrs"])
    assert_lake_is_the_export(Lake(data).for_account("globex"), truths[SERVED[2]])
    assert_lake_is_the_export(Lake(data).for_account("acme"), truths[SERVED[0]])


def test_the_accounts_at_one_base_url_share_its_connections_and_retry_warnings(monkeypatch, tmp_path) -> None:
    from pipelines.accounts import Account
    from pipelines.sync import SharedByBaseUrl, account_client

    monkeypatch.setenv("CDR_TEST_ACME_KEY", "k1")
    monkeypatch.setenv("CDR_TEST_GLOBEX_KEY", "k2")
    monkeypatch.setenv("CDR_TEST_INITECH_KEY", "k3")
    settings = _settings(tmp_path)
    here, there = "http://127.0.0.1:9", "http://127.0.0.1:10"

    async def open_three() -> None:
        budget, shared = asyncio.Semaphore(4), SharedByBaseUrl(settings)

        def opened(name: str, base_url: str):
            account = Account(name, f"CDR_TEST_{name.upper()}_KEY", None, base_url)
            return account_client(account, budget, settings=settings, shared=shared)

        try:
            async with opened("acme", here) as acme, opened("globex", here) as globex, opened("initech", there) as initech:
                # An outage of one API is then warned of once a minute among its accounts, not once per account.
                assert acme._retries is globex._retries is not initech._retries
                assert acme._http is globex._http is not initech._http
        finally:
            await shared.aclose()

    asyncio.run(open_three())


# -- a reseller's many accounts: what the terminal shows stays short ----------------------------------------


def _many_accounts(monkeypatch, tmp_path, count: int) -> list[str]:
    """An accounts file of `count` accounts, each key in a variable of its own -> their names."""
    names = [f"c{n:03d}" for n in range(count)]
    path = tmp_path / "accounts.toml"
    path.write_text("".join(f'[accounts.{name}]\napi_key_env = "{name.upper()}_KEY"\n' for name in names))
    monkeypatch.setenv("CDR_ACCOUNTS_FILE", str(path))
    for name in names:
        monkeypatch.setenv(f"{name.upper()}_KEY", f"key-of-{name}")
    return names


def _sync_of_many(capsys, monkeypatch, tmp_path, names: list[str], failed: dict[str, str]) -> tuple[int, str, str]:
    """`cdr sync` of `names` (keys accepted) whose flow lands each account but `failed`'s (account -> cause), each of
    3 CDRs and 2 MDRs -> its exit code, stdout and stderr."""
    import pipelines.flows.sync as flows
    from pipelines import console
    from pipelines.sync import AccountReport, AccountsReport, DayReport, KindReport, SyncReport

    def landed(name: str) -> AccountReport:
        kinds = tuple(
            KindReport(kind, WINDOW, slices=1, skipped=0, landed=1, records=n, quarantined=1,
                       days=(DayReport(WINDOW.start.date(), new=n, quarantined=1),))
            for kind, n in (("cdrs", 3), ("mdrs", 2))
        )
        return AccountReport(name, SyncReport("r", WINDOW.end, kinds, (), 1.0))

    report = AccountsReport("r", WINDOW.end, tuple(
        AccountReport(name, None, failed[name]) if name in failed else landed(name) for name in names
    ), 10.0)

    async def flow(progress=None, **parameters: object) -> dict[str, object]:
        raise flows.AccountsIncomplete(report)

    async def keys_accepted(request: object) -> list[str]:
        return []

    monkeypatch.setattr(console, "check_api_key", keys_accepted)
    monkeypatch.setattr(flows, "sync_flow", flow)
    return run_cdr(capsys, monkeypatch, *_sync_args(tmp_path / "data"))


def test_a_sync_of_many_accounts_says_their_windows_totals_and_failures_in_a_few_lines(
    capsys, monkeypatch, tmp_path
) -> None:
    names = _many_accounts(monkeypatch, tmp_path, 150)
    failed = {"c010": "API key rejected (401)", "c020": "API key rejected (401)", "c149": "the lake is broken"}
    code, out, err = _sync_of_many(capsys, monkeypatch, tmp_path, names, failed)
    assert code == 1
    # one line per record type for the window every account reads, not one per account and type
    windows = f"{format_utc(WINDOW.start)} .. {format_utc(WINDOW.end)} for all 150 accounts"
    assert [line for line in err.splitlines() if line.startswith(("cdrs:", "mdrs:"))] == [
        f"cdrs: {windows}", f"mdrs: {windows}"
    ]
    # the run's totals per record type and the failed accounts, not three lines per account
    assert out.splitlines()[1:] == [
        "  task runner: in-process",
        "  cdrs: 441 new, 0 updated, 147 quarantined",
        "  mdrs: 294 new, 0 updated, 147 quarantined",
        "  FAILED: c010, c020, c149",
    ]
    assert "from 147 of 150 accounts" in out.splitlines()[0]
    # each failed account and its cause; the landed ones counted, not named
    assert err.splitlines()[-1] == (
        "error: 3 of 150 accounts failed; the other 147 landed: c010, c020: API key rejected (401); "
        "c149: the lake is broken; fix what is named, then run the sync again (landed slices are not redone)"
    )


def test_the_failed_line_of_many_accounts_names_a_few_and_counts_them(capsys, monkeypatch, tmp_path) -> None:
    # An outage failing 60 of a reseller's 150 accounts: a few names and how many, not 60 names.
    names = _many_accounts(monkeypatch, tmp_path, 150)
    code, out, err = _sync_of_many(capsys, monkeypatch, tmp_path, names, dict.fromkeys(names[90:], "HTTP 503"))
    assert code == 1
    assert out.splitlines()[-1] == "  FAILED: c090, c091, c092, ... (60 accounts)"
    assert "from 90 of 150 accounts" in out.splitlines()[0] and "c149" not in out + err


def test_the_accounts_reading_other_windows_are_named_with_theirs() -> None:
    from types import SimpleNamespace

    from pipelines.console import _account_window_lines

    later = Window(datetime(2026, 10, 3, tzinfo=UTC), WINDOW.end)
    windows = {f"c{n:03d}": {"cdrs": WINDOW} for n in range(5)} | {"new": {"cdrs": later}}
    request = SimpleNamespace(kinds=["cdrs"], account_windows=windows, accounts=list(windows))
    assert _account_window_lines(request) == [
        f"cdrs: {format_utc(WINDOW.start)} .. {format_utc(WINDOW.end)} for c000, c001, c002, ... (5 accounts)",
        f"cdrs: {format_utc(later.start)} .. {format_utc(WINDOW.end)} for new",
    ]


def test_an_incremental_sync_goes_on_without_the_accounts_never_synced_and_names_them(
    capsys, monkeypatch, tmp_path
) -> None:
    """A customer added to the file (or whose first sync failed) has no mark to continue from: the nightly
    `cdr sync` still syncs the others (as the flow does, failing it alone), and says how to give it its first."""
    import pipelines.flows.sync as flows
    from pipelines import console
    from tests.fixtures.landed import land

    names = _many_accounts(monkeypatch, tmp_path, 5)
    data = tmp_path / "data"
    for name in names[:3]:
        land(data, "2026-10-01T00:00:00Z", "2026-10-04T00:00:00Z", account=name)
    reached = []

    async def flow(progress=None, **parameters: object) -> dict[str, object]:
        reached.append(parameters)
        return {"records": 0, "duration_secs": 0.1, "records_per_sec": 0.0, "types": {},
                "accounts": {name: {"records": 0, "types": {}} for name in names[:3]}, "failed": {}}

    async def keys_accepted(request: object) -> list[str]:
        return []

    monkeypatch.setattr(console, "check_api_key", keys_accepted)
    monkeypatch.setattr(flows, "sync_flow", flow)
    code, out, err = run_cdr(capsys, monkeypatch, "sync", "--now", NOW, "--data-dir", str(data))
    assert code == 0, err
    assert [p["accounts"] for p in reached] == [names]  # the flow fails c003 and c004 alone
    assert err.splitlines()[0] == (
        "warning: accounts c003, c004 have no earlier sync to continue from: they fail in this run, the other accounts "
        "sync; to sync them, give their first sync a range: cdr sync --account c003,c004 --range last_7_days"
    )
    assert "cdrs: 2026-10-01T00:00:00.000Z .. 2026-10-05T00:00:00.000Z for c000, c001, c002" in err.splitlines()

    # the flow fails them alone, with one cause and the command that gives them their first sync (another run
    # without a range would fail them again)
    accounts = load_accounts(_settings(data)).accounts
    report = asyncio.run(sync_accounts(["cdrs", "mdrs"], None, _settings(data), accounts[3:], WINDOW.end, "run-2"))
    assert report.failure_line() == (
        "2 of 2 accounts failed: c003, c004: no earlier sync to continue from; give them a first sync with a range: "
        "cdr sync --account c003,c004 --range last_7_days"
    )

    # with no account to continue from, the first sync needs a range, as ever
    code, out, err = run_cdr(capsys, monkeypatch, "sync", "--now", NOW, "--data-dir", str(tmp_path / "fresh"))
    assert code == 2 and err.startswith("error: no earlier sync of cdrs") and err.count("\n") == 1
    assert len(reached) == 1 and not (tmp_path / "fresh").exists()


def test_only_missing_syncs_the_accounts_missing_some_of_the_range_and_no_other(capsys, monkeypatch, tmp_path) -> None:
    """A month some of a reseller's accounts miss (never synced, a gap, a record type short) is filled in without
    reading the accounts that hold it again; when all hold it, nothing starts."""
    import pipelines.flows.sync as flows
    from pipelines import console
    from tests.fixtures.landed import land

    names = _many_accounts(monkeypatch, tmp_path, 5)
    data = tmp_path / "data"
    for name in names[:2]:
        land(data, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", account=name)
    land(data, "2026-10-01T00:00:00Z", "2026-10-20T00:00:00Z", account="c002")
    land(data, "2026-10-21T00:00:00Z", "2026-11-01T00:00:00Z", account="c002")
    land(data, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", kinds=("cdrs",), account="c004")  # c003: never synced
    reached = []

    async def flow(progress=None, **parameters: object) -> dict[str, object]:
        reached.append(parameters)
        return {"records": 0, "duration_secs": 0.1, "records_per_sec": 0.0, "types": {},
                "accounts": {name: {"records": 0, "types": {}} for name in parameters["accounts"]}, "failed": {}}

    async def keys_accepted(request: object) -> list[str]:
        return []

    monkeypatch.setattr(console, "check_api_key", keys_accepted)
    monkeypatch.setattr(flows, "sync_flow", flow)
    month = ("sync", "--only-missing", "--start", "2026-10-01", "--end", "2026-11-01", "--tz", "UTC",
             "--now", "2026-11-02T00:00:00Z", "--data-dir", str(data))
    code, out, err = run_cdr(capsys, monkeypatch, *month)
    assert code == 0, err
    assert [p["accounts"] for p in reached] == [["c002", "c003", "c004"]]
    assert err.splitlines()[0] == (
        "--only-missing: accounts c000, c001 hold 2026-10-01T00:00:00.000Z .. 2026-11-01T00:00:00.000Z of "
        "cdrs,mdrs already; syncing the other 3"
    )

    # every account chosen holds the range: nothing to sync, and Prefect is not started
    code, out, err = run_cdr(capsys, monkeypatch, *month, "--account", "c000,c001")
    assert (code, err) == (0, "") and len(reached) == 1
    assert out == (
        "nothing to sync: accounts c000, c001 hold 2026-10-01T00:00:00.000Z .. 2026-11-01T00:00:00.000Z of "
        "cdrs,mdrs already (--only-missing)\n"
    )
    # the types asked for are judged: c004 holds the month of cdrs
    code, out, err = run_cdr(capsys, monkeypatch, *month, "--types", "cdrs", "--account", "c004")
    assert code == 0 and out.startswith("nothing to sync: account c004 holds") and len(reached) == 1

    # an incremental sync reads from each account's mark already
    code, out, err = run_cdr(capsys, monkeypatch, "sync", "--only-missing", "--now", NOW, "--data-dir", str(data))
    assert code == 2 and err.startswith("error: --only-missing needs a range") and err.count("\n") == 1


def test_the_first_sync_of_more_accounts_than_a_line_names_is_of_the_accounts_missing_the_range(
    capsys, monkeypatch, tmp_path
) -> None:
    from pipelines.runs import first_sync_command
    from tests.fixtures.landed import land

    assert first_sync_command(["c003", "c004", "c005"]) == "cdr sync --account c003,c004,c005 --range last_7_days"
    names = _many_accounts(monkeypatch, tmp_path, 6)
    data = tmp_path / "data"
    for name in names[:2]:  # synced up to the settle lag (2 minutes) before NOW
        land(data, "2026-09-20T00:00:00Z", "2026-10-04T23:58:00Z", account=name)
    request = check_sync(now=NOW, data_dir=data)
    assert request.warning == (
        "warning: accounts c002, c003, c004, ... (4 accounts) have no earlier sync to continue from: they fail in "
        "this run, the other accounts sync; to sync them, give their first sync a range: "
        "cdr sync --only-missing --range last_7_days"
    )
    # which syncs those four, and not the two synced up to the night before
    request = check_sync(date_range="last_7_days", now=NOW, data_dir=data, only_missing=True)
    assert [a.name for a in request.accounts] == names[2:] and request.held == ("c000", "c001")


def test_the_failed_accounts_line_gives_each_cause_once_and_the_advice_that_fits_it() -> None:
    """A reseller's accounts failing alike (keys rejected, each naming its own variable; never synced) get one cause
    each with a few of their names, not 110-150 characters per account; and "run the sync again" only where a run
    of the same command can land them."""
    from pipelines.sync import NEVER_SYNCED, AccountReport, AccountsReport, SliceFailure, SyncReport

    def rejected(name: str) -> AccountReport:
        variable = f"{name.upper().replace('-', '_')}_KEY"
        cause = (f"account {name}: API key rejected (401) by http://127.0.0.1:9: check {variable} (and that it "
                 "belongs to this environment)")
        return AccountReport(name, None, cause, key_name=variable)

    def landed(name: str) -> AccountReport:
        return AccountReport(name, SyncReport("r", WINDOW.end, (), (), 1.0))

    def slices_failed(name: str, retryable: bool) -> AccountReport:
        failure = SliceFailure("cdrs", WINDOW, "HTTP 503 after 8 tries" if retryable else "bad page", retryable)
        return AccountReport(name, SyncReport("r", WINDOW.end, (), (failure,), 1.0))

    lapsed = [rejected(f"lapsed-{n}") for n in range(4)]
    new = [AccountReport(f"new-{n}", None, NEVER_SYNCED, key_name=f"NEW_{n}_KEY") for n in range(5)]
    report = AccountsReport("r", WINDOW.end, (*lapsed, *new, *(landed(f"c{n:03d}") for n in range(146))), 10.0)
    assert report.failure_line() == (
        "9 of 155 accounts failed; the other 146 landed: lapsed-0, lapsed-1, lapsed-2, ... (4 accounts): API key "
        "rejected (401) by http://127.0.0.1:9: check each one's api_key_env variable (and that it belongs to this "
        "environment); new-0, new-1, new-2, ... (5 accounts): no earlier sync to continue from; give the accounts "
        "never synced a first sync with a range: cdr sync --only-missing --range last_7_days; fix what is named, then "
        "run the sync again (landed slices are not redone)"
    )
    # one account keeps its own cause whole; accounts that failed for the moment are told to run it again
    report = AccountsReport("r", WINDOW.end, (lapsed[0], landed("acme")), 1.0)
    assert report.failure_line().endswith(
        "lapsed-0: API key rejected (401) by http://127.0.0.1:9: check LAPSED_0_KEY (and that it belongs to this "
        "environment); fix what is named, then run the sync again (landed slices are not redone)"
    )
    report = AccountsReport("r", WINDOW.end, (slices_failed("acme", True), slices_failed("hooli", True)), 1.0)
    assert report.failure_line() == (
        f"2 of 2 accounts failed: acme, hooli: 1 slice failed (cdrs {WINDOW}: HTTP 503 after 8 tries); run the sync "
        "again (landed slices are not redone)"
    )
    # past three causes, the accounts of the others are counted
    outcomes = (*(slices_failed(f"s{n}", False) for n in range(2)), lapsed[0], new[0],
                AccountReport("broken", None, "the lake is broken"), AccountReport("gone", None, "the lake is gone"))
    line = AccountsReport("r", WINDOW.end, outcomes, 1.0).failure_line()
    assert "; broken" not in line and "2 more accounts for other causes (`cdr status --json` has each one's)" in line
    assert line.startswith("6 of 6 accounts failed: s0, s1: 1 slice failed (cdrs ")
