"""Discovery: the models and data tests in `queries/`, their layers and the names each reads."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import duckdb
import orjson

from pipelines.errors import CdrError, noun, one_line
from pipelines.models.incremental import INCREMENTAL_COLUMNS, build_release
from pipelines.models.sources import (
    BUILD_MACROS,
    RECOMPUTED_MACROS,
    SEEDS_DIR,
    calendar_macros,
    error_line,
    source_names,
)

# In a checkout (and an editable install) the models sit beside the package; a wheel ships
# them inside it (pyproject's force-include).
_PACKAGE = Path(__file__).resolve().parent.parent
QUERIES_DIR = _PACKAGE / "queries" if (_PACKAGE / "queries").is_dir() else _PACKAGE.parent / "queries"
TESTS_DIR = "tests"
# SQL macros the models and data tests call: created in the build before any model.
MACROS_DIR = "macros"


class Layer(IntEnum):
    """Where a model sits in the data flow; a model may read only its own layer or earlier ones."""

    LAKE = 0
    STAGING = 1
    INTERMEDIATE = 2
    MARTS = 3
    ALERTS = 4
    REPORTS = 5
    ADHOC = 6


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
    # One table per alert rule, built side by side (an incremental build judges only the newest
    # windows of those declaring `window_end`); `rpt_alerts` unions them.
    "alerts": LayerRule(Layer.ALERTS, ("alert_",), "table"),
    "reports": LayerRule(Layer.REPORTS, ("rpt_",), "table"),
    # Friendly views for ad-hoc SQL (`calls`, `messages`): no prefix, nothing reads them.
    "adhoc": LayerRule(Layer.ADHOC, ("",), "view"),
}
MATERIALIZATIONS = ("view", "table")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MATERIALIZED = re.compile(r"^--\s*materialized:\s*(\w+)\s*$", re.MULTILINE)
_INCREMENTAL = re.compile(r"^--\s*incremental:\s*(\w+)\s*$", re.MULTILINE)
_SPANS = re.compile(r"^--\s*spans:\s*(\w+)\s*$", re.MULTILINE)
# Schemas a model's own name may be read through: the build's default one.
_OWN_SCHEMAS = ("", "main")


@dataclass(frozen=True, slots=True)
class Model:
    """One SQL model: its name, file, layer, materialization, SQL and the names it reads.

    `incremental`: the date column by which an incremental build replaces its rows (None: it is
    rebuilt whole every time). `spans`: for a model whose day's rows depend on records of other
    days (calls in progress), the model holding each UTC day's `first_started_at` and
    `last_ended_at`: its report days are recomputed from every day whose span reaches them.
    """

    name: str
    path: Path
    layer: Layer
    materialized: str
    sql: str
    refs: frozenset[str]
    incremental: str | None = None
    spans: str | None = None


@dataclass(frozen=True, slots=True)
class Macro:
    """One SQL macro: its name, file, CREATE MACRO statement and the file's line that statement starts on."""

    name: str
    path: Path
    sql: str
    first_line: int


@dataclass(frozen=True, slots=True)
class DataTest:
    """One data test: a query returning the rows that break an invariant (none when it holds).

    `incremental`: set when the invariant holds day by day: an incremental build checks it over
    the changed days only.
    """

    name: str
    path: Path
    description: str
    sql: str
    refs: frozenset[str]
    incremental: str | None = None


@dataclass(frozen=True, slots=True)
class Discovered:
    """What a queries folder holds: its macros (in an order they can be created in), models and data tests."""

    macros: tuple[Macro, ...]
    models: tuple[Model, ...]
    tests: tuple[DataTest, ...]

    def document(self, queries_dir: Path) -> str:
        """-> the text `discover` takes back as `known` (paths relative to the queries folder)."""

        def fields(item: Macro | Model | DataTest) -> dict[str, object]:
            found = {name: getattr(item, name) for name in item.__slots__}  # type: ignore[union-attr]
            found["path"] = item.path.relative_to(queries_dir).as_posix()
            if "refs" in found:
                found["refs"] = sorted(item.refs)  # type: ignore[union-attr]
            return found

        return orjson.dumps({
            "duckdb": duckdb.__version__,
            "release": build_release(),
            "macros": [fields(macro) for macro in self.macros],
            "models": [fields(model) for model in self.models],
            "tests": [fields(test) for test in self.tests],
        }).decode()


