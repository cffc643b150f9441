"""Durable local files: new bytes replace a file whole, and are on disk once the write returns.

A crash at any instant leaves each file old or new, never part-written. Kept apart from lake.py
because more than the lake writes this way: the warehouse's local copy (remote.py), exports
(sql.py, reports.py), the build record (status.py) and the alert state (alerts.py).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

# Temporaries start with a dot and end in `.tmp`: hidden from directory scans and from every
# glob on a real extension.
TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


@contextmanager
def atomic_file(target: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path for a local file's new bytes; once the block succeeds they replace `target` whole.

    The temporary (beside the target) is fsync'ed and renamed over the target, so a crash at any
    instant leaves the old file or the new one; on a failure the target is untouched.
    """
    staged = StagedFiles()
    try:
        yield staged.temporary(os.fspath(target))
        staged.commit()
    finally:
        staged.discard()


class StagedFiles:
    """New bytes for local files, written to temporaries and then moved over their targets together.

    `commit` makes every temporary durable before renaming any, then makes the renames durable: a
    crash at any instant leaves each target old or new, never part-written, and once `commit`
    returns every file is on disk. Several files are made durable by one sync of their
    filesystem each time (`_make_durable`) instead of an fsync per file and folder.
    """

    def __init__(self, staging: str | None = None) -> None:
        self.staging = staging
        self.moves: list[tuple[str, str]] = []
        self._left: list[str] = []
        # folders made for targets: each one's entry in its parent is made durable with the renames
        self._made: list[str] = []

    def make_folder(self, target: str) -> None:
        """Create the target's folder (and any missing above it) if it is not there; OSError when a file is in its way."""
        folder = os.path.dirname(target)
        if os.path.isdir(folder):
            return
        missing = []
        while folder and not os.path.isdir(folder) and folder != os.path.dirname(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        self._made.extend(missing)

    def temporary(self, target: str) -> str:
        """A target -> the path to write its new bytes to (in `staging`, else beside the target)."""
        directory = os.path.dirname(target)
        temp = os.path.join(self.staging or directory, _temp_name(os.path.basename(target)))
        self.moves.append((temp, target))
        self._left.append(temp)
        return temp

    def commit(self) -> None:
        """Every temporary durable, then renamed over its target, then every rename durable."""
        _make_durable([temp for temp, _ in self.moves])
        for temp, target in self.moves:
            try:
                os.replace(temp, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # The target's directory is on another filesystem than `staging` (a symlinked folder):
                # copy beside it, then rename there.
                beside = os.path.join(os.path.dirname(target), _temp_name(os.path.basename(target)))
                self._left.append(beside)
                shutil.copyfile(temp, beside)
                _fsync_file(beside)
                os.replace(beside, target)
                os.unlink(temp)
        # A rename is durable only once its directory entry is on disk, and a new folder once its parent's is.
        entries = {os.path.dirname(path) for path in [*(target for _, target in self.moves), *self._made]}
        _make_durable(sorted(entries), directories=True)
        self.moves = []
        self._made = []
        self._left = []  # every temporary was renamed

    def discard(self) -> None:
        """Remove what is left of the temporaries (all of them, unless committed)."""
        for temp in self._left:
            Path(temp).unlink(missing_ok=True)
        self._left = []
        self.moves = []
        self._made = []


def remove_empty_dirs_below(top: str) -> int:
    """Remove every empty directory below `top` (deepest first; `top` stays) -> how many."""
    removed = 0
    for directory, _, _ in os.walk(top, topdown=False):
        if directory != top:
            with suppress(OSError):  # not empty (or not ours to remove): left as it is
                os.rmdir(directory)
                removed += 1
    return removed


def _temp_name(name: str) -> str:
    return f".{name}.{uuid.uuid4().hex[:12]}.tmp"


def _fsync_file(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: str) -> None:
    # Some filesystems refuse fsync on directories; the rename itself is still atomic.
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _make_durable(paths: list[str], directories: bool = False) -> None:
    """Files' bytes (or directories' entries) -> on disk: one filesystem sync for several on one
    filesystem that honours it, else an fsync each."""
    by_device: dict[int, list[str]] = {}
    if len(paths) > 1 and _syncfs is not None:
        for path in paths:
            by_device.setdefault(os.stat(path).st_dev, []).append(path)
    for device, group in by_device.items() if by_device else [(None, paths)]:
        if len(group) > 1 and _sync_filesystem(device, group[0]):
            continue
        for path in group:
            if directories:
                fsync_dir(path)
            else:
                _fsync_file(path)


def _load_libc() -> tuple[Callable[[int], int], Callable[[bytes, object], int]] | None:
    """Linux's syncfs(2) and statfs(2) (neither in `os`), or None where there are none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs, statfs = libc.syncfs, libc.statfs
    except (OSError, AttributeError):
        return None
    syncfs.argtypes = [ctypes.c_int]
    syncfs.restype = ctypes.c_int
    statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    statfs.restype = ctypes.c_int
    return syncfs, statfs


_LIBC = _load_libc()
_syncfs = None if _LIBC is None else _LIBC[0]
# Filesystems whose syncfs(2) writes every file's data and metadata and reports a failing disk:
# ext2/3/4, XFS, Btrfs, F2FS, ZFS. Elsewhere (FUSE, network filesystems) files are fsynced one by one.
_SYNCFS_TYPES = frozenset({0xEF53, 0x58465342, 0x9123683E, 0xF2F52010, 0x2FC12FC1})
_honours_syncfs: dict[int, bool] = {}


def _filesystem_type(path: str) -> int | None:
    """statfs(2)'s magic number of the filesystem holding `path` (None if it cannot be read)."""
    if _LIBC is None:
        return None
    buffer = ctypes.create_string_buffer(256)  # larger than any architecture's struct statfs
    if _LIBC[1](os.fsencode(path), buffer) != 0:
        return None
    # f_type is the struct's first field, a word.
    return ctypes.c_ulong.from_buffer(buffer).value & 0xFFFFFFFF


def _sync_filesystem(device: int | None, path: str) -> bool:
    """Write everything of the filesystem holding `path` (on `device`) to disk -> False where that
    cannot be asked or may not be honoured (the caller fsyncs instead); OSError when the disk fails."""
    if _syncfs is None or device is None:
        return False
    if device not in _honours_syncfs:
        _honours_syncfs[device] = _filesystem_type(path) in _SYNCFS_TYPES
    if not _honours_syncfs[device]:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs(fd) == 0:
            return True
        error = ctypes.get_errno()
    finally:
        os.close(fd)
    if error in (errno.ENOSYS, errno.EPERM, errno.EACCES):
        return False  # refused (a sandbox's seccomp filter): fsync each instead
    raise OSError(error, os.strerror(error), path)
