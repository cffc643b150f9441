"""One sync at a time per data dir: the sync lock against other processes, crashes, failures and cancellation."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest

from pipelines.dates import Window
from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.lake import Lake
from pipelines.sync_lock import SYNC_LOCK, DataDirBusy, alive, check_no_sync
from pipelines.opentact.client import ApiKeyRejected, Page
from pipelines.runs import SYNC_LOG
from pipelines.sync import sync
from tests.test_sync import RECORDS, FakeClient, at, day_window, lake_ids, settings

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]

# A holder in its own process: takes the data dir's lock as a sync does, says so, waits on stdin.
_HOLDER = textwrap.dedent(
    """
    import sys

    from pipelines.lake import Lake

    with Lake(sys.argv[1]).sync_lock(sys.argv[2]):
        print("held", flush=True)
        sys.stdin.read()
    """
)


@pytest.fixture
def anyio_backend() -> str:
    """The pipeline's event loop."""
    return "asyncio"


@contextmanager
def holder(data_dir: Path, run_id: str = "holder-run") -> Iterator[subprocess.Popen[str]]:
    """A process holding the data dir's sync lock until its stdin closes (or it is killed)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data_dir), run_id],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None and child.stderr is not None
        line = child.stdout.readline()
        assert line == "held\n", child.stderr.read()
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def is_free(data_dir: Path) -> bool:
    """Whether the OS lock on the data dir's lock file can be taken now (flock: per open file, so even in-process)."""
    try:
        fd = os.open(data_dir / SYNC_LOCK, os.O_RDWR)
    except FileNotFoundError:
        return True  # no lock file: no holder
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops a flock this probe took
    return True


