import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from cdr_app.cli import app, cdr_command
from pipelines import __version__
from pipelines.opentact.api import record_types
from pipelines.shell import run_shell
from tests.fixtures.alerts import alert, make_warehouse, webhook_receiver
from tests.fixtures.cli import CDR_ARGV, run_cdr

runner = CliRunner()


def test_version_prints_the_installed_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"cdr {__version__}"


def test_help_lists_every_command_with_one_line_in_the_order_of_the_work():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:\n")[1].splitlines()
    listed = [line.split()[0] for line in commands if line.startswith("  ") and not line.startswith("   ")]
    # The pipeline's commands, the sandbox's and the demo, all under the one `cdr`.
    assert [name for name in listed if name != "status"] == [
        "sync", "build", "alerts", "report", "dashboards", "sql", "shell", "serve", "dates", "demo", "sandbox",
    ]


@pytest.mark.parametrize("args", [(), ("sql",), ("shell",), ("report",), ("report", "finance"), ("sandbox", "serve")])
def test_dash_h_is_help_everywhere(args):
    short, long = _cdr(*args, "-h"), _cdr(*args, "--help")
    assert (short.returncode, short.stderr) == (0, "")
    assert short.stdout == long.stdout and short.stdout.startswith(f"Usage: cdr {' '.join(args)}".rstrip())


