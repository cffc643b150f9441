"""The models runner (discovery, order, layer rules, errors, atomic builds), the data tests, the
dedupe, the friendly views and the peak-concurrency model."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import orjson
import pytest

from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.models import runner as models_module
from pipelines.models.sources import RECOMPUTED_MACROS, calendar_macros
from pipelines.models.order import run_in_order
from pipelines.errors import CdrError, LakeError, UsageError
from pipelines.models import (
    QUERIES_DIR,
    Layer,
    build,
    build_order,
    discover,
    discover_macros,
    discover_models,
    discover_tests,
    references,
    warehouse_path,
)
from pipelines.opentact import api
from tests.fixtures.cli import run_cdr
from tests.fixtures.lake import call, message, small_world, write_lake


def write_queries(root: Path, files: dict[str, str]) -> Path:
    """{'marts/fct_x.sql': sql} -> a queries folder holding those files."""
    for relative, sql in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    return root


def names(models) -> list[str]:
    return [model.name for model in models]


# -- references and order --------------------------------------------------------------------


def test_references_are_names_read_after_from_or_join_outside_strings_comments_and_ctes():
    sql = """-- reads stg_b? no: a comment
    with stg_c as (select * from stg_a), x as not materialized (select 1 as calls)
    select 'from stg_d' as s, calls, "stg_e".id
    from stg_c
    left join "stg_e" on true
    /* from stg_f */
    """
    assert references(sql, ["stg_a", "stg_b", "stg_c", "stg_d", "stg_e", "stg_f", "calls"]) == {"stg_a", "stg_e"}


def test_build_order_puts_each_model_after_what_it_reads(tmp_path):
    queries = write_queries(tmp_path, {
        "reports/rpt_z.sql": "-- rpt_z: one row\nselect * from fct_y join dim_w on true",
        "marts/fct_y.sql": "-- fct_y: one row\nselect * from int_x",
        "marts/dim_w.sql": "-- dim_w: one row\nselect * from stg_v",
        "intermediate/int_x.sql": "-- int_x: one row\nselect * from stg_v",
        "staging/stg_v.sql": "-- stg_v: one row\nselect * from lake_cdrs",
    })
    ordered = names(build_order(discover_models(queries)))
    assert ordered.index("stg_v") < ordered.index("int_x") < ordered.index("fct_y") < ordered.index("rpt_z")
    assert ordered.index("dim_w") < ordered.index("rpt_z")


def test_jobs_start_long_ones_first_then_those_more_jobs_wait_for_then_in_order():
    """One worker: of the jobs ready at once, `first` goes ahead, then the job others wait for."""
    started: list[str] = []
    graph = {"a": set(), "b": set(), "c": {"b"}, "long": set()}
    with duckdb.connect() as con:
        run_in_order(con, graph, lambda _, key: started.append(key), 1, first={"long"})
        assert started == ["long", "b", "a", "c"]
        started.clear()
        run_in_order(con, graph, lambda _, key: started.append(key), 1)
        assert started == ["b", "a", "c", "long"]


def test_a_cycle_is_an_error_naming_the_cycle(tmp_path):
    queries = write_queries(tmp_path, {
        "marts/fct_a.sql": "-- fct_a\nselect * from fct_b",
        "marts/fct_b.sql": "-- fct_b\nselect * from dim_c",
        "marts/dim_c.sql": "-- dim_c\nselect * from fct_a",
    })
    with pytest.raises(CdrError, match=r"cycle: (fct_a|fct_b|dim_c)( -> (fct_a|fct_b|dim_c)){3}"):
        build_order(discover_models(queries))


def test_a_backward_read_is_an_error_naming_both_models(tmp_path):
    queries = write_queries(tmp_path, {
        "intermediate/int_a.sql": "-- int_a\nselect * from rpt_b",
        "reports/rpt_b.sql": "-- rpt_b\nselect 1 as x",
    })
    with pytest.raises(CdrError, match=r"int_a \(intermediate\) reads rpt_b \(reports\), a later layer"):
        build_order(discover_models(queries))


def test_nothing_may_read_the_adhoc_views(tmp_path):
    queries = write_queries(tmp_path, {
        "adhoc/calls.sql": "-- calls\nselect 1 as x",
        "reports/rpt_b.sql": "-- rpt_b\nselect * from calls",
    })
    with pytest.raises(CdrError, match=r"rpt_b \(reports\) reads calls \(adhoc\)"):
        build_order(discover_models(queries))


@pytest.mark.parametrize(
    ("relative", "sql", "message"),
    [
        ("marts/rpt_a.sql", "-- rpt_a\nselect 1", "misnamed: models in marts/ are named fct_<name> or dim_<name>"),
        ("staging/stg_A.sql", "-- stg_A\nselect 1", "misnamed"),
        ("marts/fct_a.sql", "select 1", "must start with a comment line stating its grain and key"),
        ("marts/fct_a.sql", "-- fct_a\nselect 1; select 2", "exactly one SELECT statement"),
        ("marts/fct_a.sql", "-- fct_a\ncreate table x (a int)", "exactly one SELECT statement"),
        ("marts/fct_a.sql", "-- fct_a\n-- materialized: sometimes\nselect 1", "materialized must be one of view, table"),
        ("marts/fct_a.sql", "-- fct_a\n-- incremental: day\nselect 1", "incremental must be one of utc_date, report_date"),
        ("staging/stg_a.sql", "-- stg_a\n-- incremental: utc_date\nselect 1", "only a table can be incremental"),
        ("marts/fct_a.sql", "-- fct_a\nselect 1 +\n", "fct_a.sql:2 does not parse: Parser Error"),
        ("widgets/fct_a.sql", "-- fct_a\nselect 1", "unknown folder in"),
    ],
)
def test_malformed_model_files_are_refused_with_the_file_named(tmp_path, relative, sql, message):
    write_queries(tmp_path, {relative: sql})
    with pytest.raises(CdrError, match=message.replace("(", r"\(").replace(")", r"\)")):
        discover_models(tmp_path)


def test_the_project_models_follow_the_layer_rules():
    models = discover_models(QUERIES_DIR)
    ordered = build_order(models)
    assert len(ordered) == len(models) >= 30
    by_name = {model.name: model for model in models}
    assert {m.name for m in models if m.layer is Layer.ADHOC} == {"calls", "messages"}
    for model in models:
        # only staging reads the lake
        assert all(not ref.startswith("lake_") for ref in model.refs) or model.layer is Layer.STAGING
        assert all(by_name[ref].layer <= model.layer for ref in model.refs if ref in by_name)
        expected = "table" if model.layer in (Layer.MARTS, Layer.ALERTS, Layer.REPORTS) else "view"
        build_state = ("stg_cdrs_id_census", "stg_mdrs_id_census", "stg_cdrs_id_index", "stg_mdrs_id_index")
        # stg_quarantine: its many small files read once, not by each of its readers
        tables = ("stg_cdr_repeats", "stg_mdr_repeats", "stg_cdrs_day_spans", "stg_quarantine", *build_state)
        if model.name not in tables:
            assert model.materialized == expected, model.name
    tests = discover_tests(QUERIES_DIR, by_name)
    assert all(test.refs for test in tests) and len(tests) >= 9


def test_what_a_build_discovered_is_taken_back_as_it_was_only_from_this_release_and_duckdb():
    found = discover(QUERIES_DIR)
    assert found.models == discover_models(QUERIES_DIR) and found.macros == discover_macros(QUERIES_DIR)
    document = found.document(QUERIES_DIR)
    assert discover(QUERIES_DIR, document) == found
    # taken as it is: the queries' hash, not a second discovery, says they are the same files
    kept = orjson.loads(document)
    assert discover(QUERIES_DIR, orjson.dumps(kept | {"tests": []}).decode()).tests == ()
    for key in ("release", "duckdb"):
        assert discover(QUERIES_DIR, orjson.dumps(kept | {key: "0.0.1", "tests": []}).decode()) == found


# -- macros ------------------------------------------------------------------------------------


def test_a_model_calling_a_macro_comes_after_the_tables_it_names_to_the_macro(tmp_path):
    # fct_a reads fct_z only through a macro, naming it in a string: fct_a is built after it
    queries = write_queries(tmp_path, {
        "macros/every_row.sql": "-- every_row(t): the rows of table t\ncreate macro every_row(t) as table select * from query_table(t)",
        "marts/fct_a.sql": "-- fct_a: one row\nselect * from every_row('fct_z')",
        "marts/fct_z.sql": "-- fct_z: one row\nselect 1 as x",
        "staging/stg_a.sql": "-- stg_a: one row\nselect 'fct_z' as name, every_row as x from (select 1 as every_row)",
    })
    models = {model.name: model for model in discover_models(queries)}
    assert models["fct_a"].refs == {"fct_z"}
    # a string that is no macro's argument, and a column named like a macro, read nothing
    assert models["stg_a"].refs == frozenset()
    ordered = names(build_order(models.values()))
    assert ordered.index("fct_z") < ordered.index("fct_a")


def test_a_read_through_a_macro_obeys_the_layer_rules(tmp_path):
    queries = write_queries(tmp_path, {
        "macros/every_row.sql": "-- every_row(t): the rows of table t\ncreate macro every_row(t) as table select * from query_table(t)",
        "marts/fct_a.sql": "-- fct_a: one row\nselect * from every_row('rpt_b')",
        "reports/rpt_b.sql": "-- rpt_b: one row\nselect 1 as x",
    })
    with pytest.raises(CdrError, match=r"fct_a \(marts\) reads rpt_b \(reports\), a later layer"):
        build_order(discover_models(queries))


def test_macros_are_created_before_the_models_and_kept_in_the_warehouse(tmp_path):
    queries = write_queries(tmp_path / "queries", {
        # a_twice calls b_once, whose file sorts after it: created after b_once all the same
        "macros/a_twice.sql": "-- a_twice(x): 2 (x + 1)\ncreate macro a_twice(x) as b_once(x) * 2;\n",
        "macros/b_once.sql": "-- b_once(x): x + 1\ncreate macro b_once(x) as x + 1",
        "macros/numbers.sql": "-- numbers(t): t's x doubled\ncreate macro numbers(t) as table select a_twice(x) as x from query_table(t)",
        "staging/stg_a.sql": "-- stg_a: one row\nselect 1 as x",
        "reports/rpt_b.sql": "-- rpt_b: one row\n-- materialized: view\nselect * from numbers('stg_a')",
    })
    assert names(discover_macros(queries)) == ["b_once", "numbers", "a_twice"]
    (tmp_path / "data").mkdir()
    build(tmp_path / "data", queries_dir=queries)
    # the view calls the macros when read: they are in the warehouse with it
    with duckdb.connect(str(warehouse_path(tmp_path / "data")), read_only=True) as con:
        assert con.execute("select x from rpt_b").fetchall() == [(4,)]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"macros/m.sql": "create macro m(x) as x"}, "macros/m.sql must start with a comment line"),
        ({"macros/M.sql": "-- M\ncreate macro M(x) as x"}, "macro file .*macros/M.sql is misnamed"),
        ({"macros/m.sql": "-- m\ncreate macro m(x) as x; create macro n(x) as x"},
         "macros/m.sql must hold one `create macro m\\(...\\)` statement"),
        ({"macros/m.sql": "-- m\nselect 1"}, "macros/m.sql must hold one `create macro m"),
        ({"macros/m.sql": "-- m\ncreate table m as select 1 as x"}, "macros/m.sql must hold one `create macro m"),
        ({"macros/m.sql": "-- m\ncreate macro other(x) as x"}, "macros/m.sql must hold one `create macro m"),
        ({"macros/m.sql": "-- m\ncreate macro m(x) as\nx +"}, "macros/m.sql:3 does not parse: Parser Error"),
        ({"macros/hash.sql": "-- hash\ncreate macro hash(x) as x"}, "macros/hash.sql: hash is already a DuckDB"),
        ({"macros/report_time.sql": "-- r\ncreate macro report_time(x) as x"}, "is already a DuckDB or calendar"),
        # a scalar macro is bound when created, before any model exists: it may read no table
        ({"macros/m.sql": "-- m\ncreate macro m(x) as\n(select count(*) from stg_a)"},
         "macro m failed \\(.*macros/m.sql:3\\): Catalog Error: Table with name stg_a does not exist"),
        ({"macros/m.sql": "-- m\ncreate macro m(x) as no_such_function(x)"},
         "macro m failed .*: Catalog Error: Scalar Function with name no_such_function does not exist"),
        # where DuckDB's check at creation lets a read by name through, the runner's does not
        ({"macros/m.sql": "-- m\ncreate macro m(t) as table select * from query_table(t), stg_a"},
         "macros/m.sql: macro m reads stg_a by name; take the table's name as a parameter"),
        ({"macros/m.sql": "-- m\ncreate macro m(t) as table select * from query_table(t)",
          "macros/n.sql": "-- n\ncreate macro n(t) as table select * from query_table(t) union all select * from m('stg_a')"},
         "macros/n.sql: macro n reads stg_a by name"),
    ],
)
def test_a_bad_macro_file_is_refused_in_one_line_naming_the_file(tmp_path, files, message):
    queries = write_queries(tmp_path / "queries", {"staging/stg_a.sql": "-- stg_a: one row\nselect 1 as x", **files})
    (tmp_path / "data").mkdir()
    with pytest.raises(CdrError, match=message) as caught:
        build(tmp_path / "data", queries_dir=queries)
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == []


# -- building ----------------------------------------------------------------------------------


def test_a_sql_error_names_the_model_its_file_and_line(tmp_path):
    queries = write_queries(tmp_path / "queries", {
        "staging/stg_a.sql": "-- stg_a: one row\nselect\n    id,\n    no_such_column,\nfrom lake_cdrs\n",
    })
    (tmp_path / "data").mkdir()
    with pytest.raises(CdrError) as caught:
        build(tmp_path / "data", queries_dir=queries)
    message = str(caught.value)
    assert message.startswith("model stg_a failed (queries/staging/stg_a.sql:4): Binder Error:")
    assert "no_such_column" in message and "\n" not in message



def test_a_model_failing_with_a_huge_message_is_cut_short(tmp_path):
    queries = write_queries(tmp_path / "queries", {
        "marts/fct_a.sql": f"-- fct_a: one row\nselect error('{'x' * 5000}') as id\n",
    })
    (tmp_path / "data").mkdir()
    with pytest.raises(CdrError) as caught:
        build(tmp_path / "data", queries_dir=queries)
    message = str(caught.value)
    assert message.startswith("model fct_a failed (queries/marts/fct_a.sql): Invalid Input Error: xxx")
    assert message.endswith("x…") and len(message) < 300, message[:400]


def test_a_data_test_that_cannot_run_names_its_file_and_line(tmp_path):
    queries = write_queries(tmp_path / "queries", {
        "reports/rpt_a.sql": "-- rpt_a: one row\nselect 1 as x",
        "tests/rpt_a_positive.sql": "-- x is positive\nselect *\nfrom rpt_a\nwhere y <= 0",
    })
    (tmp_path / "data").mkdir()
    with pytest.raises(CdrError) as caught:
        build(tmp_path / "data", queries_dir=queries)
    assert str(caught.value).startswith(
        "data test rpt_a_positive failed to run (queries/tests/rpt_a_positive.sql:4): Binder Error"
    )


def test_a_failed_build_leaves_the_previous_warehouse_untouched(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    queries = write_queries(tmp_path / "queries", {"reports/rpt_a.sql": "-- rpt_a: one row\nselect 1 as version"})
    build(data_dir, queries_dir=queries)
    write_queries(queries, {
        "reports/rpt_a.sql": "-- rpt_a: one row\nselect 2 as version",
        "reports/rpt_b.sql": "-- rpt_b: one row\nselect * from rpt_a, no_such_table",
    })
    with pytest.raises(CdrError, match="model rpt_b failed"):
        build(data_dir, queries_dir=queries)
    with duckdb.connect(str(warehouse_path(data_dir)), read_only=True) as con:
        assert con.execute("select version from rpt_a").fetchall() == [(1,)]
    assert sorted(p.name for p in data_dir.iterdir()) == ["last_build.json", "warehouse.duckdb"]


def test_a_build_runs_within_the_memory_limit_it_is_given(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    queries = write_queries(tmp_path / "queries", {
        "reports/rpt_limit.sql": "-- rpt_limit: one row\nselect current_setting('memory_limit') as memory_limit",
    })

    def limit() -> str:
        with duckdb.connect(str(warehouse_path(data_dir)), read_only=True) as con:
            return con.execute("select memory_limit from rpt_limit").fetchall()[0][0]

    build(data_dir, queries_dir=queries, memory_limit="200MB")
    assert limit() == "190.7 MiB"  # DuckDB shows the 200 * 1000^2 bytes in binary units
    build(data_dir, queries_dir=queries, full=True)
    assert limit() != "190.7 MiB"


def around_each_model(monkeypatch, around) -> None:
    """Build each model through `around(model, build_it)`, `build_it()` being the runner's own build of it."""
    build_model = models_module._build_model

    def wrapped(con, model, queries_dir):
        return around(model, lambda: build_model(con, model, queries_dir))

    monkeypatch.setattr(models_module, "_build_model", wrapped)


