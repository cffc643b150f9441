"""Dashboards stage: read `rpt_` tables from the DuckDB warehouse into typed polars frames.

The dashboards read nothing else: a name that does not start with `rpt_` is refused. Types
are mapped explicitly from DuckDB's so that DECIMAL money stays `pl.Decimal` (exact) and an
all-null column keeps its type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import duckdb
import polars as pl

from pipelines.errors import CdrError

REPORT_PREFIX = "rpt_"

_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")
_SIMPLE_TYPES: dict[str, pl.DataType] = {
    "VARCHAR": pl.String(),
    "DATE": pl.Date(),
    "BOOLEAN": pl.Boolean(),
    "TINYINT": pl.Int64(),
    "SMALLINT": pl.Int64(),
    "INTEGER": pl.Int64(),
    "BIGINT": pl.Int64(),
    "UTINYINT": pl.Int64(),
    "USMALLINT": pl.Int64(),
    "UINTEGER": pl.Int64(),
    # sum() of integers is HUGEINT in DuckDB; a report's counts fit Int128 at the very least.
    "HUGEINT": pl.Int128(),
    "UBIGINT": pl.Int128(),
    "FLOAT": pl.Float64(),
    "DOUBLE": pl.Float64(),
    "TIMESTAMP": pl.Datetime("us"),
    "TIMESTAMP WITH TIME ZONE": pl.Datetime("us", "UTC"),
}


class DashboardError(CdrError):
    """The warehouse cannot feed the dashboards (missing, locked, or without a report table)."""


def connect(warehouse_path: Path) -> duckdb.DuckDBPyConnection:
    """A warehouse file -> a read-only DuckDB connection; DashboardError if it is missing or locked."""
    path = Path(warehouse_path)
    if not path.is_file():
        raise DashboardError(f"no warehouse at {path}: run `cdr build` first")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DashboardError(
            f"cannot open the warehouse {path} read-only ({first_line}); is a `cdr build` running?"
        ) from exc


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
    available: Mapping[str, frozenset[str]] | None = None,
    where: str = "<the warehouse>",
) -> pl.DataFrame:
    """An `rpt_` table and {frame column: table column} -> a typed frame of those columns.

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
            f"{where}: table {table} lacks column(s) {', '.join(missing)}: run `cdr build`"
        )
    select = ", ".join(f"{_quote(source)} as {_quote(name)}" for name, source in columns.items())
    result = con.execute(f"select {select} from {_quote(table)}")
    description = result.description or []
    schema = {name: _polars_type(str(kind)) for name, kind, *_ in description}
    rows = result.fetchall()
    return pl.DataFrame(rows, schema=schema, orient="row")


def _polars_type(duckdb_type: str) -> pl.DataType | None:
    decimal = _DECIMAL.match(duckdb_type)
    if decimal:
        return pl.Decimal(int(decimal.group(1)), int(decimal.group(2)))
    return _SIMPLE_TYPES.get(duckdb_type)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
