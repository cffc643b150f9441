"""Build: the lake's views, every model and data test on two connections, then the new warehouse published."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, replace
from functools import partial
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, TypeVar, cast

import duckdb

from pipelines.dates import ZONES, utc_midnight, zone_meant
from pipelines.errors import CdrError, UsageError, counted, hinted, one_line
from pipelines.lake import Lake, register_lake
from pipelines.models.discover import (
    QUERIES_DIR,
    DataTest,
    Layer,
    Macro,
    Model,
    discover,
    macro_error,
)
from pipelines.models import incremental
from pipelines.models.incremental import (
    ID_INDEXES,
    MONTH,
    RECOMPUTED_COLUMNS,
    WINDOW_END,
    Manifest,
    build_release,
    fingerprints,
    full_build_reason,
    manifest_statement,
    queries_hash,
    read_manifest,
    window_days,
)
from pipelines.models.order import build_order, run_in_order
from pipelines.models.publish import (
    CopyBehind,
    FailedBuild,
    failed_warehouse_path,
    new_warehouse,
    sweep_killed_builds,
    warehouse_path,
)
from pipelines.models.thresholds import Thresholds, load_thresholds
from pipelines.models.sources import (
    ALERT_CONFIG_TABLE,
    LAKE_SCHEMAS,
    QUARANTINE_SOURCE,
    RECOMPUTED_SINCE_VARIABLE,
    SOURCE_PREFIX,
    THRESHOLDS_TABLE,
    build_macros,
    calendar_macros,
    error_line,
    lacking_columns,
    month_start_sql,
    quarantine_source_sql,
    seed_files,
    seed_sql,
    source_sql,
    sql_string,
    unreadable_lake_file,
)
from pipelines.remote import is_remote, require_data_dir, warehouse_location

# Models are built, and data tests run, as soon as what they read is built, two at a time on
# two DuckDB connections to the one database, with the cores split between them so that both
# together use every core once: each query's own parallel overhead goes, and the models more
# jobs wait for start first (bench/RESULTS.md).
BUILD_WORKERS = 2
Result = TypeVar("Result")
SAMPLE_ROWS = 5
_MEMORY_DATABASE = "memory"  # DuckDB's name for the in-memory database of `duckdb.connect()`
_WAREHOUSE_ALIAS = "new_warehouse"
_PREVIOUS_ALIAS = "previous_warehouse"
_WINDOW_DATABASE = "changed_days"
_SPANNED_DATABASE = "spanned_days"
_RECENT_DATABASE = "recent"
# the write of what a build's models do not write into the new warehouse (`_apply_changes`)
_THE_REST = "views, macros and reference tables"
# A start is counted in its 10-second bucket, which may begin in the report day before.
_BUCKET = "interval 10 second"


class Listing(NamedTuple):
    """A lake as a build lists it once: each dataset's partition files, and whether each lacks columns."""

    lake: Lake
    files: Mapping[str, Sequence[str]]
    lacking: Mapping[str, Mapping[str, bool]]


class Check(NamedTuple):
    """A query over an incremental build's changed days: the models it reads, what runs it on a connection,
    and whether it also reads all of the previous warehouse's history (a long job: started first)."""

    reads: set[str]
    run: Callable[[duckdb.DuckDBPyConnection], object]
    reads_history: bool = False


# What a model's job builds on its connection before the model (an incremental build's spanned days, or
# the recent windows or months of a model incremental on `window_end` or `month`).
Prepare = Callable[[duckdb.DuckDBPyConnection], object]


class Write(NamedTuple):
    """What a build writes into its new warehouse (an incremental build: the copy of the previous one; `run`,
    on a connection), once the models (or writes) it waits for (`after`) are done; `long`: started before the
    models then ready, not after them as a model's rows are (a connection no model is ready for)."""

    after: Collection[str]
    run: Callable[[duckdb.DuckDBPyConnection], None]
    long: bool = False


class _FullBuildNeeded(Exception):
    """An incremental build found it cannot equal a full one (the reason: why)."""


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

    warehouse: Path | str  # on an object store, its URL
    report_timezone: str
    sources: Mapping[str, int]
    models: tuple[ModelRun, ...]
    tests: tuple[TestRun, ...]
    seconds: float
    # why it had to be a full build ("": it was incremental), and how many changed UTC days it rebuilt
    reason: str
    days_rebuilt: int

    @property
    def mode(self) -> str:
        """Either `full` or `incremental`, as `reason` says."""
        return "full" if self.reason else "incremental"

    @property
    def how(self) -> str:
        """Whether the build was a full one (and why) or incremental (and how many days it redid)."""
        return build_how(self.reason, self.days_rebuilt)

    def summary(self) -> str:
        """One line: what was built where, how long it took, and whether whole or by changed days."""
        files = ", ".join(f"{name} {counted(count, 'file')}" for name, count in self.sources.items())
        models, tests = counted(len(self.models), "model"), counted(len(self.tests), "data test")
        return (
            f"built {models} and passed {tests} into {self.warehouse} "
            f"in {self.seconds:.1f}s ({self.how}; report time zone {self.report_timezone}; lake: {files})"
        )


