"""Upgrades never strand the lake: a lake an older release wrote syncs and builds under a wider schema,
and fields the API adds are kept in `extras`, said once per run."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pytest

from pipelines.dates import Window, format_utc
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.errors import LakeError
from pipelines.lake import AccountLake, Lake
from pipelines.land import extras_note, land_windows
from pipelines.models import warehouse_path
from pipelines.opentact import api, client
from pipelines.opentact.records import extra_fields, validate_records
from pipelines.opentact.client import OpentactClient
from pipelines.settings import Settings
from pipelines.summary import sync_markdown, sync_result
from pipelines.sync import SyncReport, sync
from sandbox.testing import running_sandbox
from tests.fixtures.cli import run_cdr
from tests.opentact.factories import T0
from tests.opentact.factories import cdr as api_cdr
from tests.opentact.factories import mdr as api_mdr
from tests.test_land import cdr, cdrs
from tests.test_sync import client_config

pytestmark = pytest.mark.anyio

UTC = timezone.utc
D1 = datetime(2026, 3, 1, tzinfo=UTC)
START = date(2026, 10, 1)
NOW = datetime(2026, 10, 8, 6, 0, tzinfo=UTC)
WORLD = {"seed": 7, "calls_per_day": 120, "messages_per_day": 60, "rerate_rate": 0.2}


@pytest.fixture
def anyio_backend() -> str:
    """The pipeline's event loop."""
    return "asyncio"


def days(first: int, last: int) -> Window:
    """October days first..last (inclusive) as a UTC window."""
    return Window(datetime(2026, 10, first, tzinfo=UTC), datetime(2026, 10, last + 1, tzinfo=UTC))


async def run_sync(base_url: str, data_dir: Path, window: Window, run_id: str) -> SyncReport:
    async with OpentactClient(client_config(base_url)) as opentact:
        return await sync(list(api.RECORD_TYPES), window, Settings(data_dir=data_dir), opentact, NOW, run_id)


def as_older_release_wrote_it(lake: AccountLake, dataset: str, day: date, dropped: list[str]) -> None:
    """Rewrite a partition without the columns a later release added."""
    path = lake.path(lake.partition(dataset, day))
    pl.read_parquet(path).drop(dropped).write_parquet(path)


def test_a_re_rate_merges_into_a_partition_without_the_new_columns(tmp_path: Path) -> None:
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    old = cdrs(cdr("a", D1 + timedelta(hours=1)), cdr("b", D1 + timedelta(hours=2)))
    lake.write_partition("cdrs", D1.date(), old.drop(api.EXTRAS))  # as written before extras existed
    rerated = cdr("b", D1 + timedelta(hours=2), updated_at=D1 + timedelta(hours=5), cost="0.5")
    incoming = cdrs(rerated).with_columns(pl.lit('{"region":"eu"}').alias(api.EXTRAS))
    stats = land_windows(lake, "cdrs", [Window(D1 + timedelta(hours=2), D1 + timedelta(hours=3))], incoming)
    assert (stats.days[0].updated, stats.days[0].new, stats.extra_fields) == (1, 0, ("region",))
    landed = pl.read_parquet(lake.path(lake.partition("cdrs", D1.date())))
    assert landed.schema == pl.Schema(api.LAKE_SCHEMAS["cdrs"])
    assert landed.select("id", "cost", api.EXTRAS).rows() == [
        ("a", old["cost"][0], None),
        ("b", rerated["cost"], '{"region":"eu"}'),
    ]


def test_the_note_of_the_fields_the_api_added_is_one_short_line_whatever_their_names() -> None:
    odd = {"line\nbreak": 1, "\x1b[31mred": 2, "N" * 5000: 3, "we\"ird 'näme ✓": 4, "Cost": "9.99", api.EXTRAS: {"x": 1}}
    many = {f"f{n:03d}": n for n in range(300)}
    records = [api_cdr(0, **odd), api_cdr(1), api_cdr(2, **many)]
    frame, rejects = validate_records("cdrs", records, Window(T0, T0 + timedelta(days=1)), 1)
    assert rejects == [] and frame["cost"][0] == Decimal(api_cdr(0)["cost"])  # `Cost` is not `cost`
    # kept whole in extras, names and values exactly as sent
    assert [None if text is None else orjson.loads(text) for text in frame[api.EXTRAS]] == [odd, None, many]
    fields = extra_fields("cdrs", frame[api.EXTRAS])
    assert len(fields) == 306

    note = extras_note("cdrs", fields)
    assert note.isprintable() and len(note) < 400
    assert note.startswith("cdrs: kept 306 fields the lake does not know in extras: \\x1b[31mred, Cost, N")
    assert note.endswith("…, extras, f000, f001, f002, f003, f004, f005 and 296 more")
    assert extras_note("mdrs", ["line\nbreak", "we\"ird 'näme ✓"]) == (
        "mdrs: kept 2 fields the lake does not know in extras: line\\nbreak, we\"ird 'näme ✓"
    )


