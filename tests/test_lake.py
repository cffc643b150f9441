"""The lake's storage: layout, atomic writes (also under kill -9), fsspec object stores."""

from __future__ import annotations

import ctypes
import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import uuid
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.accounts import DEFAULT_ACCOUNT
import pipelines.durable as durable_module
from pipelines.errors import LakeError, UsageError
from pipelines.lake import AccountLake, Lake
from tests.fixtures.disk import record_disk_events
from tests.fixtures.processes import reap

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = {"id": pl.String(), "n": pl.Int64()}
DAY = date(2026, 3, 1)


def frame(tag: str, rows: int = 3) -> pl.DataFrame:
    """A small frame whose every id carries the tag, so a reader can tell versions apart."""
    return pl.DataFrame({"id": [f"{tag}-{i}" for i in range(rows)], "n": list(range(rows))}, schema=SCHEMA)


@pytest.fixture(params=["local", "memory"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> AccountLake:
    """The default account of a lake on local disk and of one on fsspec's in-memory object store."""
    if request.param == "local":
        return Lake(tmp_path / "data").for_account(DEFAULT_ACCOUNT)
    return Lake(f"memory://lake-{uuid.uuid4().hex}").for_account(DEFAULT_ACCOUNT)


def test_partition_paths_follow_the_binding_layout() -> None:
    lake = Lake("data")
    assert lake.for_account(DEFAULT_ACCOUNT).partition("cdrs", DAY) == "lake/cdrs/account=default/date=2026-03-01/data.parquet"
    assert lake.for_account("acme").partition("usage_mdrs", DAY) == "lake/usage_mdrs/account=acme/date=2026-03-01/data.parquet"
    with pytest.raises(ValueError, match="unknown lake dataset 'calls'"):
        lake.for_account(DEFAULT_ACCOUNT).partition("calls", DAY)


def test_paths_stay_inside_the_data_dir(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert lake.path("state/cdrs/landed.json") == f"{tmp_path}/state/cdrs/landed.json"
    for bad in ("../x", "state/../../x", "", "/etc/passwd"):
        with pytest.raises(ValueError, match="not a relative path"):
            lake.path(bad)


def test_local_lake_is_the_default_filesystem_and_repr_names_only_the_url(tmp_path: Path) -> None:
    assert Lake(tmp_path).is_local
    memory = Lake("memory://somewhere")
    assert not memory.is_local
    assert repr(memory) == "Lake('memory://somewhere')"
    assert memory.display("state/x.json") == "memory://somewhere/state/x.json"


def test_bytes_round_trip_replace_list_and_delete(lake: AccountLake) -> None:
    assert lake.read_bytes("state/a.json") is None
    assert lake.write_bytes("state/a.json", b"one") == 3
    lake.write_bytes("state/a.json", b"two!")
    lake.write_bytes("state/sub/b.json", b"b")
    assert lake.read_bytes("state/a.json") == b"two!"
    assert lake.exists("state/a.json")
    assert lake.list_files("state") == ["state/a.json", "state/sub/b.json"]
    assert lake.list_files("nowhere") == []
    assert lake.delete("state/a.json") is True
    assert lake.delete("state/a.json") is False
    assert lake.list_files("state") == ["state/sub/b.json"]


def test_a_file_identity_holds_until_the_file_is_rewritten(lake: AccountLake) -> None:
    lake.write_bytes("state/x.json", b"one")
    first = lake.identity("state/x.json")
    assert lake.identity("state/x.json") == first
    lake.write_bytes("state/x.json", b"other")
    second = lake.identity("state/x.json")
    assert second != first
    if lake.is_local:  # the same bytes again are still a new file
        lake.write_bytes("state/x.json", b"other")
        assert lake.identity("state/x.json") != second


def test_partitions_round_trip_with_exact_schema(lake: AccountLake) -> None:
    written = frame("a")
    size = lake.write_partition("cdrs", DAY, written)
    assert size > 0
    assert lake.read_partition("cdrs", DAY, SCHEMA).equals(written)
    assert lake.read_partition("cdrs", date(2026, 3, 2), SCHEMA) is None
    lake.write_partition("cdrs", date(2026, 2, 28), frame("b"))
    assert lake.partition_days("cdrs") == [date(2026, 2, 28), DAY]
    assert lake.partition_days("mdrs") == []
    assert lake.delete_partition("cdrs", DAY) is True
    assert lake.partition_days("cdrs") == [date(2026, 2, 28)]


def test_partitions_are_zstd_parquet(tmp_path: Path) -> None:
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    lake.write_partition("mdrs", DAY, frame("a"))
    path = lake.path(lake.partition("mdrs", DAY))
    codecs = duckdb.sql(f"select distinct compression from parquet_metadata('{path}')").fetchall()
    assert codecs == [("ZSTD",)]


def test_a_corrupt_partition_is_an_error_naming_the_file(lake: AccountLake) -> None:
    lake.write_bytes(lake.partition("cdrs", DAY), b"PAR1 this is not parquet")
    with pytest.raises(LakeError, match=r"lake/cdrs/account=default/date=2026-03-01/data\.parquet is unreadable .*re-sync"):
        lake.read_partition("cdrs", DAY, SCHEMA)


def test_a_partition_with_other_columns_is_an_error_naming_the_file(lake: AccountLake) -> None:
    lake.write_partition("cdrs", DAY, frame("a").rename({"n": "m"}))
    with pytest.raises(LakeError, match=r"date=2026-03-01/data\.parquet does not hold the cdrs columns the sync writes \(missing n; unexpected m\)"):
        lake.read_partition("cdrs", DAY, SCHEMA)


def test_a_failed_rename_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    lake.write_partition("cdrs", DAY, frame("old"))

    def no_rename(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(LakeError, match=r"^cannot write .*/lake/cdrs/account=default/date=2026-03-01/data\.parquet \(disk full\); fix that"):
        lake.write_partition("cdrs", DAY, frame("new"))
    with pytest.raises(LakeError, match=r"^cannot write .*/state/x\.json \(disk full\)"):
        lake.write_bytes("state/x.json", b"new")
    assert lake.read_partition("cdrs", DAY, SCHEMA).equals(frame("old"))
    assert sorted(p.name for p in (tmp_path / "lake/cdrs/account=default/date=2026-03-01").iterdir()) == ["data.parquet"]
    assert list((tmp_path / ".staging").iterdir()) == []
    assert not (tmp_path / "state/x.json").exists()


@pytest.mark.parametrize(
    "blocker", ["lake", "lake/cdrs", "lake/cdrs/account=default", "lake/cdrs/account=default/date=2026-03-01"]
)
def test_a_file_where_a_directory_belongs_is_named_by_every_helper(tmp_path: Path, blocker: str) -> None:
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    (tmp_path / blocker).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / blocker).write_bytes(b"not a directory")
    named = rf"^{tmp_path}/{blocker} is a file where the data dir needs a directory; move it out of the data dir$"
    for call in (
        lambda: lake.read_partition("cdrs", DAY, SCHEMA),
        lambda: lake.write_partition("cdrs", DAY, frame("new")),
        lambda: lake.read_bytes(lake.partition("cdrs", DAY)),
        lambda: lake.write_bytes(lake.partition("cdrs", DAY), b"x"),
        lambda: lake.delete_partition("cdrs", DAY),
        lambda: lake.partition_days("cdrs"),
        lambda: lake.check_directories(
            ["lake", "lake/cdrs", "lake/cdrs/account=default", "lake/cdrs/account=default/date=2026-03-01"]
        ),
    ):
        with pytest.raises(LakeError, match=named):
            call()
    assert (tmp_path / blocker).read_bytes() == b"not a directory"


def test_a_directory_where_a_file_belongs_and_a_denied_read_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(tmp_path)
    (tmp_path / "state/cdrs/landed.json").mkdir(parents=True)
    named = rf"^{tmp_path}/state/cdrs/landed\.json is a directory where the data dir needs a file; move it out of the data dir$"
    for call in (
        lambda: lake.read_bytes("state/cdrs/landed.json"),
        lambda: lake.write_bytes("state/cdrs/landed.json", b"{}"),
        lambda: lake.delete("state/cdrs/landed.json"),
    ):
        with pytest.raises(LakeError, match=named):
            call()
    assert list((tmp_path / ".staging").iterdir()) == []

    def denied(path: str) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(lake.fs, "cat_file", denied)
    with pytest.raises(LakeError, match=rf"^cannot read {tmp_path}/state/a\.json \(Permission denied\); make the data dir readable"):
        lake.read_bytes("state/a.json")


def test_the_data_dir_itself_as_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "data").write_bytes(b"")
    with pytest.raises(UsageError, match=rf"^the data dir {tmp_path}/data is a file, not a folder: give --data-dir"):
        Lake(tmp_path / "data").check_directories(["lake"])


def test_the_sweep_removes_temporaries_and_empty_directories_a_killed_writer_left(tmp_path: Path) -> None:
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    lake.write_partition("cdrs", DAY, frame("kept"))
    lake.write_bytes("quarantine/cdrs/account=default/date=2026-03-01/run-a.jsonl", b"{}\n")
    # A writer killed between making the target's directory and renaming its temporary there.
    for left in (
        "lake/cdrs/account=default/date=2026-03-02", "lake/usage_mdrs/account=default/date=2026-03-02",
        "quarantine/mdrs/account=default/date=2026-03-05", "state/account=default/cdrs/runs",
    ):
        (tmp_path / left).mkdir(parents=True)
    (tmp_path / ".staging" / ".data.parquet.0123456789ab.tmp").write_bytes(b"half")
    assert lake.sweep_temporaries() == 1 + 4 + 6  # the temporary, the empty directories and their emptied parents
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        ".staging",
        "lake",
        "lake/cdrs",
        "lake/cdrs/account=default",
        "lake/cdrs/account=default/date=2026-03-01",
        "lake/cdrs/account=default/date=2026-03-01/data.parquet",
        "quarantine",
        "quarantine/cdrs",
        "quarantine/cdrs/account=default",
        "quarantine/cdrs/account=default/date=2026-03-01",
        "quarantine/cdrs/account=default/date=2026-03-01/run-a.jsonl",
        "state",
    ]
    assert lake.read_partition("cdrs", DAY, SCHEMA).equals(frame("kept"))


def test_a_target_on_another_filesystem_is_staged_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    real_replace = os.replace
    renames: list[tuple[str, str]] = []

    def cross_device(src: str, dst: str) -> None:
        renames.append((os.path.dirname(src), os.path.dirname(dst)))
        if os.path.dirname(src) != os.path.dirname(dst):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", cross_device)
    lake.write_partition("cdrs", DAY, frame("new"))
    partition_dir = str(tmp_path / "lake/cdrs/account=default/date=2026-03-01")
    assert renames == [(str(tmp_path / ".staging"), partition_dir), (partition_dir, partition_dir)]
    assert lake.read_partition("cdrs", DAY, SCHEMA).equals(frame("new"))
    assert sorted(p.name for p in Path(partition_dir).iterdir()) == ["data.parquet"]
    assert list((tmp_path / ".staging").iterdir()) == []


# A child process that writes partition versions "a" and "b" (or state bytes) until it dies.
# DIE says where it kills itself with SIGKILL: in the middle of writing the temporary, between
# the temporary being complete and the rename, or right after the rename; "loop" never dies by
# itself and is killed by the parent at a random instant.
_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import polars as pl
    import pipelines.durable as durable_module
    import pipelines.lake as lake_module
    from datetime import date
    from pipelines.lake import Lake

    root, die = sys.argv[1], sys.argv[2]
    lake = Lake(root).for_account("default")
    days = [date(2026, 3, n) for n in range(1, int(sys.argv[3]) + 1)]
    rows = 5_000
    versions = [
        pl.DataFrame({"id": [f"{tag}-{i}" for i in range(rows)], "n": list(range(rows))},
                     schema={"id": pl.String(), "n": pl.Int64()})
        for tag in ("a", "b")
    ]

    def kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if die == "mid-temp":
        def half_write(path, data):
            with open(path, "wb") as handle:
                handle.write(data[: len(data) // 2])
            kill()
        lake_module._write_file = half_write
    elif die == "before-rename":
        durable_module.os.replace = lambda src, dst: kill()
    elif die == "after-rename":
        real_replace = os.replace
        def replace_then_die(src, dst):
            real_replace(src, dst)
            kill()
        durable_module.os.replace = replace_then_die

    print("ready", flush=True)
    step = 1  # version b first: the lake starts with version a
    while True:
        if len(days) == 1:
            lake.write_partition("cdrs", days[0], versions[step % 2])
        else:
            with lake.batch() as batch:  # several days made durable together, as landing writes them
                for day in days:
                    batch.write_partition("cdrs", day, versions[step % 2])
        lake.write_bytes("state/account=default/cdrs/landed.json", b'{"v": "%d"}' % (step % 2) * 500)
        step += 1
    """
)


def _run_writer(root: Path, die: str, kill_after: float | None, days: int = 1) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root), die, str(days)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n", child.stderr.read() if child.stderr else ""
        if kill_after is None:
            child.wait(timeout=60)
        else:
            try:
                child.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=60)
    finally:
        reap(child)
    assert child.returncode == -signal.SIGKILL


def _assert_readers_see_a_whole_version(root: Path, previous: str | None) -> str | None:
    """Every reader sees nothing, version a or version b, never a broken file; -> which version."""
    lake = Lake(root).for_account(DEFAULT_ACCOUNT)
    seen = lake.read_partition("cdrs", DAY, SCHEMA)
    if seen is None:
        assert previous is None
        return None
    tag = seen["id"][0].split("-")[0]
    assert seen.equals(frame(tag, 5_000))
    # What the SQL models do: a hive glob over the dataset, which must skip temporaries.
    glob = f"{root}/lake/cdrs/*/*/*.parquet"
    assert duckdb.sql(f"select count(*), count(distinct id) from read_parquet('{glob}')").fetchall() == [(5_000, 5_000)]
    assert pl.scan_parquet(f"{root}/lake/cdrs/", hive_partitioning=True).select(pl.len()).collect().item() == 5_000
    state = lake.read_bytes("state/account=default/cdrs/landed.json")
    assert state is None or state in (b'{"v": "0"}' * 500, b'{"v": "1"}' * 500)
    return tag


@pytest.mark.parametrize("die", ["mid-temp", "before-rename", "after-rename"])
def test_a_writer_killed_at_each_step_leaves_the_old_or_the_new_file(tmp_path: Path, die: str) -> None:
    root = tmp_path / "data"
    Lake(root).for_account(DEFAULT_ACCOUNT).write_partition("cdrs", DAY, frame("a", 5_000))
    _run_writer(root, die, kill_after=None)
    tag = _assert_readers_see_a_whole_version(root, "a")
    assert tag == ("b" if die == "after-rename" else "a")
    assert sorted(p.name for p in (root / "lake/cdrs/account=default/date=2026-03-01").iterdir()) == ["data.parquet"]
    leftovers = [p.name for p in (root / ".staging").iterdir()]
    assert len(leftovers) == (0 if die == "after-rename" else 1)
    assert all(name.startswith(".data.parquet.") and name.endswith(".tmp") for name in leftovers)
    assert Lake(root).sweep_temporaries() == len(leftovers)
    assert list((root / ".staging").iterdir()) == []


def test_a_writer_killed_at_random_instants_never_exposes_a_broken_file(tmp_path: Path) -> None:
    root = tmp_path / "data"
    chooser = random.Random(20260301)
    previous: str | None = None
    for _ in range(5):
        _run_writer(root, "loop", kill_after=chooser.uniform(0.0, 0.4))
        previous = _assert_readers_see_a_whole_version(root, previous)
    Lake(root).sweep_temporaries()
    names = {p.name for p in root.rglob("*") if p.is_file()}
    assert names <= {"data.parquet", "landed.json"}


BATCH_DAYS = [date(2026, 3, n) for n in (1, 2, 3)]


def _batch_versions(root: Path) -> list[str | None]:
    """Each day of a killed batch writer: which whole version readers see (None: no file), never a broken file."""
    lake = Lake(root).for_account(DEFAULT_ACCOUNT)
    tags: list[str | None] = []
    for day in BATCH_DAYS:
        seen = lake.read_partition("cdrs", day, SCHEMA)
        tags.append(None if seen is None else seen["id"][0].split("-")[0])
        if seen is not None:
            assert seen.equals(frame(tags[-1], 5_000))
    files = sum(tag is not None for tag in tags)
    if files:  # what the SQL models do: a glob over the dataset, which must skip temporaries
        glob = f"{root}/lake/cdrs/*/*/*.parquet"
        assert duckdb.sql(f"select count(*) from read_parquet('{glob}')").fetchall() == [(5_000 * files,)]
    return tags


@pytest.mark.parametrize("die", ["mid-temp", "before-rename", "after-rename"])
def test_a_batch_writer_killed_at_each_step_leaves_each_file_old_or_new(tmp_path: Path, die: str) -> None:
    root = tmp_path / "data"
    with Lake(root).for_account(DEFAULT_ACCOUNT).batch() as batch:
        for day in BATCH_DAYS:
            batch.write_partition("cdrs", day, frame("a", 5_000))
    _run_writer(root, die, kill_after=None, days=len(BATCH_DAYS))
    # Killed at the first rename, or right after it: only the first day can be new.
    assert _batch_versions(root) == ["b" if die == "after-rename" else "a", "a", "a"]
    leftovers = [p.name for p in (root / ".staging").iterdir()]
    assert len(leftovers) == {"mid-temp": 1, "before-rename": 3, "after-rename": 2}[die]
    assert Lake(root).sweep_temporaries() == len(leftovers)


def test_a_batch_writer_killed_at_random_instants_never_exposes_a_broken_file(tmp_path: Path) -> None:
    root = tmp_path / "data"
    chooser = random.Random(20260302)
    for _ in range(5):
        _run_writer(root, "loop", kill_after=chooser.uniform(0.0, 0.4), days=len(BATCH_DAYS))
        _batch_versions(root)
    Lake(root).sweep_temporaries()
    assert {p.name for p in root.rglob("*") if p.is_file()} <= {"data.parquet", "landed.json"}


def test_a_batch_is_made_durable_by_one_filesystem_sync_before_and_after_its_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = record_disk_events(monkeypatch)
    monkeypatch.setattr(durable_module, "_syncfs", lambda fd: events.append("syncfs") or 0)
    monkeypatch.setattr(durable_module, "_filesystem_type", lambda path: 0xEF53)  # ext4, wherever the test runs
    monkeypatch.setattr(durable_module, "_honours_syncfs", {})
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    with lake.batch() as batch:
        for day in BATCH_DAYS:
            batch.write_partition("cdrs", day, frame(day.isoformat()))
        assert events == []  # nothing is in place before the batch ends
        assert lake.read_partition("cdrs", BATCH_DAYS[0], SCHEMA) is None
    assert events == ["syncfs", *[("replace", "data.parquet")] * 3, "syncfs"]
    for day in BATCH_DAYS:
        assert lake.read_partition("cdrs", day, SCHEMA).equals(frame(day.isoformat()))
    assert list((tmp_path / ".staging").iterdir()) == []


@pytest.mark.parametrize("syncfs", [None, "refused", "not honoured"])
def test_without_a_filesystem_sync_a_batch_fsyncs_each_file_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syncfs: str | None
) -> None:
    def refused(fd: int) -> int:
        ctypes.set_errno(errno.ENOSYS)
        return -1

    def unused(fd: int) -> int:
        raise AssertionError("syncfs on a filesystem that may not honour it")

    monkeypatch.setattr(durable_module, "_syncfs", {None: None, "refused": refused, "not honoured": unused}[syncfs])
    # FUSE (whose syncfs may return without syncing) for "not honoured"; ext4 for the others.
    monkeypatch.setattr(durable_module, "_filesystem_type", lambda path: 0x65735546 if syncfs == "not honoured" else 0xEF53)
    monkeypatch.setattr(durable_module, "_honours_syncfs", {})
    events = record_disk_events(monkeypatch)
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    with lake.batch() as batch:
        for day in BATCH_DAYS:
            batch.write_partition("cdrs", day, frame(day.isoformat()))
    # then each new file's folder, and the parent of each folder the batch made (account, dataset, lake, data dir)
    assert events == [*["fsync"] * 3, *[("replace", "data.parquet")] * 3, *["fsync"] * (3 + 4)]


def test_a_batch_makes_the_entry_of_every_folder_it_created_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Without a filesystem sync, a new day's folder survives a crash only once its parent's entry is on
    disk too, before the checkpoint saying the day landed is written."""
    monkeypatch.setattr(durable_module, "_syncfs", None)
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    lake.write_partition("cdrs", DAY, frame("first"))
    synced: list[str] = []
    fsync_dir = durable_module.fsync_dir
    monkeypatch.setattr(durable_module, "fsync_dir", lambda path: synced.append(path) or fsync_dir(path))
    with lake.batch() as batch:
        batch.write_partition("cdrs", DAY, frame("again"))  # its folder is there
        batch.write_partition("cdrs", BATCH_DAYS[1], frame("new"))
        batch.write_partition("mdrs", BATCH_DAYS[1], frame("new"))
    days = {f"{dataset}/account={DEFAULT_ACCOUNT}/date={day}" for dataset, day in
            [("cdrs", DAY), ("cdrs", BATCH_DAYS[1]), ("mdrs", BATCH_DAYS[1])]}
    folders = {"cdrs/account=default", "mdrs/account=default", "mdrs", ""}  # the new folders' parents
    assert sorted(synced) == sorted(str(tmp_path / "lake" / name).rstrip("/") for name in days | folders)


def test_a_failing_batch_replaces_nothing_and_leaves_no_temporary(tmp_path: Path) -> None:
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    lake.write_partition("cdrs", DAY, frame("old"))
    with pytest.raises(RuntimeError, match="stop"), lake.batch() as batch:
        batch.write_partition("cdrs", DAY, frame("new"))
        batch.write_partition("cdrs", BATCH_DAYS[1], frame("new"))
        raise RuntimeError("stop")
    assert lake.read_partition("cdrs", DAY, SCHEMA).equals(frame("old"))
    assert lake.read_partition("cdrs", BATCH_DAYS[1], SCHEMA) is None
    assert list((tmp_path / ".staging").iterdir()) == []