def build(
    data_dir: Path | str,
    *,
    report_timezone: str = "UTC",
    queries_dir: Path = QUERIES_DIR,
    alerts_config: Path | None = None,
    now: datetime | None = None,
    full: bool = False,
    memory_limit: str | None = None,
) -> BuildReport:
    """A data dir (with its lake) -> a rebuilt `warehouse.duckdb` there, every data test passed.

    Incremental unless `full` or it must be whole (`incremental.full_build_reason`): the models
    declaring `-- incremental` keep the previous warehouse's rows but for the lake days changed
    since (`window_end`, `month`: the windows or months from those days on), which their own SQL
    recomputes; everything else is built as in a full build, so the result is the full build's.

    `alerts_config` names a file overriding the shipped alert thresholds (CDR_ALERTS_CONFIG);
    `now` is the moment the alert rules judge staleness at (default: the clock).
    `memory_limit` bounds DuckDB's memory (CDR_BUILD_MEMORY_LIMIT; None: DuckDB's default, most
    of the machine's); what does not fit spills to disk.
    Raises UsageError for a missing data dir, unknown time zone or bad alerts config, LakeError (naming the path
    and the re-sync) for a lake it cannot read whole, CdrError (naming the model or test) when
    a model fails or a data test finds offending rows; the previous warehouse is then left as
    it was.
    """
    started = time.perf_counter()
    arguments = dict(
        report_timezone=report_timezone, queries_dir=queries_dir, alerts_config=alerts_config, now=now,
        memory_limit=memory_limit,
    )
    try:
        return _build(data_dir, started, full=full, **arguments)
    except _FullBuildNeeded as exc:
        return _build(data_dir, started, full=True, why=str(exc), **arguments)


