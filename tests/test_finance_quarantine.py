"""The finance statement says when the sync quarantined records of its month: how many, and per currency the
statement's cost against the API's usage (what the invoice is built from), in the XLSX and in what
`cdr report finance` prints; a clean month says nothing more.

Two sandbox worlds synced for October over a real socket: `faulty` serves malformed records, `clean` none.
The expected figures come from the sandbox's own export of the same world (its records and its malformed
ones as served), never from the warehouse.
"""

from __future__ import annotations

import asyncio
import csv
import json
import zipfile
from xml.etree import ElementTree
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipelines.dates import Window
from pipelines.lake import Lake
from pipelines.models import build, warehouse_path
from pipelines.opentact import api
from pipelines.opentact.client import ClientConfig, OpentactClient
from pipelines.reports import COMBINED_COLUMNS, FINANCE_COLUMNS, QuarantineNote, export_finance
from pipelines.settings import Settings
from pipelines.sync import sync
from sandbox.export import export_window
from sandbox.testing import TEST_API_KEY, running_sandbox
from sandbox.world import World
from tests.fixtures.cli import run_cdr
from tests.fixtures.landed import land
from tests.test_accounts_models import _under_accounts

MONTH = "2026-10"
OCTOBER = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
NOW = datetime(2026, 11, 2, tzinfo=UTC)
VOLUMES = {"calls_per_day": 60, "messages_per_day": 30}
WORLDS = {"faulty": {"seed": 3, "malformed_rate": 0.01}, "clean": {"seed": 5, "malformed_rate": 0.0}}
SEE_RECORDS = "the records: cdr sql \"select * from stg_quarantine where utc_date between '2026-10-01' and '2026-10-31'"


async def _sync(url: str, data_dir: Path) -> None:
    config = ClientConfig(
        base_url=url, api_key=SecretStr(TEST_API_KEY), page_size=250, backoff_base_secs=0.02,
        settle_lag=timedelta(minutes=2),
    )
    async with OpentactClient(config) as client:
        assert (await sync(list(api.RECORD_TYPES), OCTOBER, Settings(data_dir=data_dir), client, NOW, "run-1")).ok


