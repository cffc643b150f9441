"""Phone number masking: one rule (calling code, a dot per hidden digit, the last two digits) in every ad-hoc read."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from pipelines.dates import Window
from pipelines.errors import UsageError
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.lake import Lake
from pipelines.land import quarantine
from pipelines.masking import MACROS, NUMBER_COLUMNS, mask_numbers
from pipelines.models import build, warehouse_path
from pipelines.sql import connect_read_only, run_query, write_json
from sandbox.catalog import DESTINATIONS
from tests.fixtures.cli import run_cdr
from tests.fixtures.lake import Reject, small_world, write_lake

RAW_NUMBER = re.compile(r"\+?[0-9]{5,}")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = write_lake(tmp_path_factory.mktemp("masking"), *small_world())
    hour = Window(datetime(2026, 1, 30, 10, tzinfo=timezone.utc), datetime(2026, 1, 30, 11, tzinfo=timezone.utc))
    quarantine(Lake(directory).for_account(DEFAULT_ACCOUNT), "cdrs", "run-1", [Reject("bad cli", '{"id": "q1", "cli": "+4479111"}', "cdrs", hour, 1)])
    build(directory)
    return directory


def mask(*values: str | None) -> list[str | None]:
    with duckdb.connect() as con:
        for macro in MACROS:
            con.execute(macro)
        return [con.execute("select mask_number(?)", [value]).fetchall()[0][0] for value in values]


def test_a_number_keeps_its_calling_code_and_last_two_digits():
    assert mask("+447911123489", "+12025550199", "+79161234567", "+353861234567", "+97141234567", "+8801712345678") == [
        "+44••••••••89", "+1••••••••99", "+7••••••••67", "+353•••••••67", "+971••••••67", "+880••••••••78",
    ]


def test_null_stays_null_a_masked_number_stays_and_anything_else_is_hidden_whole():
    assert mask(None, "+44••••••••89", "12345", "+44 20 7946", "") == [None, "+44••••••••89", "•••••", "•••••••••••", ""]


def test_the_calling_code_of_every_sandbox_country_is_read_off_its_numbers():
    # The sandbox's ~40 countries carry their real calling codes, of one, two and three digits.
    codes = sorted({country.calling_code for country in DESTINATIONS})
    assert {len(code) for code in codes} == {1, 2, 3}
    masked = mask(*(f"+{code}5550123" for code in codes))
    assert [value.split("•")[0] for value in masked] == [f"+{code}" for code in codes]


def rows(con: duckdb.DuckDBPyConnection, query: str, masking=None) -> list[dict[str, object]]:
    from io import StringIO

    out = StringIO()
    write_json(run_query(con, query, masking=masking), out)
    return json.loads(out.getvalue())


def test_every_relation_with_numbers_shows_them_masked_and_nothing_else_changes(data_dir):
    con = connect_read_only(warehouse_path(data_dir))
    try:
        raw = {name: rows(con, f"select * from {name} order by all") for name in ("calls", "messages", "stg_cdrs")}
        masking = mask_numbers(con)
        assert {"calls", "messages", "stg_cdrs", "stg_mdrs", "lake_cdrs", "lake_mdrs"} <= masking.masked
        assert {"stg_quarantine", "lake_quarantine"} <= masking.refused
        for name in masking.masked:
            columns = [c for (c,) in con.execute(f"select column_name from (describe {name})").fetchall()]
            for column in NUMBER_COLUMNS & set(columns):
                values = [row[column] for row in rows(con, f'select "{column}" from {name}', masking)]
                assert values and not any(RAW_NUMBER.fullmatch(value) for value in values), (name, column)
        for name, before in raw.items():
            after = rows(con, f"select * from {name} order by all", masking)
            assert [{k: v for k, v in row.items() if k not in NUMBER_COLUMNS} for row in after] == [
                {k: v for k, v in row.items() if k not in NUMBER_COLUMNS} for row in before
            ]
            assert [row["cli"] for row in after] == [mask(row["cli"])[0] for row in before]
    finally:
        con.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("select cli from warehouse.calls", "read calls by its bare name (its numbers masked), not through the catalog warehouse"),
        ("select cli from warehouse.main.stg_cdrs", "read stg_cdrs by its bare name"),
        ("select raw_json from stg_quarantine", "stg_quarantine is not readable: it holds raw records"),
        ("select * from (select 1) join lake_quarantine on true", "lake_quarantine is not readable"),
        ("select * from read_parquet('lake/cdrs/*/data.parquet')", "table function read_parquet is refused"),
        ("select * from query_table('stg_cdrs')", "table function query_table is refused"),
        ("with x as (select cli from warehouse.main.calls) select * from x", "read calls by its bare name"),
        ("select (select max(cld) from warehouse.messages)", "read messages by its bare name"),
    ],
)
def test_a_masked_query_cannot_get_around_the_masking(query, message, data_dir):
    con = connect_read_only(warehouse_path(data_dir))
    try:
        masking = mask_numbers(con)
        with pytest.raises(UsageError, match="^with phone numbers masked, ") as refused:
            run_query(con, query, masking=masking)
        assert message in str(refused.value)
    finally:
        con.close()


def test_unqualified_and_schema_names_resolve_to_the_masked_views(data_dir):
    con = connect_read_only(warehouse_path(data_dir))
    try:
        masking = mask_numbers(con)
        for query in ("select cli from calls", "select cli from main.calls", "from calls select cli",
                      "select max(cli) as cli from stg_cdrs", "select cli from temp.main.calls"):
            assert all("•" in row["cli"] for row in rows(con, query, masking)), query
        summary = rows(con, "summarize calls", masking)
        assert all("•" in str(row["min"]) for row in summary if row["column_name"] in ("cli", "cld"))
        assert rows(con, "select count(*) as n from range(3)", masking) == [{"n": 3}]
    finally:
        con.close()


def test_no_report_table_holds_a_number_so_exports_and_pages_show_none(data_dir):
    # Dashboards read rpt_ tables only and the finance export rpt_finance_monthly_statement: a
    # number column there would need masking in them too.
    con = connect_read_only(warehouse_path(data_dir))
    try:
        # the lake's numbers, read before masking hides them
        numbers = {row[0] for row in con.execute(
            "select cli from calls union select cld from calls union select cli from messages "
            "union select cld from messages"
        ).fetchall()}
        assert len(numbers) >= 3
        masking = mask_numbers(con)
        assert masking.masked and not [
            name for name in masking.masked | masking.refused if name.startswith(("rpt_", "fct_", "dim_"))
        ]
        # nor under another name, nor inside a text (an alert's message)
        texts = con.execute(
            "select table_name, column_name from duckdb_columns() where database_name = current_database() "
            "and (starts_with(table_name, 'rpt_') or starts_with(table_name, 'fct_') or starts_with(table_name, 'dim_') "
            "or starts_with(table_name, 'alert_')) and data_type like 'VARCHAR%'"
        ).fetchall()
        assert len(texts) >= 20
        found = [
            (table, column, value)
            for table, column in texts
            for (value,) in con.execute(f'select distinct "{column}"::varchar from "{table}" where "{column}" is not null').fetchall()
            if any(number.lstrip("+") in value for number in numbers)
        ]
        assert found == []
    finally:
        con.close()


def test_cdr_sql_masks_with_the_setting_or_the_option_and_not_by_default(data_dir, capsys, monkeypatch):
    query = ["sql", "select cli from calls where id = 'c3'", "--format", "csv", "--data-dir", str(data_dir)]
    assert run_cdr(capsys, monkeypatch, *query) == (0, "cli\n+12025550101\n", "")
    monkeypatch.setenv("CDR_MASK_NUMBERS", "true")
    assert run_cdr(capsys, monkeypatch, *query) == (0, "cli\n+1••••••••01\n", "")
    assert run_cdr(capsys, monkeypatch, *query, "--no-mask-numbers") == (0, "cli\n+12025550101\n", "")
    monkeypatch.setenv("CDR_MASK_NUMBERS", "false")
    assert run_cdr(capsys, monkeypatch, *query, "--mask-numbers") == (0, "cli\n+1••••••••01\n", "")


def test_cdr_sql_refuses_a_way_around_in_one_line_and_writes_nothing(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "leak.csv"
    code, stdout, err = run_cdr(
        capsys, monkeypatch, "sql", "select raw_json from stg_quarantine", "--mask-numbers",
        "--out", str(out), "--data-dir", str(data_dir),
    )
    assert (code, stdout) == (2, "")
    assert err == "error: with phone numbers masked, stg_quarantine is not readable: it holds raw records\n"
    assert list(tmp_path.iterdir()) == []