def _build(
    data_dir: Path | str,
    started: float,
    *,
    report_timezone: str,
    queries_dir: Path,
    alerts_config: Path | None,
    now: datetime | None,
    full: bool,
    memory_limit: str | None,
    why: str | None = None,
) -> BuildReport:
    """`build`, started at `started`; `why`: the reason it must be a full one, found by an incremental try."""
    data_dir = data_dir if is_remote(data_dir) else Path(data_dir)  # an object store's URL stays text
    require_data_dir(data_dir)
    thresholds = load_thresholds(queries_dir, alerts_config)
    now = datetime.now(UTC) if now is None else now
    lake = Lake(data_dir)
    # Listed before anything is written: a lake the build cannot read whole is refused first.
    listed = {dataset: lake.partition_files(dataset) for dataset in LAKE_SCHEMAS}
    queries, found = queries_hash(queries_dir), fingerprints(lake, listed)
    previous_path = warehouse_path(data_dir)
    # One DuckDB instance for all of the build, the previous warehouse's manifest and the lake's
    # footers included: starting one costs more than most of what each of those reads. Once the new
    # warehouse is built and detached, `behind` closes it while the warehouse is published, so that
    # its memory goes back to the system beside the replaced file's (waited for before returning).
    con = duckdb.connect()
    with closing(con), ThreadPoolExecutor(1, thread_name_prefix="cdr-close") as behind:
        register_lake(con, lake)
        previous = _attach_previous(con, previous_path)
        footers = _footers(con, lake, listed, found, previous)
        lacking = {dataset: {relative: footers[relative][1] for relative in files} for dataset, files in listed.items()}
        views = [
            (dataset, *source_sql(lake, dataset, files=listed[dataset], known=lacking[dataset]))
            for dataset in LAKE_SCHEMAS
        ]
        views.append((QUARANTINE_SOURCE, *quarantine_source_sql(lake)))
        # the same files as the previous build's: what it discovered in them holds
        discovered = discover(queries_dir, previous.discovered if previous and previous.queries_hash == queries else None)
        macros, models, tests = discovered.macros, build_order(discovered.models), discovered.tests
        reason = full_build_reason(
            previous, warehouse_exists=previous_path.is_file(), queries=queries, report_timezone=report_timezone,
            thresholds=thresholds.digest, forced=full, killed_builds=sweep_killed_builds(data_dir),
        )
        reason = why or reason
        if reason is None and Path(f"{previous_path}.wal").exists():
            # what a crashed writer left is not in the file an incremental build would copy
            reason = "the warehouse has a write-ahead log a crashed writer left"
        if reason is not None and previous is not None:
            con.execute(f"detach {_PREVIOUS_ALIAS}")
        # Looked up on the module, so a test can make it miss a day and see the proof fail.
        dirty = incremental.dirty_days(previous.fingerprints, found) if reason is None and previous is not None else set()
        copied_from = previous_path if reason is None else None
        with new_warehouse(data_dir, build_how(reason, len(dirty))) as temp, _copied(copied_from, temp, data_dir) as copied:
            # A full build builds the models in memory and writes each table into the new file as soon
            # as it is built, beside the other models (a copy of them all after the last one would run
            # on one core while the other idles). An incremental build copies the previous warehouse
            # there (in a thread, while the changed days are built) and writes into it only what
            # changed, likewise. Creating the file first refuses an
            # unwritable data dir before any work; spills go beside it, as they would for a file database.
            try:
                con.execute(f"set temp_directory = {sql_string(f'{temp}.spill')}")
                # Per-query progress bars would only litter stdout (and a scheduled run's logs).
                con.execute("set enable_progress_bar = false")
                # Many models read the same lake files (an incremental build's changed days above all):
                # each file's footer is parsed once (kept while the file's modification time is).
                con.execute("set parquet_metadata_cache = true")
            except duckdb.Error as exc:
                raise _cannot_create(data_dir, exc) from None
            try:
                if reason is not None:
                    _attach_warehouse(con, temp, data_dir)
                # Casts between TIMESTAMPTZ and local types must not depend on this machine's zone.
                con.execute("set TimeZone = 'UTC'")
                # Each running query has its own (calling) thread besides DuckDB's shared pool of
                # threads - 1: with this, the BUILD_WORKERS queries at once use every core once.
                cores = con.execute("select current_setting('threads')").fetchall()[0][0]
                con.execute(f"set threads = {max(1, cores - BUILD_WORKERS + 1)}")
                if memory_limit is not None:
                    con.execute(f"set memory_limit = {sql_string(memory_limit)}")
                _check_timezone(con, report_timezone)
                for statement in calendar_macros(report_timezone):
                    con.execute(statement)
                _create_reference_tables(con, queries_dir, thresholds, now)
                _create_macros(con, macros, queries_dir)
                statement, parameters = manifest_statement(
                    queries, report_timezone, thresholds.digest, found, discovered.document(queries_dir), footers
                )
                con.execute(statement, parameters)
                sources = {}
                try:
                    for name, select, files in views:
                        con.execute(f"create view {SOURCE_PREFIX}{name} as {select}")
                        sources[SOURCE_PREFIX + name] = files
                except duckdb.Error as exc:
                    # Creating a view reads its first file's footer: a broken one fails here.
                    raise unreadable_lake_file(lake, exc) or CdrError(
                        f"cannot read the lake in {data_dir}: {one_line(exc, first=True)}"
                    ) from None
                try:
                    checked: dict[str, TestRun | str] = {}
                    replaced: dict[str, Replacement] = {}
                    prepare: dict[str, Prepare] = {}
                    writes: dict[str, Write] = {}
                    if reason is None:
                        models, checked, replaced, prepare = _incremental_models(
                            con, models, tests, Listing(lake, listed, lacking), dirty, queries_dir, report_timezone
                        )
                        copied()
                        _attach_warehouse(con, temp, data_dir)
                        writes = {
                            name: Write({name}, partial(_replace_rows, name=name, replacement=replacement))
                            for name, replacement in replaced.items()
                        }
                    writes |= {
                        model.name: Write({model.name}, partial(_replace_table, table=model.name))
                        for model in models
                        if model.materialized == "table" and model.name not in replaced
                    }
                    # the rest once the views it copies are built, beside the models: not alone after them;
                    # a full build's new warehouse has no tables for its views to read until they are written
                    after = {m.name for m in models if m.materialized == "view" and m.name not in replaced}
                    if reason is not None:
                        after |= {f"write {name}" for name in writes}
                    writes[_THE_REST] = Write(after, partial(
                        _apply_changes, replaced=replaced, written=set(writes),
                        macros=[*calendar_macros(report_timezone), *build_macros(now), *(m.sql for m in macros)],
                    ), long=True)
                    runs, outcomes = _build_all(
                        con, models, [t for t in tests if t.name not in checked], queries_dir, prepare, writes
                    )
                except CdrError as exc:
                    raise unreadable_lake_file(lake, exc) or exc
                # an incremental model was read through a view of its rows; the warehouse keeps a table
                runs = [replace(run, materialized="table") if run.name in replaced else run for run in runs]
                # in the tests' order, those run over the changed days alone among them
                by_name = dict(zip([t.name for t in tests if t.name not in checked], outcomes)) | checked
                outcomes = [by_name[test.name] for test in tests if test.name in by_name]
                failures = [outcome for outcome in outcomes if isinstance(outcome, str)]
                # Built (and kept for inspection when a test failed): everything is in the file.
                if reason is None:
                    con.execute(f"detach {_PREVIOUS_ALIAS}")
                con.execute(f"detach {_WAREHOUSE_ALIAS}")
                if failures:
                    raise FailedBuild(
                        f"{counted(len(failures), 'data test')} failed; the failed build is kept at "
                        f"{failed_warehouse_path(data_dir)}:\n" + "\n".join(failures)
                    )
            except BaseException:
                # before the temporary is kept or removed: it may still be attached
                con.close()
                raise
            closed = behind.submit(con.close)
    closed.result()
    return BuildReport(
        warehouse=warehouse_location(data_dir),
        report_timezone=report_timezone,
        sources=sources,
        models=tuple(runs),
        tests=tuple(outcome for outcome in outcomes if isinstance(outcome, TestRun)),
        seconds=time.perf_counter() - started,
        reason=reason or "",
        days_rebuilt=len(dirty),
    )


