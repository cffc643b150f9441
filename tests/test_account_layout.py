"""Accounts in the lake: side by side and scoped; the single-account layout of earlier releases moved in place.

The old data dir is a real sandbox sync laid out as earlier releases wrote it (`to_old_layout`:
`lake/<dataset>/date=...`, `quarantine/<kind>/date=...`, `state/<kind>/...`, files untouched).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath

import polars as pl
import pytest
from pydantic import SecretStr

from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.dates import Window, format_utc
from pipelines.errors import LakeError, UsageError
from pipelines.lake import AccountLake, Lake
from pipelines.models.incremental import _fingerprints, dirty_days, fingerprints
from pipelines.opentact import api
from pipelines.opentact.client import ClientConfig, OpentactClient
from pipelines.settings import Settings
from pipelines.state import begin_run, kind_dir, open_checkpoints, read_state
from pipelines.sync import sync
from sandbox.testing import TEST_API_KEY, running_sandbox
from tests.fixtures.cli import run_cdr
from tests.test_read_only_data_dir import SETPRIV, read_only, run_unprivileged, tree
from tests.test_sync_lock import holder

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2026, 3, 1)
NOW = datetime(2026, 10, 8, 6, 0, tzinfo=UTC)
SYNCED = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 6, tzinfo=UTC))
WORLD = {"seed": 7, "calls_per_day": 60, "messages_per_day": 30, "malformed_rate": 0.05}
# An unfinished run, so the old layout has a checkpoint to carry over too.
UNFINISHED = Window(datetime(2026, 10, 6, tzinfo=UTC), datetime(2026, 10, 7, tzinfo=UTC))
SCHEMA = {"id": pl.String()}


@pytest.fixture(params=["local", "memory"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    """A lake on local disk and one on fsspec's in-memory object store."""
    if request.param == "local":
        return Lake(tmp_path / "data")
    return Lake(f"memory://accounts-{uuid.uuid4().hex}")


# -- accounts side by side ---------------------------------------------------------------------------


def test_two_accounts_partitions_quarantine_and_state_stay_apart_and_list_together(lake: Lake) -> None:
    acme, default = lake.for_account("acme"), lake.for_account(DEFAULT_ACCOUNT)
    acme.write_partition("cdrs", DAY, pl.DataFrame({"id": ["a1"]}))
    acme.write_partition("cdrs", DAY + timedelta(days=1), pl.DataFrame({"id": ["a2"]}))
    default.write_partition("cdrs", DAY, pl.DataFrame({"id": ["d1"]}))
    default.write_partition("usage_mdrs", DAY, pl.DataFrame({"id": ["u1"]}))
    acme.write_bytes(f"{acme.quarantine_dir('mdrs')}/date=2026-03-01/run-1-x.jsonl", b"{}\n")
    default.write_bytes(f"{default.quarantine_dir('cdrs')}/date=2026-03-02/run-1-y.jsonl", b"{}\n")

    assert lake.partition_files("cdrs") == [
        "lake/cdrs/account=acme/date=2026-03-01/data.parquet",
        "lake/cdrs/account=acme/date=2026-03-02/data.parquet",
        "lake/cdrs/account=default/date=2026-03-01/data.parquet",
    ]
    assert lake.partition_days("cdrs") == [DAY, DAY + timedelta(days=1)]
    assert acme.partition_days("cdrs") == [DAY, DAY + timedelta(days=1)]
    assert default.partition_days("cdrs") == [DAY] and acme.partition_days("usage_mdrs") == []
    assert acme.read_partition("cdrs", DAY, SCHEMA)["id"].to_list() == ["a1"]
    assert default.read_partition("cdrs", DAY, SCHEMA)["id"].to_list() == ["d1"]
    assert lake.quarantine_files() == [
        "quarantine/cdrs/account=default/date=2026-03-02/run-1-y.jsonl",
        "quarantine/mdrs/account=acme/date=2026-03-01/run-1-x.jsonl",
    ]
    assert lake.accounts() == ["acme", DEFAULT_ACCOUNT]
    assert [Lake.partition_account(f) for f in lake.partition_files("cdrs")] == ["acme", "acme", DEFAULT_ACCOUNT]

    window = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
    begin_run(acme, "cdrs", window, [window], "run-1").complete(window.end)
    assert read_state(acme, "cdrs").high_water_mark == window.end
    assert read_state(default, "cdrs").high_water_mark is None
    assert lake.exists("state/account=acme/cdrs/landed.json")
    assert acme.delete_partition("cdrs", DAY) and default.partition_days("cdrs") == [DAY]


