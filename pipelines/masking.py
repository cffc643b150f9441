"""Phone number masking for ad-hoc SQL: one rule, the DuckDB macro `mask_number`, and the reads it guards.

`+447911123489` -> `+44••••••••89`. On a masked connection, temp views of the same name shadow the
relations that carry numbers, and a query may not get around them (`Masking.check`).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import orjson

from pipelines.errors import CdrError, UsageError, one_line

# Columns that hold a phone number, in any relation.
NUMBER_COLUMNS = frozenset({"cli", "cld", "from", "to"})
# Columns that hold a record's raw text (the quarantine's JSON), numbers and all: never masked, refused.
RAW_COLUMNS = frozenset({"raw_json"})
MASK_CHAR = "•"
# ITU-T E.164's country calling codes form a prefix code: these are the assigned ones of one
# and two digits; every other code has three. So a number's code is read off its first digits.
SHORT_CALLING_CODES = (
    "1", "7",
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
    "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66",
    "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
)
# Table functions a masked query may use: they read no file and no relation by name.
SAFE_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
_METADATA_PREFIX = "duckdb_"


def _codes(length: int) -> str:
    return ", ".join(f"'{code}'" for code in SHORT_CALLING_CODES if len(code) == length)


# The one definition of the rule. A value that is not E.164 (none is, in the lake) is masked whole.
MACROS = (
    "create or replace temp macro calling_code(n) as case"
    f" when substr(n, 2, 1) in ({_codes(1)}) then substr(n, 2, 1)"
    f" when substr(n, 2, 2) in ({_codes(2)}) then substr(n, 2, 2)"
    " else substr(n, 2, 3) end",
    "create or replace temp macro mask_number(n) as case"
    # Masking a masked value leaves it: the warehouse's own views bind to the masking views
    # that shadow the relations they read, so a number can pass through several.
    f" when n is null or contains(n, '{MASK_CHAR}') then n"
    r" when regexp_full_match(n, '\+[1-9][0-9]{6,14}')"
    f" then '+' || calling_code(n) || repeat('{MASK_CHAR}', length(n) - 3 - length(calling_code(n))) || right(n, 2)"
    f" else repeat('{MASK_CHAR}', length(n)) end",
)


@dataclass(frozen=True, slots=True)
class Masking:
    """A masked connection's guard: the warehouse catalog, its masked relations and its refused ones."""

    database: str
    masked: frozenset[str]
    refused: frozenset[str]

    def check(self, query: str) -> None:
        """One reading query -> None if it reads numbers only through the masking views; UsageError if not."""
        try:
            with duckdb.connect() as con:
                parsed = orjson.loads(con.execute("select json_serialize_sql(?)", [query]).fetchall()[0][0])
        except duckdb.Error as exc:
            raise CdrError(one_line(exc)) from None
        if parsed["error"]:
            # EXPLAIN shows a plan, never rows; anything else unparsable here is refused.
            if duckdb.extract_statements(query)[0].type == duckdb.StatementType.EXPLAIN:
                return
            raise UsageError("with phone numbers masked, only SELECT (and its forms) is run")
        pending: list[object] = [parsed["statements"]]
        while pending:
            node = pending.pop()
            if isinstance(node, list):
                pending.extend(node)
            elif isinstance(node, dict):
                self._check_node(node)
                pending.extend(node.values())

    def _check_node(self, node: dict[str, object]) -> None:
        kind = node.get("type")
        if kind == "BASE_TABLE":
            catalog, schema = str(node["catalog_name"]).lower(), str(node["schema_name"]).lower()
            name = str(node["table_name"]).lower()
            if self.database in (catalog, schema if not catalog else None) and name in self.masked | self.refused:
                raise UsageError(
                    f"with phone numbers masked, read {name} by its bare name (its numbers masked), "
                    f"not through the catalog {self.database}"
                )
            if name in self.refused:
                raise UsageError(f"with phone numbers masked, {name} is not readable: it holds raw records")
        elif kind == "TABLE_FUNCTION":
            function = node.get("function")
            name = str(function.get("function_name", "")).lower() if isinstance(function, dict) else ""
            if name not in SAFE_TABLE_FUNCTIONS and not name.startswith(_METADATA_PREFIX):
                raise UsageError(
                    f"with phone numbers masked, table function {name or '?'} is refused: "
                    "query the warehouse's views and tables"
                )


def mask_numbers(con: duckdb.DuckDBPyConnection) -> Masking:
    """A read-only warehouse connection -> it with every number masked by temp views, and the guard of its queries."""
    try:
        for macro in MACROS:
            con.execute(macro)
        database = str(con.execute("select current_database()").fetchall()[0][0]).lower()
        columns = con.execute(
            "select table_name, list(column_name order by column_index) from duckdb_columns() "
            "where lower(database_name) = ? and schema_name = 'main' group by table_name",
            [database],
        ).fetchall()
        masked, refused = set(), set()
        for relation, names in columns:
            lowered = {name.lower() for name in names}
            if lowered & RAW_COLUMNS:
                refused.add(relation.lower())
            elif lowered & NUMBER_COLUMNS:
                replaced = ", ".join(
                    f"mask_number({_quoted(name)}) as {_quoted(name)}" for name in names if name.lower() in NUMBER_COLUMNS
                )
                con.execute(
                    f"create temp view {_quoted(relation)} as "
                    f"select * replace ({replaced}) from {_quoted(database)}.main.{_quoted(relation)}"
                )
                masked.add(relation.lower())
    except duckdb.Error as exc:
        raise CdrError(f"cannot mask the warehouse's phone numbers: {one_line(exc, limit=150)}") from None
    return Masking(database=database, masked=frozenset(masked), refused=frozenset(refused))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