@contextmanager
def _copied(previous: Path | None, temp: Path, data_dir: Path | str) -> Iterator[Callable[[], None]]:
    """Copy the previous warehouse (None: none) to `temp` while the block runs -> what waits for the copy.

    Raises CdrError at once when `temp` cannot be created, or from the waiting when the copy failed.
    The copy is over when the block is left, so `temp` is then this process's to replace or remove.
    """
    if previous is None:
        yield lambda: None
        return
    try:
        copying = CopyBehind(previous, temp)
    except OSError as exc:
        raise _cannot_create(data_dir, exc) from None

    def wait() -> None:
        try:
            copying.wait()
        except OSError as exc:
            raise _cannot_create(data_dir, exc) from None

    try:
        yield wait
    finally:
        with suppress(CdrError):
            wait()


def _attach_warehouse(con: duckdb.DuckDBPyConnection, temp: Path, data_dir: Path | str) -> None:
    try:
        con.execute(f"attach {sql_string(str(temp))} as {_WAREHOUSE_ALIAS}")
    except duckdb.Error as exc:
        raise _cannot_create(data_dir, exc) from None


def _cannot_create(data_dir: Path | str, exc: OSError | duckdb.Error) -> CdrError:
    """What kept the build from writing its new warehouse (the OS's or DuckDB's error) -> the one line saying so."""
    why = (exc.strerror or str(exc)) if isinstance(exc, OSError) else one_line(exc, first=True)
    return CdrError(f"cannot create a warehouse in {data_dir}: {why}")


def _attach_previous(con: duckdb.DuckDBPyConnection, warehouse: Path) -> Manifest | None:
    """Attach the published warehouse read-only as the previous one -> its build manifest (None: there is
    none, or it cannot be read; the warehouse is then not attached)."""
    if not warehouse.is_file():
        return None
    try:
        con.execute(f"attach {sql_string(str(warehouse))} as {_PREVIOUS_ALIAS} (read_only)")
    except duckdb.Error:
        return None
    manifest = read_manifest(con, _PREVIOUS_ALIAS)
    if manifest is None:
        con.execute(f"detach {_PREVIOUS_ALIAS}")
    return manifest


def _footers(
    con: duckdb.DuckDBPyConnection, lake: Lake, listed: Mapping[str, Sequence[str]], found: Mapping[str, str],
    previous: Manifest | None,
) -> dict[str, tuple[str, bool]]:
    """The lake's partition files -> each one's identity (as `found`) and whether it lacks columns of the
    schema: as the previous build of this release read it in the footer of the same file, else read now.
    """
    kept = previous.footers if previous is not None and previous.version == build_release() else {}
    footers: dict[str, tuple[str, bool]] = {}
    for dataset, files in listed.items():
        identities = {relative: found.get(relative, "") for relative in files}
        known = {
            relative: kept[relative][1]
            for relative, identity in identities.items()
            if identity and relative in kept and kept[relative][0] == identity
        }
        lacking = lacking_columns(lake, dataset, files, known, con)
        # a file DuckDB named otherwise than the lake: read by name, to be safe
        footers.update({relative: (identities[relative], lacking.get(relative, True)) for relative in files})
    return footers


def build_how(reason: str | None, days_rebuilt: int) -> str:
    """Why a build was a full one (None or empty: it was incremental) -> how the summary and status say it."""
    return f"full build: {reason}" if reason else f"incremental build: {days_rebuilt} changed day(s) rebuilt"


