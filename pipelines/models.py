"""Models stage: run the SQL in `queries/` in dependency order into the DuckDB warehouse.

The tree is the DAG. Each `.sql` file under `queries/<layer>/` is one model named after
its file, one SELECT whose first line is a comment stating its grain and key. Models read
each other by name; the runner finds those names, orders the models with
`graphlib.TopologicalSorter` (building two at a time as their reads allow), and refuses a
cycle or a read against the layer order (lake -> stg -> int -> fct/dim -> rpt -> the ad-hoc
views people query).

The lake itself enters as generated `lake_<dataset>` views over the Parquet partitions
(absolute paths, so the warehouse works from any working directory; a typed empty relation
when a dataset has no partition yet), and the sync's quarantine as `lake_quarantine` (its JSON
lines, typed the same way). Three macros fix the calendar for every model:
`report_time(ts)` (local wall-clock time in the reporting zone), `utc_time(ts)` and
`report_timezone()`.

A build writes a fresh database beside the warehouse and renames it over the old one only
after every model and every data test (`queries/tests/*.sql`, queries returning offending
rows) has passed, so readers see the previous warehouse or the new one, never a mix. A lake
that is not laid out as the sync writes it, or a partition DuckDB cannot read, fails the build
naming the path and the re-sync that repairs it. The temporary database carries its builder's
pid, so a later build removes what a killed one left and never a running build's.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date, timedelta
from enum import IntEnum
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import cast

import duckdb
import orjson
import polars as pl

from pipelines.errors import CdrError, UsageError
from pipelines.lake import LAKE_DIR, PARTITION_FILE, QUARANTINE_DIR, LakeError, _alive
from pipelines.land import QUARANTINE_SCHEMA
from pipelines.opentact import api

# In a checkout (and an editable install) the models sit beside the package; a wheel ships
# them inside it (pyproject's force-include).
_PACKAGED_QUERIES = Path(__file__).resolve().parent / "queries"
QUERIES_DIR = _PACKAGED_QUERIES if _PACKAGED_QUERIES.is_dir() else Path(__file__).resolve().parent.parent / "queries"
WAREHOUSE_FILE = "warehouse.duckdb"
FAILED_WAREHOUSE_FILE = "warehouse.failed.duckdb"
TESTS_DIR = "tests"
SAMPLE_ROWS = 5
_MEMORY_DATABASE = "memory"  # DuckDB's name for the in-memory database of `duckdb.connect()`
# Models are built, and data tests run, as soon as what they read is built, two at a time on
# two DuckDB connections to the one database, with the cores split between them: DuckDB's
# threads are set so that both together use every core once (on 2 cores each runs on one).
# Against one model at a time on every core, the bench build was faster in 7 of 8 alternating
# rounds with two at a time sharing all cores (-5% on average), and by another 8% (median of
# 9 rounds, faster in 6) with the cores split and the models more jobs wait for first: each
# query's own parallel overhead goes (9% less CPU, median) and the long fact models start first
# (bench/RESULTS.md).
BUILD_WORKERS = 2
_WAREHOUSE_ALIAS = "new_warehouse"

# The lake's datasets and the schema of their partitions (written by the sync).
LAKE_SCHEMAS: Mapping[str, Mapping[str, pl.DataType]] = {
    "cdrs": api.CDR_SCHEMA,
    "mdrs": api.MDR_SCHEMA,
    "usage_cdrs": api.USAGE_SCHEMA,
    "usage_mdrs": api.USAGE_SCHEMA,
}
SOURCE_PREFIX = "lake_"
# The records the sync set aside as malformed (`pipelines.land.quarantine`, JSON lines): the
# API's usage counts them, so reconciliation reads them to tell explained differences apart.
QUARANTINE_SOURCE = "quarantine"

# The UTC fast path: plain integer arithmetic instead of an ICU calendar per value.
_UTC_NAMES = frozenset({"UTC", "Etc/UTC"})


class Layer(IntEnum):
    """Where a model sits in the data flow; a model may read only its own layer or earlier ones."""

    LAKE = 0
    STAGING = 1
    INTERMEDIATE = 2
    MARTS = 3
    REPORTS = 4
    ADHOC = 5


@dataclass(frozen=True, slots=True)
class LayerRule:
    """How a `queries/` folder maps to a layer: name prefixes and default materialization."""

    layer: Layer
    prefixes: tuple[str, ...]
    materialized: str


LAYER_DIRS: Mapping[str, LayerRule] = {
    "staging": LayerRule(Layer.STAGING, ("stg_",), "view"),
    "intermediate": LayerRule(Layer.INTERMEDIATE, ("int_",), "view"),
    "marts": LayerRule(Layer.MARTS, ("fct_", "dim_"), "table"),
    "reports": LayerRule(Layer.REPORTS, ("rpt_",), "table"),
    # Friendly views for ad-hoc SQL (`calls`, `messages`): no prefix, nothing reads them.
    "adhoc": LayerRule(Layer.ADHOC, ("",), "view"),
}
MATERIALIZATIONS = ("view", "table")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MATERIALIZED = re.compile(r"^--\s*materialized:\s*(\w+)\s*$", re.MULTILINE)
# Schemas a model's own name may be read through: the build's default one.
_OWN_SCHEMAS = ("", "main")
_LINE = re.compile(r"LINE (\d+):")
_PARTITION_DAY = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
# `.warehouse.duckdb.<pid>.<hex>.tmp`, its WAL and its spill folder.
_BUILD_TEMP = re.compile(r"^\." + re.escape(WAREHOUSE_FILE) + r"\.(\d+)\.[0-9a-f]{12}\.tmp(?:\.wal|\.spill)?$")


@dataclass(frozen=True, slots=True)
class Model:
    """One SQL model: its name, file, layer, materialization, SQL and the names it reads."""

    name: str
    path: Path
    layer: Layer
    materialized: str
    sql: str
    refs: frozenset[str]


@dataclass(frozen=True, slots=True)
class DataTest:
    """One data test: a query returning the rows that break an invariant (none when it holds)."""

    name: str
    path: Path
    description: str
    sql: str
    refs: frozenset[str]


@dataclass(frozen=True, slots=True)
class ModelRun:
    """What building one model did."""

    name: str
    layer: Layer
    materialized: str
    rows: int | None
    seconds: float


@dataclass(frozen=True, slots=True)
class TestRun:
    """One data test that passed."""

    name: str
    seconds: float


@dataclass(frozen=True, slots=True)
class BuildReport:
    """The outcome of a successful build."""

    warehouse: Path
    report_timezone: str
    sources: Mapping[str, int]
    models: tuple[ModelRun, ...]
    tests: tuple[TestRun, ...]
    seconds: float

    def summary(self) -> str:
        """One line: what was built where, how long it took."""
        files = ", ".join(f"{name} {count} file(s)" for name, count in self.sources.items())
        return (
            f"built {len(self.models)} models and passed {len(self.tests)} data tests into {self.warehouse} "
            f"in {self.seconds:.1f}s (report time zone {self.report_timezone}; lake: {files})"
        )


def warehouse_path(data_dir: Path) -> Path:
    """A data dir -> the path of its DuckDB warehouse."""
    return Path(data_dir) / WAREHOUSE_FILE


def references(sql: str, names: Iterable[str]) -> frozenset[str]:
    """One SELECT and the names that can be read -> the names it reads as tables.

    Read from DuckDB's own parse tree, so a name in a string, a comment or a column is not a
    read and every join form is. A CTE defined in the text hides a model of the same name
    everywhere in that text.
    """
    with duckdb.connect() as con:
        parsed = orjson.loads(con.execute("select json_serialize_sql(?)", [sql]).fetchall()[0][0])
    if parsed["error"] or len(parsed["statements"]) != 1:
        raise CdrError(f"cannot tell which tables this SQL reads ({parsed.get('error_message', 'not one statement')})")
    tables: set[str] = set()
    ctes: set[str] = set()
    pending = [parsed["statements"][0]]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            if node.get("type") == "BASE_TABLE" and not node["catalog_name"] and node["schema_name"] in _OWN_SCHEMAS:
                tables.add(node["table_name"].lower())
            cte_map = node.get("cte_map")
            if isinstance(cte_map, dict):
                ctes.update(entry["key"].lower() for entry in cte_map["map"])
            pending.extend(node.values())
    return frozenset((tables - ctes) & {name.lower() for name in names})


def source_names() -> tuple[str, ...]:
    """The names of the lake's source views, one per dataset."""
    return tuple(SOURCE_PREFIX + dataset for dataset in (*LAKE_SCHEMAS, QUARANTINE_SOURCE))