def _truth(export: Path) -> dict:
    """The sandbox's export of October -> the statement's cost per currency (the valid records), the API's (every
    record served, the malformed ones too) and how many records were malformed."""
    statement: dict[str, Decimal] = defaultdict(Decimal)
    for kind in ("cdrs", "mdrs"):
        for line in (export / f"{kind}.jsonl").read_text().splitlines():
            record = json.loads(line)
            statement[record["currency"]] += Decimal(record["cost"])
    usage = dict(statement)
    malformed = [json.loads(line)["record"] for line in (export / "malformed.jsonl").read_text().splitlines()]
    for record in malformed:
        usage[record["currency"]] += Decimal(record["cost"])
    return {"statement": statement, "usage": usage, "malformed": len(malformed)}


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    """{world: (its data dir, synced and built; its truth)}, and "both": faulty as account a, clean as b."""
    root = tmp_path_factory.mktemp("finance-quarantine")
    built = {}
    for name, faults in WORLDS.items():
        data_dir = root / name
        with running_sandbox(start="2026-10-01", now="2026-11-02T00:00:00Z", **VOLUMES, **faults) as url:
            asyncio.run(_sync(url, data_dir))
        build(data_dir, now=NOW)
        world = World(start=date(2026, 10, 1), **VOLUMES, **faults)
        export_window(world, NOW, OCTOBER.start, OCTOBER.end, root / f"{name}-export")
        built[name] = (data_dir, _truth(root / f"{name}-export"))
    both = root / "both"
    for account, name in (("a", "faulty"), ("b", "clean")):
        _under_accounts(built[name][0], both, (account,))
        land(both, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", account=account)
    build(both, now=NOW)
    return built | {"both": (both, {})}


def _export(data_dir: Path, out: Path, account: str | None = None):
    return export_finance(warehouse_path(data_dir), MONTH, out, lake=Lake(data_dir), account=account, now=NOW)


def _costs(path: Path, columns: tuple[str, ...]) -> dict[str, Decimal]:
    """A statement CSV -> its cost per currency (the account rows only, over a combined statement)."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == columns
        costs: dict[str, Decimal] = defaultdict(Decimal)
        for row in reader:
            if not row.get("account", "").startswith("("):
                costs[row["currency"]] += Decimal(row["cost"])
    return dict(costs)


def _sheet_strings(path: Path) -> list[str]:
    """A workbook -> the texts of its cells, in the order first written."""
    with zipfile.ZipFile(path) as book:
        root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
    return [node.text or "" for node in root.iter("{http://schemas.openxmlformats.org/spreadsheetml/2006/main}t")]


def _holds_lines(path: Path, lines: tuple[str, ...]) -> bool:
    """Whether a workbook's cells hold `lines`, one after another."""
    texts = _sheet_strings(path)
    return any(tuple(texts[at:at + len(lines)]) == lines for at in range(len(texts)))


def _gap_line(currency: str, statement: Decimal, usage: Decimal) -> str:
    """What the note says of a currency whose difference the quarantine explains, from the export's figures
    (written as the statement writes money: exact, to the 9 decimals the warehouse keeps)."""
    nano = Decimal("1e-9")
    statement, usage = statement.quantize(nano), usage.quantize(nano)
    return (
        f"{currency}: statement {statement:f}, API usage {usage:f}, "
        f"difference {usage - statement:f}: the quarantined records' cost"
    )


def test_the_faulty_world_has_a_gap_the_quarantine_explains(worlds):
    # the premise of the tests below, from the export alone
    truth = worlds["faulty"][1]
    assert truth["malformed"] > 0 and truth["usage"] != truth["statement"]
    assert worlds["clean"][1]["malformed"] == 0


def test_one_accounts_statement_says_what_was_quarantined_and_the_api_usage_against_it(worlds, tmp_path):
    data_dir, truth = worlds["faulty"]
    export = _export(data_dir, tmp_path)
    # the CSV is the statement as ever: its columns, and costs that are the valid records' alone
    assert _costs(export.files[0], FINANCE_COLUMNS) == truth["statement"]
    assert export.quarantined[0].startswith(f"quarantined: {truth['malformed']} records of {MONTH} set aside")
    assert export.quarantined[1:-1] == tuple(
        _gap_line(currency, truth["statement"][currency], truth["usage"][currency]) for currency in sorted(truth["usage"])
    )
    assert export.quarantined[-1].startswith(SEE_RECORDS) and "account =" not in export.quarantined[-1]
    # the XLSX holds every line below the table
    assert _holds_lines(export.files[1], export.quarantined)


def test_cdr_report_finance_prints_the_note_under_its_line(worlds, tmp_path, capsys, monkeypatch):
    data_dir, truth = worlds["faulty"]
    monkeypatch.setenv("CDR_DATA_DIR", str(data_dir))
    code, out, err = run_cdr(capsys, monkeypatch, "report", "finance", "--month", MONTH, "--out", str(tmp_path))
    assert code == 0, err
    wrote, *note = out.splitlines()
    assert wrote.startswith("wrote ")
    assert note[0].startswith(f"quarantined: {truth['malformed']} records of {MONTH}")
    eur = truth["statement"]["EUR"], truth["usage"]["EUR"]
    assert _gap_line("EUR", *eur) in note
    assert note[-1].startswith(SEE_RECORDS)
    assert TEST_API_KEY not in out + err


def test_a_combined_statement_names_the_account_whose_records_were_quarantined(worlds, tmp_path):
    faulty, clean = worlds["faulty"][1], worlds["clean"][1]
    export = _export(worlds["both"][0], tmp_path)
    assert export.columns == COMBINED_COLUMNS and export.accounts == ("a", "b")
    statement = {c: faulty["statement"].get(c, 0) + clean["statement"].get(c, 0) for c in faulty["usage"]}
    usage = {c: faulty["usage"].get(c, 0) + clean["usage"].get(c, 0) for c in faulty["usage"]}
    assert _costs(export.files[0], COMBINED_COLUMNS) == statement
    count = faulty["malformed"]
    assert export.quarantined[0].startswith(f"quarantined: {count} records of {MONTH} (a {count}) set aside")
    assert export.quarantined[1:-1] == tuple(_gap_line(c, statement[c], usage[c]) for c in sorted(usage))
    assert export.quarantined[-1].startswith(SEE_RECORDS)
    assert _holds_lines(export.files[1], export.quarantined)


def test_a_combined_statement_of_many_accounts_names_the_few_with_the_most_quarantined():
    # A reseller's 150 accounts each with a few records set aside made a 2.5 KB line: how many accounts, and the
    # three with the most (ties by name), within the one line the XLSX, the output and the finance flow share.
    counts = {f"c{n:03d}": 2 + n % 3 for n in range(12)} | {"c005": 9, "c010": 9}
    note = QuarantineNote(MONTH, "UTC", True, tuple(sorted(counts.items())), (), combined=True)
    assert note.lines()[0] == (
        f"quarantined: {sum(counts.values())} records of {MONTH} in 12 accounts (most: c005 9, c010 9, c002 4, ...) "
        "set aside by the sync as malformed are not in this statement; the API's usage (the invoice's basis) counts them"
    )
    # up to SHOWN_ACCOUNTS accounts, each is named as before
    ten = tuple(sorted(counts.items()))[:10]
    named = ", ".join(f"{name} {count}" for name, count in ten)
    assert QuarantineNote(MONTH, "UTC", True, ten, (), combined=True).lines()[0].startswith(
        f"quarantined: {sum(count for _, count in ten)} records of {MONTH} ({named}) set aside"
    )


def test_one_account_of_several_gets_its_own_note_and_query(worlds, tmp_path):
    truth = worlds["faulty"][1]
    export = _export(worlds["both"][0], tmp_path, account="a")
    assert export.quarantined[0].startswith(f"quarantined: {truth['malformed']} records of {MONTH} set aside")
    assert export.quarantined[1:-1] == tuple(
        _gap_line(currency, truth["statement"][currency], truth["usage"][currency]) for currency in sorted(truth["usage"])
    )
    assert export.quarantined[-1].endswith("and not is_in_lake and account = 'a'\"; each day's reconciliation: "
                                           "rpt_reconciliation_daily")


@pytest.mark.parametrize("world, account", [("clean", None), ("both", "b")])
def test_a_clean_month_says_nothing_more(worlds, tmp_path, capsys, monkeypatch, world, account):
    data_dir, _ = worlds[world]
    monkeypatch.setenv("CDR_DATA_DIR", str(data_dir))
    args = ("--account", account) if account else ()
    code, out, err = run_cdr(capsys, monkeypatch, "report", "finance", "--month", MONTH, "--out", str(tmp_path), *args)
    assert code == 0, err
    assert len(out.splitlines()) == 1 and "quarantin" not in out
    assert not any("quarantin" in text for text in _sheet_strings(next(tmp_path.glob("*.xlsx"))))