def _incremental_models(
    con: duckdb.DuckDBPyConnection, models: Sequence[Model], tests: Sequence[DataTest], lake: Listing,
    dirty: set[date], queries_dir: Path, report_timezone: str,
) -> tuple[tuple[Model, ...], dict[str, TestRun | str], dict[str, Replacement], dict[str, Prepare]]:
    """The models in build order, each incremental one a view of: the previous warehouse's rows but for
    the changed days, and its own SQL's rows for them, computed from the lake's days around them;
    the outcome of each data test that holds day by day, run over those days alone; which rows
    of which tables the new warehouse replaces (`_replace_rows`); and what must be built (on a
    connection) before a model's view can be. The previous warehouse is attached to `con` (`_attach_previous`).

    Those are built first, in a database of their own whose lake views hold only those days; the
    macros, seeds and reference tables are the build's, found through the search path. A model
    with spans (`Model.spans`) is recomputed for the report days the changed days' records reach,
    in another such database, from the days whose records reach those. A model incremental on
    `window_end` is recomputed, in its job, for the windows ending after the UTC midnight before
    the earliest day any of those replace (no report day begins earlier), one on `month` for the
    months from that day's, from this build's models (each in a database of its own, so that it
    reads another such model's rows whole).
    Raises _FullBuildNeeded when an id of a changed day is held by another day too: the dedupe
    then joins days, and only a full build is exact.
    """
    by_name = {model.name: model for model in models}
    # the models replacing their changed days' rows; the rest of the incremental ones recompute windows or months
    by_day = [model for model in models if model.incremental not in (None, *RECOMPUTED_COLUMNS)]
    windowed = [model for model in by_day if not model.spans]
    day_tests = [test for test in tests if test.incremental]
    needed = _closure(by_name, [ref for job in [*windowed, *day_tests] for ref in (job.name, *job.refs)])
    checked: dict[str, TestRun | str] = {}
    prepare: dict[str, Prepare] = {}
    days: dict[str | None, list[date]] = {"utc_date": sorted(dirty), "report_date": _report_days(con, dirty)}
    databases = {model.name: _WINDOW_DATABASE for model in windowed}
    if not dirty:
        # no day changed: what the previous build checked holds as it did
        checked = {test.name: TestRun(test.name, 0.0) for test in day_tests}
    else:
        read = set(window_days(dirty, report_timezone))
        # the checks over the changed days run as soon as what they read is built, beside the other models
        checks: dict[str, Check] = {
            f"ids in {index}": Check(
                {index}, partial(_ids_across_days, dirty=sorted(dirty), index=index, census=census), reads_history=True
            )
            for index, census in ID_INDEXES.items()
        }
        checks |= {
            f"test {test.name}": Check(set(test.refs), partial(_run_test, test=test, queries_dir=queries_dir))
            for test in day_tests
        }
        found = _build_window(
            con, lake, _WINDOW_DATABASE, read, [m for m in models if m.name in needed], queries_dir, checks=checks
        )
        shared = [cast("set[date] | None", found[f"ids in {index}"]) for index in ID_INDEXES]
        cross_days = set().union(*shared) if all(held is not None for held in shared) else None
        if cross_days is None or cross_days & set(dirty):
            raise _FullBuildNeeded("an id of a changed day is held by another day too")
        checked = {test.name: cast("TestRun | str", found[f"test {test.name}"]) for test in day_tests}
        for model in (model for model in models if model.spans):
            reached, spanned = _spanned_days(con, model, sorted(dirty), days["report_date"])
            read |= spanned
            database = f"{_SPANNED_DATABASE}_{model.name}"
            spanning = [m for m in models if m.name in _closure(by_name, [model.name])]
            # built as the model's own job, beside the models that do not wait for it
            prepare[model.name] = partial(
                _build_window, lake=lake, database=database, days=spanned, models=spanning, queries_dir=queries_dir,
                workers=1,
            )
            days[model.name] = reached
            databases[model.name] = database
        if cross_days & read:
            raise _FullBuildNeeded(f"an id is held by two days, one of them read again ({min(cross_days & read)})")
    replaced = {
        model.name: Replacement.of_days(
            model.incremental, days.get(model.name, days[model.incremental]), databases.get(model.name, _WINDOW_DATABASE)
        )
        for model in by_day
    }
    judged = [model for model in models if model.incremental in RECOMPUTED_COLUMNS]
    changed_days = {day for listed in days.values() for day in listed}
    since = utc_midnight(min(changed_days) - timedelta(days=1)) if changed_days else None
    for model in judged:
        database = f"{_RECENT_DATABASE}_{model.name}"
        replaced[model.name] = Replacement.recomputed(cast(str, model.incremental), since, database)
        if since is not None:
            con.execute(f"attach ':memory:' as {database}")
            prepare[model.name] = partial(
                _build_recent, model=model, database=database, since=since, queries_dir=queries_dir
            )
    merged = tuple(
        replace(model, materialized="view", sql=_merged_sql(model, replaced[model.name])) if model.incremental else model
        for model in models
    )
    return merged, checked, replaced, prepare


def _closure(by_name: Mapping[str, Model], names: Sequence[str]) -> set[str]:
    """Model names -> those models and every model they read, directly or not."""
    needed: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in by_name and name not in needed:
            needed.add(name)
            pending.extend(by_name[name].refs)
    return needed


def _build_window(
    con: duckdb.DuckDBPyConnection, lake: Listing, database: str, days: set[date], models: Sequence[Model],
    queries_dir: Path, workers: int = BUILD_WORKERS, checks: Mapping[str, Check] | None = None,
) -> dict[str, object]:
    """Build the models (in order, `workers` at a time) in a new in-memory database whose lake views hold
    only those days, and run each of `checks` there once the models it reads are built -> their results."""
    con.execute(f"attach ':memory:' as {database}")
    for dataset in LAKE_SCHEMAS:
        select, _ = source_sql(lake.lake, dataset, days, lake.files[dataset], lake.lacking[dataset])
        con.execute(f"create view {database}.{SOURCE_PREFIX}{dataset} as {select}")
    checks = checks or {}
    jobs = {model.name: model for model in models}
    graph = {model.name: {ref for ref in model.refs if ref in jobs} for model in models}
    graph |= {key: {ref for ref in check.reads if ref in jobs} for key, check in checks.items()}

    def run(cursor: duckdb.DuckDBPyConnection, key: str) -> object:
        if key in checks:
            return _in_database(cursor, database, lambda: checks[key].run(cursor))
        return _in_database(cursor, database, lambda: _build_model(cursor, jobs[key], queries_dir))

    results = run_in_order(con, graph, run, workers, first={key for key, check in checks.items() if check.reads_history})
    return {key: results[key] for key in checks}