def test_independent_models_are_built_at_the_same_time(tmp_path, monkeypatch):
    # Two models that read nothing of each other meet at a barrier: built one after the other,
    # the first would wait for the second until the barrier breaks.
    queries = write_queries(tmp_path / "queries", {
        "reports/rpt_a.sql": "-- rpt_a: one row\nselect 1 as x",
        "reports/rpt_b.sql": "-- rpt_b: one row\nselect 2 as x",
        "reports/rpt_c.sql": "-- rpt_c: one row\nselect * from rpt_a union all select * from rpt_b",
    })
    (tmp_path / "data").mkdir()
    both = threading.Barrier(2, timeout=10)
    finished: list[str] = []

    def meeting(model, build_it):
        if model.name in ("rpt_a", "rpt_b"):
            both.wait()
        run = build_it()
        finished.append(model.name)
        return run

    around_each_model(monkeypatch, meeting)
    report = build(tmp_path / "data", queries_dir=queries)
    # rpt_c only once both are built; the report lists the models in build order all the same
    assert finished[-1] == "rpt_c" and sorted(finished[:2]) == ["rpt_a", "rpt_b"]
    assert names(report.models) == ["rpt_a", "rpt_b", "rpt_c"]
    with duckdb.connect(str(warehouse_path(tmp_path / "data")), read_only=True) as con:
        assert con.execute("select x from rpt_c order by x").fetchall() == [(1,), (2,)]