def test_a_day_is_dirty_when_its_partition_changed_in_any_account(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    for account in ("acme", DEFAULT_ACCOUNT):
        lake.for_account(account).write_partition("cdrs", DAY, pl.DataFrame({"id": [account]}))
    before = fingerprints(lake)
    assert sorted(before) == [
        "lake/cdrs/account=acme/date=2026-03-01/data.parquet", "lake/cdrs/account=default/date=2026-03-01/data.parquet"
    ]
    lake.for_account("acme").write_partition("cdrs", DAY + timedelta(days=1), pl.DataFrame({"id": ["new"]}))
    lake.for_account("acme").write_partition("cdrs", DAY, pl.DataFrame({"id": ["re-rated"]}))
    assert dirty_days(before, fingerprints(lake)) == {DAY, DAY + timedelta(days=1)}


def test_a_manifest_reads_by_partition_path_and_one_of_an_earlier_format_as_none() -> None:
    old = json.dumps({"cdrs": {"2026-03-01": "1:2:3"}, "mdrs": {}})
    assert _fingerprints(old) == {}
    new = json.dumps({"lake/cdrs/account=acme/date=2026-03-01/data.parquet": "1:2:3"})
    assert _fingerprints(new) == {"lake/cdrs/account=acme/date=2026-03-01/data.parquet": "1:2:3"}


@pytest.mark.parametrize("name", ["Acme", "", "acme corp", "../x", "a/b", "accounts=x"])
def test_a_name_no_account_can_have_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match=r"^account .*: an account name is lowercase letters, digits"):
        Lake(tmp_path).for_account(name)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_no_account_can_have_or_a_file_for_an_account_is_refused(lake: Lake) -> None:
    lake.write_bytes("lake/cdrs/account=Acme/date=2026-03-01/data.parquet", b"PAR1")
    with pytest.raises(LakeError, match=r"lake/cdrs/account=Acme is no account's folder \(an account name is lowercase"):
        lake.partition_files("cdrs")
    lake.write_bytes("quarantine/mdrs/account=a b/date=2026-03-01/r.jsonl", b"{}\n")
    with pytest.raises(LakeError, match=r"quarantine/mdrs/account=a b is no account's folder"):
        lake.quarantine_files()
    if lake.is_local:
        lake.write_bytes("lake/mdrs/account=acme", b"a file")
        with pytest.raises(LakeError) as error:
            lake.partition_files("mdrs")
        assert str(error.value) == (
            f"{lake.display('lake/mdrs/account=acme')} is a file where the lake keeps an account's folder: move it out "
            "of the lake and re-sync the days it held with "
            "`cdr sync --account acme --types mdrs --tz UTC --start YYYY-MM-DD --end YYYY-MM-DD`"
        )


def test_a_day_folder_outside_any_account_after_the_move_is_refused_not_skipped(lake: Lake) -> None:
    lake.for_account(DEFAULT_ACCOUNT).partition_days("cdrs")  # the layout is checked (and moved) once per lake
    lake.write_bytes("lake/cdrs/date=2026-03-01/data.parquet", b"PAR1")
    with pytest.raises(LakeError, match=r"lake/cdrs/date=2026-03-01 is outside any account's folder, as earlier releases"):
        lake.partition_files("cdrs")
    assert Lake(lake.url).partition_files("cdrs") == ["lake/cdrs/account=default/date=2026-03-01/data.parquet"]