def discover(queries_dir: Path = QUERIES_DIR, known: str | None = None) -> Discovered:
    """A queries folder -> its macros, models and data tests.

    `known`: what discovering the same files found before (`Discovered.document`, kept in the
    warehouse built from them), taken as it is when this release and DuckDB wrote it: parsing
    every file again would find the same.
    """
    queries_dir = Path(queries_dir)
    document = orjson.loads(known) if known else {}
    if document.get("duckdb") == duckdb.__version__ and document.get("release") == build_release():
        def path(fields: dict) -> dict:
            return fields | {"path": queries_dir / fields["path"]}

        return Discovered(
            tuple(Macro(**path(fields)) for fields in document["macros"]),
            tuple(
                Model(**path(fields) | {"layer": Layer(fields["layer"]), "refs": frozenset(fields["refs"])})
                for fields in document["models"]
            ),
            tuple(DataTest(**path(fields) | {"refs": frozenset(fields["refs"])}) for fields in document["tests"]),
        )
    macros = discover_macros(queries_dir)
    names = [macro.name for macro in macros]
    models = discover_models(queries_dir, names)
    return Discovered(macros, models, discover_tests(queries_dir, [model.name for model in models], names))


def references(sql: str, names: Iterable[str]) -> frozenset[str]:
    """One SELECT and the names that can be read -> the names it reads as tables.

    Read from DuckDB's own parse tree, so a name in a string, a comment or a column is not a
    read and every join form is. A CTE defined in the text hides a model of the same name
    everywhere in that text.
    """
    with duckdb.connect() as con:
        tree, error = _parse(con, sql)
    if tree is None:
        raise CdrError(f"cannot tell which tables this SQL reads ({error})")
    return _reads(tree, names)


def discover_models(queries_dir: Path = QUERIES_DIR, macros: Collection[str] | None = None) -> tuple[Model, ...]:
    """A queries folder -> its models (one per `.sql` file in a layer folder), with their references.

    `macros`: the names of its macros, when the caller has discovered them already.
    """
    queries_dir = Path(queries_dir)
    if not queries_dir.is_dir():
        raise CdrError(f"no queries folder at {queries_dir}: run from a source checkout of opentact-cdr")
    unknown = sorted(
        p.name
        for p in queries_dir.iterdir()
        if p.is_dir() and p.name not in LAYER_DIRS and p.name not in (TESTS_DIR, SEEDS_DIR, MACROS_DIR)
    )
    if unknown:
        raise CdrError(
            f"unknown {noun(len(unknown), 'folder')} in {queries_dir}: {', '.join(unknown)}; models live in {', '.join(LAYER_DIRS)} "
            f"(data tests in {TESTS_DIR}, macros in {MACROS_DIR}, reference data in {SEEDS_DIR})"
        )
    found: list[tuple[str, Path, LayerRule, str, object]] = []
    with duckdb.connect() as con:
        for folder, rule in LAYER_DIRS.items():
            for path in sorted((queries_dir / folder).glob("*.sql")):
                name = path.stem
                if not _NAME.match(name) or not name.startswith(rule.prefixes):
                    expected = " or ".join(f"{p}<name>" for p in rule.prefixes if p) or "a lower-case name"
                    raise CdrError(
                        f"model file {path} is misnamed: models in {folder}/ are named {expected} (lower case)"
                    )
                found.append((name, path, rule, *_read_sql(con, path)))
    seen: dict[str, Path] = {}
    for name, path, *_ in found:
        if name in seen or name in source_names(queries_dir):
            other = seen.get(name, "the lake's source view")
            raise CdrError(f"model name {name} is used twice: {other} and {path}")
        seen[name] = path
    readable = [*source_names(queries_dir), *seen]
    macros = _macro_names(queries_dir) if macros is None else macros
    models = []
    for name, path, rule, sql, tree in found:
        materialized, incremental = _header_options(path, sql, rule.materialized)
        refs = _reads(tree, readable, macros) - {name}
        spans = _spans(path, sql, incremental, seen)
        models.append(Model(name, path, rule.layer, materialized, sql, refs, incremental, spans))
    return tuple(models)


