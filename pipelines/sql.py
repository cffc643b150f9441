"""Ad-hoc SQL stage: one read-only query against the warehouse, as a table, CSV or JSON.

Only reading statements run; the connection may read the data dir's `lake/` and `quarantine/` and
no other file, with its configuration locked so no query can undo that (`connect_read_only`).
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import duckdb
import orjson

from pipelines.durable import atomic_file
from pipelines.errors import CdrError, UsageError, clip, one_line, one_of
from pipelines.lake import LAKE_DIR, QUARANTINE_DIR, Lake, register_lake
from pipelines.masking import Masking, mask_numbers
from pipelines.remote import origin_lake, require_data_dir, warehouse_name

FORMATS = ("table", "csv", "json")
# A terminal table stops here; csv and json have no limit.
TABLE_MAX_ROWS = 1000
BATCH_ROWS = 10_000
_READING = ("SELECT", "EXPLAIN SELECT")
# DuckDB parses a PIVOT that finds its own columns (no IN list), and any statement holding one, a COPY or
# CREATE included, as one MULTI statement (it creates an enum type, then selects).
_PIVOTS = "MULTI"
# EXPLAIN [ANALYZE] [(options)] before the statement it wraps is never longer than this.
_EXPLAIN_PREFIX_MAX_TOKENS = 64


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Column names and DuckDB types of a running query, and its rows in batches."""

    columns: tuple[str, ...]
    types: tuple[str, ...]
    batches: Iterator[list[tuple[object, ...]]]