# -- the layout of earlier releases -----------------------------------------------------------------


def to_old_layout(data: Path) -> None:
    """A data dir holding only the default account -> the layout earlier releases wrote, its files untouched."""
    into = f"account={DEFAULT_ACCOUNT}"
    for folder in sorted((*data.glob(f"lake/*/{into}"), *data.glob(f"quarantine/*/{into}"))):
        for day in sorted(folder.iterdir()):
            day.rename(folder.parent / day.name)
        folder.rmdir()
    for kind in sorted((data / "state" / into).iterdir()):
        kind.rename(data / "state" / kind.name)
    (data / "state" / into).rmdir()


def without_account(relative: str) -> str:
    """A path of either layout -> the same path in the old one."""
    return "/".join(part for part in PurePosixPath(relative).parts if part != f"account={DEFAULT_ACCOUNT}")


def files(data: Path) -> dict[str, tuple[str, int]]:
    """Every file of a data dir (by its old-layout path) -> its content's hash and its inode (a rename keeps it)."""
    return {
        without_account(str(path.relative_to(data))): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_ino)
        for path in sorted(data.rglob("*"))
        if path.is_file() and path.name != ".sync.lock"  # a killed migration's: goes with the next one
    }


def old_entries(data: Path) -> list[str]:
    """What of the old layout a data dir still has."""
    found = [*data.glob("lake/*/date=*"), *data.glob("quarantine/*/date=*"), *data.glob("state/cdrs"), *data.glob("state/mdrs")]
    return sorted(str(path.relative_to(data)) for path in found)


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five UTC days of both record types synced from the sandbox (some records malformed), and an unfinished run."""
    data_dir = tmp_path_factory.mktemp("synced") / "data"
    with running_sandbox(start="2026-10-01", now=format_utc(NOW), **WORLD) as url:
        assert asyncio.run(_sync(url, data_dir, SYNCED, "run-a")).ok
    lake = Lake(data_dir).for_account(DEFAULT_ACCOUNT)
    for kind in api.RECORD_TYPES:
        begin_run(lake, kind, UNFINISHED, [UNFINISHED], "run-b").mark_done(UNFINISHED)
    return data_dir


async def _sync(url: str, data_dir: Path, window: Window | None, run_id: str):
    config = ClientConfig(
        base_url=url, api_key=SecretStr(TEST_API_KEY), page_size=100, backoff_base_secs=0.02,
        settle_lag=timedelta(minutes=2),
    )
    async with OpentactClient(config) as client:
        return await sync(list(api.RECORD_TYPES), window, Settings(data_dir=data_dir), client, NOW, run_id)


@pytest.fixture
def old(synced: Path, tmp_path: Path) -> Path:
    """This test's own copy of the synced data dir, in the layout earlier releases wrote."""
    data_dir = Path(shutil.copytree(synced, tmp_path / "old"))
    to_old_layout(data_dir)
    assert old_entries(data_dir) and not list(data_dir.rglob("account=*"))
    return data_dir


def status_json(capsys, monkeypatch, data_dir: Path) -> dict:
    code, out, err = run_cdr(capsys, monkeypatch, "status", "--json", "--data-dir", str(data_dir))
    assert (code, err) == (0, ""), err
    document = json.loads(out)
    document.pop("data_dir")
    document["dashboards"].pop("site")
    return document


def assert_moved_whole(old_dir: Path, before: dict[str, tuple[str, int]]) -> None:
    """Every file where the new layout keeps it, the same bytes, the same file (renamed), nothing else but new ones."""
    assert old_entries(old_dir) == []
    after = files(old_dir)
    assert {path: after.get(path) for path in before} == before
    assert not list(old_dir.rglob(".sync.lock"))