def test_of_the_ready_models_those_more_models_wait_for_start_first(tmp_path, monkeypatch):
    # One connection, so the start order is the priority order: stg_s (four models wait for it),
    # then fct_y (three), which turns ready only after stg_s yet goes ahead of fct_x (two) and
    # the reports nothing reads; ties in build order.
    queries = write_queries(tmp_path / "queries", {
        "staging/stg_s.sql": "-- stg_s: one row\nselect 1 as x",
        "marts/fct_x.sql": "-- fct_x: one row\nselect 1 as x",
        "marts/fct_y.sql": "-- fct_y: one row\nselect * from stg_s",
        "reports/rpt_a.sql": "-- rpt_a: one row\nselect 1 as x",
        "reports/rpt_c.sql": "-- rpt_c: one row\nselect * from fct_x",
        "reports/rpt_d.sql": "-- rpt_d: one row\nselect * from fct_x",
        "reports/rpt_e.sql": "-- rpt_e: one row\nselect * from fct_y",
        "reports/rpt_f.sql": "-- rpt_f: one row\nselect * from fct_y",
        "reports/rpt_g.sql": "-- rpt_g: one row\nselect * from fct_y",
    })
    (tmp_path / "data").mkdir()
    started: list[str] = []

    def record(model, build_it):
        started.append(model.name)
        return build_it()

    around_each_model(monkeypatch, record)
    monkeypatch.setattr(models_module, "BUILD_WORKERS", 1)
    build(tmp_path / "data", queries_dir=queries)
    assert started == ["stg_s", "fct_y", "fct_x", "rpt_a", "rpt_c", "rpt_d", "rpt_e", "rpt_f", "rpt_g"]


@pytest.mark.parametrize(("workers", "cores", "threads"), [(2, 2, 1), (2, 8, 7), (3, 2, 1)])
def test_the_cores_are_split_between_the_models_built_at_once(tmp_path, monkeypatch, workers, cores, threads):
    # DuckDB runs a query on its caller's thread and a shared pool of threads - 1: the models
    # built at once use every core once, whatever the machine
    queries = write_queries(tmp_path / "queries", {
        "reports/rpt_a.sql": "-- rpt_a: one row\nselect current_setting('threads') as threads",
    })
    (tmp_path / "data").mkdir()
    connect = duckdb.connect

    def on_cores(*args, **kwargs):
        con = connect(*args, **kwargs)
        con.execute(f"set threads = {cores}")  # as DuckDB's default on a machine with these cores
        return con

    monkeypatch.setattr(models_module.duckdb, "connect", on_cores)
    monkeypatch.setattr(models_module, "BUILD_WORKERS", workers)
    build(tmp_path / "data", queries_dir=queries)
    with connect(str(warehouse_path(tmp_path / "data")), read_only=True) as con:
        assert con.execute("select threads from rpt_a").fetchall() == [(threads,)]


def test_of_two_failed_models_the_earlier_in_build_order_is_named_and_nothing_later_starts(tmp_path, monkeypatch):
    # rpt_b fails at once, rpt_a only after it: still rpt_a is the failure reported, as when
    # built one at a time; rpt_c (reading rpt_b) never starts.
    queries = write_queries(tmp_path / "queries", {
        "reports/rpt_a.sql": "-- rpt_a: one row\nselect * from no_such_table_a",
        "reports/rpt_b.sql": "-- rpt_b: one row\nselect * from no_such_table_b",
        "reports/rpt_c.sql": "-- rpt_c: one row\nselect * from rpt_b",
    })
    (tmp_path / "data").mkdir()
    b_failed = threading.Event()
    started: list[str] = []

    def slow_a(model, build_it):
        started.append(model.name)
        if model.name == "rpt_a":
            assert b_failed.wait(10)
            time.sleep(0.2)
        try:
            return build_it()
        finally:
            if model.name == "rpt_b":
                b_failed.set()

    around_each_model(monkeypatch, slow_a)
    with pytest.raises(CdrError, match=r"^model rpt_a failed \(queries/reports/rpt_a.sql"):
        build(tmp_path / "data", queries_dir=queries)
    assert sorted(started) == ["rpt_a", "rpt_b"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == []


def test_an_unexpected_error_in_one_model_interrupts_the_others_and_is_raised(tmp_path, monkeypatch):
    queries = write_queries(tmp_path / "queries", {
        # a query that would run for minutes unless interrupted
        "reports/rpt_long.sql": "-- rpt_long: one row\nselect count(*) as n from range(1000000000000)",
        "reports/rpt_odd.sql": "-- rpt_odd: one row\nselect 1 as x",
    })
    (tmp_path / "data").mkdir()

    def odd(model, build_it):
        if model.name == "rpt_odd":
            time.sleep(0.3)  # rpt_long is running by now
            raise RuntimeError("disk on fire")
        return build_it()

    around_each_model(monkeypatch, odd)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="disk on fire"):
        build(tmp_path / "data", queries_dir=queries)
    assert time.monotonic() - started < 15
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == []


