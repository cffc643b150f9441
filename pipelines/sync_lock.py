"""The data dir's sync lock: at most one sync writes a data dir at a time.

Locally an OS file lock on ``<data dir>/.sync.lock``, which the kernel drops when its holder dies;
on S3 a lock object created only if absent and refreshed while held (`_ObjectLock`). Taking,
probing and taking over a lock, and naming its holder, is a job apart from the lake's storage
(lake.py): a `Lake` holds it through `Lake.sync_lock`, which also tells a layout migration
inside the block that this process holds it already. `alive` serves runs.py and models/publish.py too.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from filelock import FileLock, Timeout
from fsspec import AbstractFileSystem

from pipelines.errors import CdrError, LakeError, one_line

SYNC_LOCK = ".sync.lock"

log = logging.getLogger(__name__)


class DataDirBusy(CdrError):
    """Another sync holds the data dir's sync lock."""


class DataDir(Protocol):
    """What the lock needs of a data dir (a `Lake`): its URL, filesystem and kind, and how to name its files."""

    url: str
    fs: AbstractFileSystem
    is_local: bool
    conditional_writes: bool

    def path(self, relative: str) -> str: ...

    def display(self, relative: str) -> str: ...


@contextmanager
def hold_sync_lock(data_dir: DataDir, run_id: str) -> Iterator[None]:
    """Hold the data dir's sync lock for the block -> DataDirBusy at once if another sync holds it.

    Locally an OS file lock; on S3 a lock object (`_ObjectLock`).
    """
    if not data_dir.is_local:
        if not data_dir.conditional_writes:
            yield  # only the Python API reaches such a store: its caller is the guard
            return
        with _object_lock(data_dir, run_id):
            yield
        return
    holder = json.dumps({
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": _utc_text(datetime.now(timezone.utc)),
        "run_id": run_id,
    }).encode()
    # The OS lock (flock) is the truth: the kernel drops it when its process dies, so a crashed
    # sync never blocks; hence no soft (marker file) fallback. The holder's details are for the
    # message a second sync prints.
    held: list[os.stat_result] = []
    lock = _lock_file(data_dir, on_acquired=_write_holder(holder, held))
    try:
        _acquire(lock, data_dir.path(SYNC_LOCK))
    except Timeout:
        raise _busy(data_dir) from None
    except OSError as exc:
        raise LakeError(
            f"cannot take the sync lock {data_dir.display(SYNC_LOCK)} ({exc.strerror or exc}); "
            "the data dir must be writable, on a filesystem with file locks"
        ) from exc
    try:
        yield
    finally:
        _release(lock, data_dir.path(SYNC_LOCK), held)


def check_no_sync(data_dir: DataDir) -> None:
    """DataDirBusy at once if another sync holds the data dir (a probe: the lock is taken and dropped).

    Lets a command refuse a busy data dir before starting Prefect; `hold_sync_lock` stays the guard.
    Without a lock file no sync holds it, and the probe creates none.
    """
    if not data_dir.is_local:
        if not data_dir.conditional_writes:
            return
        try:
            holder = _ObjectLock(data_dir.fs, data_dir.path(SYNC_LOCK), "").holder()
        except OSError:
            return  # the sync's own lock reports what is wrong with the store
        if holder is not None and not holder.stale():
            raise _busy(data_dir, holder)
        return
    if not os.path.exists(data_dir.path(SYNC_LOCK)):
        return
    held: list[os.stat_result] = []
    probe = _lock_file(data_dir, on_acquired=lambda fd: held.append(os.fstat(fd)))
    try:
        probe.acquire()
    except Timeout:
        raise _busy(data_dir) from None
    except OSError:
        return  # the sync's own lock reports what is wrong with the file
    # A lock file no one holds is a crashed sync's: it goes, as a finished sync's does.
    _release(probe, data_dir.path(SYNC_LOCK), held)


def _lock_file(data_dir: DataDir, on_acquired: Callable[[int], None]) -> FileLock:
    return FileLock(
        data_dir.path(SYNC_LOCK), blocking=False, fallback_to_soft=False, preserve_lock_file=True, on_acquired=on_acquired
    )


def _busy(data_dir: DataDir, holder: _Holder | None = None) -> DataDirBusy:
    if holder is None:
        return DataDirBusy(
            f"another sync holds the data dir {data_dir.url} (lock file {data_dir.display(SYNC_LOCK)}"
            f"{_holder_text(data_dir.path(SYNC_LOCK))}); wait for it to finish, or use another --data-dir"
        )
    return DataDirBusy(
        f"another sync holds the data dir {data_dir.url} (lock object {data_dir.display(SYNC_LOCK)}{holder.text()}); "
        f"wait for it to finish, or use another --data-dir (a lock not refreshed for {LOCK_STALE_SECS // 60} "
        "minutes is taken over)"
    )