def discover_models(queries_dir: Path = QUERIES_DIR) -> tuple[Model, ...]:
    """A queries folder -> its models (one per `.sql` file in a layer folder), with their references."""
    queries_dir = Path(queries_dir)
    if not queries_dir.is_dir():
        raise CdrError(f"no queries folder at {queries_dir}: run from a source checkout of opentact-cdr")
    unknown = sorted(
        p.name for p in queries_dir.iterdir() if p.is_dir() and p.name not in LAYER_DIRS and p.name != TESTS_DIR
    )
    if unknown:
        raise CdrError(
            f"unknown folder(s) in {queries_dir}: {', '.join(unknown)}; "
            f"models live in {', '.join(LAYER_DIRS)} (and data tests in {TESTS_DIR})"
        )
    found: list[tuple[str, Path, LayerRule, str]] = []
    for folder, rule in LAYER_DIRS.items():
        for path in sorted((queries_dir / folder).glob("*.sql")):
            name = path.stem
            if not _NAME.match(name) or not name.startswith(rule.prefixes):
                expected = " or ".join(f"{p}<name>" for p in rule.prefixes if p) or "a lower-case name"
                raise CdrError(f"model file {path} is misnamed: models in {folder}/ are named {expected} (lower case)")
            found.append((name, path, rule, _read_sql(path)))
    seen: dict[str, Path] = {}
    for name, path, _, _ in found:
        if name in seen or name in source_names():
            other = seen.get(name, "the lake's source view")
            raise CdrError(f"model name {name} is used twice: {other} and {path}")
        seen[name] = path
    readable = [*source_names(), *seen]
    models = []
    for name, path, rule, sql in found:
        models.append(
            Model(
                name=name,
                path=path,
                layer=rule.layer,
                materialized=_materialization(path, sql, rule.materialized),
                sql=sql,
                refs=references(sql, readable) - {name},
            )
        )
    return tuple(models)