def test_an_empty_lake_builds_every_model_empty_and_typed(tmp_path):
    report = build(tmp_path)
    assert report.sources == {
        "lake_cdrs": 0, "lake_mdrs": 0, "lake_usage_cdrs": 0, "lake_usage_mdrs": 0, "lake_quarantine": 0,
    }
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as con:
        for run in report.models:
            if run.name != "rpt_build_info":
                assert con.execute(f"select count(*) from {run.name}").fetchall() == [(0,)], run.name
        calls = con.execute("describe calls").fetchall()
        statement = dict(row[:2] for row in con.execute("describe rpt_finance_monthly_statement").fetchall())
        assert con.execute("select calls, messages from rpt_build_info").fetchall() == [(0, 0)]
    assert [(c[0], c[1]) for c in calls][:4] == [
        ("account", "VARCHAR"), ("id", "VARCHAR"), ("record_type", "VARCHAR"), ("call_session_id", "VARCHAR"),
    ]
    assert statement["cost"] == "DECIMAL(38,9)" and statement["records"] == "BIGINT"


def test_a_lake_with_only_one_record_type_builds(tmp_path):
    calls, _, _ = small_world()
    report = build(write_lake(tmp_path, calls=calls))
    assert report.sources["lake_mdrs"] == 0 and report.sources["lake_cdrs"] == 3
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as con:
        assert con.execute("select count(*) from messages").fetchall() == [(0,)]
        assert con.execute("select sum(records) from rpt_finance_monthly_statement").fetchall() == [(6,)]


def test_build_report_lists_every_model_and_test(tmp_path):
    report = build(write_lake(tmp_path, *small_world()))
    assert len(report.models) == len(discover_models(QUERIES_DIR))
    assert len(report.tests) == len(discover_tests(QUERIES_DIR, []))
    assert {m.name: m.rows for m in report.models}["rpt_finance_monthly_statement"] == 7
    assert report.summary().startswith(f"built {len(report.models)} models and passed {len(report.tests)} data tests")


def test_the_build_summary_counts_one_model_and_one_test_in_the_singular(tmp_path):
    queries = write_queries(tmp_path / "queries", {
        "marts/fct_a.sql": "-- fct_a: one row\nselect 1 as x",
        "tests/fct_a_positive.sql": "-- x is positive\nselect * from fct_a where x <= 0",
    })
    (tmp_path / "data").mkdir()
    assert build(tmp_path / "data", queries_dir=queries).summary().startswith("built 1 model and passed 1 data test into ")


def test_a_missing_data_dir_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        build(tmp_path / "nope")


def test_an_unknown_report_time_zone_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="unknown report time zone 'Mars/Olympus'"):
        build(tmp_path, report_timezone="Mars/Olympus")


# -- a lake the build cannot read whole ----------------------------------------------------------


def _built_world(data_dir: Path) -> bytes:
    """The small world's lake built into a warehouse -> the warehouse's bytes."""
    build(write_lake(data_dir, *small_world()))
    return warehouse_path(data_dir).read_bytes()


def _replace_with_file(path: Path) -> None:
    shutil.rmtree(path)
    path.write_text("not a folder\n")


def _only_junk(path: Path) -> None:
    (path / "data.parquet").unlink()
    (path / "notes.txt").write_text("moved the data elsewhere\n")


def _folder_for_data(path: Path) -> None:
    (path / "data.parquet").unlink()
    (path / "data.parquet").mkdir()


def _zero_bytes(path: Path) -> None:
    (path / "data.parquet").write_bytes(b"")


def _truncated(path: Path) -> None:
    data = (path / "data.parquet").read_bytes()
    (path / "data.parquet").write_bytes(data[: len(data) // 2])


def _other_schema(path: Path) -> None:
    # a day of messages where the calls should be
    mdrs = path.parents[2] / "mdrs" / path.parent.name / path.name / "data.parquet"
    shutil.copyfile(mdrs, path / "data.parquet")


SYNC_CDRS_0201 = "re-sync that day with `cdr sync --types cdrs --tz UTC --start 2026-02-01 --end 2026-02-02`"


@pytest.mark.parametrize(
    ("damaged", "damage", "message"),
    [
        ("lake", _replace_with_file, "{path} is not a folder, so the build would read an empty lake: move it aside and "
         "re-sync the days it held with `cdr sync --tz UTC --start YYYY-MM-DD --end YYYY-MM-DD`"),
        ("lake/cdrs", _replace_with_file, "{path} is not a folder, so the build would read an empty lake: move it aside "
         "and re-sync the days it held with `cdr sync --types cdrs --tz UTC --start YYYY-MM-DD --end YYYY-MM-DD`"),
        ("lake/cdrs/account=default", _replace_with_file, "{path} is a file where the lake keeps an account's folder: "
         "move it out of the lake and re-sync the days it held with "
         "`cdr sync --types cdrs --tz UTC --start YYYY-MM-DD --end YYYY-MM-DD`"),
        ("lake/cdrs/account=default/date=2026-02-01", _replace_with_file,
         "{path} is a file where the lake keeps a day's folder: move it out of the lake and " + SYNC_CDRS_0201),
        ("lake/cdrs/account=default/date=2026-02-01", _only_junk,
         "{path} holds no data.parquet but notes.txt: move those out of the lake and " + SYNC_CDRS_0201),
        ("lake/cdrs/account=default/date=2026-02-01", _folder_for_data,
         "{path}/data.parquet is not a file: move it out of the lake and " + SYNC_CDRS_0201),
        # the first day's file is read when the lake's view is created, a later one by the models
        ("lake/cdrs/account=default/date=2026-01-30", _zero_bytes,
         "{path}/data.parquet is not a readable Parquet file (Invalid Input Error: File 'data.parquet' too small to be a "
         "Parquet file): delete it and re-sync that day with `cdr sync --types cdrs --tz UTC --start 2026-01-30 "
         "--end 2026-01-31`"),
        ("lake/cdrs/account=default/date=2026-02-01", _zero_bytes, "{path}/data.parquet is not a readable Parquet file (Invalid Input "
         "Error: File 'data.parquet' too small to be a Parquet file): delete it and " + SYNC_CDRS_0201),
        ("lake/cdrs/account=default/date=2026-02-01", _truncated, "{path}/data.parquet is not a readable Parquet file (Invalid Input "
         "Error: No magic bytes found at end of file 'data.parquet'): delete it and " + SYNC_CDRS_0201),
        ("lake/cdrs/account=default/date=2026-02-01", _other_schema, "{path}/data.parquet does not hold the cdrs columns the sync writes "
         "(missing call_session_id, country_calling_code, number_type, ...; unexpected message_type, encoding, parts, "
         "...): delete it and " + SYNC_CDRS_0201),
        ("lake/cdrs/account=default/date=2026-01-30", _other_schema, "{path}/data.parquet does not hold the cdrs columns the sync writes"),
    ],
)
def test_a_lake_the_build_cannot_read_whole_is_refused_naming_the_path_and_the_resync(
    tmp_path, capsys, monkeypatch, damaged, damage, message
):
    before = _built_world(tmp_path)
    damage(tmp_path / damaged)
    code, out, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(tmp_path))
    assert (code, out) == (1, "")
    assert err.startswith("error: " + message.format(path=tmp_path / damaged)) and err.count("\n") == 1, err
    assert warehouse_path(tmp_path).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging", "lake", "last_build.json", "warehouse.duckdb"]


_GOOD_QUARANTINE_LINE = (
    b'{"kind": "cdrs", "run_id": "run-1", "seen_at": "2026-03-02T00:00:00Z", "slice_start": "2026-03-01T00:00:00Z", '
    b'"slice_end": "2026-03-02T00:00:00Z", "page_number": 1, "reason": "bad cli", "raw_json": "{}"}\n'
)


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (b'{"kind": "cdrs", "page_number": "two"}', "a quarantined line has a page_number that is not a BIGINT"),
        (b'{"kind": "cdrs", "seen_at": "yesterday"}', "a quarantined line has a seen_at that is not a TIMESTAMPTZ"),
        (b'{"kind": "cdrs", "raw_json": "{\\"id', "a quarantined line is not JSON"),
        (b'["cdrs"]', "a quarantined line is not a JSON object"),
    ],
)
def test_a_quarantine_file_the_build_cannot_read_is_refused_naming_it(tmp_path, bad_line, reason):
    before = _built_world(tmp_path)
    good = tmp_path / "quarantine/cdrs/account=default/date=2026-03-02/run-1-a.jsonl"
    good.parent.mkdir(parents=True)
    # a key a line lacks reads null, and blank lines are passed over
    good.write_bytes(_GOOD_QUARANTINE_LINE + b"\n" + b'{"kind": "cdrs", "slice_start": "2026-03-01T00:00:00Z", "raw_json": "[]"}\n')
    build(tmp_path)
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as con:
        assert con.execute("select kind, reason, page_number from lake_quarantine order by reason").fetchall() == [
            ("cdrs", "bad cli", 1), ("cdrs", None, None)
        ]
    before = warehouse_path(tmp_path).read_bytes()
    bad = good.with_name("run-2-b.jsonl")
    bad.write_bytes(_GOOD_QUARANTINE_LINE + bad_line + b"\n")
    with pytest.raises(LakeError) as caught:
        build(tmp_path)
    assert str(caught.value) == (
        f"{bad} is not readable quarantine JSON lines (Invalid Input Error: {reason}): move it out of the data dir "
        "(reconciliation then counts its records as unexplained)"
    )
    assert warehouse_path(tmp_path).read_bytes() == before


