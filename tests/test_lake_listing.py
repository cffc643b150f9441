"""What a reader of the lake is told by `Lake`: partition and quarantine files, where to open them."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import fsspec
import polars as pl
import pytest

from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.errors import LakeError
from pipelines.lake import QUARANTINE_GLOB, Lake

DAY = date(2026, 3, 1)


@pytest.fixture(params=["local", "memory"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    """A lake on local disk and one on fsspec's in-memory object store."""
    if request.param == "local":
        return Lake(tmp_path / "data")
    return Lake(f"memory://listing-{uuid.uuid4().hex}")


def _day(lake: Lake, day: date, account: str = DEFAULT_ACCOUNT) -> None:
    lake.for_account(account).write_partition("cdrs", day, pl.DataFrame({"id": ["a"]}))


def test_partition_files_are_the_days_files_in_order(lake: Lake):
    for day in (date(2026, 3, 2), DAY):
        _day(lake, day)
    lake.write_bytes("lake/cdrs/README", b"not a day")
    lake.write_bytes("lake/cdrs/account=default/README", b"not a day")
    lake.write_bytes("lake/mdrs/account=default/date=2026-03-01/data.parquet", b"another dataset")
    assert lake.partition_files("cdrs") == [
        "lake/cdrs/account=default/date=2026-03-01/data.parquet",
        "lake/cdrs/account=default/date=2026-03-02/data.parquet",
    ]
    assert lake.partition_files("usage_cdrs") == []


def test_a_day_without_its_file_but_with_others_is_refused_naming_them_and_the_resync(lake: Lake):
    _day(lake, DAY)
    lake.write_bytes("lake/cdrs/account=default/date=2026-03-02/data.parquet.bak", b"PAR1")
    with pytest.raises(LakeError) as error:
        lake.partition_files("cdrs")
    assert str(error.value) == (
        f"{lake.display('lake/cdrs/account=default/date=2026-03-02')} holds no data.parquet but data.parquet.bak: move "
        "those out of the lake and re-sync that day with `cdr sync --types cdrs --tz UTC --start 2026-03-02 --end 2026-03-03`"
    )


@pytest.mark.parametrize("folder", ["date=2026-03-02.orig", "date=2026-02-30", "date=2026-3-2"])
def test_a_day_folder_naming_no_day_is_refused_naming_it_and_the_resync(lake: Lake, folder: str):
    """The build reads every `date=` folder's file, but tells which days changed by the folders' names."""
    _day(lake, DAY)
    lake.write_bytes(f"lake/cdrs/account=acme/{folder}/data.parquet", b"PAR1")
    refusal = (
        f"{lake.display(f'lake/cdrs/account=acme/{folder}')} names no day (the sync writes date=YYYY-MM-DD): move it "
        "out of the lake, and re-sync the days it held with "
        "`cdr sync --account acme --types cdrs --tz UTC --start YYYY-MM-DD --end YYYY-MM-DD`"
    )
    with pytest.raises(LakeError) as error:
        lake.partition_files("cdrs")
    assert str(error.value) == refusal
    # and the account's own listing (finance coverage, status), in the same words
    with pytest.raises(LakeError) as error:
        lake.for_account("acme").partition_days("cdrs")
    assert str(error.value) == refusal


def test_quarantine_files_are_the_jsonl_files_of_each_kind_account_and_day(lake: Lake):
    for relative in ("quarantine/cdrs/account=default/date=2026-03-01/r1.jsonl",
                     "quarantine/mdrs/account=acme/date=2026-03-02/r2.jsonl",
                     "quarantine/cdrs/account=default/date=2026-03-01/notes.txt",
                     "quarantine/cdrs/account=default/r3.jsonl", "quarantine/cdrs/r4.jsonl"):
        lake.write_bytes(relative, b"{}\n")
    assert lake.quarantine_files() == [
        "quarantine/cdrs/account=default/date=2026-03-01/r1.jsonl",
        "quarantine/mdrs/account=acme/date=2026-03-02/r2.jsonl",
    ]


def test_a_reader_opens_an_absolute_path_or_the_stores_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert Lake("data").location(QUARANTINE_GLOB) == f"{tmp_path}/data/quarantine/*/account=*/date=*/*.jsonl"
    store = Lake(f"memory://store-{uuid.uuid4().hex}/cdr")
    store.write_bytes("quarantine/cdrs/account=default/date=2026-03-01/r1.jsonl", b"{}\n")
    (url,) = fsspec.open_files(store.location(QUARANTINE_GLOB))
    assert url.open().read() == b"{}\n"


def test_partition_day_and_account_read_their_folders():
    assert Lake.partition_day("lake/cdrs/account=acme/date=2026-03-01/data.parquet") == DAY
    assert Lake.partition_day("lake/cdrs/account=acme/date=2026-02-30") is None
    assert Lake.partition_day("lake/cdrs/account=acme/notes") is None
    assert Lake.partition_account("lake/cdrs/account=acme/date=2026-03-01/data.parquet") == "acme"
    assert Lake.partition_account("quarantine/cdrs/account=default/date=2026-03-01/r.jsonl") == "default"
    assert Lake.partition_account("lake/cdrs/date=2026-03-01/data.parquet") is None