def discover_tests(queries_dir: Path, model_names: Iterable[str]) -> tuple[DataTest, ...]:
    """A queries folder and the model names -> its data tests (`tests/*.sql`)."""
    readable = [*source_names(), *model_names]
    tests = []
    for path in sorted((Path(queries_dir) / TESTS_DIR).glob("*.sql")):
        sql = _read_sql(path)
        description = sql.splitlines()[0].removeprefix("--").strip()
        tests.append(DataTest(path.stem, path, description, sql, references(sql, readable)))
    return tuple(tests)


def build_order(models: Sequence[Model]) -> list[Model]:
    """Models -> the same models in an order where each comes after everything it reads.

    Raises CdrError on a backward read (a model reading a later layer) or a cycle.
    """
    by_name = {model.name: model for model in models}
    for model in models:
        for ref in sorted(model.refs):
            target = by_name.get(ref)
            layer = target.layer if target is not None else Layer.LAKE
            if layer > model.layer:
                raise CdrError(
                    f"model {model.name} ({model.layer.name.lower()}) reads {ref} ({layer.name.lower()}), "
                    "a later layer: reads go lake -> stg -> int -> fct/dim -> rpt -> ad-hoc views "
                    f"(fix {model.path})"
                )
    graph = {model.name: {ref for ref in model.refs if ref in by_name} for model in models}
    sorter = TopologicalSorter(graph)
    try:
        # Deterministic: ties keep (layer, name) order, so builds and logs read the same every time.
        sorter.prepare()
    except CycleError as exc:
        cycle = exc.args[1]
        raise CdrError(f"models read each other in a cycle: {' -> '.join(cycle)}") from exc
    ordered: list[Model] = []
    rank = {model.name: (model.layer, model.name) for model in models}
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=rank.__getitem__)
        ordered.extend(by_name[name] for name in ready)
        sorter.done(*ready)
    return ordered


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