def test_console_script_runs_without_traceback():
    proc = subprocess.run(
        [*CDR_ARGV, "--version"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_and_usage_errors_answer_without_loading_the_data_stack():
    # `cdr --help` and a mistyped option answer at once: polars, DuckDB, httpx and Prefect load
    # only when a command runs.
    heavy = ("polars", "duckdb", "httpx", "prefect", "numpy")
    probe = (
        "import sys\nfrom cdr_app.cli import run\nfor args in (['--help'], ['sync', '--bogus'], ['sandbox', '--help']):\n"
        "    sys.argv = ['cdr', *args]\n    try:\n        run()\n    except SystemExit:\n        pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([CDR_ARGV[0], "-c", probe], capture_output=True, text=True, check=False)
    assert proc.stderr.splitlines()[-1] == "[]", proc.stderr


def _cdr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CDR_ARGV, *args],
        capture_output=True, text=True, check=False,
    )


def test_an_unknown_option_is_one_line_naming_the_command_and_exit_2():
    proc = _cdr("sync", "--bogus")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: No such option: --bogus (see 'cdr sync --help')"


def test_a_missing_option_is_one_line_and_exit_2():
    proc = _cdr("report", "finance")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: Missing option '--month'. (see 'cdr report finance --help')"]


def test_bare_cdr_shows_the_help():
    proc = _cdr()
    assert proc.returncode == 0 and proc.stdout.startswith("Usage: cdr")


def test_every_command_has_a_one_line_summary_that_is_not_cut_short():
    result = runner.invoke(app, ["--help"])
    lines = [line for line in result.output.splitlines() if line.startswith("  ") and not line.strip().startswith("-")]
    assert len(lines) >= 9
    assert not any(line.rstrip().endswith("...") for line in lines)


CHOICE_ALERTS = ("alerts", "--start", "2026-10-03T00:00:00Z", "--end", "2026-10-04T00:00:00Z")


@pytest.mark.parametrize("typed, canonical", [
    (("--format", "CSV", "--min-severity", "WARNING", "--fail-on", "Critical"),
     ("--format", "csv", "--min-severity", "warning", "--fail-on", "critical")),
    (("--format", " Json "), ("--format", "json")),
])
def test_fixed_choices_of_alerts_take_any_case(capsys, monkeypatch, tmp_path, typed, canonical):
    make_warehouse(tmp_path, [alert("a", datetime(2026, 10, 3, tzinfo=timezone.utc), severity="critical")])
    data_dir = ("--data-dir", str(tmp_path))
    assert run_cdr(capsys, monkeypatch, *CHOICE_ALERTS, *typed, *data_dir) == run_cdr(
        capsys, monkeypatch, *CHOICE_ALERTS, *canonical, *data_dir
    )


def test_fixed_choices_of_sql_shell_dates_and_sync_take_any_case(capsys, monkeypatch, tmp_path):
    warehouse = make_warehouse(tmp_path, None)
    sql = ("sql", "select 1 as one", "--data-dir", str(tmp_path))
    assert run_cdr(capsys, monkeypatch, *sql, "--format", "CSV") == (0, "one\n1\n", "")
    out, err = io.StringIO(), io.StringIO()
    assert run_shell(warehouse, stdin=io.StringIO(".mode CSV\nselect 1 as one;\n"), stdout=out, stderr=err) == 0
    assert (out.getvalue(), err.getvalue()) == ("one\n1\n", "")
    code, out, _ = run_cdr(capsys, monkeypatch, "dates", "this_week", "--week-start", "Sunday", "--now", "2026-10-07",
                           "--tz", "UTC")
    assert code == 0 and json.loads(out)["week_start"] == "sunday" and json.loads(out)["start"] == "2026-10-04T00:00:00.000Z"
    assert record_types(["CDRS", " mdrs", "cdrs"], what="--types") == ["cdrs", "mdrs"]


def _cdr_to_a_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """`cdr ARGS...` whose stdout is a pipe its reader has already closed, as `| head -1` leaves it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([*CDR_ARGV, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [
    ("sql", "select * from range(200000)"),
    ("sql", "select * from range(200000)", "--format", "csv"),
    ("sql", "select * from range(200000)", "--format", "json"),
    ("status",),
    ("dates", "today"),
])
def test_a_reader_closing_the_pipe_stops_any_command_quietly_with_exit_0(args, tmp_path):
    # `cdr sql "..." | head -1`: head has what it wanted, so no error, no traceback and no failure for a script.
    make_warehouse(tmp_path, None)
    proc = _cdr_to_a_closed_pipe(*args, *(("--data-dir", str(tmp_path)) if args[0] != "dates" else ()))
    assert (proc.returncode, proc.stderr) == (0, "")


def test_a_reader_closing_the_pipe_keeps_the_alerts_sending_and_verdict(tmp_path):
    # `cdr alerts --notify URL --fail-on warning | head -1` in cron: the listing is cut short, the rest is not.
    start = datetime(2026, 10, 3, tzinfo=timezone.utc)
    make_warehouse(tmp_path, [alert(f"a-{country}", start, country_code=country) for country in ("DE", "GB", "US")])
    with webhook_receiver() as receiver:
        proc = _cdr_to_a_closed_pipe(
            "alerts", "--start", "2026-10-03", "--end", "2026-10-04", "--notify", receiver.url, "--fail-on", "warning",
            "--data-dir", str(tmp_path),
        )
    assert proc.returncode == 3, proc.stderr
    assert [body["alert_key"] for body in receiver.received] == ["a-DE", "a-GB", "a-US"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("args", [("sql", "select * from range(200000)"), ("sql", "select 1"), ("status",), ("dates", "today")])
def test_output_that_cannot_be_written_is_one_line_and_exit_1(args, tmp_path):
    # `cdr sql ... > out.csv` on a full disk: the output is lost, so the command fails, in one line.
    make_warehouse(tmp_path, None)
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [*CDR_ARGV, *args, *(("--data-dir", str(tmp_path)) if args[0] != "dates" else ())],
            stdout=full, stderr=subprocess.PIPE, text=True, check=False,
        )
    assert (proc.returncode, proc.stderr) == (1, "error: cannot write the output: No space left on device\n")


COMMENTED = "-- how many\nselect 1 as one"


@pytest.mark.parametrize("args", [
    (COMMENTED, "--format", "csv"),
    ("--format", "csv", COMMENTED),
    ("--format=csv", "--no-mask-numbers", COMMENTED),
    ("--format", "csv", "--how many\nselect 1 as one"),
    ("--format", "csv", "--\thow many\nselect 1 as one"),
])
def test_a_query_opening_with_an_sql_comment_is_the_query_not_an_option(capsys, monkeypatch, tmp_path, args):
    make_warehouse(tmp_path, None)
    assert run_cdr(capsys, monkeypatch, "sql", *args, "--data-dir", str(tmp_path)) == (0, "one\n1\n", "")


def test_options_of_sql_still_parse_around_a_query_opening_with_a_comment(capsys, monkeypatch, tmp_path):
    data_dir, out = tmp_path / "data", tmp_path / "the result.csv"
    make_warehouse(data_dir, None)
    # A value with spaces after `=`, or glued to a short option, is still that option's.
    for option in (f"--out={out}", f"-o{out}"):
        out.unlink(missing_ok=True)
        code, _, _ = run_cdr(capsys, monkeypatch, "sql", COMMENTED, "-f", "csv", option, "--data-dir", str(data_dir))
        assert (code, out.read_text()) == (0, "one\n1\n")
    # A mistyped option is still an error, on either side of the query.
    for args in (("--formt", "csv", COMMENTED), (COMMENTED, "--formt", "csv")):
        code, _, err = run_cdr(capsys, monkeypatch, "sql", *args, "--data-dir", str(data_dir))
        assert (code, err.startswith("error: No such option: --formt")) == (2, True), err


@pytest.mark.parametrize(("args", "option"), [
    (("sync", "--start", "2026-02-30", "--end", "2026-03-02"), "--start"),
    (("sync", "--start", "2026-10-01", "--end", "March 2"), "--end"),
    (("sync", "--range", "last_0_days"), "--range"),
    (("alerts", "--range", "fortnight_ago"), "--range"),
    (("alerts", "--start", "2026-10-01T00:00", "--end", "2026-10-02"), "--start"),
    (("sync", "--range", "today", "--now", "garbage"), "--now"),
    (("report", "finance", "--month", "2026-13"), "--month"),
])
def test_a_bad_date_option_is_one_line_naming_the_option_as_typed(capsys, monkeypatch, tmp_path, args, option):
    monkeypatch.setenv("OPENTACT_API_KEY", "key")
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9")
    code, out, err = run_cdr(capsys, monkeypatch, *args, "--data-dir", str(tmp_path))
    assert (code, out, err.count("\n")) == (2, "", 1)
    assert err.startswith(f"error: bad {option}: "), err
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_a_query_is_one_line_and_exit_130_not_a_traceback(tmp_path, capsys, monkeypatch):
    import pipelines.sql

    def ctrl_c_in_duckdb(*args, **kwargs):
        # What DuckDB raises when Ctrl-C comes while it runs a query: it takes the KeyboardInterrupt itself.
        raise RuntimeError("Query interrupted")

    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()
    monkeypatch.setattr(pipelines.sql, "run_query", ctrl_c_in_duckdb)
    assert run_cdr(capsys, monkeypatch, "sql", "select 42", "--data-dir", str(tmp_path)) == (130, "", "interrupted\n")


@pytest.mark.parametrize(
    ("signum", "where", "said"),
    [
        (signal.SIGINT, "query", "interrupted"),
        (signal.SIGINT, "python", "interrupted"),
        (signal.SIGTERM, "query", "terminated"),
    ],
)
def test_a_stopped_build_says_what_it_left_and_keeps_the_previous_warehouse(
    signum, where, said, tmp_path, capsys, monkeypatch
):
    import pipelines.models.runner as runner
    from pipelines.models import build

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    build(data_dir)  # the previous warehouse (of an empty lake)
    before = {path.name: path.read_bytes() for path in data_dir.iterdir() if path.is_file()}

    def stopped_while_building(con, *args):
        if where == "python":
            os.kill(os.getpid(), signum)
            time.sleep(30)
        # as Ctrl-C comes while DuckDB runs a model: it takes the signal and raises its own "Query interrupted"
        threading.Timer(0.2, os.kill, (os.getpid(), signum)).start()
        con.execute("select count(*) from range(1000000000000)").fetchall()

    monkeypatch.setattr(runner, "_create_macros", stopped_while_building)
    # Without `cdr build`'s own handling, SIGTERM would end the test run: here it is Ctrl-C's KeyboardInterrupt.
    unguarded = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        code, out, err = run_cdr(capsys, monkeypatch, "build", "--data-dir", str(data_dir))
    finally:
        signal.signal(signal.SIGTERM, unguarded)

    assert (code, out) == (128 + signum, "")
    assert err == f"{said}: the build stopped; the previous warehouse stays as it was: run `cdr build` again\n"
    assert {path.name: path.read_bytes() for path in data_dir.iterdir() if path.is_file()} == before


def test_a_runtime_error_that_is_not_ctrl_c_is_not_hidden_as_one(tmp_path, capsys, monkeypatch):
    import pipelines.sql

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()
    monkeypatch.setattr(pipelines.sql, "run_query", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        run_cdr(capsys, monkeypatch, "sql", "select 42", "--data-dir", str(tmp_path))


def test_the_demo_names_cdr_as_this_shell_can_run_it(tmp_path, monkeypatch):
    # `make demo` runs .venv/bin/cdr without putting .venv/bin on PATH: a bare `cdr` is "not found".
    script = Path(sys.executable).with_name("cdr")
    checkout = script.parent.parent.parent
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cdr_command() == str(script.relative_to(checkout))  # .venv/bin/cdr
    monkeypatch.chdir(tmp_path)
    assert cdr_command() == str(script)
    if not script.exists():
        pytest.skip("the console script is not installed")
    monkeypatch.setenv("PATH", str(script.parent))
    assert cdr_command() == "cdr"


def test_the_demo_names_its_fault_rates_as_sandbox_export_takes_them(capsys, monkeypatch):
    # Without the rates, `cdr sandbox export` cannot write the demo's truth to check its statement against.
    from cdr_app.demo import world

    line = world()
    assert line.startswith("seed 42, 2026-08-01 .. 2026-11-01, 2,000 calls and 1,000 messages a day, ")
    rates = dict(re.findall(r"(\w+) rate ([0-9.]+)", line))
    assert rates == {"fail": "0.01", "rerate": "0.02", "malformed": "0.0005"}
    _, usage, _ = run_cdr(capsys, monkeypatch, "sandbox", "serve", "--help")
    assert all(f"--{name}-rate" in usage for name in rates)



def test_the_demos_first_line_names_its_world_on_one_line_also_in_a_log(capsys, monkeypatch, tmp_path):
    # `make demo 2>&1 | tee demo.log`: the line `cdr sandbox export` is read off stays whole, not cut at 80 columns.
    import cdr_app.demo as demo

    class Stop(Exception):
        pass

    def no_sandbox(**_: object):
        raise Stop

    monkeypatch.setattr(demo, "quiet_prefect", lambda: None)
    monkeypatch.setattr(demo, "running_sandbox", no_sandbox)
    with pytest.raises(Stop):
        demo.run_demo(tmp_path / "demo")
    assert capsys.readouterr().err.splitlines()[0] == f"starting the sandbox: {demo.world()}"


EXAMPLED = (("sync",), ("build",), ("status",), ("alerts",), ("report", "finance"), ("dashboards",), ("sql",), ("shell",), ("dates",))


@pytest.mark.parametrize("path", EXAMPLED, ids=" ".join)
def test_help_shows_examples_that_parse(path):
    import shlex

    from typer.main import get_command

    help_text = runner.invoke(app, [*path, "--help"]).output
    assert "Examples:\n" in help_text
    examples = [line.strip() for line in help_text.split("Examples:\n")[1].splitlines() if line.strip()]
    assert examples and all(example.startswith(f"cdr {' '.join(path)}") for example in examples)
    command = get_command(app)
    for name in path:
        command = command.commands[name]
    for example in examples:
        words = shlex.split(example.partition(" < ")[0])[1 + len(path):]
        command.make_context(" ".join(path), words)  # an unknown option or a missing value raises


def test_the_demo_says_how_many_alerts_fired_and_how_to_list_them_over_its_months(tmp_path, capsys, monkeypatch):
    # `cdr alerts`' default range is the last 7 days of today: the demo's months, long past, need their own.
    import duckdb

    from cdr_app.demo import DEMO_NOW, WORLD_START, alert_counts, alerts_line

    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table rpt_alerts as select * from (values ('warning'), ('critical'), ('warning')) t(severity)")
    counts = alert_counts(warehouse)
    assert counts == (("critical", 1), ("warning", 2))
    command = f"cdr alerts --data-dir data/demo --start {WORLD_START} --end {DEMO_NOW[:10]}"
    assert alerts_line(counts, "cdr", Path("data/demo")) == f"3 alerts fired, 1 critical, 2 warning (try: {command})"
    assert alerts_line((), "cdr", Path("data/demo")) == f"no alert fired (try: {command})"
    assert run_cdr(capsys, monkeypatch, *command.split()[1:], "--help")[0] == 0