def discover_tests(
    queries_dir: Path, model_names: Iterable[str], macros: Collection[str] | None = None
) -> tuple[DataTest, ...]:
    """A queries folder and the model names -> its data tests (`tests/*.sql`); `macros` as for `discover_models`."""
    readable = [*source_names(queries_dir), *model_names]
    macros = _macro_names(queries_dir) if macros is None else macros
    tests = []
    with duckdb.connect() as con:
        for path in sorted((Path(queries_dir) / TESTS_DIR).glob("*.sql")):
            sql, tree = _read_sql(con, path)
            description = sql.splitlines()[0].removeprefix("--").strip()
            match = _INCREMENTAL.search(sql)
            incremental = match.group(1) if match else None
            tests.append(DataTest(path.stem, path, description, sql, _reads(tree, readable, macros), incremental))
    return tuple(tests)


def discover_macros(queries_dir: Path = QUERIES_DIR) -> tuple[Macro, ...]:
    """A queries folder -> its macros (one `create macro` per `macros/*.sql` file) in an order they can be created in.

    Each is created in a scratch database to check it. A macro reads a table only through a
    parameter (`query_table(t)`, its caller passing the name): DuckDB binds a macro's body
    when it is created, before any model exists, and a caller's reads are then in its own SQL.
    """
    texts: dict[str, Macro] = {}
    for path in sorted((Path(queries_dir) / MACROS_DIR).glob("*.sql")):
        if not _NAME.match(path.stem):
            raise CdrError(f"macro file {path} is misnamed: it is named after its macro, in lower case")
        texts[path.stem] = _read_macro(path)
    if not texts:
        return ()
    with duckdb.connect() as con:
        # the build's macros a queries macro may call (`threshold` reads a table it lacks here)
        for statement in (*calendar_macros("UTC"), *RECOMPUTED_MACROS):
            con.execute(statement)
        taken = {row[0] for row in con.execute("select function_name from duckdb_functions()").fetchall()}
        taken.update(BUILD_MACROS)
        for name, macro in texts.items():
            if name in taken:
                raise CdrError(f"macro file {macro.path}: {name} is already a DuckDB or calendar function; rename it")
        created = _create_macros(con, texts)
        # one row per overload; a scalar macro's definition is an expression
        definitions = con.execute(
            "select function_name, function_type, macro_definition from duckdb_functions() "
            "where database_name = current_database() and schema_name = 'main' and list_contains(?, function_name)",
            [list(texts)],
        ).fetchall()
        for name, kind, definition in definitions:
            tree, error = _parse(con, definition if kind == "table_macro" else f"select {definition}")
            if tree is None:
                raise CdrError(f"{texts[name].path}: cannot tell which tables macro {name} reads ({error})")
            read = _tables(tree, texts)
            if read:
                raise CdrError(
                    f"{texts[name].path}: macro {name} reads {', '.join(sorted(read))} by name; "
                    "take the table's name as a parameter and read it with query_table(...)"
                )
    for name, macro in texts.items():
        if name not in {row[0] for row in definitions}:
            raise CdrError(f"{macro.path} must hold one `create macro {name}(...)` statement, named after its file")
    return tuple(texts[name] for name in created)


def _read_macro(path: Path) -> Macro:
    """A macro file -> its macro: the one CREATE statement in it, unchecked."""
    text = _sql_text(path)
    if not text.startswith("--"):
        raise CdrError(f"{path} must start with a comment line saying what the macro returns")
    statements = _statements(path, text)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.CREATE:
        raise CdrError(f"{path} must hold one `create macro {path.stem}(...)` statement")
    # DuckDB numbers an error's lines from the statement, after the comments above it
    statement = statements[0].query
    return Macro(path.stem, path, statement, text[: text.find(statement)].count("\n") + 1)


def _create_macros(con: duckdb.DuckDBPyConnection, texts: Mapping[str, Macro]) -> list[str]:
    """Create each macro, a scalar macro after the macros it calls -> their names in that order."""
    created: list[str] = []
    pending = list(texts)
    while pending:
        failed: dict[str, duckdb.Error] = {}
        for name in pending:
            try:
                con.execute(texts[name].sql)
            except duckdb.Error as exc:
                failed[name] = exc
            else:
                created.append(name)
        if len(failed) == len(pending):
            name, exc = next(iter(failed.items()))
            raise macro_error(texts[name], exc, texts[name].path)
        pending = list(failed)
    return created