def lake_files(data_dir: Path, dataset: str) -> list[Path]:
    """A data dir and dataset -> its partition files, sorted; LakeError where the lake is not as the sync lays it out.

    What the view's glob would skip is refused rather than skipped: a build reading past it
    would publish a warehouse without those days over a good one. An empty day folder (what a
    killed sync can leave) holds no data and is passed over.
    """
    folder = Path(data_dir) / LAKE_DIR / dataset
    kind = dataset.removeprefix("usage_")
    for path, types in ((folder.parent, None), (folder, kind)):
        if os.path.lexists(path) and not path.is_dir():
            raise LakeError(
                f"{path} is not a folder, so the build would read an empty lake: move it aside and "
                f"re-sync the days it held with {_resync_command(types, None)}"
            )
    if not folder.is_dir():
        return []
    files = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("date="):
                    partition = _partition_file(Path(entry.path), entry.is_dir(), kind)
                    if partition is not None:
                        files.append(partition)
    except OSError as exc:
        raise LakeError(f"cannot list {folder} ({exc.strerror or exc}): make the data dir readable") from None
    return sorted(files)


def _partition_file(partition: Path, is_dir: bool, kind: str) -> Path | None:
    """A `date=` entry of the lake -> its data file (None for an empty folder); LakeError when it cannot be one."""
    match = _PARTITION_DAY.match(partition.name)
    resync = _resync_command(kind, date.fromisoformat(match.group(1)) if match else None)
    if not is_dir:
        raise LakeError(
            f"{partition} is a file where the lake keeps a day's folder: move it out of the lake and "
            f"re-sync that day with {resync}"
        )
    data = partition / PARTITION_FILE
    try:
        if data.is_file():
            return data
        if os.path.lexists(data):
            raise LakeError(f"{data} is not a file: move it out of the lake and re-sync that day with {resync}")
        others = sorted(name for name in os.listdir(partition) if not name.startswith("."))
    except OSError as exc:
        raise LakeError(f"cannot read {partition} ({exc.strerror or exc}): make the data dir readable") from None
    if others:
        raise LakeError(
            f"{partition} holds no {PARTITION_FILE} but {_few(others)}: move those out of the lake and "
            f"re-sync that day with {resync}"
        )
    return None


def _resync_command(kind: str | None, day: date | None) -> str:
    """What to run to land a UTC day (or, without one, a range) again, as the user types it."""
    types = f" --types {kind}" if kind else ""
    start, end = (day.isoformat(), (day + timedelta(days=1)).isoformat()) if day else ("YYYY-MM-DD", "YYYY-MM-DD")
    # Partitions are UTC days: --tz UTC makes the bare dates their midnights.
    return f"`cdr sync{types} --tz UTC --start {start} --end {end}`"


def source_sql(data_dir: Path, dataset: str) -> tuple[str, int]:
    """A data dir and dataset -> (the SELECT of its source view, how many partition files it has now)."""
    schema = LAKE_SCHEMAS[dataset]
    files = lake_files(data_dir, dataset)
    if not files:
        return _empty_source(schema), 0
    folder = Path(data_dir).resolve() / LAKE_DIR / dataset
    # A glob, not the file list: the view keeps reading the lake as the sync adds days.
    # Hive partitioning stays off: the usage files have a `date` column of their own.
    pattern = _sql_string(f"{folder.as_posix()}/date=*/{PARTITION_FILE}")
    columns = ", ".join(f"cast({c} as {duckdb_type(t)}) as {c}" for c, t in schema.items())
    return f"select {columns} from read_parquet({pattern}, hive_partitioning = false)", len(files)


def quarantine_source_sql(data_dir: Path) -> tuple[str, int]:
    """A data dir -> (the SELECT of its quarantine source view, how many quarantine files it has now)."""
    folder = Path(data_dir).resolve() / QUARANTINE_DIR
    files = quarantine_files(data_dir)
    if not files:
        return _empty_source(QUARANTINE_SCHEMA), 0
    pattern = _sql_string(f"{folder.as_posix()}/*/date=*/*.jsonl")
    return f"select {', '.join(QUARANTINE_SCHEMA)} from {_read_quarantine(pattern)}", len(files)


def _read_quarantine(files: str) -> str:
    """A SQL string of quarantine files (a path or a glob) -> the read_json call reading them typed."""
    # An explicit schema: no type guessing from a sample, and the same columns for one file or many.
    schema = ", ".join(f"{_sql_string(c)}: {_sql_string(duckdb_type(t))}" for c, t in QUARANTINE_SCHEMA.items())
    return f"read_json({files}, format = 'newline_delimited', columns = {{{schema}}})"