def test_an_empty_day_folder_is_passed_over_but_one_holding_only_other_files_is_refused(tmp_path):
    _built_world(tmp_path)
    # what a sync killed between creating a day's folder and renaming its file into it leaves
    (tmp_path / "lake" / "mdrs" / "account=default" / "date=2026-03-01").mkdir()
    assert build(tmp_path).sources["lake_mdrs"] == 4
    before = warehouse_path(tmp_path).read_bytes()
    (tmp_path / "lake" / "mdrs" / "account=default" / "date=2026-03-01" / "data.parquet.bak").write_bytes(b"PAR1")
    with pytest.raises(LakeError, match=r"date=2026-03-01 holds no data.parquet but data.parquet.bak: "):
        build(tmp_path)
    assert warehouse_path(tmp_path).read_bytes() == before


# -- what killed builds leave --------------------------------------------------------------------


def _build_temps(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir() if p.name.startswith(".warehouse.duckdb."))


def test_a_build_removes_what_a_killed_build_left(tmp_path):
    queries = write_queries(tmp_path / "queries", {
        "reports/rpt_long.sql": "-- rpt_long: one row\nselect count(*) as n from range(1000000000000)",
    })
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    script = "import sys; from pipelines.models import build; build(sys.argv[1], queries_dir=sys.argv[2])"
    builder = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir), str(queries)], cwd=Path(__file__).resolve().parent.parent
    )
    try:
        deadline = time.monotonic() + 60
        while not _build_temps(data_dir) and builder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        builder.kill()
        builder.wait()
    left = _build_temps(data_dir)
    assert left and all(name.startswith(f".warehouse.duckdb.{builder.pid}.") for name in left)

    write_queries(queries, {"reports/rpt_long.sql": "-- rpt_long: one row\nselect 1 as n"})
    build(data_dir, queries_dir=queries)
    assert sorted(p.name for p in data_dir.iterdir()) == ["last_build.json", "warehouse.duckdb"]


def test_a_build_leaves_the_temporaries_of_builds_still_running(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        planted = []
        for pid in (dead.pid, running.pid, os.getpid()):
            temp = tmp_path / f".warehouse.duckdb.{pid}.0123456789ab.tmp"
            temp.write_bytes(b"half a database")
            Path(f"{temp}.wal").write_bytes(b"its log")
            Path(f"{temp}.spill").mkdir()
            (Path(f"{temp}.spill") / "duckdb_temp_storage-0.tmp").write_bytes(b"spilled")
            planted.append(sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(temp.name)))
        build(tmp_path)
        # the dead builder's leftovers are gone; a running builder's (another process or this one) stay
        assert _build_temps(tmp_path) == sorted(planted[1] + planted[2])
    finally:
        running.kill()
        running.wait()


# -- dedupe ------------------------------------------------------------------------------------


def test_stg_keeps_the_latest_version_of_each_record(tmp_path):
    base = dict(answered_at="2026-03-01T10:00:01Z", rate="0.0100")
    calls = [
        call("x", "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z", **base, updated_at="2026-03-01T10:01:00Z"),
        call("x", "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z", answered_at="2026-03-01T10:00:01Z",
             rate="0.0200", updated_at="2026-03-02T09:00:00Z"),
        call("x", "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z", **base, updated_at="2026-03-01T12:00:00Z"),
        # the same instant, another record: must survive the dedupe of x
        call("y", "2026-03-01T09:59:00Z", "2026-03-01T10:01:00Z", **base),
        # an exact copy landed twice: one row
        call("z", "2026-03-01T11:00:00Z", "2026-03-01T11:01:00Z", answered_at="2026-03-01T11:00:01Z"),
        call("z", "2026-03-01T11:00:00Z", "2026-03-01T11:01:00Z", answered_at="2026-03-01T11:00:01Z"),
    ]
    build(write_lake(tmp_path, calls=calls))
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as con:
        kept = con.execute("select id, rate, updated_at from calls order by id").fetchall()
    assert kept == [
        ("x", Decimal("0.02"), datetime(2026, 3, 2, 9, tzinfo=timezone.utc)),
        ("y", Decimal("0.01"), datetime(2026, 3, 1, 10, 1, tzinfo=timezone.utc)),
        ("z", Decimal("0.01"), datetime(2026, 3, 1, 11, 1, tzinfo=timezone.utc)),
    ]


