"""Dashboards stage: read `rpt_` tables from the DuckDB warehouse into typed polars frames.

The dashboards read nothing else: a name that does not start with `rpt_` is refused. Rows
travel through a scratch Parquet file, which keeps DuckDB's types exactly (DECIMAL money
stays `pl.Decimal`, an all-null column keeps its type) and is read column-wise, without a
Python object per value; the connection (`pipelines.sql.connect_read_only`) may write there
and nowhere else.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import duckdb
import polars as pl

from pipelines.errors import CdrError, noun

REPORT_PREFIX = "rpt_"

# Parquet has no 128-bit integers (DuckDB would write them as DOUBLE): counts travel as BIGINT.
_WIDE_INTEGERS = frozenset({"HUGEINT", "UHUGEINT", "UBIGINT"})


class DashboardError(CdrError):
    """The warehouse cannot feed the dashboards (a report table or column is missing)."""


def report_tables(con: duckdb.DuckDBPyConnection) -> dict[str, frozenset[str]]:
    """A connection -> every `rpt_` table or view of the main schema and its column names."""
    rows = con.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'main' and starts_with(table_name, ?) order by table_name, ordinal_position",
        [REPORT_PREFIX],
    ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return {table: frozenset(columns) for table, columns in found.items()}


def read_report(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Mapping[str, str],
    *,
    scratch: Path,
    available: Mapping[str, frozenset[str]] | None = None,
    where: str = "<the warehouse>",
) -> pl.DataFrame:
    """An `rpt_` table and {frame column: table column} -> a typed frame of those columns, via `scratch`.

    DashboardError names the table or columns that are missing, so the message says what to rebuild.
    """
    if not table.startswith(REPORT_PREFIX):
        raise ValueError(f"dashboards read only {REPORT_PREFIX}* tables, not {table!r}")
    tables = report_tables(con) if available is None else available
    if table not in tables:
        raise DashboardError(f"{where} has no table {table}: run `cdr build`")
    missing = sorted(set(columns.values()) - tables[table])
    if missing:
        raise DashboardError(
            f"{where}: table {table} lacks {noun(len(missing), 'column')} {', '.join(missing)}: run `cdr build`"
        )
    types = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'main' and table_name = ?",
            [table],
        ).fetchall()
    )
    select = ", ".join(_select(source, name, types[source]) for name, source in columns.items())
    with tempfile.TemporaryDirectory(prefix="report-", dir=scratch) as folder:
        target = Path(folder) / "report.parquet"
        con.execute(f"copy (select {select} from {_quote(table)}) to {_literal(str(target))} (format parquet)")
        return pl.read_parquet(target)


def _select(source: str, name: str, data_type: str) -> str:
    expression = _quote(source)
    if data_type in _WIDE_INTEGERS:
        expression = f"cast({expression} as bigint)"
    return f"{expression} as {_quote(name)}"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