def quarantine_files(data_dir: Path) -> list[Path]:
    """A data dir -> its quarantine files, sorted; LakeError when the quarantine is not a folder."""
    folder = Path(data_dir) / QUARANTINE_DIR
    if os.path.lexists(folder) and not folder.is_dir():
        raise LakeError(
            f"{folder} is not a folder, so the build would miss the records the sync set aside: move it aside"
        )
    return sorted(folder.glob("*/date=*/*.jsonl")) if folder.is_dir() else []


def _empty_source(schema: Mapping[str, pl.DataType]) -> str:
    """A schema -> a SELECT of no rows with its typed columns (a source with no files yet)."""
    columns = ", ".join(f"cast(null as {duckdb_type(t)}) as {c}" for c, t in schema.items())
    return f"select {columns} where false"


def calendar_macros(report_timezone: str) -> list[str]:
    """A reporting zone -> the statements creating the calendar macros every model uses."""
    if report_timezone in _UTC_NAMES:
        local = "make_timestamp(epoch_us(ts))"
    else:
        local = f"timezone({_sql_string(report_timezone)}, ts)"
    return [
        f"create or replace macro report_timezone() as {_sql_string(report_timezone)}",
        f"create or replace macro report_time(ts) as {local}",
        "create or replace macro utc_time(ts) as make_timestamp(epoch_us(ts))",
    ]


def build(
    data_dir: Path,
    *,
    report_timezone: str = "UTC",
    queries_dir: Path = QUERIES_DIR,
) -> BuildReport:
    """A data dir (with its lake) -> a rebuilt `warehouse.duckdb` there, every data test passed.

    Raises UsageError for a missing data dir or unknown time zone, LakeError (naming the path
    and the re-sync) for a lake it cannot read whole, CdrError (naming the model or test) when
    a model fails or a data test finds offending rows; the previous warehouse is then left as
    it was.
    """
    started = time.perf_counter()
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UsageError(f"data dir {data_dir} does not exist: sync first (`cdr sync`) or pass --data-dir")
    models = build_order(discover_models(queries_dir))
    tests = discover_tests(queries_dir, [m.name for m in models])
    target = warehouse_path(data_dir)
    # Listed before anything is written: a lake the build cannot read whole is refused first.
    views = [(dataset, *source_sql(data_dir, dataset)) for dataset in LAKE_SCHEMAS]
    views.append((QUARANTINE_SOURCE, *quarantine_source_sql(data_dir)))
    sweep_killed_builds(data_dir)
    temp = data_dir / f".{WAREHOUSE_FILE}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    keep_failed = False
    try:
        # The models are built in memory and copied into the new file once built and tested:
        # the build of 10M CDRs + 5M MDRs took 0.1-1.4 s (~4%) less so than straight into the
        # file, in five alternating pairs. Attaching the file first refuses an unwritable data
        # dir before any work; spills go beside it, as they would for a file database.
        con = duckdb.connect()
        try:
            con.execute(f"set temp_directory = {_sql_string(f'{temp}.spill')}")
            # A batch of ~50 statements: DuckDB's per-query progress bars would only litter stdout
            # (and the logs of a scheduled run).
            con.execute("set enable_progress_bar = false")
            con.execute(f"attach {_sql_string(str(temp))} as {_WAREHOUSE_ALIAS}")
        except duckdb.Error as exc:
            con.close()
            raise CdrError(f"cannot create a warehouse in {data_dir}: {_first_line(exc)}") from None
        try:
            # Casts between TIMESTAMPTZ and local types must not depend on this machine's zone.
            con.execute("set TimeZone = 'UTC'")
            # Each running query has its own (calling) thread besides DuckDB's shared pool of
            # threads - 1: with this, the BUILD_WORKERS queries at once use every core once.
            cores = con.execute("select current_setting('threads')").fetchall()[0][0]
            con.execute(f"set threads = {max(1, cores - BUILD_WORKERS + 1)}")
            _check_timezone(con, report_timezone)
            for statement in calendar_macros(report_timezone):
                con.execute(statement)
            sources = {}
            try:
                for name, select, files in views:
                    con.execute(f"create view {SOURCE_PREFIX}{name} as {select}")
                    sources[SOURCE_PREFIX + name] = files
            except duckdb.Error as exc:
                # Creating a view reads its first file's footer: a broken one fails here.
                raise unreadable_lake_file(data_dir, exc) or CdrError(
                    f"cannot read the lake in {data_dir}: {_first_line(exc)}"
                ) from None
            try:
                runs, outcomes = _build_all(con, models, tests, queries_dir)
            except CdrError as exc:
                raise unreadable_lake_file(data_dir, exc) or exc
            failures = [outcome for outcome in outcomes if isinstance(outcome, str)]
            # Built (and kept for inspection when a test failed): everything into the file.
            con.execute(f"copy from database {_MEMORY_DATABASE} to {_WAREHOUSE_ALIAS}")
            con.execute(f"detach {_WAREHOUSE_ALIAS}")
            if failures:
                keep_failed = True
                raise CdrError(
                    f"{len(failures)} data test(s) failed; the failed build is kept at "
                    f"{data_dir / FAILED_WAREHOUSE_FILE}:\n" + "\n".join(failures)
                )
            test_runs = [outcome for outcome in outcomes if isinstance(outcome, TestRun)]
        finally:
            con.close()
        _discard_wal(target)
        os.replace(temp, target)
        # A failed build kept for inspection is stale once a build succeeds.
        _remove(data_dir / FAILED_WAREHOUSE_FILE)
    finally:
        if keep_failed and temp.exists():
            os.replace(temp, data_dir / FAILED_WAREHOUSE_FILE)
        _remove(temp)
        _remove(Path(f"{temp}.wal"))
    return BuildReport(
        warehouse=target,
        report_timezone=report_timezone,
        sources=sources,
        models=tuple(runs),
        tests=tuple(test_runs),
        seconds=time.perf_counter() - started,
    )


