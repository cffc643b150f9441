"""Publish: a new warehouse replaces the old one whole, and what killed builds left is removed."""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from pipelines.errors import CdrError
from pipelines.sync_lock import alive
from pipelines.remote import fetch_warehouse, forget_copy, is_remote, publish_warehouse, work_dir
from pipelines.status import newest_sync_run, record_build

WAREHOUSE_FILE = "warehouse.duckdb"
FAILED_WAREHOUSE_FILE = "warehouse.failed.duckdb"
# `.warehouse.duckdb.<pid>.<hex>.tmp`, its WAL and its spill folder.
_BUILD_TEMP = re.compile(r"^\." + re.escape(WAREHOUSE_FILE) + r"\.(\d+)\.[0-9a-f]{12}\.tmp(?:\.wal|\.spill)?$")


class FailedBuild(CdrError):
    """A build that completed but whose data tests failed: it is kept for inspection."""


def warehouse_path(data_dir: Path | str) -> Path:
    """A data dir -> the path of its DuckDB warehouse.

    On an object store: the local copy of the published warehouse, fetched first if the store's
    is another (`pipelines.remote`).
    """
    if is_remote(data_dir):
        return fetch_warehouse(str(data_dir))
    return Path(data_dir) / WAREHOUSE_FILE


def failed_warehouse_path(data_dir: Path | str) -> Path:
    """A data dir -> where a build whose data tests failed is kept (on an object store: in the local work folder)."""
    return work_dir(data_dir) / FAILED_WAREHOUSE_FILE


@contextmanager
def new_warehouse(data_dir: Path | str, how: str | None = None) -> Iterator[Path]:
    """Yield the path to write a new warehouse to; it replaces the data dir's warehouse when the block succeeds.

    Readers see the previous warehouse or the new one, never a mix. A block raising FailedBuild
    leaves what it wrote as the failed warehouse; any other failure leaves nothing. The
    temporary's name carries this process's pid, so a later build can tell it from a killed one's.
    A build that ran its data tests is recorded (`pipelines.status.record_build`), with the sync
    run newest as it started: the one whose lake it read, and `how` it was built. On an object
    store the warehouse is built in the local work folder, then published with one upload.
    """
    sweep_killed_builds(data_dir)
    built_from = newest_sync_run(data_dir)
    work = work_dir(data_dir)
    target = work / WAREHOUSE_FILE
    temp = work / f".{WAREHOUSE_FILE}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        yield temp
        # A WAL left by a crashed writer belongs to the old file; replayed onto the new one it would corrupt it.
        Path(f"{target}.wal").unlink(missing_ok=True)
        forget_copy(data_dir)
        os.replace(temp, target)
        publish_warehouse(data_dir, target)
        # A failed build kept for inspection is stale once a build succeeds.
        failed_warehouse_path(data_dir).unlink(missing_ok=True)
        record_build(data_dir, built_from, passed=True, how=how)
    except FailedBuild:
        if temp.exists():
            os.replace(temp, failed_warehouse_path(data_dir))
        record_build(data_dir, built_from, passed=False, how=how)
        raise
    finally:
        _discard(temp)
        _discard(Path(f"{temp}.wal"))


def _discard(path: Path) -> None:
    """Remove a build's temporary file if it is there.

    On a read-only file system even removing a file that is not there fails: what cannot be
    removed is left for a later build's sweep, so that the error that stopped this build is the
    one reported.
    """
    with suppress(OSError):
        path.unlink(missing_ok=True)


class CopyBehind:
    """A file copied whole in a thread while the caller works on: in the kernel (`copy_file_range`:
    blocks shared where the file system can), then flushed to disk.

    The target is created at once, so a folder it cannot be written to fails here, before any
    work; the copy's own failure is raised by `wait`, which a caller must reach before it uses
    the target or removes it.
    """

    def __init__(self, source: Path, target: Path) -> None:
        self._error: BaseException | None = None
        src = open(source, "rb")
        try:
            dst = open(target, "wb")
        except BaseException:
            src.close()
            raise
        # the copy runs in the kernel, without the interpreter's lock: the caller's work goes on
        self._thread = threading.Thread(target=self._copy, args=(src, dst), name="cdr-copy", daemon=True)
        self._thread.start()

    def _copy(self, src: BinaryIO, dst: BinaryIO) -> None:
        try:
            with src, dst:
                _copy_whole(src, dst)
                # DuckDB syncs the file before its first write of whole blocks into it commits:
                # flushed here, that sync does not wait for the whole copy to reach the disk.
                os.fdatasync(dst.fileno())
        except BaseException as exc:  # raised in the caller's thread, by `wait`
            self._error = exc

    def wait(self) -> None:
        """Wait for the copy to be done; raise what made it fail (an OSError: the disk is full, say)."""
        self._thread.join()
        if self._error is not None:
            raise self._error


def _copy_whole(src: BinaryIO, dst: BinaryIO) -> None:
    left = os.fstat(src.fileno()).st_size
    try:
        while left > 0:
            copied = os.copy_file_range(src.fileno(), dst.fileno(), left)
            if copied == 0:
                break
            left -= copied
    except OSError:
        # a file system (or kernel) without it: a plain copy, from the start
        src.seek(0)
        dst.seek(0)
        dst.truncate()
        shutil.copyfileobj(src, dst)


def sweep_killed_builds(data_dir: Path | str) -> int:
    """Remove what builds killed mid-way left in the data dir (their temporary database, WAL, spills) -> how many.

    A temporary's name carries its builder's pid: those of a live process, this one included,
    belong to a build still running and are left alone. What cannot be removed (a read-only
    data dir) is left for the build's own write to report.
    """
    removed = 0
    data_dir = work_dir(data_dir)
    try:
        names = os.listdir(data_dir)
    except OSError:
        return 0
    for name in names:
        match = _BUILD_TEMP.match(name)
        if match is None or int(match.group(1)) == os.getpid() or alive(int(match.group(1))):
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
