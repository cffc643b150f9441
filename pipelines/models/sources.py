"""Sources: the lake's datasets and quarantine as DuckDB views, the calendar macros, and which lake file broke a build."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipelines.errors import CdrError, LakeError, few, one_line
from pipelines.lake import (
    ACCOUNT_FOLDER, LAKE_DIR, QUARANTINE_GLOB, Lake, register_lake, resync_command, schema_difference,
)
from pipelines.land import QUARANTINE_SCHEMA
from pipelines.opentact import api

# The lake's datasets and the schema of their partitions (written by the sync).
LAKE_SCHEMAS: Mapping[str, Mapping[str, pl.DataType]] = {
    "cdrs": api.LAKE_SCHEMAS["cdrs"],
    "mdrs": api.LAKE_SCHEMAS["mdrs"],
    "usage_cdrs": api.USAGE_SCHEMA,
    "usage_mdrs": api.USAGE_SCHEMA,
}
SOURCE_PREFIX = "lake_"
# The records the sync set aside as malformed (`pipelines.land.quarantine`, JSON lines): the
# API's usage counts them, so reconciliation reads them to tell explained differences apart.
QUARANTINE_SOURCE = "quarantine"
# Every source view's first column: the account a file belongs to, from its `account=<name>`
# folder (`lake/<dataset>/account=<name>/date=.../data.parquet`, `quarantine/<kind>/account=<name>/
# date=.../<file>.jsonl`; the lake's listing refuses a file outside one).
ACCOUNT_COLUMN = "account"
_ACCOUNT = f"regexp_extract(filename, '/{ACCOUNT_FOLDER}([^/]+)/date=[^/]*/[^/]*$', 1) as {ACCOUNT_COLUMN}"

_LINE = re.compile(r"LINE (\d+):")

# Reference data: each `queries/seeds/<name>.csv` is loaded as the table `seed_<name>` before any
# model runs (a table, not a view of the file: `cdr sql` reads the warehouse without file access).
SEEDS_DIR = "seeds"
SEED_PREFIX = "seed_"
# The alert rules' settings and what the build used (`pipelines.models.thresholds`).
THRESHOLDS_TABLE = "alert_thresholds"
ALERT_CONFIG_TABLE = "alert_config"
# Macros the runner defines for a build besides the calendar: `build_time()` (the moment the
# build evaluates "now" at, for rules such as a stale sync), `recomputed_since()`,
# `recomputed_month_start()`, `threshold(rule, name)` (see `build_macros`) and the quarantine's
# (see `QUARANTINE_MACROS`).
BUILD_MACROS = (
    "build_time", "recomputed_since", "recomputed_month_start", "threshold", "quarantine_record_id",
    "quarantine_record_key",
)

# A quarantined record's identity, the one rule stg_quarantine and `cdr status` count records by:
# every re-sync of a window sets the same records aside again. `quarantine_record_id(raw_json)`:
# its id, when the raw text is JSON with a non-empty one (null otherwise);
# `quarantine_record_key(raw_json)`: 'id:' and its id (so a re-rated version is the same record),
# else 'sha256:' and the hash of its raw text.
QUARANTINE_MACROS = (
    "create or replace macro quarantine_record_id(raw_json) as "
    "case when json_valid(raw_json) then nullif(json_extract_string(raw_json, '$.id'), '') end",
    "create or replace macro quarantine_record_key(raw_json) as "
    "coalesce('id:' || quarantine_record_id(raw_json), 'sha256:' || sha256(raw_json))",
)

# The UTC fast path: plain integer arithmetic instead of an ICU calendar per value.
UTC_NAMES = frozenset({"UTC", "Etc/UTC"})


def source_names(queries_dir: Path | None = None) -> tuple[str, ...]:
    """The names models read that are no model: the lake's source views (and, given a queries folder, its seeds and config tables)."""
    names = tuple(SOURCE_PREFIX + dataset for dataset in (*LAKE_SCHEMAS, QUARANTINE_SOURCE))
    if queries_dir is None:
        return names
    seeds = tuple(SEED_PREFIX + path.stem for path in seed_files(queries_dir))
    return (*names, *seeds, THRESHOLDS_TABLE, ALERT_CONFIG_TABLE)