def _build_recent(
    con: duckdb.DuckDBPyConnection, model: Model, database: str, since: datetime, queries_dir: Path
) -> None:
    """Build a model incremental on `window_end` or `month`, its `recomputed_since()` being `since`, in `database`."""
    con.execute(f"set variable {RECOMPUTED_SINCE_VARIABLE} = timestamptz {sql_string(since.isoformat())}")
    try:
        _in_database(con, database, lambda: _build_model(con, model, queries_dir))
    finally:
        con.execute(f"reset variable {RECOMPUTED_SINCE_VARIABLE}")


def _in_database(con: duckdb.DuckDBPyConnection, database: str, work: Callable[[], Result]) -> Result:
    """Run `work` with unqualified names read from `database` first, then the build's own."""
    con.execute(f"use {database}")
    con.execute(f"set search_path = '{database}.main,{_MEMORY_DATABASE}.main'")
    try:
        return work()
    finally:
        con.execute(f"use {_MEMORY_DATABASE}")
        con.execute("reset search_path")


def _ids_across_days(con: duckdb.DuckDBPyConnection, dirty: list[date], index: str, census: str) -> set[date] | None:
    """The changed days, a dataset's id index and census -> the days holding an id some other day holds
    too, as the previous build counted them; None when a changed day's id (as the lake holds it now)
    is held by another day."""
    listed = _dates_sql(dirty)
    shared = con.execute(
        f"""
        with changed as (
            select utc_date, id_hash from {_WINDOW_DATABASE}.{index}
            where list_contains({listed}, utc_date) and id_hash is not null
        )
        select exists (
            select 1 from changed
            semi join {_PREVIOUS_ALIAS}.{index} as kept
                on kept.id_hash = changed.id_hash and not coalesce(list_contains({listed}, kept.utc_date), false)
        ) or exists (
            select 1 from changed group by id_hash having count(distinct utc_date) > 1
        )
        """
    ).fetchall()[0][0]
    if shared:
        return None
    rows = con.execute(
        f"""
        select unnest(list(distinct utc_date)) from (
            select utc_date, unnest(repeated_id_hashes) as id_hash from {_PREVIOUS_ALIAS}.{census}
        )
        group by id_hash
        having count(distinct utc_date) > 1
        """
    ).fetchall()
    return {row[0] for row in rows}


def _spanned_days(
    con: duckdb.DuckDBPyConnection, model: Model, dirty: list[date], report_days: list[date]
) -> tuple[list[date], set[date]]:
    """A model with spans and the changed UTC days -> the report days to recompute (those the changed days'
    records reach, before and after the change) and the UTC days whose records reach those."""
    listed = _dates_sql(dirty)
    spans = model.spans
    reach = (
        f"report_time(first_started_at - {_BUCKET})::date as first_day, report_time(last_ended_at)::date as last_day"
    )
    rows = con.execute(
        f"""
        with changed as (
            select {reach} from {_PREVIOUS_ALIAS}.{spans} where list_contains({listed}, utc_date)
            union all
            select {reach} from {_WINDOW_DATABASE}.{spans} where list_contains({listed}, utc_date)
        )
        select distinct unnest(generate_series(first_day::timestamp, last_day::timestamp, interval 1 day))::date as day
        from changed
        order by day
        """
    ).fetchall()
    reached = sorted({row[0] for row in rows} | set(report_days))
    rows = con.execute(
        f"""
        with spans as (
            select utc_date, {reach} from {_PREVIOUS_ALIAS}.{spans} where not list_contains({listed}, utc_date)
            union all
            select utc_date, {reach} from {_WINDOW_DATABASE}.{spans} where list_contains({listed}, utc_date)
        )
        select utc_date from spans
        where exists (select 1 from unnest({_dates_sql(reached)}) as reached(day) where day between first_day and last_day)
        """
    ).fetchall()
    return reached, {row[0] for row in rows} | set(dirty)


def _dates_sql(days: Sequence[date]) -> str:
    return "[" + ", ".join(map(_date_sql, days)) + "]::date[]"


def _date_sql(day: date) -> str:
    return f"date '{day.isoformat()}'"


def _report_days(con: duckdb.DuckDBPyConnection, dirty: set[date]) -> list[date]:
    """Changed UTC days -> the report days they overlap (the report time zone is within a day of UTC)."""
    if not dirty:
        return []
    starts = [utc_midnight(day) for day in sorted(dirty)]
    rows = con.execute(
        "select distinct unnest([report_time(u)::date, report_time(u + interval 1 day - interval 1 microsecond)::date]) "
        "as day from (select unnest(?::timestamptz[]) as u) order by day",
        [starts],
    ).fetchall()
    return [row[0] for row in rows]


@dataclass(frozen=True, slots=True)
class Replacement:
    """An incremental model's rows to replace: those meeting the condition `changed`, by those of the
    model in `database` (None: no row is replaced).

    `changed` is a plain comparison of the column with constants, null where the column is null (as not
    changed): DuckDB then skips the row groups whose min and max rule it out, when it deletes the rows
    from the copy of the previous warehouse's table or reads those kept.
    """

    changed: str
    database: str | None

    @classmethod
    def of_days(cls, column: str, days: Sequence[date], database: str) -> Replacement:
        """The rows whose date `column` is one of `days`."""
        if not days:
            return cls("false", None)
        return cls(f"{column} in ({', '.join(map(_date_sql, days))})", database)

    @classmethod
    def recomputed(cls, column: str, since: datetime | None, database: str) -> Replacement:
        """The rows a model incremental on `column` (`window_end`, `month`) recomputes from `since` on: those
        whose window ends after it, or of the months from `recomputed_month_start()`'s (None: none)."""
        if since is None:
            return cls("false", None)
        instant = f"timestamptz {sql_string(since.isoformat())}"
        changed = {
            WINDOW_END: f"{WINDOW_END} > {instant}",
            MONTH: f"{MONTH} >= strftime({month_start_sql(instant)}, '%Y-%m')",
        }[column]
        return cls(changed, database)