def test_status_moves_an_old_data_dir_and_reports_what_the_same_data_dir_of_this_release_does(
    synced, old, capsys, monkeypatch
):
    before = files(old)
    document = status_json(capsys, monkeypatch, old)
    assert_moved_whole(old, before)
    assert files(old) == before
    assert document == status_json(capsys, monkeypatch, synced)
    assert document["cdrs"]["quarantined"] > 0 and document["cdrs"]["high_water_mark"] == format_utc(SYNCED.end)
    lake = Lake(old).for_account(DEFAULT_ACCOUNT)
    for kind in api.RECORD_TYPES:
        (run,) = open_checkpoints(lake, kind)
        assert (run.window, run.done, run.run_ids) == (UNFINISHED, {UNFINISHED}, ("run-b",))


def test_build_moves_an_old_data_dir_and_builds_the_same_warehouse_rows(synced, old, tmp_path, capsys, monkeypatch):
    reference = Path(shutil.copytree(synced, tmp_path / "reference"))
    before = files(old)
    for data_dir in (old, reference):
        code, _, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(data_dir))
        assert code == 0, err
    assert_moved_whole(old, before)
    query = "select count(*) as n, count(distinct id) as ids, sum(cost) as cost from calls"
    for sql in (query, query.replace("calls", "messages"), "select count(*) as n from lake_quarantine"):
        results = [run_cdr(capsys, monkeypatch, "sql", sql, "--format", "json", "--data-dir", str(d)) for d in (old, reference)]
        assert results[0] == results[1] and results[0][0] == 0 and json.loads(results[0][1])[0]["n"] > 0


def test_an_incremental_sync_moves_an_old_data_dir_and_continues_from_its_mark(old, synced):
    marks = {kind: read_state(Lake(synced).for_account(DEFAULT_ACCOUNT), kind).high_water_mark for kind in api.RECORD_TYPES}
    before = files(old)
    with running_sandbox(start="2026-10-01", now=format_utc(NOW), **WORLD) as url:
        report = asyncio.run(_sync(url, old, None, "run-c"))
    assert report.ok
    # Only the lookback before the mark is fetched again: nothing earlier is re-synced.
    assert {k.kind: k.window.start for k in report.kinds} == {kind: marks[kind] - timedelta(days=3) for kind in marks}
    assert old_entries(old) == []
    after = files(old)
    early = [path for path in before if path.startswith("lake/") and "date=2026-10-0" in path
             and Lake.partition_day(path) < (SYNCED.end - timedelta(days=3)).date()]
    assert early and all(after[path] == before[path] for path in early)
    quarantined = [path for path in before if path.startswith("quarantine/")]
    assert quarantined and all(after[path] == before[path] for path in quarantined)


def test_the_finance_report_moves_an_old_data_dir_and_reads_its_state(synced, old, tmp_path, capsys, monkeypatch):
    reference = Path(shutil.copytree(synced, tmp_path / "reference"))
    assert run_cdr(capsys, monkeypatch, "build", "--data-dir", str(reference))[0] == 0
    shutil.copy(reference / "warehouse.duckdb", old / "warehouse.duckdb")
    before = files(old)
    outputs = []
    for data_dir in (old, reference):
        out = tmp_path / f"out-{data_dir.name}"
        code, said, err = run_cdr(
            capsys, monkeypatch, "report", "finance", "--month", "2026-10", "--no-xlsx", "--allow-partial", "--out", str(out),
            "--data-dir", str(data_dir),
        )
        assert code == 0, err
        outputs.append((said.replace(str(out), "<out>"), (out / "finance_2026-10.csv").read_bytes()))
    assert "partial: covers 2026-10-01 to 2026-10-06" in outputs[0][0]
    assert outputs[0] == outputs[1]
    assert_moved_whole(old, before)


def test_moving_twice_changes_nothing_and_a_data_dir_of_this_release_is_left_alone(old, synced):
    entries = len(old_entries(old))
    assert Lake(old).migrate_layout() == entries
    moved = files(old)
    listing = sorted(str(p.relative_to(old)) for p in old.rglob("*"))
    assert Lake(old).migrate_layout() == 0
    assert Lake(old).partition_files("cdrs") and Lake(old).accounts() == [DEFAULT_ACCOUNT]
    assert files(old) == moved and sorted(str(p.relative_to(old)) for p in old.rglob("*")) == listing
    untouched = files(synced)
    assert Lake(synced).migrate_layout() == 0 and files(synced) == untouched