def unreadable_lake_file(data_dir: Path, error: BaseException) -> LakeError | None:
    """A data dir and a failed build's error -> the first lake or quarantine file at fault (None: none is).

    Looked for only once a build failed, so a good build pays nothing for it: each partition's
    footer (its columns and types), then the partition DuckDB's error names (a damaged page
    behind a good footer), then each quarantine file.
    """
    named: LakeError | None = None
    con = duckdb.connect()
    try:
        for dataset, schema in LAKE_SCHEMAS.items():
            expected = _columns(con, _empty_source(schema))
            for path in lake_files(data_dir, dataset):
                match = _PARTITION_DAY.match(path.parent.name)
                resync = _resync_command(
                    dataset.removeprefix("usage_"), date.fromisoformat(match.group(1)) if match else None
                )
                read = f"select * from read_parquet({_sql_string(str(path))}, hive_partitioning = false)"
                try:
                    found = _columns(con, read)
                except duckdb.Error as exc:
                    return _unreadable_partition(path, exc, resync)
                if found != expected:
                    return LakeError(
                        f"{path} does not hold the {dataset} columns the sync writes "
                        f"({_schema_difference(expected, found)}): delete it and re-sync that day with {resync}"
                    )
                if named is None and str(path.resolve()) in str(error):
                    named = _unreadable_partition(path, error, resync)
        if named is not None:
            return named
        for path in quarantine_files(data_dir):
            try:
                con.execute(f"select count(*) from {_read_quarantine(_sql_string(str(path)))}").fetchall()
            except duckdb.Error as exc:
                return LakeError(
                    f"{path} is not readable quarantine JSON lines ({_first_line(exc)}): "
                    "move it out of the data dir (reconciliation then counts its records as unexplained)"
                )
    finally:
        con.close()
    return None


def _unreadable_partition(path: Path, exc: BaseException, resync: str) -> LakeError:
    reason = _first_line(exc).replace(str(path.resolve()), path.name).replace(str(path), path.name)
    return LakeError(f"{path} is not a readable Parquet file ({reason}): delete it and re-sync that day with {resync}")


