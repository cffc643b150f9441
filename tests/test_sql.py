"""`cdr sql`: one read-only query on the warehouse, as a table, CSV or JSON; writes refused."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
import tempfile
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from pipelines.dates import Window
from pipelines.errors import CdrError, UsageError, one_line
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.lake import Lake
from pipelines.land import quarantine
from pipelines.models import build, warehouse_path
from pipelines.sql import check_query, connect_read_only, run_query, run_sql, write_table
from tests.fixtures.cli import run_cdr
from tests.fixtures.disk import record_disk_events
from tests.fixtures.lake import Reject, small_world, write_lake


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = write_lake(tmp_path_factory.mktemp("sql"), *small_world())
    build(directory)
    return directory


def sql(data_dir: Path, query: str, fmt: str) -> str:
    out = io.StringIO()
    run_sql(warehouse_path(data_dir), query, fmt=fmt, stdout=out)
    return out.getvalue()


def test_csv_output_keeps_decimals_exact_and_nulls_empty(data_dir):
    text = sql(data_dir, "select id, cost, answered_at, tags from calls where id in ('c2', 'c6') order by id", "csv")
    assert list(csv.reader(io.StringIO(text))) == [
        ["id", "cost", "answered_at", "tags"],
        ["c2", "0.000000000", "", "[]"],
        ["c6", "0.000222000", "2026-02-02T12:00:01+00:00", '["vip","vip"]'],
    ]


def test_csv_output_quotes_a_carriage_return_so_every_reader_keeps_the_row_whole(data_dir):
    text = sql(data_dir, "select 'a' || chr(13) || 'b' as name, '=1+1' as formula, 1 as n", "csv")
    # the data as is (no spreadsheet prefix), rows ending in LF, the CR inside quotes
    assert text == 'name,formula,n\n"a\rb",=1+1,1\n'
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["name", "formula", "n"], ["a\rb", "=1+1", "1"]]


def test_json_output_is_an_array_of_objects_with_decimal_strings(data_dir):
    text = sql(data_dir, "select id, cost, created_at, errors from messages where id = 'm2'", "json")
    assert json.loads(text) == [
        {
            "id": "m2",
            "cost": "0.004000000",
            "created_at": "2026-01-31T12:00:00Z",
            "errors": [{"code": "30003", "title": "Unreachable handset"}],
        }
    ]
    assert sql(data_dir, "select 1 as x where false", "json") == "[]\n"


def test_maps_not_keyed_by_text_and_huge_integers_print_in_every_format_as_duckdbs_to_json(data_dir):
    # histogram() keys its map by the values counted; a sum of UBIGINT hashes is a HUGEINT beyond 64 bits
    query = (
        "select map {200: 2, 404: 1} as codes, map {1.5: 1} as costs, map {date '2026-01-31': 3} as days, "
        "[18446744073709551617::hugeint] as big, -1180591620717411303424::hugeint as small"
    )
    expected = ['{"200":2,"404":1}', '{"1.5":1}', '{"2026-01-31":3}', "[18446744073709551617]", "-1180591620717411303424"]
    assert list(csv.reader(io.StringIO(sql(data_dir, query, "csv"))))[1] == expected
    assert sql(data_dir, query, "json") == "[\n{" + ",".join(
        f'"{name}":{text}' for name, text in zip(["codes", "costs", "days", "big", "small"], expected)
    ) + "}\n]\n"
    assert sql(data_dir, query, "table").splitlines()[2].split() == expected
    histogram = json.loads(sql(data_dir, "select histogram(sip_response_code) as codes from calls", "json"))
    assert sum(histogram[0]["codes"].values()) == 6


def test_intervals_print_as_duckdb_writes_them_in_every_format(data_dir):
    # Python's timedelta counts a month as 30 days: Aug 1 to Oct 31 23:40 would read "90 days, 23:40:00"
    query = (
        "select age(timestamptz '2026-10-31 23:40:00+00', timestamptz '2026-08-01 00:00:00+00') as span, "
        "to_months(14) as months, 1 as n -- a closing comment"
    )
    expected = ["2 months 30 days 23:40:00", "1 year 2 months", "1"]
    assert list(csv.reader(io.StringIO(sql(data_dir, query, "csv")))) == [["span", "months", "n"], expected]
    assert json.loads(sql(data_dir, query, "json")) == [dict(zip(["span", "months", "n"], [*expected[:2], 1]))]
    assert "2 months 30 days 23:40:00" in sql(data_dir, query, "table")


def test_json_keeps_every_column_of_a_join_naming_its_repeats_as_duckdb_does(data_dir):
    query = (
        "select * from (select id, cost from calls where id = 'c6') as c "
        "join (select id, cost from messages where id = 'm2') as m on true join (select 'x' as ID) on true"
    )
    assert json.loads(sql(data_dir, query, "json")) == [
        {"id": "c6", "cost": "0.000222000", "id_1": "m2", "cost_1": "0.004000000", "ID_2": "x"}
    ]
    # the names DuckDB gives the same columns in a subquery
    con = connect_read_only(warehouse_path(data_dir))
    try:
        assert [column[0] for column in con.execute(f"select * from ({query})").description] == [
            "id", "cost", "id_1", "cost_1", "ID_2"
        ]
    finally:
        con.close()


def test_table_output_is_readable_and_prints_markup_as_typed(data_dir):
    text = sql(data_dir, "select carrier, count(*) as messages from messages group by 1 order by 1", "table")
    lines = text.splitlines()
    assert lines[0].split() == ["carrier", "messages"]
    assert any("Telekom <DE>" in line and line.rstrip().endswith("1") for line in lines)
    assert lines[-1] == "(4 rows)"


def test_table_output_stops_at_its_limit_and_says_how_many_more(data_dir):
    con = connect_read_only(warehouse_path(data_dir))
    out = io.StringIO()
    shown = write_table(run_query(con, "select * from range(25) t(n)"), out, max_rows=10)
    con.close()
    assert shown == 10
    assert out.getvalue().splitlines()[-1] == "(10 rows; 15 more not shown: use --format csv or json, with --out FILE)"


def test_out_writes_the_whole_result_to_a_file(data_dir, tmp_path):
    target = tmp_path / "calls.csv"
    rows = run_sql(warehouse_path(data_dir), "select id from calls order by id", fmt="csv", out=target)
    assert rows == 6
    assert target.read_text().splitlines() == ["id", "c1", "c2", "c3", "c4", "c5", "c6"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.csv"]



def test_out_reaches_the_disk_before_it_replaces_the_file(data_dir, tmp_path, monkeypatch):
    events = record_disk_events(monkeypatch)
    run_sql(warehouse_path(data_dir), "select 1 as x", fmt="csv", out=tmp_path / "one.csv")
    # the file's bytes, the rename, then the folder's entry
    assert events == ["fsync", ("replace", "one.csv"), "fsync"]


def test_a_scratch_folder_is_the_one_place_a_connection_may_write(data_dir, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with connect_read_only(warehouse_path(data_dir), scratch=scratch) as con:
        con.execute(f"copy (select 1 as x) to '{scratch}/x.parquet' (format parquet)")
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"copy (select 1 as x) to '{tmp_path}/y.parquet' (format parquet)")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["scratch", "x.parquet"]

def test_every_reading_form_is_allowed(data_dir):
    for query in (
        "with x as (select 1 as a) select * from x",
        "from rpt_finance_monthly_statement",
        "values (1, 2)",
        "describe calls",
        "show tables",
        "summarize messages",
        "explain select * from calls",
        "explain analyze select count(*) from calls",
        "explain (analyze, format json) from messages",
    ):
        assert sql(data_dir, query, "csv").count("\n") >= 2, query


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("insert into rpt_build_info select * from rpt_build_info", "INSERT"),
        ("delete from calls", "DELETE"),
        ("update rpt_finance_monthly_statement set cost = 0", "UPDATE"),
        ("create table x as select 1", "CREATE"),
        ("drop table rpt_build_info", "DROP"),
        ("copy (select * from calls) to '/tmp/calls.csv'", "COPY"),
        ("attach '/tmp/other.duckdb' as other", "ATTACH"),
        ("set threads = 1", "SET"),
        ("install httpfs", "LOAD"),
        ("pragma enable_profiling", "PRAGMA"),
    ],
)
def test_writes_and_side_effects_are_refused_before_reaching_duckdb(query, kind):
    with pytest.raises(UsageError) as caught:
        check_query(query)
    assert str(caught.value) == (
        f"`cdr sql` and `cdr shell` are read-only: {kind} statements are refused; query with SELECT (the warehouse is rebuilt by `cdr build`)"
    )


def test_the_connection_itself_is_read_only(data_dir):
    con = connect_read_only(warehouse_path(data_dir))
    try:
        with pytest.raises(Exception, match="read-only"):
            con.execute("create table sneaky as select 1")
    finally:
        con.close()


def test_a_copied_data_dir_says_its_warehouse_reads_the_lake_it_was_built_from(data_dir, tmp_path, capsys, monkeypatch):
    copy = Path(shutil.copytree(data_dir, tmp_path / "copy"))
    query = ("sql", "select count(*) as n from calls", "--format", "csv", "--data-dir", str(copy))
    assert run_cdr(capsys, monkeypatch, *query) == (
        1, "", f"error: the warehouse reads the lake it was built from, {data_dir}, which is not this data dir's: "
        "run `cdr build` on this data dir first\n"
    )
    build(copy)
    assert run_cdr(capsys, monkeypatch, *query) == (0, "n\n6\n", "")


def test_another_duckdb_reads_the_tables_anywhere_and_the_views_the_readme_names_where_they_were_built(
    guarded_dir, tmp_path
):
    import re

    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    named = re.search(r"Its views, (.*?) read the files of `lake/` and `quarantine/` at query time", readme).group(1)
    copy = Path(shutil.copytree(guarded_dir, tmp_path / "copy"))

    def plain(directory: Path, query: str) -> list[tuple]:
        with duckdb.connect(str(warehouse_path(directory)), read_only=True) as con:
            return con.execute(query).fetchall()

    views = {name for (name,) in plain(copy, "select view_name from duckdb_views() where not internal")}
    tables = [name for (name,) in plain(copy, "select table_name from duckdb_tables()")]
    # the README names every view, and each one reads the lake
    assert views == set(re.findall(r"`(\w+)`", named)) - {"lake_"} | {view for view in views if view.startswith("lake_")}
    # a copy whose original is still there reads the original's lake
    assert plain(copy, "select count(*) from calls") == [(6,)]
    assert all(plain(copy, f"select count(*) >= 0 from {table}") == [(True,)] for table in tables)
    assert plain(copy, "select report_time(timestamptz '2026-01-31 12:00:00+00')::date::varchar") == [("2026-01-31",)]
    # moved: the views fail naming the lake they were built on; the tables still answer
    moved = Path(shutil.copytree(copy, tmp_path / "moved"))
    build(moved)
    laptop = Path(shutil.move(moved, tmp_path / "laptop"))
    for view in views - {"lake_quarantine"}:
        with pytest.raises(duckdb.IOException, match=f'No files found that match the pattern "{moved}/lake/'):
            plain(laptop, f"select count(*) from {view}")
    # the quarantine's files are read as text, and no file found is no line
    assert plain(copy, "select count(*) from lake_quarantine") == [(1,)]
    assert plain(laptop, "select count(*) from lake_quarantine") == [(0,)]
    assert all(plain(laptop, f"select count(*) >= 0 from {table}") == [(True,)] for table in tables)
    build(laptop)
    assert plain(laptop, "select count(*) from calls") == [(6,)]


@pytest.mark.parametrize(
    "query",
    [
        "pivot calls on direction using count(*) group by currency",
        "select * from (pivot calls on direction using count(*))",
        "explain pivot calls on direction using count(*)",
        # the same parse hides a write: refused all the same
        "copy (pivot calls on direction using count(*)) to '/tmp/pivot.csv'",
        "create table x as pivot calls on direction using count(*)",
    ],
)
def test_a_pivot_without_its_values_is_refused_saying_to_list_them(query, data_dir):
    with pytest.raises(UsageError) as caught:
        check_query(query)
    assert str(caught.value) == (
        "a PIVOT without an IN list is refused: DuckDB runs it as several statements, which cannot be checked "
        "as reading only; list its values, e.g. "
        "pivot calls on direction in ('inbound', 'outbound') using count(*) group by currency"
    )
    # the example given runs
    listed = "pivot calls on direction in ('inbound', 'outbound') using count(*) group by currency order by currency"
    assert sql(data_dir, listed, "csv") == "currency,inbound,outbound\nEUR,1,2\nUSD,0,3\n"


def test_several_statements_or_none_are_refused():
    with pytest.raises(UsageError, match="one statement at a time: got 2"):
        check_query("select 1; select 2")
    with pytest.raises(UsageError, match="no SQL statement given"):
        check_query("  ")


def test_no_query_names_the_argument_as_the_help_and_readme_write_it(capsys, monkeypatch):
    code, out, err = run_cdr(capsys, monkeypatch, "sql")
    assert (code, out) == (2, "")
    assert "Missing argument 'QUERY'" in err and err.count("\n") == 1


def test_a_bad_query_gives_duckdbs_message_on_one_line(data_dir):
    with pytest.raises(CdrError) as caught:
        sql(data_dir, "select no_such_column from calls", "table")
    message = str(caught.value)
    assert message.startswith('Binder Error: Referenced column "no_such_column" not found')
    assert "\n" not in message and "LINE 1: select no_such_column from calls" in message


def test_one_line_drops_the_caret_line():
    error = RuntimeError('Parser Error: syntax error at or near "selec"\n\nLINE 1: selec 1\n        ^^^^^')
    assert one_line(error) == 'Parser Error: syntax error at or near "selec" LINE 1: selec 1'


def test_a_missing_warehouse_says_to_build(tmp_path):
    with pytest.raises(CdrError, match="run `cdr build` first"):
        run_sql(warehouse_path(tmp_path), "select 1", fmt="csv", stdout=io.StringIO())


@pytest.mark.parametrize(
    "args", [("sql", "select 1"), ("alerts",), ("report", "finance", "--month", "2026-01")], ids=["sql", "alerts", "report"]
)
def test_a_data_dir_that_does_not_exist_is_bad_input_like_builds(args, tmp_path, capsys, monkeypatch):
    # A mistyped --data-dir: "run `cdr build` first" would send the user to a build that refuses it too.
    missing = tmp_path / "no-such-dir"
    assert run_cdr(capsys, monkeypatch, *args, "--data-dir", str(missing)) == (
        2, "", f"error: data dir {missing} does not exist: sync first (`cdr sync`) or pass --data-dir\n"
    )
    assert run_cdr(capsys, monkeypatch, "build", "--data-dir", str(missing))[::2] == (
        2, f"error: data dir {missing} does not exist: sync first (`cdr sync`) or pass --data-dir\n"
    )
    assert not missing.exists()


def test_cli_sql_prints_a_table_and_exits_0(data_dir, capsys, monkeypatch):
    code, out, err = run_cdr(capsys, monkeypatch, "sql", "select count(*) as calls from calls", "--data-dir", str(data_dir))
    assert code == 0, err
    assert out.split() == ["calls", "─" * len(out.split()[1]), "6", "(1", "row)"]


def test_cli_sql_errors_are_one_line_with_exit_codes(data_dir, capsys, monkeypatch):
    code, _, err = run_cdr(capsys, monkeypatch, "sql", "select * from nowhere", "--data-dir", str(data_dir))
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("error: Catalog Error: Table with name nowhere")
    code, _, err = run_cdr(capsys, monkeypatch, "sql", "drop table calls", "--data-dir", str(data_dir))
    assert code == 2 and err.startswith("error: `cdr sql` and `cdr shell` are read-only: DROP statements")
    code, _, err = run_cdr(capsys, monkeypatch, "sql", "select 1", "--format", "xml", "--data-dir", str(data_dir))
    assert code == 2 and err.splitlines() == ["error: --format must be one of table, csv, json (got 'xml')"]


def test_cli_sql_out_writes_a_file_and_says_so(data_dir, tmp_path, capsys, monkeypatch):
    target = tmp_path / "statement.json"
    code, out, err = run_cdr(
        capsys, monkeypatch, "sql", "from rpt_finance_monthly_statement", "-f", "json", "-o", str(target),
        "--data-dir", str(data_dir),
    )
    assert (code, out, err) == (0, "", f"wrote 7 rows to {target}\n")
    assert len(json.loads(target.read_text())) == 7
    code, out, err = run_cdr(
        capsys, monkeypatch, "sql", "select 1 as one", "-f", "csv", "-o", str(target), "--data-dir", str(data_dir),
    )
    assert (code, out, err, target.read_text()) == (0, "", f"wrote 1 row to {target}\n", "one\n1\n")


def test_the_five_example_queries_of_the_readme_run(data_dir):
    import re

    from pipelines.models import QUERIES_DIR

    readme = (QUERIES_DIR / "README.md").read_text()
    queries = re.findall(r"```sql\n(.*?)```", readme, re.DOTALL)
    assert len(queries) == 5
    results = [json.loads(sql(data_dir, query, "json")) for query in queries]
    # the number's calls, one trunk's days, the failure reasons, the reconciliation's differences
    assert [len(rows) for rows in results[1:]] == [3, 1, 2, 5]


# -- hardening: what `cdr sql` may write and read, and how much of a message it echoes -------


@pytest.fixture(scope="module")
def guarded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built data dir with one quarantined record, and sync state beside the lake that `cdr sql` must not read."""
    directory = write_lake(tmp_path_factory.mktemp("guarded"), *small_world())
    hour = Window(datetime(2026, 1, 30, 10, tzinfo=timezone.utc), datetime(2026, 1, 30, 11, tzinfo=timezone.utc))
    quarantine(Lake(directory).for_account(DEFAULT_ACCOUNT), "cdrs", "run-1", [Reject("missing id", '{"id": null}', "cdrs", hour, 1)])
    (directory / "state").mkdir()
    (directory / "state" / "secret.json").write_text('{"token": "not for cdr sql"}\n')
    build(directory)
    return directory