def check_query(query: str) -> str:
    """SQL text -> its one reading statement; UsageError for several statements or a write, CdrError if unparsable."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise CdrError(one_line(exc)) from None
    if not statements:
        raise UsageError("no SQL statement given: pass one query, e.g. \"select count(*) from calls\"")
    if len(statements) > 1:
        raise UsageError(f"one statement at a time: got {len(statements)}")
    kind = _kind(statements[0])
    if kind.endswith(_PIVOTS):
        raise UsageError(
            "a PIVOT without an IN list is refused: DuckDB runs it as several statements, which cannot be "
            "checked as reading only; list its values, e.g. "
            "pivot calls on direction in ('inbound', 'outbound') using count(*) group by currency"
        )
    if kind not in _READING:
        raise UsageError(
            f"`cdr sql` and `cdr shell` are read-only: {kind} statements are refused; "
            "query with SELECT (the warehouse is rebuilt by `cdr build`)"
        )
    return query


def _kind(statement: duckdb.Statement) -> str:
    """A parsed statement -> its type's name; for EXPLAIN, with the type of the statement it wraps.

    EXPLAIN ANALYZE runs the statement it wraps (a COPY would write), and DuckDB reports
    only EXPLAIN for all of them: the wrapped statement is the first tail of the text, at
    one of DuckDB's own token boundaries, that parses as one statement on its own.
    """
    if statement.type != duckdb.StatementType.EXPLAIN:
        return statement.type.name
    text = statement.query
    for offset, _ in duckdb.tokenize(text)[1:_EXPLAIN_PREFIX_MAX_TOKENS]:
        try:
            inner = duckdb.extract_statements(text[offset:])
        except duckdb.Error:
            continue
        if len(inner) == 1:
            return f"EXPLAIN {_kind(inner[0])}"
    return "EXPLAIN"


def connect_read_only(warehouse: Path, *, scratch: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A warehouse file -> a read-only connection that reads only it and its data dir's lake, and fetches nothing.

    `scratch`, a folder of the caller's own, is the one place its queries may also write (COPY TO).
    """
    path = Path(warehouse)
    if not path.is_file():
        Lake(path.parent).check_root()  # a data dir that is a file is said as such
        require_data_dir(path.parent)  # one not there at all is a mistyped --data-dir, not a missing build
        raise CdrError(f"no warehouse at {clip(warehouse_name(path))}: run `cdr build` first")
    config = {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    try:
        con = duckdb.connect(str(path), read_only=True, config=config)
    except duckdb.Error as exc:
        raise CdrError(f"cannot open the warehouse {clip(str(path))} read-only: {one_line(exc, limit=150)}") from None
    try:
        # Timestamps print in UTC, as the API writes them, whatever this machine's zone.
        con.execute("set TimeZone = 'UTC'")
        # DuckDB resolves symlinks and `..` of these folders and of every path a query names.
        folders = (*readable_folders(path), *([Path(scratch).resolve()] if scratch else []))
        # The copy of an object store's warehouse: its views read that lake.
        lake = origin_lake(path)
        if lake is not None:
            register_lake(con, lake)
            folders += tuple(lake.location(folder) for folder in (LAKE_DIR, QUARANTINE_DIR))
        con.execute("set allowed_directories = ?", [[f"{folder}/" for folder in folders]])
        con.execute("set enable_external_access = false")
        con.execute("set lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        raise CdrError(f"cannot restrict the warehouse connection to its lake: {one_line(exc, limit=150)}") from None
    return con


def readable_folders(warehouse: Path) -> tuple[Path, ...]:
    """A warehouse file -> the folders its lake views read at query time (its data dir's lake and quarantine)."""
    data_dir = Path(warehouse).parent.resolve()
    return tuple(data_dir / folder for folder in (LAKE_DIR, QUARANTINE_DIR))


def run_query(con: duckdb.DuckDBPyConnection, query: str, *, masking: Masking | None = None) -> QueryResult:
    """A connection (and its masking) and one reading query -> its columns and a stream of row batches;
    UsageError for a refused query, CdrError on a bad one."""
    check_query(query)
    if masking is not None:
        masking.check(query)
    try:
        cursor = con.execute(query)
        description = cursor.description or []
        if any("INTERVAL" in str(column[1]) for column in description):
            cursor = con.execute(_intervals_as_text(query, description))
        first = cursor.fetchmany(BATCH_ROWS)
    except duckdb.Error as exc:
        raise _query_error(exc, con) from None

    def batches() -> Iterator[list[tuple[object, ...]]]:
        batch = first
        while batch:
            yield batch
            try:
                batch = cursor.fetchmany(BATCH_ROWS)
            except duckdb.Error as exc:
                raise _query_error(exc, con) from None

    return QueryResult(
        columns=tuple(d[0] for d in description),
        types=tuple(str(d[1]) for d in description),
        batches=batches(),
    )


def _intervals_as_text(query: str, description: Sequence[tuple[object, ...]]) -> str:
    """A query whose result holds intervals -> the same query with them as DuckDB writes them ('2 months 30 days
    23:40:00'): its Python client makes a timedelta of one, a month counted as 30 days (age() over Aug 1 to Oct 31
    would read 90 days, not 2 months 30 days)."""
    (statement,) = duckdb.extract_statements(query)
    columns = ", ".join(
        f"cast(#{index} as varchar)" if "INTERVAL" in str(column[1]) else f"#{index}"
        for index, column in enumerate(description, start=1)
    )
    # on a line of its own: the query may end with a line comment
    return f"select {columns} from (\n{statement.query}\n)"


def _query_error(exc: duckdb.Error, con: duckdb.DuckDBPyConnection) -> CdrError:
    """A DuckDB error of a query -> the one-line failure to report (a refused file access says why)."""
    if isinstance(exc, duckdb.PermissionException):
        denied = _DENIED_LAKE.search(str(exc))
        if denied is not None and _built_elsewhere(con, denied.group(1)):
            # the warehouse's views name the lake where it was built: a data dir moved or copied since
            return CdrError(
                f"the warehouse reads the lake it was built from, {denied.group(1)}, which is not this data dir's: "
                "run `cdr build` on this data dir first"
            )
        # The file DuckDB names is the point; the query it quotes after it is the user's own.
        return CdrError(f"ad-hoc SQL reads only the warehouse and its lake: {one_line(exc, first=True)}")
    return CdrError(one_line(exc))


# A refused read of a data dir's lake or quarantine (`<dir>/lake/...`): another data dir's.
_DENIED_LAKE = re.compile(rf'Cannot access (?:file|directory) "(.+?)/(?:{LAKE_DIR}|{QUARANTINE_DIR})/')


def _built_elsewhere(con: duckdb.DuckDBPyConnection, data_dir: str) -> bool:
    """Whether the warehouse's own lake views read the lake of `data_dir`, another data dir than its own."""
    try:
        (warehouse,) = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()
        views = con.execute(
            "select sql from duckdb_views() where not internal and starts_with(view_name, 'lake_')"
        ).fetchall()
    except (duckdb.Error, TypeError):
        return False
    if Path(data_dir).resolve() == Path(warehouse).parent.resolve():
        return False
    return any(f"{data_dir}/{LAKE_DIR}/" in sql for (sql,) in views)


# A spreadsheet runs a cell starting with one of these as a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """A text cell of a CSV meant for people -> the same text, led by `'` when it starts as a formula would.

    Names come from the API and can hold anything: `=HYPERLINK(...)` must open as text. The one rule
    for every CSV written for a spreadsheet; only text cells, never a number (a negative cost stays one).
    """
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_rows(out: TextIO) -> Callable[[Sequence[Sequence[str]]], None]:
    """A text stream -> a `writerows` of CSV for rows of text cells, every CSV's: rows end in LF; a cell holding a
    CR is quoted.

    The csv module quotes only a cell holding a character of its line terminator, yet a reader (a spreadsheet,
    the csv module itself) starts a row at a bare CR: unquoted, a name `x<CR>=1+1` would split its row and put
    a formula at the start of a row of its own. Rows without a CR, nearly all, are written as they are.
    """
    plain = csv.writer(out, lineterminator="\n")
    row = io.StringIO()
    quoting = csv.writer(row, lineterminator="\r\n")

    def writerows(rows: Sequence[Sequence[str]]) -> None:
        if "\r" not in "".join(map("".join, rows)):
            plain.writerows(rows)
            return
        for cells in rows:
            row.seek(0)
            row.truncate()
            quoting.writerow(cells)
            out.write(row.getvalue()[:-2] + "\n")

    return writerows


def write_csv(result: QueryResult, out: TextIO, *, for_spreadsheets: bool = False) -> int:
    """A query result -> CSV on `out` (header first; decimals exact, NULL empty; `csv_rows`) -> rows written;
    `for_spreadsheets`: each text cell of a VARCHAR column through `spreadsheet_text` (`cdr sql` writes the data
    as is)."""
    writerows = csv_rows(out)
    writerows([result.columns])
    texts = [for_spreadsheets and kind == "VARCHAR" for kind in result.types]
    count = 0
    for batch in result.batches:
        writerows([
            [spreadsheet_text(value) if text and isinstance(value, str) else _text(value, null="")
             for text, value in zip(texts, row)]
            for row in batch
        ])
        count += len(batch)
    return count


def write_json(result: QueryResult, out: TextIO) -> int:
    """A query result -> a JSON array of objects on `out` (decimals as exact strings; keys `unique_names`) -> rows
    written."""
    names = unique_names(result.columns)
    count = 0
    out.write("[")
    for batch in result.batches:
        for row in batch:
            item = _json(dict(zip(names, row)), option=orjson.OPT_UTC_Z).decode()
            out.write(("\n" if count == 0 else ",\n") + item)
            count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def unique_names(columns: Sequence[str]) -> list[str]:
    """Column names -> the same, a repeated one suffixed `_1`, `_2`… as DuckDB names a subquery's columns.

    A JSON object keeps one value per key: `select *` over a join repeats `id`, and the first
    one's values would be lost.
    """
    seen: dict[str, int] = {}
    names = []
    for name in columns:
        lowered = name.lower()
        if lowered in seen:
            renamed = f"{name}_{seen[lowered]}"
            while renamed.lower() in seen:
                seen[lowered] += 1
                renamed = f"{name}_{seen[lowered]}"
            name, lowered = renamed, renamed.lower()
        seen[lowered] = seen.get(lowered, 0) + 1
        names.append(name)
    return names


def write_table(
    result: QueryResult, out: TextIO, *, max_rows: int = TABLE_MAX_ROWS,
    see_all: str = "use --format csv or json, with --out FILE",
) -> int:
    """A query result -> a readable table on `out` (at most `max_rows`, then a note saying how to `see_all`) -> rows shown."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    numeric = ("INT", "DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC")
    for name, kind in zip(result.columns, result.types):
        right = any(word in kind.upper() for word in numeric) and "[]" not in kind
        table.add_column(name, justify="right" if right else "left", no_wrap=True, overflow="fold")
    shown, more = 0, 0
    for batch in result.batches:
        for row in batch:
            if shown < max_rows:
                # Rich markup in data must print as typed, never style the terminal.
                table.add_row(*[_text(value, null="NULL") for value in row], style=None)
                shown += 1
            else:
                more += 1
    terminal = hasattr(out, "isatty") and out.isatty()
    console = Console(file=out, width=None if terminal else 100_000, markup=False, highlight=False, emoji=False)
    console.print(table)
    footer = f"({shown} row{'s' if shown != 1 else ''}"
    footer += f"; {more} more not shown: {see_all})" if more else ")"
    console.print(footer)
    return shown


def run_sql(
    warehouse: Path,
    query: str,
    *,
    fmt: str = "table",
    out: Path | None = None,
    stdout: TextIO | None = None,
    masked: bool = False,
) -> int:
    """Warehouse, query, format, optional output file and whether phone numbers are `masked` -> the result
    written there (or to stdout) -> rows."""
    fmt = one_of(fmt, FORMATS, "--format")
    check_query(query)
    target = None if out is None else check_out(out, Path(warehouse).parent)
    con = connect_read_only(warehouse)
    try:
        masking = mask_numbers(con) if masked else None
        writer = WRITERS[fmt]
        if target is None:
            return writer(run_query(con, query, masking=masking), stdout or sys.stdout)
        return _write_file(lambda file: writer(run_query(con, query, masking=masking), file), target, out)
    finally:
        con.close()


WRITERS: dict[str, Callable[[QueryResult, TextIO], int]] = {"table": write_table, "csv": write_csv, "json": write_json}


def check_out(out: Path, data_dir: Path) -> Path:
    """An --out path and the data dir -> the file it names, resolved; UsageError unless a file outside the data dir."""
    shown = clip(str(out))
    try:
        target = Path(out).resolve()
        inside = target.is_relative_to(Path(data_dir).resolve())
        folder, parent_missing = target.is_dir(), not target.parent.is_dir()
    except (OSError, RuntimeError) as exc:  # a name too long, a symlink loop
        raise UsageError(f"--out {shown}: {clip(getattr(exc, 'strerror', None) or str(exc))}") from None
    if inside:
        raise UsageError(
            f"--out {shown} is inside the data dir {clip(str(data_dir))}, which holds the lake and the "
            "warehouse: write the result elsewhere"
        )
    if folder:
        raise UsageError(f"--out {shown} is a folder: give the path of a file to write")
    if parent_missing:
        raise UsageError(f"--out {shown}: the folder {clip(str(target.parent))} does not exist")
    return target


def _write_file(write: Callable[[TextIO], int], target: Path, out: Path) -> int:
    """A writer -> its output written whole to `target` (`atomic_file`) -> rows; UsageError if it cannot be created."""
    created = False
    try:
        with atomic_file(target) as temp, open(temp, "x", encoding="utf-8", newline="") as file:
            created = True
            return write(file)
    except OSError as exc:
        failure = CdrError if created else UsageError
        raise failure(f"cannot write --out {clip(str(out))}: {clip(exc.strerror or str(exc))}") from None


def _text(value: object, *, null: str) -> str:
    if value is None:
        return null
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        return _json(value).decode()
    return str(value)


def _json(value: object, *, option: int = 0) -> bytes:
    """A value of a result -> its JSON; what orjson cannot write (a MAP's keys that are not text, an integer
    beyond 64 bits, as `histogram()` and a HUGEINT `sum()` give) is written as DuckDB's own `to_json` does."""
    try:
        return orjson.dumps(value, default=_json_default, option=option)
    except TypeError:
        return orjson.dumps(_json_ready(value, option), default=_json_default, option=option)


_INT_RANGE = (-(2**63), 2**64 - 1)


def _json_ready(value: object, option: int) -> object:
    """A value -> the same, its maps keyed by their keys' JSON text and its huge integers as exact JSON numbers."""
    if isinstance(value, dict):
        return {
            key if isinstance(key, str) else _key_text(key, option): _json_ready(item, option)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_json_ready(item, option) for item in value]
    if isinstance(value, int) and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        return orjson.Fragment(str(value))
    return value


def _key_text(key: object, option: int) -> str:
    """A MAP key -> the text of its JSON (a date's without quotes), as `to_json` keys a map."""
    text = _json(key, option=option)
    return orjson.loads(text) if text.startswith(b'"') else text.decode()


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)