def _schema_difference(expected: list[tuple[str, str]], found: list[tuple[str, str]]) -> str:
    """The columns a file should have and those it has -> what differs, briefly."""
    want, have = dict(expected), dict(found)
    differences = (
        ("missing", [name for name in want if name not in have]),
        ("unexpected", [name for name in have if name not in want]),
        ("other types:", [f"{name} {have[name]}" for name in want if name in have and have[name] != want[name]]),
    )
    shown = [f"{label} {_few(names)}" for label, names in differences if names]
    return "; ".join(shown) or "its columns are in another order"


def _few(names: Sequence[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def _columns(con: duckdb.DuckDBPyConnection, select: str) -> list[tuple[str, str]]:
    """A SELECT -> its (column name, DuckDB type) pairs, read without running it."""
    return [(str(row[0]), str(row[1])) for row in con.execute(f"describe {select}").fetchall()]


def sweep_killed_builds(data_dir: Path) -> int:
    """Remove what builds killed mid-way left in the data dir (their temporary database, WAL, spills) -> how many.

    A temporary's name carries its builder's pid: those of a live process, this one included,
    belong to a build still running and are left alone. What cannot be removed (a read-only
    data dir) is left for the build's own write to report.
    """
    removed = 0
    try:
        names = os.listdir(data_dir)
    except OSError:
        return 0
    for name in names:
        match = _BUILD_TEMP.match(name)
        if match is None or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        path = Path(data_dir) / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed += 1
    return removed


def _build_all(
    con: duckdb.DuckDBPyConnection, models: Sequence[Model], tests: Sequence[DataTest], queries_dir: Path
) -> tuple[list[ModelRun], list[TestRun | str]]:
    """Build the models (in build order) and run the data tests, each once what it reads is built.

    -> the models' runs in build order, and each test's outcome in the tests' order. A failed
    model stops anything new from starting; once the running ones are done, the failure of the
    earliest failed model in build order is raised. Any other error (or Ctrl-C) interrupts the
    running queries and is raised at once.
    """
    built = {model.name for model in models}
    jobs: dict[str, Model | DataTest] = {model.name: model for model in models}
    graph = {model.name: {ref for ref in model.refs if ref in built} for model in models}
    for test in tests:
        key = f"test {test.name}"
        jobs[key] = test
        graph[key] = {ref for ref in test.refs if ref in built}
    order = {model.name: index for index, model in enumerate(models)}
    order.update({f"test {test.name}": len(models) + index for index, test in enumerate(tests)})
    # Of the jobs ready at once, those that more jobs wait for start first (then build order):
    # the census of the calls before that of the messages, fct_calls_daily (which every voice
    # and finance report reads) before the facts one report reads, the data tests last.
    waiting: dict[str, set[str]] = {key: set() for key in graph}
    for key in sorted(graph, key=order.__getitem__, reverse=True):
        for ref in graph[key]:
            waiting[ref] |= {key} | waiting[key]
    priority = {key: (-len(waiting[key]), order[key]) for key in graph}
    sorter = TopologicalSorter(graph)
    sorter.prepare()

    cursors: list[duckdb.DuckDBPyConnection] = []
    idle: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
    for _ in range(BUILD_WORKERS):
        cursor = con.cursor()
        # per connection: the session settings of the build's own
        cursor.execute("set TimeZone = 'UTC'")
        cursor.execute("set enable_progress_bar = false")
        cursors.append(cursor)
        idle.put(cursor)

    def run(key: str) -> ModelRun | TestRun | str:
        cursor = idle.get()
        try:
            job = jobs[key]
            if isinstance(job, Model):
                return _build_model(cursor, job, queries_dir)
            return _run_test(cursor, job, queries_dir)
        finally:
            idle.put(cursor)

    results: dict[str, ModelRun | TestRun | str] = {}
    failed: dict[str, CdrError] = {}
    try:
        with ThreadPoolExecutor(BUILD_WORKERS, thread_name_prefix="cdr-build") as pool:
            running: dict[Future[ModelRun | TestRun | str], str] = {}
            ready: list[str] = []
            try:
                while True:
                    if not failed:
                        # handed over only to a free connection, so a job that turns ready later
                        # still goes ahead of the ready ones that fewer jobs wait for
                        ready = sorted([*ready, *sorter.get_ready()], key=priority.__getitem__)
                        while ready and len(running) < BUILD_WORKERS:
                            key = ready.pop(0)
                            running[pool.submit(run, key)] = key
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        key = running.pop(future)
                        try:
                            results[key] = future.result()
                        except CdrError as exc:
                            failed[key] = exc
                        else:
                            sorter.done(key)
            except BaseException:
                for cursor in cursors:
                    cursor.interrupt()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        for cursor in cursors:
            cursor.close()
    if failed:
        raise failed[min(failed, key=order.__getitem__)]
    runs = [cast(ModelRun, results[model.name]) for model in models]
    return runs, [cast("TestRun | str", results[f"test {test.name}"]) for test in tests]


def _build_model(con: duckdb.DuckDBPyConnection, model: Model, queries_dir: Path) -> ModelRun:
    started = time.perf_counter()
    # The model's text follows on the same line, so DuckDB's LINE numbers are the file's.
    statement = f"create {model.materialized} {model.name} as {model.sql}"
    try:
        con.execute(statement)
        rows = None
        if model.materialized == "table":
            rows = con.execute(f"select count(*) from {model.name}").fetchall()[0][0]
    except duckdb.Error as exc:
        where = _where(exc, model.path, queries_dir)
        raise CdrError(f"model {model.name} failed ({where}): {_first_line(exc)}") from None
    return ModelRun(model.name, model.layer, model.materialized, rows, time.perf_counter() - started)


def _run_test(con: duckdb.DuckDBPyConnection, test: DataTest, queries_dir: Path) -> TestRun | str:
    """A data test -> its TestRun when it passes, else a description of its offending rows."""
    started = time.perf_counter()
    # `(` before the first line's comment keeps DuckDB's LINE numbers the file's.
    wrapped = f"select * from ({test.sql}\n) as offending"
    try:
        result = con.execute(f"{wrapped} limit {SAMPLE_ROWS}")
        sample = result.fetchall()
        columns = [d[0] for d in result.description or []]
        if sample:
            total = con.execute(f"select count(*) from ({wrapped})").fetchall()[0][0]
    except duckdb.Error as exc:
        where = _where(exc, test.path, queries_dir)
        raise CdrError(f"data test {test.name} failed to run ({where}): {_first_line(exc)}") from None
    if sample:
        lines = [", ".join(f"{c}={_show(v)}" for c, v in zip(columns, row)) for row in sample]
        return f"{test.name}: {test.description}; {total} offending row(s), e.g.\n  " + "\n  ".join(lines)
    return TestRun(test.name, time.perf_counter() - started)


def _read_sql(path: Path) -> str:
    text = path.read_text(encoding="utf-8").strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    if not text.startswith("--"):
        raise CdrError(f"{path} must start with a comment line stating its grain and key (or, for a test, its rule)")
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        line = _LINE.search(str(exc))
        where = f"{path}:{line.group(1)}" if line else str(path)
        raise CdrError(f"{where} does not parse: {_first_line(exc)}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise CdrError(f"{path} must hold exactly one SELECT statement")
    return text


def _materialization(path: Path, sql: str, default: str) -> str:
    header = "\n".join(line for line in sql.splitlines() if line.startswith("--"))
    match = _MATERIALIZED.search(header)
    materialized = match.group(1) if match else default
    if materialized not in MATERIALIZATIONS:
        raise CdrError(f"{path}: materialized must be one of {', '.join(MATERIALIZATIONS)}, not {materialized!r}")
    return materialized


def _check_timezone(con: duckdb.DuckDBPyConnection, name: str) -> None:
    try:
        con.execute("select timezone(?, timestamptz '2000-01-01 00:00:00+00')", [name]).fetchall()
    except duckdb.Error:
        raise UsageError(
            f"unknown report time zone {name!r}: use an IANA name such as UTC, Europe/Berlin or America/New_York "
            "(CDR_REPORT_TIMEZONE)"
        ) from None


def _where(exc: duckdb.Error, path: Path, queries_dir: Path) -> str:
    try:
        shown = path.relative_to(queries_dir.parent)
    except ValueError:
        shown = path
    line = _LINE.search(str(exc))
    return f"{shown}:{line.group(1)}" if line else str(shown)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _discard_wal(target: Path) -> None:
    # A WAL left by a crashed writer belongs to the old file; replayed onto the new one it would corrupt it.
    _remove(Path(f"{target}.wal"))


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