def _merged_sql(model: Model, replacement: Replacement) -> str:
    """An incremental model and its rows to replace -> the SELECT of its new rows."""
    kept = f"select * from {_PREVIOUS_ALIAS}.{model.name} where ({replacement.changed}) is not true"
    if replacement.database is None:
        return kept
    return f"{kept}\nunion all\nselect * from {replacement.database}.{model.name} where {replacement.changed}"


def _replace_rows(con: duckdb.DuckDBPyConnection, name: str, replacement: Replacement) -> None:
    """Replace an incremental model's changed rows in the copy of the previous warehouse by this build's."""
    new = f"{_WAREHOUSE_ALIAS}.main"
    con.execute(f"delete from {new}.{name} where {replacement.changed}")
    if replacement.database is not None:
        con.execute(
            f"insert into {new}.{name} select * from {replacement.database}.main.{name} where {replacement.changed}"
        )


def _replace_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    con.execute(f'create or replace table {_WAREHOUSE_ALIAS}.main."{table}" as from {_MEMORY_DATABASE}.main."{table}"')


def _apply_changes(
    con: duckdb.DuckDBPyConnection, replaced: Mapping[str, Replacement], macros: Sequence[str],
    written: Collection[str],
) -> None:
    """Finish turning the copy of the previous warehouse (a full build: the new, empty warehouse) into
    this build's, the models' jobs writing theirs (`written`: the incremental models' changed rows, the
    tables of the others): every other table (the reference tables and manifest), view and macro of the
    build's (`macros`: the statements creating them, in order) in place of the previous one's; an
    incremental model (in `replaced`) stays the table it is. Run once the views are built (a full
    build: and every table written, which its views read).

    A view or macro the copy holds as this build defines it is kept: the queries and report time
    zone are the previous build's, so most are (not the build's clock, nor a lake view whose files changed).
    """
    new = f"{_WAREHOUSE_ALIAS}.main"
    listed = "select {} from duckdb_{}() where database_name = ? and schema_name = 'main' and not internal"
    for (table,) in con.execute(listed.format("table_name", "tables"), [_MEMORY_DATABASE]).fetchall():
        if table not in written:
            _replace_table(con, table)
    kept = dict(con.execute(listed.format("view_name, sql", "views"), [_WAREHOUSE_ALIAS]).fetchall())
    views = [
        (view, statement)
        for view, statement in con.execute(
            listed.format("view_name, sql", "views") + " order by view_oid", [_MEMORY_DATABASE]
        ).fetchall()
        if view not in replaced and kept.get(view) != statement
    ]
    for view, _ in views:
        con.execute(f'drop view if exists {new}."{view}"')
    # both databases' macros in one listing: each listing walks every function DuckDB knows
    defined = con.execute(
        "select database_name, function_name, function_type, macro_definition from duckdb_functions() "
        "where database_name in (?, ?) and schema_name = 'main' and not internal "
        "and function_type in ('macro', 'table_macro')",
        [_WAREHOUSE_ALIAS, _MEMORY_DATABASE],
    ).fetchall()
    previous = {tuple(macro) for database, *macro in defined if database == _WAREHOUSE_ALIAS}
    current = {tuple(macro) for database, *macro in defined if database == _MEMORY_DATABASE}
    stale = {name for name, _, _ in previous ^ current}
    # a statement whose macro cannot be told: all afresh
    afresh = any(_macro_name(statement) is None for statement in macros)
    for name, kind, _ in previous:
        if afresh or name in stale:
            con.execute(f'drop macro {"table " if kind == "table_macro" else ""}if exists {new}."{name}"')
    con.execute(f"use {_WAREHOUSE_ALIAS}")
    try:
        # created afresh, as a full build's are: DuckDB writes a macro it read back in another form
        for statement in macros:
            if afresh or _macro_name(statement) in stale:
                con.execute(statement)
        for _, statement in views:
            con.execute(statement)
    finally:
        con.execute(f"use {_MEMORY_DATABASE}")


_CREATE_MACRO = re.compile(r"^\s*create\s+(?:or\s+replace\s+)?(?:macro|function)\s+\"?(\w+)", re.IGNORECASE)


def _macro_name(statement: str) -> str | None:
    """A CREATE MACRO statement -> the name of the macro it creates."""
    match = _CREATE_MACRO.match(statement)
    return match.group(1).lower() if match else None