def test_a_partition_with_a_column_the_schema_does_not_name_is_still_refused(tmp_path: Path) -> None:
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    lake.write_partition("cdrs", D1.date(), cdrs(cdr("a", D1)).with_columns(pl.lit(1).alias("from_a_newer_release")))
    with pytest.raises(LakeError, match=r"does not hold the cdrs columns the sync writes \(unexpected from_a_newer_release\)"):
        lake.read_partition("cdrs", D1.date(), api.LAKE_SCHEMAS["cdrs"])


def test_a_partition_with_a_column_of_another_type_is_refused_in_one_line_naming_it_and_the_re_sync(tmp_path: Path) -> None:
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    path = lake.path(lake.partition("cdrs", D1.date()))
    # as a release that kept money as text would have written it, before extras existed
    lake.write_partition("cdrs", D1.date(), cdrs(cdr("a", D1)).drop(api.EXTRAS).with_columns(pl.col("cost").cast(pl.String)))
    before = Path(path).read_bytes()
    rerated = cdrs(cdr("a", D1, updated_at=D1 + timedelta(hours=5), cost="0.5"))
    with pytest.raises(LakeError) as caught:
        land_windows(lake, "cdrs", [Window(D1, D1 + timedelta(days=1))], rerated)
    assert str(caught.value) == (
        f"lake file {lake.display(lake.partition('cdrs', D1.date()))} does not hold the cdrs columns the sync writes "
        "(other types: cost String (the sync writes Decimal(precision=38, scale=9))): delete it and re-sync that day "
        "with `cdr sync --types cdrs --tz UTC --start 2026-03-01 --end 2026-03-02`"
    )
    assert Path(path).read_bytes() == before  # nothing lost


def test_a_partition_whose_struct_items_lack_a_field_added_since_reads_it_as_null_and_a_re_sync_fills_it(
    tmp_path: Path,
) -> None:
    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    schema = api.LAKE_SCHEMAS["mdrs"]
    errors = [{"code": "40001", "title": "Queue full"}]
    day = Window(T0, T0 + timedelta(days=1))

    def landed_shape(*records: dict) -> pl.DataFrame:
        frame, rejects = validate_records("mdrs", list(records), day, 1)
        assert rejects == []
        return frame

    first = landed_shape(api_mdr(0, errors=errors), api_mdr(1, errors=errors))
    # as a release whose error items had no title wrote it
    lake.write_partition(
        "mdrs", T0.date(), first.with_columns(pl.col("errors").list.eval(pl.struct(pl.element().struct.field("code"))))
    )
    read = lake.read_partition("mdrs", T0.date(), schema)
    assert read.schema == pl.Schema(schema)
    assert read["errors"].to_list() == [[{"code": "40001", "title": None}]] * 2

    rerated = api_mdr(1, errors=errors, updated_at=format_utc(T0 + timedelta(hours=5)))
    # its own second of the day: the other record's window is not landed again
    stats = land_windows(lake, "mdrs", [Window(T0 + timedelta(seconds=1), T0 + timedelta(seconds=2))], landed_shape(rerated))
    assert (stats.days[0].updated, stats.days[0].new) == (1, 0)
    landed = pl.read_parquet(lake.path(lake.partition("mdrs", T0.date())))
    assert landed.schema == pl.Schema(schema)
    # the re-rated record as sent; the other as it was (the next re-sync of its window fills it)
    assert dict(zip(landed["id"], landed["errors"].to_list())) == {
        first["id"][0]: [{"code": "40001", "title": None}],
        first["id"][1]: errors,
    }

    # a field the schema does not name is still not the sync's
    lake.write_partition(
        "mdrs", T0.date(), first.with_columns(pl.col("errors").list.eval(pl.element().struct.with_fields(owner=pl.lit("x"))))
    )
    with pytest.raises(LakeError, match=r"other types: errors"):
        lake.read_partition("mdrs", T0.date(), schema)


def test_the_lake_view_reads_by_name_only_while_an_older_partition_is_there(tmp_path: Path) -> None:
    from pipelines.models.sources import source_sql

    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    lake.write_partition("cdrs", D1.date(), cdrs(cdr("a", D1)))
    lake.write_partition("cdrs", D1.date() + timedelta(days=1), cdrs(cdr("b", D1 + timedelta(days=1))))
    current, files = source_sql(lake, "cdrs")
    assert files == 2 and "union_by_name" not in current  # every footer opened once, at build time only

    as_older_release_wrote_it(lake, "cdrs", D1.date(), [api.EXTRAS])
    older, _ = source_sql(lake, "cdrs")
    assert "union_by_name = true" in older
    with duckdb.connect() as con:
        rows = con.execute(f"select id, extras from ({older}) order by id").fetchall()
    assert rows == [("a", None), ("b", None)]