def seed_files(queries_dir: Path) -> list[Path]:
    """A queries folder -> its seed CSV files, sorted."""
    return sorted((Path(queries_dir) / SEEDS_DIR).glob("*.csv"))


def seed_sql(path: Path) -> str:
    """A seed CSV -> the statement creating its table: every column text, as written (empty -> '')."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise CdrError(f"seed {path}: cannot read it ({one_line(exc)})") from None
    if not header or any(not re.fullmatch(r"[a-z][a-z0-9_]*", column) for column in header):
        raise CdrError(f"seed {path}: the first line must name its columns in lower case, e.g. country_code,prefix")
    columns = ", ".join(f"{sql_string(column)}: 'VARCHAR'" for column in header)
    select = ", ".join(f"coalesce({column}, '') as {column}" for column in header)
    return (
        f"create table {SEED_PREFIX}{path.stem} as select {select} from read_csv({sql_string(str(path))}, "
        f"header = true, columns = {{{columns}}}, quote = '\"', escape = '\"', strict_mode = true)"
    )


# The session variable an incremental build sets while it recomputes a model incremental on
# `window_end` or `month` (`recomputed_since()`).
RECOMPUTED_SINCE_VARIABLE = "cdr_recomputed_since"


def month_start_sql(since: str) -> str:
    """The SQL of a `recomputed_since()` instant (the UTC midnight before the earliest day an incremental
    build replaced) -> the SQL of the first day of that day's month: the first month a model incremental
    on `month` recomputes (minus infinity for minus infinity)."""
    return f"date_trunc('month', timezone('UTC', {since})::date + 1)::date"


RECOMPUTED_MACROS = (
    "create or replace macro recomputed_since() as "
    f"coalesce(getvariable('{RECOMPUTED_SINCE_VARIABLE}'), '-infinity'::timestamptz)",
    f"create or replace macro recomputed_month_start() as {month_start_sql('recomputed_since()')}",
)


def build_macros(now: datetime) -> list[str]:
    """The build's clock -> the statements creating `build_time()`, `recomputed_since()`, `threshold(rule, name)`
    and the quarantine's macros.

    `recomputed_since()`: the instant after which a model incremental on `window_end` recomputes its
    windows (minus infinity but while an incremental build recomputes one: everything), so it reads
    only the facts those windows look back on; `recomputed_month_start()`: the first day of the first
    report month a model incremental on `month` recomputes, likewise, so it reads only those months'
    facts. `threshold` reads the thresholds table (create it first); an unknown pair stops the query
    with its name rather than reading as null, which would silently switch a rule off.
    """
    return [
        f"create or replace macro build_time() as timestamptz {sql_string(now.isoformat())}",
        *RECOMPUTED_MACROS,
        "create or replace macro threshold(rule_name, key) as coalesce("
        f"(select value from {THRESHOLDS_TABLE} where rule = rule_name and name = key), "
        "error('no alert threshold ' || rule_name || '.' || key || ' in the thresholds file'))",
        *QUARANTINE_MACROS,
    ]


def duckdb_type(dtype: pl.DataType) -> str:
    """A lake column's polars type -> the DuckDB type it reads as."""
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision}, {dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    if isinstance(dtype, pl.List):
        return duckdb_type(dtype.inner) + "[]"
    if isinstance(dtype, pl.Struct):
        fields = ", ".join(f'"{field.name}" {duckdb_type(field.dtype)}' for field in dtype.fields)
        return f"STRUCT({fields})"
    simple = {pl.String: "VARCHAR", pl.Int32: "INTEGER", pl.Int64: "BIGINT", pl.Date: "DATE", pl.Boolean: "BOOLEAN"}
    for kind, name in simple.items():
        if isinstance(dtype, kind):
            return name
    raise ValueError(f"no DuckDB type for lake type {dtype}")


def source_sql(
    lake: Lake | str | os.PathLike[str], dataset: str, days: Collection[date] | None = None,
    files: Sequence[str] | None = None, known: Mapping[str, bool] | None = None,
) -> tuple[str, int]:
    """A data dir and dataset -> (the SELECT of its source view, how many partition files it has now).

    The view's columns: `account`, then the dataset's. With `days`, the view reads only those
    days' partitions (an incremental build's window). `files`: the dataset's partition files, when
    the caller listed them already (`Lake.partition_files`); `known`: as for `lacking_columns`.
    """
    lake = _lake(lake)
    schema = LAKE_SCHEMAS[dataset]
    files = lake.partition_files(dataset) if files is None else files
    if days is not None:
        files = [relative for relative in files if Lake.partition_day(relative) in days]
    if not files:
        return _empty_source(schema, account=True), 0
    lacking = lacking_columns(lake, dataset, files, known)
    # A glob, not the file list: the view keeps reading the lake as the sync adds days (and
    # accounts). Hive partitioning stays off: the usage files have a `date` column of their own.
    pattern = _files_sql(lake, [Lake.partition_glob(dataset)] if days is None else files)
    columns = ", ".join(f"cast({c} as {duckdb_type(t)}) as {c}" for c, t in schema.items())
    # A partition an older release wrote lacks the columns added since: read by name, it gives them
    # as null. Only then, since reading by name opens every footer each time a query reads the view;
    # the sync writes every new day whole. The empty typed select keeps a column no partition has yet.
    by_name = ", union_by_name = true" if any(lacking.values()) else ""
    files_read = f"read_parquet({pattern}, hive_partitioning = false, filename = true{by_name})"
    return (
        f"select {_ACCOUNT}, {columns} from (select * from {files_read} union all by name {_empty_source(schema)})",
        len(files),
    )


def lacking_columns(
    lake: Lake | str | os.PathLike[str], dataset: str, files: Sequence[str], known: Mapping[str, bool] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> dict[str, bool]:
    """A dataset's partition files -> whether each lacks columns of the dataset's schema (an older release
    wrote it), from their footers. LakeError for a file the build cannot read, or one with a column
    no release writes (another dataset's), which is refused, not read as nulls.

    `known`: the answer for some of the files, as an earlier build of this release read it in their
    footers (the caller's to vouch they are the same files): those are not read again. `con`: a
    connection that reads the lake (`register_lake`) to read the footers on (None: one of its own).
    """
    lake = _lake(lake)
    schema = LAKE_SCHEMAS[dataset]
    known = known or {}
    lacking = {relative: known[relative] for relative in files if relative in known}
    unread = [relative for relative in files if relative not in known]
    if not unread:
        return lacking
    own = con is None
    if con is None:
        con = duckdb.connect()
        register_lake(con, lake)
    try:
        by_file = _top_level_columns(con, _files_sql(lake, unread))
    except duckdb.Error as exc:
        raise unreadable_lake_file(lake, exc) or LakeError(
            f"cannot read the {dataset} partitions in {lake.display(LAKE_DIR)}: {one_line(exc, first=True)}"
        ) from None
    finally:
        if own:
            con.close()
    unknown = list(dict.fromkeys(name for names in by_file.values() for name in names if name not in schema))
    if unknown:
        raise unreadable_lake_file(lake, LakeError("")) or LakeError(
            f"the {dataset} partitions in {lake.display(LAKE_DIR)} hold columns the sync does not write "
            f"({few(unknown)}): move the files holding them out of the lake and re-sync their days"
        )
    located = {lake.location(relative): relative for relative in unread}
    lacking.update({located.get(name, name): len(names) < len(schema) for name, names in by_file.items()})
    return lacking


def quarantine_source_sql(lake: Lake | str | os.PathLike[str], files: Sequence[str] | None = None) -> tuple[str, int]:
    """A data dir -> (the SELECT of its quarantine source view, how many quarantine files it has now).

    The view's columns: `account`, then QUARANTINE_SCHEMA's. `files`: the quarantine files, when
    the caller listed them already (`Lake.quarantine_files`).
    """
    lake = _lake(lake)
    files = lake.quarantine_files() if files is None else files
    if not files:
        return _empty_source(QUARANTINE_SCHEMA, account=True), 0
    read = _read_quarantine(_files_sql(lake, [QUARANTINE_GLOB]), filename=True)
    return f"select {_ACCOUNT}, {', '.join(QUARANTINE_SCHEMA)} from {read}", len(files)


def _files_sql(lake: Lake, relatives: Sequence[str]) -> str:
    """Relative paths or globs -> the SQL naming their locations: one string, or a list of them."""
    names = [sql_string(lake.location(relative)) for relative in relatives]
    return names[0] if len(names) == 1 else "[" + ", ".join(names) + "]"


def calendar_macros(report_timezone: str) -> list[str]:
    """A reporting zone -> the statements creating the calendar macros every model uses."""
    if report_timezone in UTC_NAMES:
        local = "make_timestamp(epoch_us(ts))"
    else:
        local = f"timezone({sql_string(report_timezone)}, ts)"
    return [
        f"create or replace macro report_timezone() as {sql_string(report_timezone)}",
        f"create or replace macro report_time(ts) as {local}",
        "create or replace macro utc_time(ts) as make_timestamp(epoch_us(ts))",
        # the inverse of report_time(ts)::date: the instant a report date starts (day alerts' windows)
        f"create or replace macro report_day_start(report_date) as "
        f"timezone({sql_string(report_timezone)}, report_date::timestamp)",
    ]


def unreadable_lake_file(lake: Lake | str | os.PathLike[str], error: BaseException) -> LakeError | None:
    """A data dir and a failed build's error -> the first lake or quarantine file at fault (None: none is).

    Looked for only once a build failed, so a good build pays nothing for it: each partition's
    footer (its columns and types), then the partition DuckDB's error names (a damaged page
    behind a good footer), then each quarantine file.
    """
    lake = _lake(lake)
    named: LakeError | None = None
    con = duckdb.connect()
    register_lake(con, lake)
    try:
        for dataset, schema in LAKE_SCHEMAS.items():
            expected = _columns(con, _empty_source(schema))
            for relative in lake.partition_files(dataset):
                resync = resync_command(dataset.removeprefix("usage_"), Lake.partition_day(relative))
                read = f"select * from read_parquet({sql_string(lake.location(relative))}, hive_partitioning = false)"
                try:
                    found = _columns(con, read)
                except duckdb.Error as exc:
                    return _unreadable_partition(lake, relative, exc, resync)
                if not set(found) <= set(expected):  # lacking columns added since it was written is fine
                    return LakeError(
                        f"{lake.display(relative)} does not hold the {dataset} columns the sync writes "
                        f"({schema_difference(dict(expected), dict(found))}): delete it and re-sync that day with {resync}"
                    )
                if named is None and lake.location(relative) in str(error):
                    named = _unreadable_partition(lake, relative, error, resync)
        if named is not None:
            return named
        return unreadable_quarantine_file(lake, con, lake.quarantine_files())
    finally:
        con.close()


def unreadable_quarantine_file(lake: Lake, con: duckdb.DuckDBPyConnection, files: Sequence[str]) -> LakeError | None:
    """Quarantine files that failed to read together -> the first one at fault (None: none is), read one by
    one over `con` (which reads the lake)."""
    for relative in files:
        try:
            con.execute(f"select count(*) from {_read_quarantine(sql_string(lake.location(relative)))}").fetchall()
        except duckdb.Error as exc:
            return LakeError(
                f"{lake.display(relative)} is not readable quarantine JSON lines ({one_line(exc, first=True)}): "
                "move it out of the data dir (reconciliation then counts its records as unexplained)"
            )
    return None


def error_line(exc: BaseException) -> str | None:
    """A DuckDB error -> the line of the SQL it names (None when it names none)."""
    match = _LINE.search(str(exc))
    return match.group(1) if match else None


def sql_string(text: str) -> str:
    """Text -> a SQL string literal of it."""
    return "'" + text.replace("'", "''") + "'"


def _lake(lake: Lake | str | os.PathLike[str]) -> Lake:
    return lake if isinstance(lake, Lake) else Lake(lake)


def _read_quarantine(files: str, *, filename: bool = False) -> str:
    """SQL of quarantine files (a path, a glob or a list of them) -> a subquery reading them typed: a key a
    line lacks reads null, a value not of its column's type fails the query, as DuckDB's read_json would.

    Read as text and parsed line by line: read_json's fixed cost per file is many times this, and
    a quarantine holds many small files (one per sync call that set records aside).
    """
    shape = "{" + ", ".join(f'"{c}": "{duckdb_type(t)}"' for c, t in QUARANTINE_SCHEMA.items()) + "}"
    # a value json_transform cannot read as its type comes out null; only a JSON null may
    mistyped = " ".join(
        f"when typed.{c} is null and coalesce(json_type(line, '$.{c}') <> 'NULL', false) "
        f"then error({sql_string(f'a quarantined line has a {c} that is not a {duckdb_type(t)}')})"
        for c, t in QUARANTINE_SCHEMA.items()
    )
    columns = ", ".join(f"typed.{c} as {c}" for c in QUARANTINE_SCHEMA)
    named = ", filename" if filename else ""
    return f"""(
        select {columns}{named}
        from (
            select filename, line, json_valid(line) as is_json,
                case when is_json then json_transform(line, {sql_string(shape)}) end as typed
            from (select filename, unnest(string_split(content, chr(10))) as line from read_text({files}))
            where trim(line) <> ''
        )
        where case
            when not is_json then error('a quarantined line is not JSON')
            when json_type(line) <> 'OBJECT' then error('a quarantined line is not a JSON object')
            {mistyped}
            else true
        end
    )"""


def _empty_source(schema: Mapping[str, pl.DataType], *, account: bool = False) -> str:
    """A schema -> a SELECT of no rows with its typed columns (a source with no files yet; `account` first if asked)."""
    columns = ", ".join(f"cast(null as {duckdb_type(t)}) as {c}" for c, t in schema.items())
    if account:
        columns = f"cast(null as VARCHAR) as {ACCOUNT_COLUMN}, {columns}"
    return f"select {columns} where false"


def _unreadable_partition(lake: Lake, relative: str, exc: BaseException, resync: str) -> LakeError:
    name = relative.rsplit("/", 1)[-1]
    reason = one_line(exc, first=True).replace(lake.location(relative), name).replace(lake.display(relative), name)
    return LakeError(
        f"{lake.display(relative)} is not a readable Parquet file ({reason}): delete it and re-sync that day with {resync}"
    )


def _top_level_columns(con: duckdb.DuckDBPyConnection, pattern: str) -> dict[str, list[str]]:
    """A glob of Parquet files -> each file's top-level column names, from its footer alone."""
    rows = con.execute(f"select file_name, name, coalesce(num_children, 0) from parquet_schema({pattern})").fetchall()
    by_file: dict[str, list[str]] = {}
    # Per file, the schema tree in pre-order: the root, then each column with its nested fields after it.
    position = 0
    while position < len(rows):
        file_name, _, columns = rows[position]
        names = by_file.setdefault(str(file_name), [])
        position += 1
        for _ in range(columns):
            names.append(str(rows[position][1]))
            position = _past_subtree(rows, position)
    return by_file


def _past_subtree(rows: Sequence[tuple[object, ...]], position: int) -> int:
    """The position after the schema element at `position` and every field nested in it."""
    children = int(rows[position][2])  # type: ignore[call-overload]
    position += 1
    for _ in range(children):
        position = _past_subtree(rows, position)
    return position


def _columns(con: duckdb.DuckDBPyConnection, select: str) -> list[tuple[str, str]]:
    """A SELECT -> its (column name, DuckDB type) pairs, read without running it."""
    return [(str(row[0]), str(row[1])) for row in con.execute(f"describe {select}").fetchall()]