def _read_sql(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[str, object]:
    """A model or test file -> its SQL (without trailing semicolons) and DuckDB's parse tree of it."""
    text = _sql_text(path)
    if not text.startswith("--"):
        raise CdrError(f"{path} must start with a comment line stating its grain and key (or, for a test, its rule)")
    tree, error = _parse(con, text)
    if tree is not None:
        return text, tree
    # Not one SELECT: DuckDB's statement parser says which way, with the line.
    statements = _statements(path, text)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise CdrError(f"{path} must hold exactly one SELECT statement")
    raise CdrError(f"{path}: cannot tell which tables it reads ({error})")


def _statements(path: Path, text: str) -> list[duckdb.Statement]:
    """A file's SQL -> its statements; CdrError naming the file and line that does not parse."""
    try:
        return duckdb.extract_statements(text)
    except duckdb.Error as exc:
        line = error_line(exc)
        where = f"{path}:{line}" if line else str(path)
        raise CdrError(f"{where} does not parse: {one_line(exc, first=True)}") from None


def _sql_text(path: Path) -> str:
    """A SQL file -> its text without trailing semicolons."""
    text = path.read_text(encoding="utf-8").strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def _parse(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[object | None, str]:
    """SQL text -> (DuckDB's parse tree of its one SELECT, or None with the parser's reason)."""
    parsed = orjson.loads(con.execute("select json_serialize_sql(?)", [sql]).fetchall()[0][0])
    if parsed["error"]:
        return None, str(parsed.get("error_message", "unknown error"))
    if len(parsed["statements"]) != 1:
        return None, "more than one statement"
    return parsed["statements"][0], ""


def _reads(tree: object, names: Iterable[str], macros: Collection[str] = ()) -> frozenset[str]:
    """A parse tree, the names that can be read and the macros' names -> the names it reads as tables."""
    return frozenset(_tables(tree, macros) & {name.lower() for name in names})


def _tables(tree: object, macros: Collection[str]) -> set[str]:
    """A parse tree and the macros' names -> every table name it reads, through the macros it calls too.

    A string literal passed to a macro is a read of the table it names (the macro reads it with
    `query_table`); a CTE named like a table hides it.
    """
    tables: set[str] = set()
    ctes: set[str] = set()
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            if node.get("type") == "BASE_TABLE" and not node["catalog_name"] and node["schema_name"] in _OWN_SCHEMAS:
                tables.add(node["table_name"].lower())
            if node.get("class") == "FUNCTION" and not node["catalog"] and node["schema"] in _OWN_SCHEMAS:
                if node["function_name"].lower() in macros:
                    tables.update(
                        argument["expression"]["literal"]["text"].lower()
                        for argument in node["arguments"]
                        if argument["expression"].get("literal", {}).get("kind") == "STRING"
                    )
            cte_map = node.get("cte_map")
            if isinstance(cte_map, dict):
                ctes.update(entry["key"].lower() for entry in cte_map["map"])
            pending.extend(node.values())
    return tables - ctes


def _macro_names(queries_dir: Path) -> frozenset[str]:
    return frozenset(macro.name for macro in discover_macros(queries_dir))


def macro_error(macro: Macro, exc: BaseException, shown: Path) -> CdrError:
    """A macro, the error creating it and its file as shown -> the one-line error naming the file and line."""
    line = error_line(exc)
    where = f"{shown}:{int(line) + macro.first_line - 1}" if line else str(shown)
    return CdrError(f"macro {macro.name} failed ({where}): {one_line(exc, first=True)}")


def _header_options(path: Path, sql: str, default: str) -> tuple[str, str | None]:
    """A model's file -> its materialization and incremental column, as its header comment lines declare them."""
    match = _MATERIALIZED.search(sql)
    materialized = match.group(1) if match else default
    if materialized not in MATERIALIZATIONS:
        raise CdrError(f"{path}: materialized must be one of {', '.join(MATERIALIZATIONS)}, not {materialized!r}")
    match = _INCREMENTAL.search(sql)
    if match is None:
        return materialized, None
    if match.group(1) not in INCREMENTAL_COLUMNS:
        raise CdrError(f"{path}: incremental must be one of {', '.join(INCREMENTAL_COLUMNS)}, not {match.group(1)!r}")
    if materialized != "table":
        raise CdrError(f"{path}: only a table can be incremental; add `-- materialized: table` or drop `-- incremental`")
    return materialized, match.group(1)


def _spans(path: Path, sql: str, incremental: str | None, models: Collection[str]) -> str | None:
    """A model's file -> the model holding the spans its incremental build follows, as its header declares it."""
    match = _SPANS.search(sql)
    if match is None:
        return None
    if incremental != "report_date" or match.group(1) not in models:
        raise CdrError(f"{path}: `-- spans: <model>` needs `-- incremental: report_date` and names a model")
    return match.group(1)