def listing(data_dir: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Every path under the data dir -> (size, mtime in ns, the bytes of small files)."""
    found = {}
    for path in sorted(data_dir.rglob("*")):
        info = path.stat()
        small = path.is_file() and info.st_size < 4096
        found[str(path.relative_to(data_dir))] = (info.st_size, info.st_mtime_ns, path.read_bytes() if small else None)
    return found


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


async def test_a_second_sync_fails_at_once_naming_the_holder_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = await sync("cdrs", day_window(1, 1), settings(tmp_path), FakeClient(RECORDS), at(6), "run-1")
    assert first.ok
    with holder(data) as held:
        before = listing(data)
        client = FakeClient(RECORDS)
        with pytest.raises(DataDirBusy) as busy:
            await sync("cdrs", day_window(2, 3), settings(tmp_path), client, at(6), "run-2")
        assert str(busy.value) == (
            f"another sync holds the data dir {data} (lock file {data}/{SYNC_LOCK}; held by pid {held.pid} "
            f"on {os.uname().nodename} since {json.loads((data / SYNC_LOCK).read_text())['started_at']}, "
            "run holder-run); wait for it to finish, or use another --data-dir"
        )
        assert busy.value.exit_code == 1
        assert client.read == []
        assert listing(data) == before
        assert held.stdin is not None
        held.stdin.close()
        assert held.wait(timeout=30) == 0
    second = await sync("cdrs", day_window(2, 3), settings(tmp_path), FakeClient(RECORDS), at(6), "run-2")
    assert second.ok
    assert list(lake_ids(Lake(data).for_account(DEFAULT_ACCOUNT))) == [date(2026, 10, d) for d in (1, 2, 3)]


async def test_a_holder_killed_with_sigkill_leaves_the_data_dir_free(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with holder(data, "killed-run") as held:
        assert not is_free(data)
        held.send_signal(signal.SIGKILL)
        assert held.wait(timeout=30) == -signal.SIGKILL
    # The lock file and the dead holder's details stay; the kernel dropped the lock itself.
    assert json.loads((data / SYNC_LOCK).read_text())["run_id"] == "killed-run"
    seen = []

    def tick(_: object) -> None:
        seen.append(json.loads((data / SYNC_LOCK).read_text()))

    report = await sync("cdrs", day_window(1, 3), settings(tmp_path), FakeClient(RECORDS), at(6), "after-kill", tick)
    assert report.ok and report.kinds[0].landed == 3
    assert seen[0] | {"started_at": "-"} == {
        "pid": os.getpid(), "host": os.uname().nodename, "started_at": "-", "run_id": "after-kill",
    }
    # The sync that ends removes the lock file, the dead holder's included.
    assert not (data / SYNC_LOCK).exists()


@pytest.mark.parametrize("leftover", ["details of a dead process", "garbage", "empty"])
async def test_a_lock_file_left_by_a_dead_process_does_not_block(tmp_path: Path, leftover: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / SYNC_LOCK).write_bytes({
        "details of a dead process": json.dumps(
            {"pid": dead_pid(), "host": os.uname().nodename, "started_at": "2026-10-05T01:00:00Z", "run_id": "crashed"}
        ).encode(),
        "garbage": b"\x00\xff{not json",
        "empty": b"",
    }[leftover])
    report = await sync("cdrs", day_window(1, 3), settings(tmp_path), FakeClient(RECORDS), at(6), "run-1")
    assert report.ok and report.kinds[0].landed == 3
    assert not (data / SYNC_LOCK).exists()


async def test_a_held_lock_whose_file_names_a_dead_process_is_reported_without_details(tmp_path: Path) -> None:
    # The instant between a holder taking the lock and writing its details: the file still names the last one.
    data = tmp_path / "data"
    data.mkdir()
    stale = {"pid": dead_pid(), "host": os.uname().nodename, "started_at": "2026-10-05T01:00:00Z", "run_id": "old"}
    (data / SYNC_LOCK).write_text(json.dumps(stale))
    fd = os.open(data / SYNC_LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(DataDirBusy) as busy:
            await sync("cdrs", day_window(1, 3), settings(tmp_path), FakeClient(RECORDS), at(6), "run-1")
    finally:
        os.close(fd)
    assert str(busy.value) == (
        f"another sync holds the data dir {data} (lock file {data}/{SYNC_LOCK}); "
        "wait for it to finish, or use another --data-dir"
    )
    assert json.loads((data / SYNC_LOCK).read_text()) == stale


async def test_a_sync_that_raised_releases_the_lock_and_leaves_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with pytest.raises(ApiKeyRejected):
        await sync(["cdrs", "mdrs"], day_window(1, 3), settings(tmp_path), FakeClient(RECORDS, key_rejected=True), at(6), "run-1")
    assert is_free(data)
    # No lock file, no checkpoint of a run that landed nothing: nothing a later run needs, only the run's log entry.
    assert sorted(data.rglob("*")) == [data / ".staging", data / "state", data / SYNC_LOG]
    report = await sync("cdrs", day_window(1, 3), settings(tmp_path), FakeClient(RECORDS), at(6), "run-2")
    assert report.ok


class StalledClient(FakeClient):
    """Reads no page until cancelled: a sync caught in the middle."""

    def __init__(self) -> None:
        super().__init__(RECORDS)
        self.reading = asyncio.Event()

    async def read_slice(self, kind: str, slice_: Window) -> AsyncIterator[Page]:
        self.reading.set()
        await asyncio.Event().wait()
        yield  # pragma: no cover - never reached; makes this an async generator


async def test_a_sync_holds_the_lock_while_it_runs_and_releases_it_when_cancelled(tmp_path: Path) -> None:
    data = tmp_path / "data"
    stalled = StalledClient()
    running = asyncio.create_task(sync("cdrs", day_window(1, 3), settings(tmp_path), stalled, at(6), "stalled"))
    await asyncio.wait_for(stalled.reading.wait(), timeout=30)
    assert not is_free(data)
    # A second sync in the same process contends too: the lock is per open file, not per process.
    with pytest.raises(DataDirBusy, match=rf"held by pid {os.getpid()} .* run stalled\); wait for it to finish"):
        await sync("cdrs", day_window(1, 3), settings(tmp_path), FakeClient(RECORDS), at(6), "second")
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert is_free(data)


# Takes and drops the lock as fast as it can; while holding it, owns a marker file that only one
# holder at a time can create. Prints how often it held the lock.
_CONTENDER = textwrap.dedent(
    """
    import os, sys

    from pipelines.lake import Lake
    from pipelines.sync_lock import DataDirBusy

    lake, marker, held = Lake(sys.argv[1]), os.path.join(sys.argv[1], "holder"), 0
    for _ in range(int(sys.argv[2])):
        try:
            with lake.sync_lock("contender"):
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))  # FileExistsError: two holders at once
                held += 1
                os.unlink(marker)
        except DataDirBusy:
            pass
    print(held)
    """
)


def test_processes_taking_and_dropping_the_lock_never_hold_it_together(tmp_path: Path) -> None:
    # Each release removes the lock file: a contender that opened the removed file must not hold
    # it beside one that locked the new file.
    data = tmp_path / "data"
    data.mkdir()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, str(data), "300"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for _ in range(3)
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], [err for _, err in outputs]
    assert all(int(out) > 0 for out, _ in outputs)
    assert sorted(data.iterdir()) == []


def test_the_probe_removes_a_lock_file_no_one_holds(tmp_path: Path) -> None:
    (tmp_path / SYNC_LOCK).write_text('{"pid": 1, "host": "gone", "started_at": "-", "run_id": "killed"}')
    check_no_sync(Lake(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_the_lock_is_released_on_keyboard_interrupt(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "data")
    with pytest.raises(KeyboardInterrupt):
        with lake.sync_lock("interrupted"):
            assert not is_free(tmp_path / "data")
            raise KeyboardInterrupt
    assert is_free(tmp_path / "data")


def test_an_object_store_data_dir_takes_no_lock_and_writes_nothing() -> None:
    lake = Lake(f"memory://lock-{uuid.uuid4().hex}")
    with lake.sync_lock("one"), lake.sync_lock("two"):
        assert not lake.fs.exists(lake.path(SYNC_LOCK))
    assert lake.list_files(".staging") == [] and not lake.fs.exists(lake.root)


def test_the_sync_command_refuses_a_busy_data_dir_before_prefect_starts(tmp_path: Path) -> None:
    from pipelines.runs import check_sync
    from pipelines.settings import Settings

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    values = {"OPENTACT_API_KEY": "k", "OPENTACT_BASE_URL": "http://127.0.0.1:9", "CDR_DATA_DIR": data_dir}
    arguments = {"date_range": "yesterday", "now": "2026-03-10T12:00:00Z", "settings": Settings(**values)}
    with holder(data_dir):
        before = listing(data_dir)
        with pytest.raises(DataDirBusy, match=r"another sync holds the data dir .*pid \d+"):
            check_sync(**arguments)
        assert listing(data_dir) == before
        assert not is_free(data_dir)  # the probe did not take the holder's lock away
    check_sync(**arguments)  # free again
    assert is_free(data_dir)


def test_the_probe_creates_nothing_in_a_data_dir_never_synced(tmp_path: Path) -> None:
    check_no_sync(Lake(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_alive_tells_a_running_process_from_a_finished_one():
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    assert alive(os.getpid()) and not alive(finished.pid)
