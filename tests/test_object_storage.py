"""The data dir on object storage: `s3://bucket/prefix` on a real local S3 server (SeaweedFS, `s3_server`).

The same exactness checks as on disk: a sync through every sandbox fault (killed with SIGKILL,
then resumed) lands exactly the sandbox's export, a re-sync rewrites nothing; `cdr build`,
`cdr sql`, the finance statement (an independent sum, to the cent), `cdr status`, `cdr alerts`
and the dashboards work on it; one sync at a time holds through the lock object; the secret key
never shows.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from pipelines import sync_lock as sync_lock_module
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.errors import CdrError
from pipelines.lake import Lake
from pipelines.sync_lock import SYNC_LOCK, DataDirBusy, check_no_sync
from pipelines.opentact import api
from pipelines.remote import ETAG_FILE, WAREHOUSE_FILE, work_dir
from pipelines.state import open_checkpoints
from sandbox.testing import TEST_API_KEY
from tests.fixtures.cli import run_cdr
from tests.fixtures.processes import reap
from tests.s3_server import S3_SECRET_KEY
from tests.test_sync import (
    NOW, WINDOW, WINDOW_LONG, _TICK_PAUSE_SECS, assert_lake_is_the_export, export, run_sync, sandbox,  # noqa: F401
)
from tests.test_sync_accounts import _statement_of

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _s3_sessions_closed_outside_any_loop() -> Iterator[None]:
    """s3fs closes a dropped filesystem's session from a finalizer, on whatever event loop runs when the
    collector does: collected inside a later async test, that fails the test ("attached to a different
    loop"). Collected here, outside any loop, the session closes on fsspec's own loop."""
    yield
    gc.collect()


def etags(lake: Lake) -> dict[str, str]:
    """Every partition object of the lake -> its ETag (what a rewrite would change)."""
    return {relative: lake.identity(relative) for dataset in ("cdrs", "mdrs") for relative in lake.partition_files(dataset)}


_KILLABLE = textwrap.dedent(
    """
    import asyncio, sys
    from tests.test_sync import run_sync_progress

    asyncio.run(run_sync_progress(sys.argv[1], sys.argv[2], sys.argv[3]))
    """
)


async def test_a_sync_killed_then_resumed_on_s3_is_exact_and_a_rerun_rewrites_nothing(
    sandbox: str, s3_data_dir: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = s3_data_dir
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE, sandbox, url, "killed"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        for _ in range(2):
            line = child.stdout.readline()
            assert line.startswith("slices "), child.stderr.read() if child.stderr else line
        await asyncio.sleep(random.Random(3).uniform(0, 1.5 * _TICK_PAUSE_SECS))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        reap(child)
    assert child.returncode == -signal.SIGKILL
    lake = Lake(url)
    account = lake.for_account(DEFAULT_ACCOUNT)
    # The killed sync's lock object stays (a store releases nothing); every day it left is whole.
    holder = json.loads(lake.read_bytes(SYNC_LOCK) or b"{}")
    assert (holder["run_id"], holder["pid"], holder["host"]) == ("killed", child.pid, socket.gethostname())
    for kind in api.RECORD_TYPES:
        for day in account.partition_days(kind):
            assert account.read_partition(kind, day, api.LAKE_SCHEMAS[kind]).height > 0
    landed = sum(len(run.done) for kind in api.RECORD_TYPES for run in open_checkpoints(account, kind))
    assert landed >= 1

    # The next sync takes the dead holder's lock over and resumes where it stopped.
    with caplog.at_level(logging.WARNING, logger="pipelines.sync_lock"):
        report = await run_sync(sandbox, url, WINDOW_LONG, NOW, "resumed")
    assert report.ok, report.failures
    assert any("took over the sync lock" in record.getMessage() for record in caplog.records)
    assert sum(k.skipped for k in report.kinds) == landed
    assert_lake_is_the_export(account, export(tmp_path, NOW, WINDOW_LONG))
    assert not lake.exists(SYNC_LOCK)

    before = etags(lake)
    again = await run_sync(sandbox, url, WINDOW_LONG, NOW, "again")
    assert again.ok and all(k.new == k.updated == 0 for k in again.kinds)
    assert etags(lake) == before


def test_every_command_works_on_an_s3_data_dir_and_the_secret_never_shows(
    prefect_harness, sandbox: str, s3_data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = s3_data_dir
    monkeypatch.setenv("OPENTACT_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("OPENTACT_BASE_URL", sandbox)
    monkeypatch.setenv("OPENTACT_BACKOFF_BASE_SECS", "0.02")
    monkeypatch.setenv("OPENTACT_BACKOFF_MAX_SECS", "0.3")
    monkeypatch.setenv("OPENTACT_PAGE_SIZE", "40")
    monkeypatch.chdir(tmp_path)
    shown: list[str] = []

    def cdr(*args: str) -> tuple[int, str, str]:
        code, out, err = run_cdr(capsys, monkeypatch, *args)
        shown.append(out + err)
        return code, out, err

    code, out, err = cdr("sync", "--start", "2026-10-02T12:00:00Z", "--end", "2026-10-05T00:00:00Z",
                         "--now", "2026-10-08T06:00:00Z", "--data-dir", url)
    assert code == 0, err
    truth = export(tmp_path, NOW, WINDOW)
    lake = Lake(url)
    assert_lake_is_the_export(lake.for_account(DEFAULT_ACCOUNT), truth)
    assert not Path("s3:").exists() and not any(Path(".").glob("s3*"))

    # Built locally, published as one object; readers query a copy fetched by its ETag.
    code, out, err = cdr("build", "--data-dir", url)
    assert code == 0, err
    assert f"into {url}/{WAREHOUSE_FILE} " in out
    cache = work_dir(url)
    assert cache.is_relative_to(tmp_path / "cache")
    published = lake.fs.info(lake.path(WAREHOUSE_FILE))["ETag"]
    assert (cache / ETAG_FILE).read_text() == published
    copy = (cache / WAREHOUSE_FILE).stat()

    code, out, err = cdr("sql", "select count(*) as n from calls", "--format", "csv", "--data-dir", url)
    assert code == 0, err
    assert out.splitlines() == ["n", str(len(truth["cdrs"]))]
    assert (cache / WAREHOUSE_FILE).stat().st_ino == copy.st_ino  # the copy matched: nothing fetched
    # Masked and confined as on disk: numbers masked, no file outside the data dir's lake readable.
    code, out, err = cdr("sql", "select cli from calls limit 3", "--format", "csv", "--mask-numbers", "--data-dir", url)
    assert code == 0 and len(out.splitlines()) == 4 and all("••" in line for line in out.splitlines()[1:]), err
    lake.fs.pipe_file(f"{lake.root.rsplit('/', 1)[0]}/outside.csv", b"a\n1\n")
    code, out, err = cdr("sql", f"select * from read_csv('{url.rsplit('/', 1)[0]}/outside.csv')", "--data-dir", url)
    assert (code, out) == (1, "") and "file system operations are disabled by configuration" in err
    code, out, err = cdr("sql", f"select count(*) from read_parquet('{url}/lake/cdrs/*/*/data.parquet')",
                         "--format", "csv", "--data-dir", url)
    assert (code, out.splitlines()) == (0, ["count_star()", str(len(truth["cdrs"]))]), err
    # Another machine (an empty cache) fetches it, and the views read the lake on the store.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-cache"))
    code, out, err = cdr("sql", "select count(*) as n from messages", "--format", "csv", "--data-dir", url)
    assert code == 0, err
    assert out.splitlines() == ["n", str(len(truth["mdrs"]))]
    assert (tmp_path / "other-cache").is_dir()

    # The finance statement is the independent sum of the served records, to the cent.
    code, out, err = cdr("report", "finance", "--month", "2026-10", "--allow-partial", "--no-xlsx",
                         "--out", str(tmp_path / "finance"), "--data-dir", url)
    assert code == 0, err
    with open(tmp_path / "finance" / "finance_2026-10.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    statement = {
        (row["month"], row["product"], row["direction"], row["currency"]):
            [int(row["records"]), int(row["billed_duration_secs"]), int(row["parts"]), Decimal(row["cost"])]
        for row in rows
    }
    assert statement == _statement_of(truth)

    code, out, err = cdr("alerts", "--range", "last_30_days", "--format", "json", "--data-dir", url)
    assert code == 0, err

    lake.write_bytes("site/accounts/gone/index.html", b"a page of an account no longer held")
    code, out, err = cdr("dashboards", "--data-dir", url)
    assert code == 0, err
    assert f"(uploaded to {url}/site)" in out
    site = work_dir(url) / "site"
    assert lake.list_files("site") == sorted(f"site/{p.relative_to(site).as_posix()}" for p in site.rglob("*") if p.is_file())
    assert lake.exists("site/index.html") and lake.exists("site/site.json")

    code, out, err = cdr("status", "--json", "--data-dir", url)
    assert code == 0, err
    status = json.loads(out)
    assert status["data_dir"] == url and status["synced"]
    assert status["cdrs"]["records"] == len(truth["cdrs"])
    assert status["last_sync"]["status"] == "completed" and status["last_build"]["status"] == "passed"
    assert status["dashboards"]["made_at"] is not None and status["dashboards"]["site"] == f"{url}/site"
    # the quarantine read on the store, each record counted once as the warehouse counts it
    code, out, err = cdr("sql", "select kind, count(*) from stg_quarantine group by kind", "--format", "csv", "--data-dir", url)
    assert code == 0, err
    quarantined = {kind: int(count) for kind, count in (line.split(",") for line in out.splitlines()[1:])}
    assert quarantined and quarantined == {k: status[k]["quarantined"] for k in api.RECORD_TYPES if status[k]["quarantined"]}

    # An incremental build after a re-sync starts from the cached warehouse.
    code, out, err = cdr("build", "--data-dir", url)
    assert code == 0, err
    assert "incremental build: 0 changed day(s) rebuilt" in out
    assert not any(S3_SECRET_KEY in text for text in shown)


def test_one_sync_at_a_time_holds_on_s3_and_a_stale_lock_is_taken_over(
    s3_data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = s3_data_dir
    lake = Lake(url)
    monkeypatch.setenv("OPENTACT_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(sync_lock_module, "LOCK_REFRESH_SECS", 0.2)
    with lake.sync_lock("holder"):
        first = lake.fs.info(lake.path(SYNC_LOCK))["ETag"]
        code, out, err = run_cdr(capsys, monkeypatch, "sync", "--range", "yesterday", "--data-dir", url)
        assert (code, out) == (1, "")
        assert err.startswith(f"error: another sync holds the data dir {url} (lock object {url}/{SYNC_LOCK}; held by "
                              f"pid {os.getpid()} on {socket.gethostname()} since ")
        assert err.endswith(", run holder); wait for it to finish, or use another --data-dir (a lock not refreshed "
                            "for 10 minutes is taken over)\n") and err.count("\n") == 1
        with pytest.raises(DataDirBusy):
            with Lake(url).sync_lock("second"):
                pass
        # The holder refreshes its lock while it holds it.
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while lake.fs.info(lake.path(SYNC_LOCK))["ETag"] == first:
            assert datetime.now(UTC) < deadline
        assert json.loads(lake.read_bytes(SYNC_LOCK) or b"")["run_id"] == "holder"
    assert not lake.exists(SYNC_LOCK)

    def lock_of(host: str, refreshed: datetime) -> bytes:
        stamp = refreshed.isoformat(timespec="seconds").replace("+00:00", "Z")
        return orjson.dumps({"run_id": "away", "host": host, "pid": 1, "started_at": stamp, "refreshed_at": stamp})

    # Another host's lock refreshed a minute ago holds; one not refreshed for 11 minutes is taken over,
    # by exactly one of two syncs trying at once.
    lake.write_bytes(SYNC_LOCK, lock_of("elsewhere", datetime.now(UTC) - timedelta(minutes=1)))
    with pytest.raises(DataDirBusy, match=r"held by pid 1 on elsewhere since .*, run away\)"):
        check_no_sync(Lake(url))
    lake.write_bytes(SYNC_LOCK, lock_of("elsewhere", datetime.now(UTC) - timedelta(minutes=11)))
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def take(run_id: str) -> None:
        barrier.wait()
        try:
            with Lake(url).sync_lock(run_id):
                outcomes.append(json.loads(lake.read_bytes(SYNC_LOCK) or b"")["run_id"])
                barrier.wait()  # both have tried while the winner holds it
        except DataDirBusy:
            outcomes.append("busy")
            barrier.wait()

    threads = [threading.Thread(target=take, args=(name,)) for name in ("taker-1", "taker-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes)[0] == "busy" and sorted(outcomes)[1] in ("taker-1", "taker-2"), outcomes
    assert not lake.exists(SYNC_LOCK)


def _offline_in(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from `folder`, with a key set and an API no request can reach."""
    monkeypatch.setenv("OPENTACT_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.chdir(folder)


# The commands reading a data dir: each refuses a bad one before it fetches or writes anything.
EVERY_DATA_DIR_COMMAND = pytest.mark.parametrize(
    "command",
    [("status",), ("sync", "--range", "yesterday"), ("build",), ("sql", "select 1"),
     ("report", "finance", "--month", "2026-10"), ("dashboards",)],
    ids=lambda command: command[0],
)


def test_a_wrong_secret_is_one_line_naming_the_variables_and_never_showing_the_secret(
    s3_data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3fs import S3FileSystem

    wrong = "wrong-" + S3_SECRET_KEY[::-1]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    _offline_in(tmp_path, monkeypatch)
    # fsspec keeps one filesystem per set of options: the one made with the right key must not be reused.
    S3FileSystem.clear_instance_cache()
    try:
        # a sync lists the lake's folders first (for the layout of earlier releases), before any read
        for command in (("status",), ("sync", "--range", "yesterday"), ("build",), ("sql", "select 1")):
            code, out, err = run_cdr(capsys, monkeypatch, *command, "--data-dir", s3_data_dir)
            assert (code, out) == (1, ""), err
            assert err.startswith("error: cannot ") and err.count("\n") == 1, err
            assert "(AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)" in err
            assert wrong not in err and S3_SECRET_KEY not in err
    finally:
        S3FileSystem.clear_instance_cache()
    assert [path.name for path in tmp_path.iterdir()] in ([], ["cache"])  # no folder named "s3:"


def test_a_build_of_an_empty_s3_data_dir_is_refused(s3_data_dir: str) -> None:
    from pipelines.models import build

    with pytest.raises(CdrError, match=f"data dir {s3_data_dir} does not exist"):
        build(s3_data_dir)


def test_status_of_an_empty_s3_data_dir_says_never_synced_not_missing(
    s3_data_dir: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store has no folders: a prefix without objects is where a first sync will land, not a mistyped one.
    code, out, err = run_cdr(capsys, monkeypatch, "status", "--data-dir", s3_data_dir)
    assert (code, err) == (0, "") and out.startswith(f"data dir    {s3_data_dir}: never synced ")


@pytest.mark.parametrize(
    "command", [("sql", "select 1"), ("report", "finance", "--month", "2026-10"), ("alerts",), ("dashboards",)],
    ids=lambda command: command[0],
)
def test_a_missing_warehouse_is_named_by_its_url_on_the_store_not_by_its_local_copy(
    s3_data_dir: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command,
) -> None:
    Lake(s3_data_dir).write_bytes("state/syncs.json", b"[]")  # a data dir that was synced, never built
    code, out, err = run_cdr(capsys, monkeypatch, *command, "--data-dir", s3_data_dir)
    assert (code, out, err) == (1, "", f"error: no warehouse at {s3_data_dir}/{WAREHOUSE_FILE}: run `cdr build` first\n")


@EVERY_DATA_DIR_COMMAND
def test_a_missing_bucket_is_one_line_for_every_command_not_an_empty_data_dir(
    s3_data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command,
) -> None:
    # The store answers "no such file" for every file of a missing bucket: not a data dir never synced.
    _offline_in(tmp_path, monkeypatch)
    url = "s3://cdr-no-such-bucket/prefix"
    code, out, err = run_cdr(capsys, monkeypatch, *command, "--data-dir", url)
    assert (code, out, err) == (2, "", f"error: the bucket cdr-no-such-bucket of the data dir {url} does not exist: "
                                       "create it (an empty one), or fix the URL of --data-dir (CDR_DATA_DIR)\n")
    assert [path.name for path in tmp_path.iterdir()] in ([], ["cache"])


@EVERY_DATA_DIR_COMMAND
def test_a_data_dir_naming_an_object_is_refused_as_a_file_as_on_disk(
    s3_data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command,
) -> None:
    # Keys below an object's key are allowed by the store, but the user meant a folder, not a file.
    _offline_in(tmp_path, monkeypatch)
    lake = Lake(s3_data_dir)
    lake.write_bytes("notes.txt", b"not a data dir")
    url = f"{s3_data_dir}/notes.txt"
    code, out, err = run_cdr(capsys, monkeypatch, *command, "--data-dir", url)
    assert (code, out, err) == (2, "", f"error: the data dir {url} is a file, not a folder: give --data-dir "
                                       "(CDR_DATA_DIR) a folder\n")
    assert lake.fs.find(lake.root) == [lake.path("notes.txt")]  # nothing written below it


def test_the_record_of_sent_alerts_is_kept_on_the_store(s3_data_dir: str) -> None:
    from pipelines.alerts import ALERTS_DIR, SENT_FILE, ConditionState, SentRecord, read_sent, write_sent

    assert read_sent(s3_data_dir) == SentRecord()
    when = datetime(2026, 10, 3, tzinfo=UTC)
    record = SentRecord(alerts={"key": {"sent_at": "2026-10-03T00:00:00Z"}},
                        conditions={"cond": ConditionState(sent_window_end=when, last_window_end=when)})
    write_sent(s3_data_dir, record)
    assert Lake(s3_data_dir).exists(f"{ALERTS_DIR}/{SENT_FILE}")
    assert read_sent(s3_data_dir) == record


# -- a store that cannot be reached: no server needed -----------------------------------------------


def _closed_port() -> int:
    """A loopback port nothing listens on (one the kernel just gave out, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """The AWS_* variables pointing at a closed loopback port, a cache folder of the test's own -> that address."""
    from s3fs import S3FileSystem

    address = f"http://127.0.0.1:{_closed_port()}"
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", address)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's own retries would only make each command slower
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    S3FileSystem.clear_instance_cache()
    yield address
    S3FileSystem.clear_instance_cache()


STORE_ADVICE_TAIL = "; check the store's address and keys (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, "


@pytest.mark.parametrize(
    "command",
    [("status",), ("sync",), ("build",), ("sql", "select 1"), ("report", "finance", "--month", "2026-10"),
     ("dashboards",)],
    ids=lambda command: "-".join(command[:2]),
)
def test_an_unreachable_store_is_one_line_naming_its_address_for_every_command(
    unreachable: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command,
) -> None:
    monkeypatch.setenv("OPENTACT_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9")
    code, out, err = run_cdr(capsys, monkeypatch, *command, "--data-dir", "s3://bucket/prefix")
    assert (code, out) == (1, ""), err
    assert err.startswith(f"error: cannot reach the object store at {unreachable} (connection refused){STORE_ADVICE_TAIL}")
    assert err.count("\n") == 1 and S3_SECRET_KEY not in err, err
    assert [path.name for path in tmp_path.iterdir()] in ([], ["cache"])


def test_an_https_store_endpoint_on_a_plain_http_server_says_so_in_words_not_openssls(
    unreachable: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fixtures.alerts import webhook_receiver

    with webhook_receiver() as plain:  # any server speaking plain HTTP
        address = plain.url.split("/hook/")[0].replace("http://", "https://")
        monkeypatch.setenv("AWS_ENDPOINT_URL", address)
        code, out, err = run_cdr(capsys, monkeypatch, "status", "--data-dir", "s3://bucket/prefix")
    assert (code, out) == (1, ""), err
    assert err.startswith(
        f"error: cannot reach the object store at {address} (the server answered plain HTTP, not HTTPS: check the "
        f"URL's scheme (http://) and port){STORE_ADVICE_TAIL}"
    ), err
    assert err.count("\n") == 1 and S3_SECRET_KEY not in err, err


def test_an_http_store_endpoint_on_a_tls_server_says_it_closed_the_connection_and_to_check_the_scheme(
    unreachable: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fixtures.tls import tls_only_server

    with tls_only_server(tmp_path) as address:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{address}")
        code, out, err = run_cdr(capsys, monkeypatch, "status", "--data-dir", "s3://bucket/prefix")
    assert (code, out) == (1, ""), err
    assert re.match(
        rf"error: cannot reach the object store at http://{address} \(the server (reset the connection|closed the "
        r"connection without an answer), as an HTTPS server does to plain HTTP: if it is one, use https://\)", err
    ), err
    assert STORE_ADVICE_TAIL in err and err.count("\n") == 1, err


def test_a_store_host_not_found_is_one_line_and_a_password_in_its_url_never_shows(
    unreachable: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://cdr-no-such-host.invalid:9")
    code, out, err = run_cdr(capsys, monkeypatch, "status", "--data-dir", "s3://bucket/prefix")
    assert (code, out) == (1, ""), err
    assert err.startswith("error: cannot reach the object store at http://cdr-no-such-host.invalid:9 (host not found: ")
    assert STORE_ADVICE_TAIL in err and err.count("\n") == 1, err

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://user:{S3_SECRET_KEY}@{unreachable.split('://')[1]}")
    code, out, err = run_cdr(capsys, monkeypatch, "status", "--data-dir", "s3://bucket/prefix")
    assert (code, out) == (1, ""), err
    assert err.startswith("error: cannot reach the object store") and STORE_ADVICE_TAIL in err, err
    assert err.count("\n") == 1 and S3_SECRET_KEY not in err, err


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
         "error: no keys for the object store: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or "
         "run where an instance role provides them)\n"),
        ({"AWS_SECRET_ACCESS_KEY": None},
         "error: incomplete keys for the object store (AWS_SECRET_ACCESS_KEY is missing): set both AWS_ACCESS_KEY_ID "
         "and AWS_SECRET_ACCESS_KEY\n"),
        ({"AWS_PROFILE": "cdr-no-such-profile"},
         "error: the AWS profile cdr-no-such-profile (AWS_PROFILE) is in no AWS config file: fix its name, or unset "
         "it and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n"),
        ({"AWS_ENDPOINT_URL": "127.0.0.1:9000"}, "error: AWS_ENDPOINT_URL is not a URL the store's client accepts: "
         "give its scheme, host and port, e.g. https://s3.example.com or http://127.0.0.1:9000 (unset it for AWS S3)\n"),
        ({"AWS_ENDPOINT_URL": f"htp://user:{S3_SECRET_KEY}@127.0.0.1:9000"}, "error: AWS_ENDPOINT_URL is not a URL "
         "the store's client accepts: give its scheme, host and port, e.g. https://s3.example.com or "
         "http://127.0.0.1:9000 (unset it for AWS S3)\n"),
    ],
    ids=["no-keys", "no-secret", "no-such-profile", "endpoint-without-scheme", "endpoint-of-unknown-scheme"],
)
@pytest.mark.parametrize(
    "command",
    [("status",), ("sync",), ("build",), ("sql", "select 1"), ("report", "finance", "--month", "2026-10"),
     ("dashboards",), ("alerts",)],
    ids=lambda command: command[0],
)
def test_aws_variables_the_client_cannot_use_are_one_line_naming_them_for_every_command(
    unreachable: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    command, variables: dict[str, str | None], expected: str,
) -> None:
    # botocore checks these only on the first request: its errors are no OSError the lake's handlers catch.
    monkeypatch.setenv("OPENTACT_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("OPENTACT_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))  # no profile of the machine's own
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role either
    for name, value in variables.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    code, out, err = run_cdr(capsys, monkeypatch, *command, "--data-dir", "s3://bucket/prefix")
    assert (code, out, err) == (2, "", expected)
    assert [path.name for path in tmp_path.iterdir()] in ([], ["cache"])


def test_a_slice_failing_on_keys_the_store_client_cannot_find_names_the_variables(
    unreachable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a Dask worker started without the AWS variables meets when it lands a slice (the run's own
    # process, which has them, has read the lake and taken the lock): the cause its slices fail with.
    from botocore.exceptions import NoCredentialsError

    from pipelines.sync import slice_failure

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    lake = Lake("s3://bucket/prefix")
    with pytest.raises(NoCredentialsError) as raised:
        lake.fs.cat_file(lake.path("state/syncs.json"))
    failure = slice_failure("cdrs", WINDOW, raised.value)
    assert failure.cause == ("no keys for the object store: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
                             "AWS_PROFILE, or run where an instance role provides them)")
    assert not failure.retryable


def test_a_store_that_does_not_answer_in_time_is_the_same_one_line(
    unreachable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A timeout is an OSError the lake's own handlers catch: they tell it by the same rule.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # connections are taken by the kernel; nothing ever answers them
        address = f"http://127.0.0.1:{silent.getsockname()[1]}"
        lake = Lake("s3://bucket/prefix", storage_options={
            "endpoint_url": address, "config_kwargs": {"read_timeout": 0.3, "retries": {"max_attempts": 1}},
        })
        monkeypatch.setattr(lake.fs, "retries", 1)
        with pytest.raises(CdrError) as raised:
            lake.read_bytes("state/syncs.json")
    assert str(raised.value).startswith(f"cannot reach the object store at {address} (no answer in time){STORE_ADVICE_TAIL}")


@pytest.mark.parametrize(
    "command",
    [("report", "finance", "--month", "2026-10", "--out"), ("sql", "select 1", "--out"), ("dashboards", "--out")],
    ids=lambda command: command[0],
)
def test_an_out_into_the_store_is_refused_as_a_url_and_makes_no_local_folder(
    unreachable: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command,
) -> None:
    # A path would fold the URL into the local folder `s3:/bucket/prefix`, named back to the user as if to create it.
    target = "s3://bucket/prefix/exports"
    code, out, err = run_cdr(capsys, monkeypatch, *command, target, "--data-dir", "s3://bucket/prefix")
    assert (code, out) == (2, ""), err
    assert err == f"error: --out {target}: --out takes a local path, not a URL; write the result locally, then copy it\n"
    assert [path.name for path in tmp_path.iterdir()] in ([], ["cache"])
