"""The bad-input corpus: dozens of bad inputs, each run through the `cdr` console script as a user would.

Every case is data (argv, environment, damage done to a copy of a real data dir, the exit
code). For each one: the exit code (2: bad input refused before any work; 1: a failure while
working), ONE short `error:` line on stderr and nothing on stdout, no traceback, the API key
nowhere in the output or in any file, and the data dir (and the working folder) byte-identical
afterwards. The data dir is synced from the sandbox once per session and copied per case.

Only `cdr sync` cases refused before Prefect starts belong here: one that passes validation
would start Prefect (tens of seconds) and is stopped by the case's time limit, failing it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from pydantic import SecretStr

from pipelines.dates import Window, format_utc
from pipelines.opentact import api
from pipelines.opentact.client import ClientConfig, OpentactClient
from pipelines.settings import Settings
from pipelines.sync import sync
from sandbox.testing import running_sandbox

# A key no message, log or file may ever contain; the mark catches it even split across lines.
API_KEY = "sk-corpus-SECRET-4f9a"
KEY_MARK = "SECRET-4f9a"
NEWLINE_KEY = f"{API_KEY}\nX-Injected: 1"

NOW = datetime(2026, 10, 3, 6, tzinfo=timezone.utc)
WINDOW = Window(datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2026, 10, 3, tzinfo=timezone.utc))
PARTITION = "lake/cdrs/account=default/date=2026-10-01"
PARTITION_FILE = f"{PARTITION}/data.parquet"
MONTH = "2026-10"
# Nothing listens on the discard port: a request that slips through fails at once, never leaves the machine.
DEAD_URL = "http://127.0.0.1:9"
# A refusal is immediate; a sync that got past validation would start Prefect and is stopped here.
CASE_TIMEOUT_SECS = 30
# One line that names a file and says what to do fits; an echo of the input does not. Measured
# with the case's own folders written as <data> and <work>, as their length is the machine's.
MAX_STDERR_CHARS = 400
# The kernel caps one argument at 128 KiB: the longest query a user can pass on the command line.
LONG_QUERY_CHARS = 120_000

CDR = Path(sys.executable).with_name("cdr")
SYNC = ("sync", "--data-dir", "{data}", "--now", format_utc(NOW))
YESTERDAY = (*SYNC, "--range", "yesterday")

Damage = Callable[[Path, Path], None]  # (the case's data dir, its working folder) -> None


@dataclass(frozen=True)
class Case:
    """One bad input: argv after `cdr` ({data}, {work} filled in), env changes (None: unset), damage."""

    id: str
    argv: tuple[str, ...]
    exit_code: int
    env: Mapping[str, str | None] = field(default_factory=dict)
    damage: Damage | None = None
    # Text the output must not contain (what an escaped read would print).
    forbidden: tuple[str, ...] = ()


# -- damage done to a copy of the data dir (or to the working folder) -----------------------------


def zero_byte_partition(data: Path, work: Path) -> None:
    (data / PARTITION_FILE).write_bytes(b"")


def truncated_partition(data: Path, work: Path) -> None:
    file = data / PARTITION_FILE
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def other_schema_partition(data: Path, work: Path) -> None:
    pl.DataFrame({"a": [1, 2], "b": ["x", "y"]}).write_parquet(data / PARTITION_FILE)


def lake_is_a_file(data: Path, work: Path) -> None:
    shutil.rmtree(data / "lake")
    (data / "lake").write_text("not a folder\n")


def dataset_is_a_file(data: Path, work: Path) -> None:
    shutil.rmtree(data / "lake" / "cdrs")
    (data / "lake" / "cdrs").write_text("not a folder\n")


def partition_is_a_file(data: Path, work: Path) -> None:
    shutil.rmtree(data / PARTITION)
    (data / PARTITION).write_text("not a folder\n")


def landed_state_is_garbage(data: Path, work: Path) -> None:
    (data / "state/account=default/cdrs/landed.json").write_text("{not json")


def landed_state_is_a_folder(data: Path, work: Path) -> None:
    (data / "state/account=default/cdrs/landed.json").unlink()
    (data / "state/account=default/cdrs/landed.json").mkdir()


def state_kind_is_a_file(data: Path, work: Path) -> None:
    shutil.rmtree(data / "state/account=default/cdrs")
    (data / "state/account=default/cdrs").write_text("not a folder\n")


def landed_state_bad_mark(data: Path, work: Path) -> None:
    path = data / "state/account=default/cdrs/landed.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "high_water_mark": "not a date"}))


def no_warehouse(data: Path, work: Path) -> None:
    (data / "warehouse.duckdb").unlink()


def warehouse_is_garbage(data: Path, work: Path) -> None:
    (data / "warehouse.duckdb").write_bytes(b"this is not a DuckDB file\n" * 100)


def out_is_a_file(data: Path, work: Path) -> None:
    (work / "taken").write_text("a file, not a folder\n")


def files_outside(data: Path, work: Path) -> None:
    """Files beside the data dir that `cdr sql` must not read."""
    shutil.copy(data / PARTITION_FILE, work / "outside.parquet")
    (work / "outside.csv").write_text("secret\noutside-data-csv\n")
    (work / "outside.json").write_text('{"secret": "outside-data-json"}\n')


def link_to_data_dir(data: Path, work: Path) -> None:
    (work / "into").symlink_to(data, target_is_directory=True)


# -- the corpus ------------------------------------------------------------------------------------

BAD_SETTINGS = (
    ("OPENTACT_CONCURRENCY", "-1"),
    ("OPENTACT_CONCURRENCY", "0"),
    ("OPENTACT_CONCURRENCY", "abc"),
    ("OPENTACT_CONCURRENCY", "100000"),
    ("OPENTACT_PAGE_SIZE", "0"),
    ("OPENTACT_PAGE_SIZE", "1000"),
    ("OPENTACT_PAGE_SIZE", "abc"),
    ("CDR_LOOKBACK_DAYS", "-1"),
    ("CDR_LOOKBACK_DAYS", "abc"),
    ("OPENTACT_SETTLE_LAG_SECS", "inf"),
    ("OPENTACT_TIMEOUT_SECS", "0"),
    ("OPENTACT_RETRY_MAX_SECS", "nan"),
    ("OPENTACT_SLICE_MAX_PAGES", "0"),
    ("OPENTACT_PREFETCH_SLICES", "-1"),
    ("CDR_MAX_SYNC_DAYS", "0"),
    ("OPENTACT_MAX_REJECTED_PERCENT", "101"),
)

SETTINGS_CASES = [
    Case(f"setting-{name}={value}-{command[0]}", command, 2, env={name: value})
    for name, value in BAD_SETTINGS
    for command in (("dates", "today"), ("build", "--data-dir", "{data}"))
] + [
    # The calendar settings, under the commands that use them.
    Case("setting-CDR_TIMEZONE=Mars/Olympus_Mons-dates", ("dates", "today"), 2, env={"CDR_TIMEZONE": "Mars/Olympus_Mons"}),
    Case("setting-CDR_WEEK_START=friday-dates", ("dates", "this_week"), 2, env={"CDR_WEEK_START": "friday"}),
    Case("setting-CDR_REPORT_TIMEZONE=Nowhere/Zone-build", ("build", "--data-dir", "{data}"), 2,
         env={"CDR_REPORT_TIMEZONE": "Nowhere/Zone"}),
]

SQL = ("sql", "--data-dir", "{data}")
SQL_CASES = [
    # Writes are refused before running (2); reads outside the warehouse and its lake by DuckDB's own
    # controls while running (1).
    Case("sql-explain-analyze-copy-over-a-lake-partition",
         (*SQL, f"explain analyze copy (select 1 as x) to '{{data}}/{PARTITION_FILE}' (format parquet)"), 2),
    Case("sql-explain-analyze-copy-to-a-file-elsewhere",
         (*SQL, "explain analyze copy (select 1 as x) to '{work}/elsewhere.csv'"), 2),
    Case("sql-copy-to-a-file", (*SQL, "copy (select 1 as x) to '{work}/copy.csv'"), 2),
    Case("sql-attach-a-new-database", (*SQL, "attach '{work}/new.duckdb' as other"), 2),
    Case("sql-attach-the-warehouse-read-write", (*SQL, "attach '{data}/warehouse.duckdb' as rw"), 2),
    Case("sql-install-an-extension", (*SQL, "install httpfs"), 2),
    Case("sql-set-external-access-on", (*SQL, "set enable_external_access = true"), 2),
    Case("sql-reset-allowed-directories", (*SQL, "reset allowed_directories"), 2),
    Case("sql-two-statements", (*SQL, "select 1; select 2"), 2),
    Case("sql-bad-format", (*SQL, "select 1", "--format", "xml"), 2),
    Case("sql-read-text-proc-self-environ", (*SQL, "select content from read_text('/proc/self/environ')"), 1,
         forbidden=("OPENTACT_", "PATH=")),
    Case("sql-read-blob-proc-self-environ", (*SQL, "select content from read_blob('/proc/self/environ')"), 1,
         forbidden=("OPENTACT_", "PATH=")),
    Case("sql-read-text-etc-passwd", (*SQL, "select content from read_text('/etc/passwd')"), 1,
         forbidden=("root:",)),
    Case("sql-read-csv-etc-passwd", (*SQL, "select * from read_csv('/etc/passwd', header = false)"), 1,
         forbidden=("root:", "/bin/")),
    Case("sql-read-csv-beside-the-data-dir", (*SQL, "select * from read_csv('{work}/outside.csv')"), 1,
         damage=files_outside, forbidden=("outside-data-csv",)),
    Case("sql-read-json-beside-the-data-dir", (*SQL, "select * from read_json('{work}/outside.json')"), 1,
         damage=files_outside, forbidden=("outside-data-json",)),
    Case("sql-read-parquet-beside-the-data-dir", (*SQL, "select count(*) as n from read_parquet('{work}/outside.parquet')"),
         1, damage=files_outside),
    Case("sql-read-csv-dot-dot-out-of-the-data-dir",
         (*SQL, "select * from read_csv('{data}/lake/../../work/outside.csv')"), 1,
         damage=files_outside, forbidden=("outside-data-csv",)),
    # --out may never write inside the data dir, nor into a folder that is not there.
    Case("sql-out-over-the-warehouse", (*SQL, "select 1 as x", "--out", "{data}/warehouse.duckdb"), 2),
    Case("sql-out-over-a-lake-partition", (*SQL, "select 1 as x", "--out", f"{{data}}/{PARTITION_FILE}"), 2),
    Case("sql-out-into-the-data-dir", (*SQL, "select 1 as x", "--out", "{data}/result.csv"), 2),
    Case("sql-out-dot-dot-onto-the-warehouse",
         (*SQL, "select 1 as x", "--out", "{data}/lake/../warehouse.duckdb"), 2),
    Case("sql-out-through-a-link-onto-the-warehouse",
         (*SQL, "select 1 as x", "--out", "{work}/into/warehouse.duckdb"), 2, damage=link_to_data_dir),
    Case("sql-out-into-a-missing-folder", (*SQL, "select 1 as x", "--out", "{work}/missing/result.csv"), 2),
    # A huge query's error stays one short line.
    Case("sql-long-query-unknown-table", (*SQL, "select * from no_such_table_" + "x" * LONG_QUERY_CHARS), 1),
    Case("sql-long-query-syntax-error", (*SQL, "selec " + "y" * LONG_QUERY_CHARS), 1),
    Case("sql-no-warehouse", (*SQL, "select count(*) from calls"), 1, damage=no_warehouse),
    Case("sql-garbage-warehouse", (*SQL, "select count(*) from calls"), 1, damage=warehouse_is_garbage),
]

FINANCE = ("report", "finance", "--data-dir", "{data}", "--out", "{work}")
REPORT_CASES = [
    Case("report-month-0000-01", (*FINANCE, "--month", "0000-01"), 2),
    Case("report-month-2026-13", (*FINANCE, "--month", "2026-13"), 2),
    Case("report-month-2026-00", (*FINANCE, "--month", "2026-00"), 2),
    Case("report-month-abc", (*FINANCE, "--month", "abc"), 2),
    Case("report-month-far-future-9999-12", (*FINANCE, "--month", "9999-12"), 2),
    Case("report-month-before-any-data-2000-01", (*FINANCE, "--month", "2000-01"), 2),
    Case("report-out-is-a-file",
         ("report", "finance", "--data-dir", "{data}", "--month", MONTH, "--out", "{work}/taken"), 2,
         damage=out_is_a_file),
    Case("report-no-warehouse", (*FINANCE, "--month", MONTH), 1, damage=no_warehouse),
    Case("report-garbage-warehouse", (*FINANCE, "--month", MONTH), 1, damage=warehouse_is_garbage),
    Case("report-missing-month", ("report", "finance", "--data-dir", "{data}"), 2),
    Case("report-unknown-report", ("report", "payroll", "--month", MONTH), 2),
]

BUILD = ("build", "--data-dir", "{data}")
DASHBOARDS = ("dashboards", "--data-dir", "{data}", "--out", "{work}/site")
DATA_DIR_CASES = [
    Case("build-zero-byte-partition", BUILD, 1, damage=zero_byte_partition),
    Case("build-truncated-partition", BUILD, 1, damage=truncated_partition),
    Case("build-partition-of-another-schema", BUILD, 1, damage=other_schema_partition),
    Case("build-lake-is-a-file", BUILD, 1, damage=lake_is_a_file),
    Case("build-dataset-folder-is-a-file", BUILD, 1, damage=dataset_is_a_file),
    Case("build-partition-folder-is-a-file", BUILD, 1, damage=partition_is_a_file),
    Case("dashboards-no-warehouse", DASHBOARDS, 1, damage=no_warehouse),
    Case("dashboards-landed-state-is-garbage", DASHBOARDS, 1, damage=landed_state_is_garbage),
    Case("dashboards-landed-state-is-a-folder", DASHBOARDS, 1, damage=landed_state_is_a_folder),
    Case("dashboards-state-kind-is-a-file", DASHBOARDS, 1, damage=state_kind_is_a_file),
    Case("dashboards-out-is-a-file", ("dashboards", "--data-dir", "{data}", "--out", "{work}/taken"), 2,
         damage=out_is_a_file),
    # An incremental sync reads the state before Prefect starts.
    Case("sync-landed-state-is-garbage", SYNC, 1, damage=landed_state_is_garbage),
    Case("sync-landed-state-is-a-folder", SYNC, 1, damage=landed_state_is_a_folder),
    Case("sync-state-kind-is-a-file", SYNC, 1, damage=state_kind_is_a_file),
    Case("sync-landed-state-bad-mark", SYNC, 1, damage=landed_state_bad_mark),
]

SYNC_CASES = [
    Case("sync-unknown-literal", (*SYNC, "--range", "fortnight_ago"), 2),
    Case("sync-unknown-zone", (*YESTERDAY, "--tz", "Mars/Olympus_Mons"), 2),
    Case("sync-bad-week-start", (*YESTERDAY, "--week-start", "friday"), 2),
    Case("sync-unknown-type", (*YESTERDAY, "--types", "calls"), 2),
    Case("sync-empty-types", (*YESTERDAY, "--types", ","), 2),
    Case("sync-bad-now", ("sync", "--data-dir", "{data}", "--range", "yesterday", "--now", "garbage"), 2),
    Case("sync-end-before-start", (*SYNC, "--start", "2026-10-02", "--end", "2026-10-01"), 2),
    Case("sync-bad-start-date", (*SYNC, "--start", "2026-02-30", "--end", "2026-03-02"), 2),
    Case("sync-range-and-start", (*YESTERDAY, "--start", "2026-10-01", "--end", "2026-10-02"), 2),
    Case("sync-year-1-to-9999", (*SYNC, "--start", "0001-01-01", "--end", "9999-12-31"), 2),
    Case("sync-window-over-the-longest", (*SYNC, "--start", "2020-01-01", "--end", "2026-10-01"), 2),
    Case("sync-literal-over-the-longest", (*SYNC, "--range", "last_1100_days"), 2),
    Case("sync-window-over-CDR_MAX_SYNC_DAYS", (*SYNC, "--range", "last_30_days"), 2, env={"CDR_MAX_SYNC_DAYS": "10"}),
    Case("sync-key-with-a-newline", YESTERDAY, 2, env={"OPENTACT_API_KEY": NEWLINE_KEY}),
    Case("sync-key-empty", YESTERDAY, 2, env={"OPENTACT_API_KEY": ""}),
    Case("sync-key-missing", YESTERDAY, 2, env={"OPENTACT_API_KEY": None}),
    Case("sync-plain-http-to-a-remote-host", YESTERDAY, 2, env={"OPENTACT_BASE_URL": "http://api.opentact.org"}),
    Case("sync-bad-concurrency", YESTERDAY, 2, env={"OPENTACT_CONCURRENCY": "0"}),
    Case("sync-infinite-timeout", YESTERDAY, 2, env={"OPENTACT_TIMEOUT_SECS": "inf"}),
]

DATES_CASES = [
    Case("dates-unknown-literal", ("dates", "fortnight_ago"), 2),
    Case("dates-empty-literal", ("dates", ""), 2),
    Case("dates-unknown-zone", ("dates", "today", "--tz", "Mars/Olympus_Mons"), 2),
    Case("dates-zone-path-traversal", ("dates", "today", "--tz", "../../../etc/passwd"), 2),
    Case("dates-bad-week-start", ("dates", "this_week", "--week-start", "friday"), 2),
    Case("dates-now-month-13", ("dates", "today", "--now", "2026-13-01"), 2),
    Case("dates-now-year-10000", ("dates", "today", "--now", "10000-01-01"), 2),
    Case("dates-now-empty", ("dates", "today", "--now", ""), 2),
    Case("dates-now-offset-out-of-range", ("dates", "today", "--now", "2026-10-03T06:00:00+25:00"), 2),
    Case("dates-last-week-before-year-1", ("dates", "last_week", "--now", "0001-01-01T00:00:00Z"), 2),
    Case("dates-next-month-after-9999", ("dates", "next_month", "--now", "9999-12-15T00:00:00Z"), 2),
    Case("dates-last-huge-days", ("dates", "last_99999999_days", "--now", format_utc(NOW)), 2),
    Case("dates-next-huge-hours", ("dates", "next_99999999999999999999_hours", "--now", format_utc(NOW)), 2),
]

USAGE_CASES = [
    Case("cli-unknown-command", ("frobnicate",), 2),
    Case("cli-unknown-option", ("sync", "--bogus"), 2),
    Case("cli-option-missing-its-value", ("build", "--data-dir"), 2),
    Case("cli-missing-argument", ("sql",), 2),
    Case("cli-missing-literal", ("dates",), 2),
    Case("cli-extra-argument", ("build", "extra"), 2),
]

CASES = SETTINGS_CASES + SQL_CASES + REPORT_CASES + DATA_DIR_CASES + SYNC_CASES + DATES_CASES + USAGE_CASES


# -- the data dir, synced once ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def synced_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real data dir: two days synced from the sandbox (with the corpus key), then `cdr build`."""
    data = tmp_path_factory.mktemp("corpus") / "data"
    world = {"seed": 12, "calls_per_day": 120, "messages_per_day": 60, "rerate_rate": 0.1, "malformed_rate": 0.01}
    with running_sandbox(start="2026-10-01", now=format_utc(NOW), api_key=API_KEY, **world) as url:
        settings = Settings(data_dir=data, OPENTACT_BASE_URL=url, OPENTACT_API_KEY=SecretStr(API_KEY))

        async def land() -> bool:
            async with OpentactClient(ClientConfig.from_settings(settings)) as client:
                return (await sync(list(api.RECORD_TYPES), WINDOW, settings, client, NOW, "corpus")).ok

        assert asyncio.run(land())
    built = subprocess.run(
        [str(CDR), "build", "--data-dir", str(data)], env=case_environ({}), capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert built.returncode == 0, built.stderr
    assert (data / PARTITION_FILE).is_file() and (data / "warehouse.duckdb").is_file()
    assert (data / "state/account=default/cdrs/landed.json").is_file()
    assert not leaked_into(data), "the sync or the build wrote the key into the data dir"
    return data


# -- helpers ---------------------------------------------------------------------------------------


def case_environ(changes: Mapping[str, str | None]) -> dict[str, str]:
    """This process's environment without our settings, plus the corpus key, a dead API URL and the changes."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("OPENTACT_", "CDR_"))}
    env.update({"OPENTACT_API_KEY": API_KEY, "OPENTACT_BASE_URL": DEAD_URL})
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every folder, file and link under root -> (kind, mode, sha256 of the bytes or the link target)."""
    entries: dict[str, tuple[object, ...]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            info = path.lstat()
            relative = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                entries[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                entries[relative] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                entries[relative] = ("file", stat.S_IMODE(info.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
    return entries


def differences(before: Mapping[str, object], after: Mapping[str, object]) -> list[str]:
    """Two snapshots -> the paths that appeared (+), went (-) or changed (~)."""
    return sorted(
        [f"+{p}" for p in after.keys() - before.keys()]
        + [f"-{p}" for p in before.keys() - after.keys()]
        + [f"~{p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    )


def leaked_into(root: Path) -> list[str]:
    """The files under root holding the key's mark."""
    mark = KEY_MARK.encode()
    return [
        str(path) for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and mark in path.read_bytes()
    ]


def run_case(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int | None, str, str]:
    """`cdr ARGV` as a user runs it -> (exit code, or None if it outlived the limit; stdout; stderr)."""
    process = subprocess.Popen(
        [str(CDR), *argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=CASE_TIMEOUT_SECS)
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: Prefect's server goes with it
        out, err = process.communicate()
        code = None
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def output_problems(case: Case, code: int, out: str, err: str, folders: Mapping[str, Path]) -> list[str]:
    """What is wrong with a case's exit code and output (the key is never quoted); folders: placeholder -> path."""
    if code is None:
        return [f"still running after {CASE_TIMEOUT_SECS} s (not refused up front); stderr ends {err[-300:]!r}"]
    problems = [] if code == case.exit_code else [f"exit {code}, expected {case.exit_code}"]
    if "Traceback" in out + err:
        problems.append("a traceback")
    if KEY_MARK in out + err:
        problems.append("the API key printed")
    problems += [f"{text!r} printed" for text in case.forbidden if text in out + err]
    if out:
        problems.append("output on stdout")
    lines = err.splitlines()
    for placeholder, folder in folders.items():
        lines = [line.replace(str(folder), placeholder) for line in lines]
    if len(lines) != 1 or not lines[0].startswith("error: ") or len(lines[0]) > MAX_STDERR_CHARS:
        problems.append(f"stderr is {len(lines)} line(s), {len(err):,} chars, not one short `error: ...` line")
    return problems


# -- the test --------------------------------------------------------------------------------------


def check_case(case: Case, synced: Path, root: Path) -> str | None:
    """One case run on its own copy of the data dir under root -> what is wrong with it (None: nothing)."""
    data, work = root / "data", root / "work"
    shutil.copytree(synced, data, symlinks=True)
    work.mkdir()
    if case.damage is not None:
        case.damage(data, work)
    data_before, work_before = snapshot(data), snapshot(work)
    argv = [arg.replace("{data}", str(data)).replace("{work}", str(work)) for arg in case.argv]

    code, out, err = run_case(argv, case_environ({"CDR_DATA_DIR": str(data), **case.env}), work)

    problems = output_problems(case, code, out, err, {"<data>": data, "<work>": work})
    problems += [f"the API key written to {path}" for path in leaked_into(root)]
    if changed := differences(data_before, snapshot(data)):
        problems.append(f"the data dir changed: {' '.join(changed[:4])}")
    if written := differences(work_before, snapshot(work)):
        problems.append(f"written beside the data dir: {' '.join(written[:4])}")
    shown = f"stdout {out[:200]!r}; stderr {err[:400]!r}".replace(KEY_MARK, "<KEY>")
    return f"{'; '.join(problems)} | {shown}" if problems else None


@pytest.fixture(scope="module")
def corpus_results(
    request: pytest.FixtureRequest, synced_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[str | None]]]:
    """Every selected case started a few at a time (each is a separate `cdr` process) -> case id -> its problems.

    Each test waits for its own case only, so the time limit holds per case, not for the whole corpus.
    """
    prefix = f"{request.node.nodeid}::{test_a_bad_input_gets_one_line_and_an_exit_code_and_changes_nothing.__name__}["
    selected = {item.nodeid[len(prefix):-1] for item in request.session.items if item.nodeid.startswith(prefix)}
    chosen = [case for case in CASES if case.id in selected]
    root = tmp_path_factory.mktemp("cases")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        pending = {
            case.id: pool.submit(check_case, case, synced_data_dir, root / str(number))
            for number, case in enumerate(chosen)
        }
        yield pending
        for future in pending.values():  # a run stopped early (-x) does not wait for the cases left
            future.cancel()


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_a_bad_input_gets_one_line_and_an_exit_code_and_changes_nothing(
    case: Case, corpus_results: dict[str, Future[str | None]]
) -> None:
    problems = corpus_results[case.id].result()
    assert problems is None, problems