def snapshot(directory: Path) -> dict[str, str]:
    """A folder -> the digest of every file under it, by relative path."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def a_partition(data_dir: Path) -> Path:
    """A data dir -> the file of its first CDR partition."""
    return sorted((data_dir / "lake" / "cdrs").glob("account=*/date=*/data.parquet"))[0]


@pytest.mark.parametrize(
    ("template", "kind"),
    [
        ("explain analyze copy (select 1 as x) to '{partition}'", "EXPLAIN COPY"),
        ("explain analyze copy (select 1 as x) to '{elsewhere}'", "EXPLAIN COPY"),
        ("EXPLAIN /* a comment */ ANALYZE COPY (select 1 as x) TO '{elsewhere}'", "EXPLAIN COPY"),
        ("explain (analyze, format json) copy (select 1 as x) to '{elsewhere}'", "EXPLAIN COPY"),
        ("explain analyze (format json) copy (select 1 as x) to '{elsewhere}'", "EXPLAIN COPY"),
        ("explain copy (select 1 as x) to '{elsewhere}'", "EXPLAIN COPY"),
        ("explain analyze create table x as select 1", "EXPLAIN CREATE"),
        ("explain analyze insert into rpt_build_info select * from rpt_build_info", "EXPLAIN INSERT"),
        ("explain analyze set threads = 1", "EXPLAIN SET"),
        ("explain analyze pragma version", "EXPLAIN PRAGMA"),
    ],
)
def test_explain_of_a_write_is_refused_and_writes_nothing(template, kind, data_dir, tmp_path, capsys, monkeypatch):
    elsewhere = tmp_path / "elsewhere.csv"
    query = template.format(partition=a_partition(data_dir), elsewhere=elsewhere)
    before = snapshot(data_dir)
    code, out, err = run_cdr(capsys, monkeypatch, "sql", query, "--data-dir", str(data_dir))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"error: `cdr sql` and `cdr shell` are read-only: {kind} statements are refused; query with SELECT (the warehouse is rebuilt by `cdr build`)"
    ]
    assert snapshot(data_dir) == before
    assert list(tmp_path.iterdir()) == []


def test_the_lake_and_the_quarantine_are_readable_and_nothing_else(guarded_dir, tmp_path):
    assert json.loads(sql(guarded_dir, "select reason from lake_quarantine", "json")) == [{"reason": "missing id"}]
    lake_glob = guarded_dir / "lake" / "cdrs" / "*" / "*" / "data.parquet"
    assert json.loads(sql(guarded_dir, f"select count(*) as n from read_parquet('{lake_glob}')", "json")) == [{"n": 7}]
    outside = tmp_path / "outside.parquet"
    shutil.copy(a_partition(guarded_dir), outside)
    (tmp_path / "outside.json").write_text('{"a": 1}\n')
    secret = guarded_dir / "state" / "secret.json"
    for query in (
        "select content from read_text('/proc/self/environ')",
        "select * from read_text('/etc/passwd')",
        "select * from read_csv('/etc/passwd', sep = ':')",
        f"select * from read_blob('{secret}')",
        f"select * from read_text('{guarded_dir}/lake/cdrs/../../state/secret.json')",
        f"select * from read_json('{tmp_path}/outside.json')",
        f"select * from read_parquet('{outside}')",
        "select * from glob('/etc/*')",
        f"select * from glob('{guarded_dir}/*')",
        f"select * from read_duckdb('{guarded_dir}/lake/../warehouse.duckdb.missing')",
    ):
        with pytest.raises(CdrError) as caught:
            sql(guarded_dir, query, "csv")
        assert str(caught.value).startswith(
            "ad-hoc SQL reads only the warehouse and its lake: Permission Error: Cannot access file"
        ), query


def test_a_symlinked_data_dir_reads_its_lake(guarded_dir, tmp_path):
    link = tmp_path / "data"
    link.symlink_to(guarded_dir)
    assert json.loads(sql(link, "select count(*) as n from calls", "json")) == [{"n": 6}]
    with pytest.raises(CdrError, match="reads only the warehouse and its lake"):
        sql(link, f"select * from read_text('{link}/state/secret.json')", "csv")


def test_the_connection_cannot_be_given_its_file_access_back(guarded_dir):
    con = connect_read_only(warehouse_path(guarded_dir))
    try:
        for statement in (
            "set enable_external_access = true",
            "reset enable_external_access",
            "set allowed_directories = ['/']",
            "reset allowed_directories",
            "set allowed_paths = ['/etc/passwd']",
            "set lock_configuration = false",
            "pragma enable_profiling",
            "set autoload_known_extensions = true",
            "select * from enable_logging()",
        ):
            with pytest.raises(duckdb.Error, match="configuration has been locked"):
                con.execute(statement)
        with pytest.raises(duckdb.Error, match="Loading external extensions is disabled"):
            con.execute("load httpfs")
        with pytest.raises(duckdb.PermissionException):
            con.execute("select * from read_text('/etc/passwd')")
    finally:
        con.close()


def test_cdr_sql_never_prints_the_environment_and_its_key(guarded_dir):
    key = "sk-test-do-not-print-7f3a"
    proc = subprocess.run(
        [sys.executable, "-c", "from cdr_app.cli import main; main()", "sql",
         "select content from read_text('/proc/self/environ')", "--data-dir", str(guarded_dir)],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "OPENTACT_API_KEY": key},
    )
    assert proc.returncode == 1
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("error: ad-hoc SQL reads only the warehouse and its lake: Permission Error")
    assert key not in proc.stderr


@pytest.mark.parametrize(
    "where",
    [
        "{data}/warehouse.duckdb",
        "{partition}",
        "{data}/lake/cdrs/../../warehouse.duckdb",
        "{data}/new-result.csv",
        "{data}",
        "{link_to_warehouse}",
        "{link_to_data}/lake/new.csv",
    ],
)
def test_out_never_writes_inside_the_data_dir(where, data_dir, tmp_path, capsys, monkeypatch):
    (tmp_path / "result.csv").symlink_to(warehouse_path(data_dir))
    (tmp_path / "data").symlink_to(data_dir)
    out = where.format(
        data=data_dir, partition=a_partition(data_dir),
        link_to_warehouse=tmp_path / "result.csv", link_to_data=tmp_path / "data",
    )
    before = snapshot(data_dir)
    code, stdout, err = run_cdr(capsys, monkeypatch, "sql", "select 1 as x", "-f", "csv", "--out", out, "--data-dir", str(data_dir))
    assert (code, stdout) == (2, "")
    assert err.splitlines() == [
        f"error: --out {out} is inside the data dir {data_dir}, which holds the lake and the warehouse: "
        "write the result elsewhere"
    ]
    assert snapshot(data_dir) == before


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("{tmp}/missing/result.csv", "error: --out {out}: the folder {tmp}/missing does not exist"),
        ("{tmp}/folder", "error: --out {out} is a folder: give the path of a file to write"),
        ("/proc/result.csv", "error: cannot write --out {out}: No such file or directory"),
    ],
)
def test_out_that_cannot_be_written_is_one_line_and_leaves_nothing(where, message, data_dir, capsys, monkeypatch):
    # A short folder: the message quotes paths whole only up to a cap, and pytest's own run folders grow.
    tmp_path = Path(tempfile.mkdtemp(prefix="out-"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    out = where.format(tmp=tmp_path)
    code, stdout, err = run_cdr(capsys, monkeypatch, "sql", "select 1 as x", "--out", out, "--data-dir", str(data_dir))
    assert (code, stdout) == (2, "")
    assert err.splitlines() == [message.format(out=out, tmp=tmp_path)]
    assert [p.name for p in tmp_path.iterdir()] == ["folder"] and list((tmp_path / "folder").iterdir()) == []
    shutil.rmtree(tmp_path)


def test_a_huge_query_or_value_is_echoed_cut_short_on_one_line(data_dir, tmp_path, capsys, monkeypatch):
    huge = "x" * 200_000
    for args in (
        ("sql", f"select '{huge}'::int"),
        ("sql", f"select * from \"{huge}\""),
        ("sql", f"select error('{huge}\n{huge}')"),
        ("sql", f"select * from read_text('/{huge}')"),
        ("sql", "select 1", "--format", huge),
        ("sql", "select 1", "--out", f"{tmp_path}/{'y' * 5000}/result.csv"),
        ("sql", "select 1", "--out", f"{data_dir}/{'z' * 200}.csv"),
    ):
        code, out, err = run_cdr(capsys, monkeypatch, *args, "--data-dir", str(data_dir))
        assert code in (1, 2) and out == ""
        assert len(err.splitlines()) == 1 and len(err.rstrip("\n")) <= 300, err[:400]
        assert "…" in err, err[:400]