@contextmanager
def _object_lock(data_dir: DataDir, run_id: str) -> Iterator[None]:
    """Hold the lock object of a data dir on an object store (see `_ObjectLock`) for the block."""
    lock = _ObjectLock(data_dir.fs, data_dir.path(SYNC_LOCK), run_id)
    try:
        busy = lock.acquire()
    except OSError as exc:
        raise LakeError(
            f"cannot take the sync lock {data_dir.display(SYNC_LOCK)} ({one_line(exc, first=True)}); "
            "the data dir must be writable, on a store with conditional writes (If-None-Match)"
        ) from exc
    if busy is not None:
        raise _busy(data_dir, busy)
    try:
        yield
    finally:
        lock.release()


def _write_holder(record: bytes, held: list[os.stat_result]) -> Callable[[int], None]:
    def write(fd: int) -> None:
        # Runs with the lock held: the previous holder's details, if any, are replaced whole.
        held.append(os.fstat(fd))
        os.ftruncate(fd, 0)
        written = 0
        while written < len(record):
            written += os.pwrite(fd, record[written:], written)

    return write


# Tries at taking the lock when it turns out to be a file a finishing holder has just removed.
_LOCK_ATTEMPTS = 5


def _acquire(lock: FileLock, path: str) -> None:
    """Take the lock without waiting -> Timeout if another process holds it.

    A holder removes the lock file while still holding it: a contender that opened it before
    then locks a file no longer at the path, which filelock reports as failed; so try again.
    """
    for attempt in range(_LOCK_ATTEMPTS):
        try:
            lock.acquire()
            return
        except Timeout:
            if os.path.exists(path) or attempt == _LOCK_ATTEMPTS - 1:
                raise


def _release(lock: FileLock, path: str, held: list[os.stat_result]) -> None:
    """Remove the lock file while still holding it (no one can then lock it by that name), then unlock."""
    try:
        if held and os.path.samestat(os.lstat(path), held[-1]):
            os.unlink(path)
    except OSError:
        pass  # a lock file left behind never blocks: the kernel's lock is the truth
    finally:
        lock.release()


def _holder_text(path: str) -> str:
    """The lock file's holder details -> `; held by pid ...` for the message, or "" when unknown or stale."""
    try:
        with open(path, "rb") as handle:
            holder = json.loads(handle.read(4096))
        pid, host, started, run_id = (holder[k] for k in ("pid", "host", "started_at", "run_id"))
    except (OSError, ValueError, TypeError, KeyError):
        return ""
    if not isinstance(pid, int) or pid <= 0 or (host == socket.gethostname() and not alive(pid)):
        # Details of a dead process: the holder took the lock an instant ago and has not written its own yet.
        return ""
    return _held_by(pid, host, started, run_id)


def _held_by(pid: object, host: object, started_at: object, run_id: object) -> str:
    """A lock's holder (a lock file's or a lock object's) -> `; held by pid ...` for the message naming it."""
    return f"; held by pid {pid} on {host} since {started_at}, run {run_id}"


def alive(pid: int) -> bool:
    """A process id on this machine -> whether that process exists."""
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True


# -- the sync lock on an object store ------------------------------------------------------------

# The holder rewrites the lock object this often while it syncs; one not rewritten for
# LOCK_STALE_SECS is a dead (or cut off) holder's, which the next sync takes over.
LOCK_REFRESH_SECS = 60.0
LOCK_STALE_SECS = 600


@dataclass(frozen=True)
class _Holder:
    """Who holds a lock object, as its body says, and its version tag (ETag) as read."""

    etag: str
    run_id: str | None = None
    host: str | None = None
    pid: int | None = None
    started_at: str | None = None
    refreshed: datetime | None = None

    def stale(self, now: datetime | None = None) -> bool:
        """Whether the holder is dead on this host, or has not refreshed the lock for LOCK_STALE_SECS."""
        if self.host == socket.gethostname() and isinstance(self.pid, int) and self.pid > 0 and not alive(self.pid):
            return True
        if self.refreshed is None:
            return False  # an unreadable body is read again after its holder's next refresh
        now = now or datetime.now(timezone.utc)
        return (now - self.refreshed).total_seconds() > LOCK_STALE_SECS

    def text(self) -> str:
        """-> `; held by pid ...` for the message naming the holder, or "" when its body did not say."""
        if self.pid is None or self.host is None:
            return ""
        return _held_by(self.pid, self.host, self.started_at, self.run_id)