# A migration killed with SIGKILL right after its Nth rename.
_KILLED_MIGRATION = textwrap.dedent(
    """
    import os, signal, sys
    import pipelines.lake as lake_module

    renames = 0
    real_rename = os.rename

    def rename_then_maybe_die(src, dst):
        global renames
        real_rename(src, dst)
        renames += 1
        if renames == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)

    lake_module.os.rename = rename_then_maybe_die
    lake_module.Lake(sys.argv[1]).migrate_layout()
    """
)


@pytest.mark.parametrize("killed_after", [1, 7, -1])
def test_a_migration_killed_half_way_is_finished_by_the_next_reader_which_reads_it_whole(
    synced, old, killed_after, capsys, monkeypatch
):
    before = files(old)
    entries = len(old_entries(old))
    killed_after = killed_after if killed_after > 0 else entries + killed_after  # -1: all but the last
    assert 0 < killed_after < entries
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_MIGRATION, str(old), str(killed_after)], cwd=ROOT, capture_output=True, timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert len(old_entries(old)) == entries - killed_after  # half-way: both layouts at once
    assert files(old) == before  # each entry whole in one layout or the other
    # The next reader moves the rest before it lists: it never reads a half-moved lake.
    assert Lake(old).partition_files("cdrs") == Lake(synced).partition_files("cdrs")
    assert_moved_whole(old, before)
    assert status_json(capsys, monkeypatch, old) == status_json(capsys, monkeypatch, synced)


def test_a_data_dir_another_sync_holds_is_not_moved_and_the_command_says_it_is_busy(old, capsys, monkeypatch):
    before = sorted(str(p.relative_to(old)) for p in old.rglob("*"))
    with holder(old) as held:
        code, out, err = run_cdr(capsys, monkeypatch, "status", "--data-dir", str(old))
        assert (code, out) == (1, "")
        assert err.startswith(f"error: another sync holds the data dir {old} (lock file {old}/.sync.lock; held by pid ")
        assert err.count("\n") == 1
        assert sorted(str(p.relative_to(old)) for p in old.rglob("*") if p.name != ".sync.lock") == before
        assert held.stdin is not None
        held.stdin.close()
        assert held.wait(timeout=30) == 0
    assert run_cdr(capsys, monkeypatch, "status", "--data-dir", str(old))[0] == 0
    assert old_entries(old) == []


def test_a_data_dir_of_this_release_is_read_while_a_sync_holds_it(synced, tmp_path, capsys, monkeypatch):
    data_dir = Path(shutil.copytree(synced, tmp_path / "data"))
    with holder(data_dir) as held:
        assert run_cdr(capsys, monkeypatch, "status", "--data-dir", str(data_dir))[0] == 0
        assert held.stdin is not None
        held.stdin.close()
        assert held.wait(timeout=30) == 0


def test_a_read_only_old_data_dir_is_refused_in_one_line_saying_how_to_move_it(old):
    if os.geteuid() == 0 and SETPRIV is None:
        pytest.skip("as root, needs setpriv to run without the right to write anywhere")
    read_only(old)
    try:
        before = tree(old.parent)
        done = run_unprivileged("status", "--data-dir", str(old))
        assert (done.returncode, done.stdout) == (1, ""), done.stderr
        assert done.stderr == (
            f"error: {old}/lake/cdrs/date=2026-10-01 is in the single-account layout of earlier releases, which cannot "
            f"be moved to the account default here (Permission denied): run `cdr status --data-dir {old}` once as a "
            "user who can write the data dir\n"
        )
        assert tree(old.parent) == before
    finally:
        for path in (old, *old.rglob("*")):
            path.chmod(path.stat().st_mode | 0o200)