async def test_a_lake_of_an_older_schema_syncs_and_builds_under_a_wider_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    lake = Lake(data).for_account(DEFAULT_ACCOUNT)
    with running_sandbox(start=START.isoformat(), now=NOW.isoformat().replace("+00:00", "Z"), **WORLD) as url:
        first = await run_sync(url, data, days(1, 2), "older")
        assert first.ok
        # The lake as the release before `extras` wrote it.
        for kind in api.RECORD_TYPES:
            for day in lake.partition_days(kind):
                as_older_release_wrote_it(lake, kind, day, [api.EXTRAS])

        # The next release adds a lake column; the API meanwhile sends a field no release knows.
        monkeypatch.setitem(api.LAKE_SCHEMAS["cdrs"], "brand_new", pl.Int64())
        validate = client.validate_records

        def with_new_field(kind: api.RecordType, records: list, *args: object) -> tuple:
            for record in records:
                record["region"] = "eu"
            return validate(kind, records, *args)

        monkeypatch.setattr(client, "validate_records", with_new_field)
        caplog.set_level(logging.INFO, logger="pipelines")
        second = await run_sync(url, data, days(2, 3), "newer")

    assert second.ok
    note = "kept 1 field the lake does not know in extras: region"
    assert [k.extra_fields for k in second.kinds] == [("region",), ("region",)]
    # in the run's log, once; below the terminal's level (WARNING), where the summary says it
    notes = [(r.levelno, r.getMessage()) for r in caplog.records if "extras" in r.getMessage()]
    assert notes == [(logging.INFO, f"cdrs: {note}"), (logging.INFO, f"mdrs: {note}")]
    assert f"cdrs: {note}" in sync_markdown(second)
    assert sync_result(second)["types"]["cdrs"]["extra_fields"] == ["region"]
    # Day 1 was not re-synced: its file keeps the older columns and reads the new ones as null.
    day1 = pl.read_parquet(lake.path(lake.partition("cdrs", date(2026, 10, 1))))
    assert api.EXTRAS not in day1.columns and "brand_new" not in day1.columns
    read = lake.read_partition("cdrs", date(2026, 10, 1), api.LAKE_SCHEMAS["cdrs"])
    assert read.schema == pl.Schema(api.LAKE_SCHEMAS["cdrs"]) and read[api.EXTRAS].null_count() == read.height
    # Re-landed days are written in the current schema.
    day2 = pl.read_parquet(lake.path(lake.partition("cdrs", date(2026, 10, 2))))
    assert day2.schema == pl.Schema(api.LAKE_SCHEMAS["cdrs"])

    code, _, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(data))
    assert code == 0, err
    with duckdb.connect(str(warehouse_path(data)), read_only=True) as con:
        types = dict(con.execute("select column_name, column_type from (describe calls)").fetchall())
        by_day = con.execute(
            "select created_at::date as day, count(*), count(extras ->> 'region'), count(brand_new) "
            "from calls group by all order by day"
        ).fetchall()
    assert (types["brand_new"], types[api.EXTRAS], types["cost"]) == ("BIGINT", "VARCHAR", "DECIMAL(38,9)")
    assert [(day.day, has_region == 0, new) for day, _, has_region, new in by_day] == [(1, True, 0), (2, False, 0), (3, False, 0)]
    assert all(count == region for day, count, region, _ in by_day if day.day > 1)
    code, out, err = run_cdr(
        capsys, monkeypatch, "sql", "select distinct extras ->> 'region' as region from calls where extras is not null",
        "--data-dir", str(data),
    )
    assert (code, err) == (0, "") and "eu" in out


def test_a_build_reads_again_only_the_footers_of_the_partitions_changed_since_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.models import build
    from pipelines.models import sources

    lake = Lake(tmp_path).for_account(DEFAULT_ACCOUNT)
    d2 = D1 + timedelta(days=1)
    lake.write_partition("cdrs", D1.date(), cdrs(cdr("a", D1)))
    lake.write_partition("cdrs", d2.date(), cdrs(cdr("b", d2)))
    as_older_release_wrote_it(lake, "cdrs", D1.date(), [api.EXTRAS])
    assert build(tmp_path).mode == "full"

    read: list[str] = []
    columns = sources._top_level_columns
    monkeypatch.setattr(sources, "_top_level_columns", lambda con, files: read.append(files) or columns(con, files))
    lake.write_partition("cdrs", d2.date(), cdrs(cdr("c", d2)))  # the day re-landed
    assert build(tmp_path).mode == "incremental"
    assert len(read) == 1 and f"date={d2.date()}" in read[0] and f"date={D1.date()}" not in read[0]
    # what the last build read in the older partition's footer holds: it is still read by name
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as con:
        (view,) = con.execute("select sql from duckdb_views() where view_name = 'lake_cdrs'").fetchone()
        assert "union_by_name = true" in view
        assert con.execute("select id from calls order by id").fetchall() == [("a",), ("c",)]