class _ObjectLock:
    """A data dir's sync lock on an object store: an object created only if absent (If-None-Match: *).

    The body names the holder (run id, host, pid, when it started and last refreshed). The holder
    rewrites it every LOCK_REFRESH_SECS, each time only if it is still the version it wrote
    (If-Match), and deletes it the same way when done. Object stores release nothing when a
    process dies: a lock whose holder is dead on this host, or which no one refreshed for
    LOCK_STALE_SECS, is taken over by a conditional rewrite, so of several takers one wins.
    """

    def __init__(self, fs: object, path: str, run_id: str) -> None:
        self.fs = fs
        self.path = path
        self.run_id = run_id
        self.started_at = _utc_text(datetime.now(timezone.utc))
        self.etag: str | None = None
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def acquire(self) -> _Holder | None:
        """Take the lock -> None, or the holder who has it (OSError if the store refuses otherwise)."""
        for _ in range(_LOCK_ATTEMPTS):
            try:
                self.etag = self._put(mode="create")
                break
            except OSError as exc:
                if not _precondition_failed(exc):
                    raise
            holder = self.holder()
            if holder is None:
                continue  # released between the two requests: try again
            if not holder.stale():
                return holder
            try:
                self.etag = self._put(IfMatch=holder.etag)
                log.warning(
                    "took over the sync lock %s from pid %s on %s (run %s): it was dead or not refreshed for %d minutes",
                    self.path, holder.pid, holder.host, holder.run_id, LOCK_STALE_SECS // 60,
                )
                break
            except OSError as exc:
                if not isinstance(exc, FileNotFoundError) and not _precondition_failed(exc):
                    raise
                # Another taker was first (or the holder refreshed it): look again.
        else:
            return self.holder() or _Holder(etag="")
        self._refresher = threading.Thread(target=self._refresh, name="cdr-sync-lock", daemon=True)
        self._refresher.start()
        return None

    def holder(self) -> _Holder | None:
        """The lock object's holder as it reads now (None: no lock object)."""
        self.fs.invalidate_cache(self.path)  # type: ignore[attr-defined]
        try:
            info = self.fs.info(self.path)  # type: ignore[attr-defined]
            body = self.fs.cat_file(self.path)  # type: ignore[attr-defined]
        except FileNotFoundError:
            return None
        etag = str(info.get("ETag") or "")
        try:
            record = json.loads(body)
            refreshed = datetime.fromisoformat(str(record["refreshed_at"]).replace("Z", "+00:00"))
            return _Holder(
                etag, str(record["run_id"]), str(record["host"]), int(record["pid"]), str(record["started_at"]),
                refreshed if refreshed.tzinfo else refreshed.replace(tzinfo=timezone.utc),
            )
        except (ValueError, TypeError, KeyError):
            modified = info.get("LastModified")
            return _Holder(etag, refreshed=modified if isinstance(modified, datetime) else None)

    def release(self) -> None:
        """Stop refreshing and delete the lock object, unless another sync has taken it over."""
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join()
        if self.etag is None:
            return
        bucket, key, _ = self.fs.split_path(self.path)  # type: ignore[attr-defined]
        try:
            self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=self.etag)  # type: ignore[attr-defined]
        except FileNotFoundError:
            pass
        except OSError as exc:
            if _precondition_failed(exc):
                log.warning("the sync lock %s was taken over by another sync: left to it", self.path)
            else:
                # A store without conditional deletes: delete it if it is still this run's.
                holder = self.holder()
                if holder is not None and holder.run_id == self.run_id and holder.pid == os.getpid():
                    self.fs.rm_file(self.path)  # type: ignore[attr-defined]
        finally:
            self.fs.invalidate_cache(self.path)  # type: ignore[attr-defined]

    def _refresh(self) -> None:
        while not self._stop.wait(LOCK_REFRESH_SECS):
            try:
                self.etag = self._put(IfMatch=self.etag)
            except OSError as exc:
                if _precondition_failed(exc) or isinstance(exc, FileNotFoundError):
                    log.error("the sync lock %s was taken over by another sync; this sync no longer holds it", self.path)
                    self.etag = None
                    return
                log.warning("could not refresh the sync lock %s (%s); trying again", self.path, one_line(exc, first=True))

    def _put(self, **conditions: object) -> str:
        body = json.dumps({
            "run_id": self.run_id, "host": socket.gethostname(), "pid": os.getpid(),
            "started_at": self.started_at, "refreshed_at": _utc_text(datetime.now(timezone.utc)),
        }).encode()
        response = self.fs.pipe_file(self.path, body, **conditions)  # type: ignore[attr-defined]
        return str((response or {}).get("ETag") or "")


def _precondition_failed(exc: BaseException) -> bool:
    """A failed conditional write -> whether the condition failed (S3's 412), as opposed to the request.

    s3fs raises FileExistsError for AWS's 412 on If-None-Match, and OSError(EINVAL) naming the
    failed precondition for stores whose 412 does not say which condition failed.
    """
    if isinstance(exc, FileExistsError):
        return True
    text = str(exc).lower().replace("-", "")
    return "precondition" in text or "412" in text


def _utc_text(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