def test_of_two_versions_tied_on_updated_at_and_cost_the_same_is_kept_whatever_the_file_order(tmp_path):
    tied = dict(answered_at="2026-03-01T10:00:01Z", updated_at="2026-03-01T12:00:00Z")
    versions = [
        call("t", "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z", **tied, tags=["a"], connection=("conn-a", "Old")),
        call("t", "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z", **tied, tags=["b"], connection=("conn-a", "New")),
    ]
    kept = []
    for order, name in ((versions, "ab"), (versions[::-1], "ba")):
        build(write_lake(tmp_path / name, calls=order))
        with duckdb.connect(str(warehouse_path(tmp_path / name)), read_only=True) as con:
            kept.append(con.execute("select id, tags, connection_name from stg_cdrs").fetchall())
    assert kept[0] == kept[1] and len(kept[0]) == 1


# -- data tests catch planted bad rows ---------------------------------------------------------


def _good_call(id: str = "good") -> dict:
    return call(id, "2026-03-01T10:00:00Z", "2026-03-01T10:01:10Z", answered_at="2026-03-01T10:00:05Z")


def _failures(message: str) -> dict[str, str]:
    """A failed build's message -> {test name: its description and sample rows}."""
    blocks: dict[str, str] = {}
    for line in message.splitlines()[1:]:
        if line.startswith("  "):
            blocks[name] += "\n" + line
        else:
            name = line.split(": ", 1)[0]
            blocks[name] = line
    return blocks