def _build_all(
    con: duckdb.DuckDBPyConnection, models: Sequence[Model], tests: Sequence[DataTest], queries_dir: Path,
    prepare: Mapping[str, Prepare], writes: Mapping[str, Write],
) -> tuple[list[ModelRun], list[TestRun | str]]:
    """Build the models (in build order) and run the data tests, each once what it reads is built (a model
    in `prepare` after what that builds on the same connection); run each of `writes` once what it waits for is.

    -> the models' runs in build order, and each test's outcome (a TestRun, or its offending
    rows described) in the tests' order.
    """
    built = {model.name for model in models}
    jobs: dict[str, Model | DataTest] = {model.name: model for model in models}
    jobs.update({f"test {test.name}": test for test in tests})
    graph = {key: {ref for ref in job.refs if ref in built} for key, job in jobs.items()}
    # last in the order: a write takes a connection no model or test is ready for; no model or test waits for
    # a write (in a full build, the rest's write waits for the tables' writes: its views read them)
    graph |= {f"write {key}": set(write.after) for key, write in writes.items()}

    def run(cursor: duckdb.DuckDBPyConnection, key: str) -> ModelRun | TestRun | str | None:
        if key.startswith("write "):
            return writes[key.removeprefix("write ")].run(cursor)
        job = jobs[key]
        if isinstance(job, Model):
            if key in prepare:
                prepare[key](cursor)
            return _build_model(cursor, job, queries_dir)
        return _run_test(cursor, job, queries_dir)

    long = {f"write {key}" for key, write in writes.items() if write.long}
    results = run_in_order(con, graph, run, BUILD_WORKERS, first=long)
    runs = [cast(ModelRun, results[model.name]) for model in models]
    return runs, [cast("TestRun | str", results[f"test {test.name}"]) for test in tests]


def _create_reference_tables(
    con: duckdb.DuckDBPyConnection, queries_dir: Path, thresholds: Thresholds, now: datetime
) -> None:
    """The seeds, the alert thresholds (and which were used) and the build's macros, before any model."""
    for path in seed_files(queries_dir):
        try:
            con.execute(seed_sql(path))
        except duckdb.Error as exc:
            raise CdrError(f"seed {_shown(path, queries_dir)} does not load: {one_line(exc, first=True)}") from None
    con.execute(f"create table {THRESHOLDS_TABLE} (rule varchar not null, name varchar not null, value double not null)")
    if thresholds.values:
        # in one statement: executemany runs one a row
        rules, names, values = (list(column) for column in zip(*thresholds.rows()))
        con.execute(
            f"insert into {THRESHOLDS_TABLE} select unnest(?::varchar[]), unnest(?::varchar[]), unnest(?::double[])",
            [rules, names, values],
        )
    con.execute(
        f"create table {ALERT_CONFIG_TABLE} as select ?::integer as version, ?::varchar as digest, "
        "?::varchar as override",
        [thresholds.version, thresholds.digest, None if thresholds.override is None else str(thresholds.override)],
    )
    for statement in build_macros(now):
        con.execute(statement)


def _create_macros(con: duckdb.DuckDBPyConnection, macros: Sequence[Macro], queries_dir: Path) -> None:
    for macro in macros:
        try:
            con.execute(macro.sql)
        except duckdb.Error as exc:
            raise macro_error(macro, exc, _shown(macro.path, queries_dir)) from None


def _build_model(con: duckdb.DuckDBPyConnection, model: Model, queries_dir: Path) -> ModelRun:
    started = time.perf_counter()
    # The model's text follows on the same line, so DuckDB's LINE numbers are the file's.
    statement = f"create {model.materialized} {model.name} as {model.sql}"
    try:
        # `create table … as` answers with the rows it wrote; a view with nothing
        written = con.execute(statement).fetchall()
        rows = written[0][0] if model.materialized == "table" else None
    except duckdb.Error as exc:
        where = _where(exc, model.path, queries_dir)
        raise CdrError(f"model {model.name} failed ({where}): {one_line(exc, first=True)}") from None
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
        raise CdrError(f"data test {test.name} failed to run ({where}): {one_line(exc, first=True)}") from None
    if sample:
        lines = [", ".join(f"{c}={_show(v)}" for c, v in zip(columns, row)) for row in sample]
        return f"{test.name}: {test.description}; {counted(total, 'offending row')}, e.g.\n  " + "\n  ".join(lines)
    return TestRun(test.name, time.perf_counter() - started)


def _check_timezone(con: duckdb.DuckDBPyConnection, name: str) -> None:
    try:
        con.execute("select timezone(?, timestamptz '2000-01-01 00:00:00+00')", [name]).fetchall()
    except duckdb.Error:
        raise UsageError(
            f"unknown report time zone {name!r}{hinted(zone_meant(name))}: use {ZONES} (CDR_REPORT_TIMEZONE)"
        ) from None


def _where(exc: duckdb.Error, path: Path, queries_dir: Path) -> str:
    shown = _shown(path, queries_dir)
    line = error_line(exc)
    return f"{shown}:{line}" if line else str(shown)


def _shown(path: Path, queries_dir: Path) -> Path:
    """A model, test or macro file -> its path as errors show it: from the queries folder's parent."""
    try:
        return path.relative_to(queries_dir.parent)
    except ValueError:
        return path


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."
