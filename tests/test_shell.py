"""`cdr shell`: an interactive read-only SQL shell on the warehouse, confined and checked like `cdr sql`."""

from __future__ import annotations

import hashlib
import io
import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from pipelines.errors import UsageError
from pipelines.models import build, warehouse_path
from pipelines.shell import PROMPT, CONTINUATION, run_shell, statement_complete
from pipelines.sql import check_query
from tests.fixtures.cli import CDR_ARGV
from tests.fixtures.lake import small_world, write_lake


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = write_lake(tmp_path_factory.mktemp("shell"), *small_world())
    build(directory)
    return directory


def snapshot(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*")) if path.is_file()
    }


def piped(data_dir: Path, text: str, *, masked: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_shell(warehouse_path(data_dir), masked=masked, stdin=io.StringIO(text), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def typed(data_dir: Path, keys: Iterable[str | type[BaseException]]) -> tuple[int, str, str, list[str]]:
    """Lines typed at a terminal (an exception class: Ctrl-C or Ctrl-D there) -> code, stdout, stderr, prompts."""
    out, err, prompts, pending = io.StringIO(), io.StringIO(), [], list(keys)

    def read_line(prompt: str) -> str:
        prompts.append(prompt)
        key = pending.pop(0) if pending else EOFError
        if isinstance(key, type):
            raise key()
        return key

    code = run_shell(warehouse_path(data_dir), stdin=io.StringIO(), stdout=out, stderr=err, read_line=read_line)
    return code, out.getvalue(), err.getvalue(), prompts


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("select 1;", True),
        ("select 1;  \n", True),
        ("select 1; -- done\n", True),
        ("select 1", False),
        ("select ';", False),
        ("select 1 -- not yet;\n", False),
        ("select 1 /* ; */", False),
        ("select $$a;b$$", False),
        ("select 1; select 2;", True),
        ("", False),
    ],
)
def test_a_statement_ends_with_a_semicolon_outside_strings_and_comments(text, complete):
    assert statement_complete(text) is complete


def test_statements_span_lines_and_print_in_the_chosen_mode(data_dir):
    code, out, err = piped(data_dir, (
        "select id, cost\n  from calls -- the view; not the end\n  where id in ('c2', 'c6')\n  order by id;\n"
        ".mode csv\nselect id, cost from calls where id = 'c2'; select ';\n' as semi;\n"
        ".mode json\nselect 1 as n;\n.mode\n"
    ))
    assert (code, err) == (0, "")
    table, rest = out.split("(2 rows)\n")
    assert table.split()[:2] == ["id", "cost"] and "c2" in table and "c6" in table
    assert rest == 'id,cost\nc2,0.000000000\nsemi\n";\n"\n[\n{"n":1}\n]\njson\n'


def test_dot_commands_list_tables_and_show_schemas(data_dir):
    code, out, err = piped(data_dir, ".tables\n.schema calls\n.schema CALLS\n.help\n")
    assert (code, err) == (0, "")
    names = out.split("CREATE VIEW")[0].split()
    assert {"calls", "messages", "fct_calls_daily", "rpt_finance_monthly_statement"} <= set(names)
    assert names == sorted(names)
    assert out.count("CREATE VIEW calls AS SELECT * FROM stg_cdrs;\n") == 2
    assert ".mode [table|csv|json]" in out and ".quit, .exit" in out


def test_a_dot_command_after_a_statement_on_its_line_runs_after_it(data_dir):
    # Where a statement may begin (after a `;` or comments) a `.` starts a dot command, to the end of the line.
    code, out, err = piped(data_dir, (
        "select 1 as n; .mode csv\n"
        "-- a note first\n.mode json\n"
        "select 2 as n; select 3 as n; /* why */ .mode\n"
        "select 4 as n; .quit\nselect 5 as n;\n"
    ))
    assert (code, err) == (0, "")
    assert out == 'n\n─\n1\n(1 row)\n[\n{"n":2}\n]\n[\n{"n":3}\n]\njson\n[\n{"n":4}\n]\n'


def test_a_dot_elsewhere_in_a_statement_is_sql(data_dir):
    code, out, err = piped(data_dir, ".mode csv\nselect t.n, '; .tables' as s\nfrom (select 1 as n) t;\nselect\n.5 as x;\n")
    assert (code, out, err) == (0, "n,s\n1,; .tables\nx\n0.5\n", "")


def test_errors_are_one_line_and_the_shell_goes_on_exiting_with_the_worst_code(data_dir):
    before = snapshot(data_dir)
    code, out, err = piped(data_dir, (
        "insert into calls select * from calls;\n"
        "select * from nope;\n"
        "select * from read_text('/etc/passwd');\n"
        ".mode xml\n.schema nope\n.bogus\n"
        "select 7 as still_here;\n"
        "select 8\n"
    ))
    assert code == 2
    with pytest.raises(UsageError) as refused:  # the one write check, cdr sql's
        check_query("insert into calls select * from calls")
    assert err.splitlines() == [
        f"error: {refused.value}",
        'error: Catalog Error: Table with name nope does not exist! Did you mean "pg_enum"? LINE 1: select * from nope;',
        'error: ad-hoc SQL reads only the warehouse and its lake: Permission Error: Cannot access file "/etc/passwd" - '
        "file system operations are disabled by configuration",
        "error: .mode must be one of table, csv, json (got 'xml')",
        "error: no table or view named nope: see .tables",
        "error: unknown command .bogus: see .help",
        "error: the input ended inside a statement: end it with ;",
    ]
    assert "still_here" in out and "8" not in out.split("still_here")[1].split("(1 row)")[1]
    assert snapshot(data_dir) == before