def test_planted_bad_calls_fail_the_build_each_listed_by_its_test(tmp_path):
    answered = dict(answered_at="2026-03-01T10:00:05Z")
    calls = [
        _good_call(),
        # 0.01 x 120 s / 60 = 0.02
        call("bad-cost", "2026-03-01T10:00:00Z", "2026-03-01T10:01:10Z", **answered, cost="0.03"),
        # 0.0133 x 1 s / 60 = 0.000221666.. rounds half-up to 0.000222, not down
        call("bad-rounding", "2026-03-01T10:00:00Z", "2026-03-01T10:00:02Z", answered_at="2026-03-01T10:00:01Z",
             billing=(1, 1), rate="0.0133", cost="0.000221"),
        # 65 talk seconds in 60/60 increments bill 120
        call("bad-increment", "2026-03-01T10:00:00Z", "2026-03-01T10:01:10Z", **answered, billed_duration_secs=65),
        call("bad-unanswered", "2026-03-01T10:00:00Z", "2026-03-01T10:00:30Z", status="busy", billed_duration_secs=60),
        call("bad-direction", "2026-03-01T11:00:00Z", "2026-03-01T11:01:10Z", answered_at="2026-03-01T11:00:05Z",
             direction="sideways"),
        call("bad-currency", "2026-03-01T12:00:00Z", "2026-03-01T12:01:10Z", answered_at="2026-03-01T12:00:05Z",
             currency="usd"),
    ]
    write_lake(tmp_path, calls=calls)
    with pytest.raises(CdrError) as caught:
        build(tmp_path)
    message = str(caught.value)
    assert message.splitlines()[0] == (
        f"2 data tests failed; the failed build is kept at {tmp_path / 'warehouse.failed.duckdb'}:"
    )
    failed = _failures(message)
    assert sorted(failed) == ["fct_calls_daily_accepted_values", "stg_cdrs_billing_rules"]
    billing = failed["stg_cdrs_billing_rules"]
    assert "4 offending rows" in billing
    assert "broken_rule='cost', id='bad-cost'" in billing
    assert "broken_rule='cost', id='bad-rounding'" in billing
    assert "broken_rule='billed seconds', id='bad-increment'" in billing
    assert "expected_billed_duration_secs=120" in billing
    assert "broken_rule='billed seconds', id='bad-unanswered'" in billing
    assert "direction='sideways'" in failed["fct_calls_daily_accepted_values"]
    assert "currency='usd'" in failed["fct_calls_daily_accepted_values"]
    assert "good" not in message
    # the failed build is kept aside for inspection (until a build succeeds); no warehouse appears
    assert not warehouse_path(tmp_path).exists()
    with duckdb.connect(str(tmp_path / "warehouse.failed.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from calls where id like 'bad-%'").fetchall() == [(6,)]
    write_lake(tmp_path, calls=[_good_call()])
    build(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".duckdb") == ["warehouse.duckdb"]


def test_planted_bad_messages_fail_the_build_each_listed_by_its_test(tmp_path):
    messages = [
        message("good", "2026-03-01T09:00:00Z"),
        message("bad-cost", "2026-03-01T10:00:00Z", parts=2, cost="0.0040"),
        message("bad-parts", "2026-03-02T10:00:00Z", parts=0, cost="0"),
        message("bad-status", "2026-03-03T10:00:00Z", status="lost"),
        message("bad-encoding", "2026-03-04T10:00:00Z", encoding="utf8"),
    ]
    write_lake(tmp_path, messages=messages)
    with pytest.raises(CdrError) as caught:
        build(tmp_path)
    failed = _failures(str(caught.value))
    assert sorted(failed) == [
        "fct_message_delivery_daily_accepted_values",
        "fct_messages_daily_accepted_values",
        "stg_mdrs_cost_matches_parts",
    ]
    assert "id='bad-cost'" in failed["stg_mdrs_cost_matches_parts"]
    assert "id='bad-parts'" in failed["stg_mdrs_cost_matches_parts"]
    assert "status='lost'" in failed["fct_messages_daily_accepted_values"]
    assert "encoding='utf8'" in failed["fct_message_delivery_daily_accepted_values"]
    assert "parts=0" in failed["fct_message_delivery_daily_accepted_values"]


def with_macros(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A connection -> the same, with the project's macros created in it (as the build does)."""
    # after the calendar, as in a build: a macro may call report_day_start and the like
    for statement in (*calendar_macros("UTC"), *RECOMPUTED_MACROS):
        con.execute(statement)
    for macro in discover_macros(QUERIES_DIR):
        con.execute(macro.sql)
    return con


def _run_test(name: str, tables: dict[str, str]) -> list[tuple]:
    """One data test's SQL over hand-made tables (each a SELECT) -> its offending rows."""
    (test,) = [t for t in discover_tests(QUERIES_DIR, tables) if t.name == name]
    with with_macros(duckdb.connect()) as con:
        for table, select in tables.items():
            con.execute(f"create table {table} as {select}")
        return con.execute(test.sql).fetchall()


def _ids(*ids: str | None, account: str = DEFAULT_ACCOUNT, day: int = 1) -> str:
    """Ids -> a SELECT of an `account` column and an `id` column holding them, in order, created on that day of March 2026."""
    values = ", ".join(f"('{account}', null)" if i is None else f"('{account}', '{i}')" for i in ids)
    created = f"timestamptz '2026-03-{day:02d} 10:00:00+00'"
    return f"select *, {created} as created_at from (values {values}) as t(account, id)"


NO_IDS = "select null::varchar as account, null::varchar as id, null::timestamptz as created_at where false"


def _census(dataset: str) -> dict[str, str]:
    """A dataset -> the SQL of its id index and census models (they read `lake_<dataset>`), by name."""
    names = (f"stg_{dataset}_id_index", f"stg_{dataset}_id_census")
    by_name = {m.name: m.sql for m in discover_models(QUERIES_DIR) if m.name in names}
    return {name: by_name[name] for name in names}


@pytest.mark.parametrize(
    ("lake", "staged", "expected"),
    [
        # what the dedupe must never let through: repeats and missing ids
        (("a", "b", "b", None, None), ("a", "b", "b", None, None), [(DEFAULT_ACCOUNT, "b", 2), (None, None, 2)]),
        # as many ids as the lake holds distinct ones, but one repeated in place of another:
        # the sum of id hashes tells
        (("a", "b"), ("a", "a"), [(DEFAULT_ACCOUNT, "a", 2)]),
        (("a", "b", "b"), ("a", "b"), []),
        ((), (), []),
    ],
)
@pytest.mark.parametrize("dataset", ["cdrs", "mdrs"])
def test_the_unique_id_tests_find_repeated_and_missing_ids(dataset, lake, staged, expected):
    tables = {
        f"lake_{dataset}": _ids(*lake) if lake else NO_IDS,
        **_census(dataset),
        f"stg_{dataset}": _ids(*staged) if staged else NO_IDS,
    }
    assert sorted(_run_test(f"stg_{dataset}_id_unique_not_null", tables), key=str) == expected


def test_the_id_census_counts_distinct_ids_and_names_the_repeated_hashes():
    with with_macros(duckdb.connect()) as con:
        # b repeats within Mar 1, c within Mar 1 and again on Mar 3, d only on Mar 3
        lake = f"{_ids('a', 'b', 'b', 'c', 'c', 'c', None)} union all {_ids('c', 'd', day=3)}"
        con.execute(f"create table lake_cdrs as {lake}")
        index, census = _census("cdrs").values()
        con.execute(f"create table stg_cdrs_id_index as {index}")
        rows = con.execute(f"select * from ({census}) order by utc_date").fetchall()
        a, b, c, d = con.execute(
            "select hash('default', 'a')::hugeint, hash('default', 'b'), hash('default', 'c'), hash('default', 'd')"
        ).fetchall()[0]
    # c is counted among the distinct ids of the first day holding it; both days name it as repeated
    assert rows == [
        (date(2026, 3, 1), 7, 3, a + b + c, sorted([b, c])),
        (date(2026, 3, 3), 2, 1, d, [c]),
    ]


def test_the_usage_key_test_finds_a_repeated_row():
    row = (
        "select 'default' as account, date '2026-03-01' as usage_date, 'calls' as product, 'GB' as country_code, "
        "'outbound' as direction, 'USD' as currency"
    )
    assert _run_test("stg_usage_key_unique", {"stg_usage": f"{row} union all {row}"}) == [
        (DEFAULT_ACCOUNT, date(2026, 3, 1), "calls", "GB", "outbound", "USD", 2)
    ]


def test_the_statement_reconciliation_test_finds_a_double_count(tmp_path):
    calls, messages, usage_rows = small_world()
    build(write_lake(tmp_path, calls, messages, usage_rows))
    with duckdb.connect(str(warehouse_path(tmp_path))) as con:
        con.execute("insert into rpt_finance_monthly_statement select * from rpt_finance_monthly_statement limit 1")
        (test,) = [t for t in discover_tests(QUERIES_DIR, []) if t.name == "rpt_finance_monthly_statement_reconciles"]
        assert len(con.execute(test.sql).fetchall()) == 1


def test_the_alert_columns_test_finds_a_misspelt_scope_column(tmp_path):
    """Its rules are tables in the warehouse, as in a full build (views only while an incremental one merges)."""
    calls, messages, usage_rows = small_world()
    build(write_lake(tmp_path, calls, messages, usage_rows))
    (test,) = [t for t in discover_tests(QUERIES_DIR, []) if t.name == "alerts_columns_known"]
    with duckdb.connect(str(warehouse_path(tmp_path))) as con:
        assert con.execute(test.sql).fetchall() == []
        con.execute("alter table alert_asr_drop add column contry_code varchar")
        con.execute("create view alert_merged as select *, null as carier from alert_sync_stale")
        assert sorted(con.execute(test.sql).fetchall()) == [
            ("alert_asr_drop", "contry_code"), ("alert_merged", "carier")
        ]


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory) -> Path:
    """A built small world (its alerts: reconciliation gaps and a stale sync)."""
    data_dir = tmp_path_factory.mktemp("small")
    build(write_lake(data_dir, *small_world()))
    return warehouse_path(data_dir)


_FIRST_ALERT = "rowid = (select min(rowid) from rpt_alerts where rule = 'sync_stale')"


@pytest.mark.parametrize(
    ("test_name", "planted", "offending"),
    [
        ("alerts_keys_unique", "insert into rpt_alerts select * from rpt_alerts where " + _FIRST_ALERT, 1),
        ("alerts_keys_unique", f"update rpt_alerts set alert_key = upper(alert_key) where {_FIRST_ALERT}", 1),
        ("alerts_values_valid", f"update rpt_alerts set severity = 'loud' where {_FIRST_ALERT}", 1),
        ("alerts_values_valid", f"update rpt_alerts set window_end = window_start where {_FIRST_ALERT}", 1),
        ("alerts_values_valid", "update rpt_alerts set country_code = 'DE' where rule = 'sync_stale'", 2),
        ("alerts_values_valid", "update rpt_alerts set product = 'messages' where rule = 'sync_stale'", 2),
        ("alerts_values_valid", "update rpt_alerts set rule = 'cost_spiek' where rule = 'reconciliation_gap'", 2),
        (
            "alerts_high_risk_ranges_disjoint",
            "insert into seed_high_risk_destinations values ('LV', '371', '901', 'premium', 'inside the 90 range')",
            1,
        ),
        ("alerts_high_risk_ranges_disjoint", "insert into seed_high_risk_destinations values ('XX', '3a', '', 'irsf', '')", 1),
        ("alerts_high_risk_ranges_disjoint", "update seed_high_risk_destinations set range_type = 'cheap' where country_code = 'CU'", 1),
    ],
)
def test_the_alert_data_tests_find_what_was_planted(small_warehouse, test_name, planted, offending):
    (test,) = [t for t in discover_tests(QUERIES_DIR, []) if t.name == test_name]
    with duckdb.connect(str(small_warehouse)) as con:
        assert con.execute(test.sql).fetchall() == []
        con.execute("begin")
        con.execute(planted)
        assert len(con.execute(test.sql).fetchall()) == offending
        con.execute("rollback")


# -- the friendly views ------------------------------------------------------------------------


def test_calls_and_messages_have_the_lake_columns_and_work_from_any_directory(tmp_path):
    data_dir = write_lake(tmp_path / "data", *small_world())
    build(data_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import duckdb, json, sys\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "out = {}\n"
        "for view in ('calls', 'messages'):\n"
        "    out[view] = [[r[0], r[1]] for r in con.execute(f'describe {view}').fetchall()]\n"
        "    out[view + '_ids'] = [r[0] for r in con.execute(f'select id from {view} order by id').fetchall()]\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, os.path.relpath(warehouse_path(data_dir), elsewhere)],
        cwd=elsewhere, capture_output=True, text=True, check=True,
    )
    import json

    out = json.loads(result.stdout)
    assert [name for name, _ in out["calls"]] == ["account", *api.LAKE_SCHEMAS["cdrs"]]
    assert [name for name, _ in out["messages"]] == ["account", *api.LAKE_SCHEMAS["mdrs"]]
    assert dict(out["calls"])["cost"] == "DECIMAL(38,9)" and dict(out["calls"])["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert out["calls_ids"] == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert out["messages_ids"] == ["m1", "m2", "m3", "m4"]


# -- peak concurrency --------------------------------------------------------------------------


def _brute_force_peaks(intervals: list[tuple[datetime, datetime]], zone: str) -> dict[date, tuple[int, datetime, int]]:
    """Every event in instant order (ends first on ties) -> {local day: (peak, first local time, level at midnight)},
    for every day with an event or a leg in progress."""
    tz = ZoneInfo(zone)
    events = sorted([(s, 1) for s, e in intervals if e > s] + [(e, -1) for s, e in intervals if e > s])
    level, peaks = 0, {}
    for moment, delta in events:
        local = moment.astimezone(tz)
        day = max(peaks, default=local.date())
        while level > 0 and (day := day + timedelta(days=1)) < local.date():
            peaks[day] = (level, datetime.combine(day, datetime.min.time()), level)
        if local.date() not in peaks:
            peaks[local.date()] = (level, datetime.combine(local.date(), datetime.min.time()), level)
        level += delta
        if level > peaks[local.date()][0]:
            peaks[local.date()] = (level, local.replace(tzinfo=None), peaks[local.date()][2])
    return peaks


def _built_peaks(data_dir: Path, calls: list, zone: str) -> dict[date, tuple[int, datetime, int]]:
    """Calls built into a warehouse in `zone` -> {report date: (peak, first local time, level at midnight)}."""
    build(write_lake(data_dir, calls=calls), report_timezone=zone)
    with duckdb.connect(str(warehouse_path(data_dir)), read_only=True) as con:
        got = con.execute(
            "select report_date, peak_concurrent_calls, peak_at_local, calls_at_start "
            "from rpt_peak_concurrent_calls_daily order by report_date"
        ).fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in got}


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_peak_concurrency_equals_a_brute_force_sweep(tmp_path, zone):
    rng = random.Random(7)
    # Over the Berlin DST change (2026-03-29), dense enough that bursts beat their buckets' bounds,
    # with calls across midnight, calls ending exactly when others start, and zero-length calls.
    start = datetime(2026, 3, 28, 22, tzinfo=timezone.utc)
    calls, intervals = [], []
    for i in range(600):
        began = start + timedelta(milliseconds=rng.randrange(0, 4 * 3600 * 1000))
        length = timedelta(milliseconds=rng.choice([0, 1000, rng.randrange(1, 1_800_000)]))
        if i % 50 == 1:
            # starts at the very instant the previous call ends
            began = intervals[-1][1]
        elif i % 30 == 2:
            # starts together with the previous call
            began = intervals[-1][0]
        ended = began + length
        intervals.append((began, ended))
        stamp = lambda moment: moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # noqa: E731
        calls.append(call(f"k{i:03d}", stamp(began), stamp(ended), status="cancelled"))
    expected = _brute_force_peaks(intervals, zone)
    assert _built_peaks(tmp_path, calls, zone) == expected
    assert max(peak for peak, _, _ in expected.values()) >= 8


@pytest.mark.parametrize(
    ("zone", "days", "stuck"), [("UTC", 5, date(2026, 3, 9)), ("America/New_York", 4, date(2026, 3, 8))]
)
def test_peak_concurrency_on_days_a_leg_lasts_through_without_an_event(tmp_path, zone, days, stuck):
    """A leg stuck for days is in progress on every date between its start and end, DST included."""
    intervals = [
        (datetime(2026, 3, 6, 22, tzinfo=timezone.utc), datetime(2026, 3, 10, 2, tzinfo=timezone.utc)),
        (datetime(2026, 3, 7, 23, tzinfo=timezone.utc), datetime(2026, 3, 8, 1, tzinfo=timezone.utc)),
        (datetime(2026, 3, 9, 12, tzinfo=timezone.utc), datetime(2026, 3, 9, 12, tzinfo=timezone.utc)),
    ]
    stamp = lambda moment: moment.isoformat().replace("+00:00", "Z")  # noqa: E731
    calls = [call(f"s{i}", stamp(s), stamp(e), status="cancelled") for i, (s, e) in enumerate(intervals)]
    expected = _brute_force_peaks(intervals, zone)
    assert _built_peaks(tmp_path, calls, zone) == expected
    # every date from the first leg's start to its end; on the stuck one (a zero-length call is no event)
    # the level all day
    assert len(expected) == days
    assert expected[stuck] == (1, datetime.combine(stuck, datetime.min.time()), 1)


def test_peak_concurrency_on_a_day_holding_only_calls_carried_over_from_midnight(tmp_path):
    calls = [
        call("a", "2026-03-01T23:00:00Z", "2026-03-02T01:00:00Z", status="cancelled"),
        call("b", "2026-03-01T23:30:00Z", "2026-03-02T00:30:00Z", status="cancelled"),
    ]
    build(write_lake(tmp_path, calls=calls))
    with duckdb.connect(str(warehouse_path(tmp_path)), read_only=True) as con:
        got = con.execute("select * from rpt_peak_concurrent_calls_daily order by report_date").fetchall()
    assert got == [
        (DEFAULT_ACCOUNT, date(2026, 3, 1), 2, datetime(2026, 3, 1, 23, 30), 0),
        (DEFAULT_ACCOUNT, date(2026, 3, 2), 2, datetime(2026, 3, 2, 0, 0), 2),
    ]


# -- the command ---------------------------------------------------------------------------------


def test_cli_build_prints_one_summary_line(tmp_path, capsys, monkeypatch):
    write_lake(tmp_path, *small_world())
    code, out, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(tmp_path))
    assert code == 0, err
    assert len(out.splitlines()) == 1 and out.startswith("built ")
    assert warehouse_path(tmp_path).is_file()