def test_an_entry_in_both_layouts_is_refused_naming_both_and_nothing_moves(old):
    day = "lake/mdrs/date=2026-10-02"
    (old / "lake/mdrs/account=default").mkdir()
    shutil.copytree(old / day, old / "lake/mdrs/account=default/date=2026-10-02")
    before = files(old)
    with pytest.raises(LakeError) as error:
        Lake(old).partition_files("cdrs")
    assert str(error.value) == (
        f"{old}/{day} (the layout of earlier releases) and {old}/lake/mdrs/account=default/date=2026-10-02 both exist: "
        "move the one not to keep out of the data dir, then run the command again"
    )
    # Nothing is lost: the moves before the clash stay done, the clashing entry stays where it was.
    assert (old / day / "data.parquet").is_file() and (old / "lake/mdrs/account=default/date=2026-10-02/data.parquet").is_file()
    assert {path: files(old).get(path) for path in before if "mdrs" not in path} == {
        path: value for path, value in before.items() if "mdrs" not in path
    }


def test_an_old_layout_on_an_object_store_moves_by_fs_mv_and_a_crash_copy_is_dropped() -> None:
    lake = Lake(f"memory://old-{uuid.uuid4().hex}")
    old = {
        "lake/cdrs/date=2026-03-01/data.parquet": b"day 1",
        "lake/usage_cdrs/date=2026-03-01/data.parquet": b"usage 1",
        "quarantine/mdrs/date=2026-03-02/run-1-a.jsonl": b"{}\n",
        "state/cdrs/landed.json": b"{}",
        "state/cdrs/runs/a--b.json": b"{}",
        "state/syncs.json": b"[]",
    }
    for relative, data in old.items():
        lake.write_bytes(relative, data)
    # What a move killed between its copy and its delete leaves: the object in both places.
    lake.write_bytes("lake/cdrs/account=default/date=2026-03-01/data.parquet", b"day 1")
    assert lake.partition_files("cdrs") == ["lake/cdrs/account=default/date=2026-03-01/data.parquet"]
    moved = {
        "lake/cdrs/account=default/date=2026-03-01/data.parquet": b"day 1",
        "lake/usage_cdrs/account=default/date=2026-03-01/data.parquet": b"usage 1",
        "quarantine/mdrs/account=default/date=2026-03-02/run-1-a.jsonl": b"{}\n",
        "state/account=default/cdrs/landed.json": b"{}",
        "state/account=default/cdrs/runs/a--b.json": b"{}",
        "state/syncs.json": b"[]",
    }
    found = [relative for top in ("lake", "quarantine", "state") for relative in lake.list_files(top)]
    assert {relative: lake.read_bytes(relative) for relative in found} == moved
    assert Lake(lake.url).migrate_layout() == 0

    clash = Lake(f"memory://clash-{uuid.uuid4().hex}")
    clash.write_bytes("lake/cdrs/date=2026-03-01/data.parquet", b"old")
    clash.write_bytes("lake/cdrs/account=default/date=2026-03-01/data.parquet", b"new")
    with pytest.raises(LakeError, match=r"date=2026-03-01 \(the layout of earlier releases\) and .* both exist"):
        clash.partition_files("cdrs")
    assert clash.read_bytes("lake/cdrs/date=2026-03-01/data.parquet") == b"old"


def test_an_account_lake_is_a_lake_of_the_same_data_dir(tmp_path: Path) -> None:
    acme = Lake(tmp_path).for_account("acme")
    assert isinstance(acme, AccountLake) and repr(acme) == f"AccountLake({str(tmp_path)!r}, 'acme')"
    assert acme.for_account("globex").account == "globex"
    assert (acme.dataset_dir("cdrs"), acme.quarantine_dir("cdrs"), kind_dir(acme.account, "cdrs")) == (
        "lake/cdrs/account=acme", "quarantine/cdrs/account=acme", "state/account=acme/cdrs"
    )