def test_a_failing_query_exits_1_and_quit_stops_reading(data_dir):
    assert piped(data_dir, "select error('boom');\n.quit\nselect * from nope;\n")[::2] == (1, "error: Invalid Input Error: boom\n")


def test_masked_numbers_and_the_masking_guard_hold_in_the_shell(data_dir):
    code, out, err = piped(data_dir, ".mode csv\nselect cli from calls where id = 'c3';\nselect cli from warehouse.calls;\n",
                           masked=True)
    assert (code, out) == (2, "cli\n+1••••••••01\n")
    assert err.startswith("error: with phone numbers masked, read calls by its bare name")


def test_at_a_terminal_ctrl_c_drops_the_statement_being_typed_and_ctrl_d_leaves(data_dir):
    code, out, err, prompts = typed(data_dir, [
        "select 'dropped' as x", KeyboardInterrupt,
        "select 'kept'", "  as x;", "insert into calls select * from calls;", EOFError, "select 'never';",
    ])
    assert code == 0  # errors at a terminal only print
    assert prompts == [PROMPT, CONTINUATION, PROMPT, CONTINUATION, PROMPT, PROMPT]
    assert "dropped" not in out and "kept" in out and "never" not in out
    assert out.startswith("cdr shell on ") and "^C\n" in out
    assert err.startswith("error: `cdr sql` and `cdr shell` are read-only: INSERT") and len(err.splitlines()) == 1


def cdr_shell(data_dir: Path, text: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CDR_ARGV, "shell", "--data-dir", str(data_dir), *extra],
        input=text, capture_output=True, text=True, timeout=120, env=env,
    )


def test_cdr_shell_runs_piped_statements(data_dir):
    proc = cdr_shell(data_dir, ".mode csv\nselect id\n  from calls\n  order by id limit 2;\nselect cli from calls where id = 'c3';\n")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == "id\nc1\nc2\ncli\n+12025550101\n"


def test_cdr_shell_masks_numbers_with_the_setting(data_dir):
    env = {**os.environ, "CDR_MASK_NUMBERS": "true"}
    proc = cdr_shell(data_dir, ".mode csv\nselect cli from calls where id = 'c3';\n", env=env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "cli\n+1••••••••01\n", "")
    assert cdr_shell(data_dir, ".mode csv\nselect cli from calls where id = 'c3';\n", "--no-mask-numbers", env=env).stdout == (
        "cli\n+12025550101\n"
    )


def test_cdr_shell_refusals_are_one_line_with_exit_codes(data_dir, tmp_path):
    proc = cdr_shell(data_dir, "drop view calls;\n")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith("error: `cdr sql` and `cdr shell` are read-only: DROP statements")
    proc = cdr_shell(tmp_path, "select 1;\n")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == f"error: no warehouse at {tmp_path}/warehouse.duckdb: run `cdr build` first\n"
    proc = cdr_shell(data_dir, "", "--bogus")
    assert (proc.returncode, proc.stderr) == (2, "error: No such option: --bogus (see 'cdr shell --help')\n")


def test_at_a_real_terminal_ctrl_c_stops_a_running_query_and_the_shell_goes_on(data_dir):
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [*CDR_ARGV, "shell", "--data-dir", str(data_dir)], stdin=child, stdout=child, stderr=child, close_fds=True,
        # As at a terminal: a background job (a CI runner's) inherits SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    os.close(child)
    screen = b""

    def until(marker: bytes, timeout: float = 60.0, every: Callable[[], object] = lambda: None) -> None:
        nonlocal screen
        deadline = time.monotonic() + timeout
        while marker not in screen:
            assert time.monotonic() < deadline, screen.decode(errors="replace")
            every()
            if select.select([main], [], [], 2.0)[0]:
                screen += os.read(main, 4096)

    try:
        until(PROMPT.encode())
        os.write(main, b"select count(*) from range(100000000000) a, range(10) b;\n")
        until(b"b;")
        time.sleep(0.5)  # the query has just started: DuckDB's own check of Ctrl-C missed one this early
        proc.send_signal(signal.SIGINT)
        until(b"error: interrupted: the statement stopped", timeout=30)
        assert b"^C" not in screen  # it stopped the query, not a statement being typed
        os.write(main, b"select 6 * 7 as answer;\n")
        until(b"(1 row)\r\n" + PROMPT.encode())
        os.write(main, b"\x04")  # Ctrl-D
        until(b"\r\n", every=lambda: proc.poll())
        assert proc.wait(timeout=30) == 0, screen.decode(errors="replace")
        assert b"42" in screen
    finally:
        proc.kill()
        os.close(main)