def test_cli_build_of_an_empty_lake_warns_that_nothing_is_synced_there(tmp_path, capsys, monkeypatch):
    # `cdr build` before any sync (./data exists in a checkout) built an empty warehouse in silence.
    code, out, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(tmp_path))
    assert (code, len(out.splitlines())) == (0, 1) and out.startswith("built ")
    assert err == (
        f"warning: the lake in {tmp_path} is empty, so is the warehouse: sync it first "
        "(`cdr sync --range last_7_days`) or pass the --data-dir you synced (the demo's: data/demo)\n"
    )
    write_lake(tmp_path, *small_world())
    assert run_cdr(capsys, monkeypatch, "build", "--data-dir", str(tmp_path))[::2] == (0, "")


def test_cli_build_gives_the_build_its_memory_limit(tmp_path, capsys, monkeypatch):
    given = []

    class Built:
        sources = {"lake_cdrs": 1}

        def summary(self) -> str:
            return "built"

    monkeypatch.setattr("pipelines.models.build", lambda *args, **kwargs: given.append(kwargs["memory_limit"]) or Built())
    monkeypatch.setenv("CDR_BUILD_MEMORY_LIMIT", "2GiB")
    run_cdr(capsys, monkeypatch, "build", "--data-dir", str(tmp_path))
    monkeypatch.delenv("CDR_BUILD_MEMORY_LIMIT")
    run_cdr(capsys, monkeypatch, "build", "--data-dir", str(tmp_path))
    assert given == ["2GiB", "600MB"]


def test_cli_build_failures_are_one_line(tmp_path, capsys, monkeypatch):
    code, _, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(tmp_path / "nope"))
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: data dir ")
    monkeypatch.setenv("CDR_BUILD_MEMORY_LIMIT", "lots")
    code, _, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(tmp_path))
    assert code == 2
    assert err.splitlines() == [
        "error: CDR_BUILD_MEMORY_LIMIT=lots is not allowed: a size of at least 100MB, such as 600MB or 2GB "
        "(KB, MB, GB, TB; KiB, MiB, GiB, TiB)"
    ]
    monkeypatch.delenv("CDR_BUILD_MEMORY_LIMIT")
    monkeypatch.setenv("CDR_REPORT_TIMEZONE", "Nowhere/Land")
    code, _, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(tmp_path))
    assert code == 2
    assert err.splitlines() == [
        # refused with the other settings, as the command starts
        "error: CDR_REPORT_TIMEZONE=Nowhere/Land is not allowed: an IANA time zone name such as UTC, "
        "Europe/London, America/New_York or Asia/Kolkata"
    ]
