"""A data dir (or an --out folder) this process may not write: `cdr build`, `cdr dashboards` and
`cdr report finance` each say so in one line and leave every byte as it was.

Root writes anywhere, so as root each command runs without the capability that lets it (setpriv).
A read-only file system is a read-only bind mount in a mount namespace of the command's own (unshare).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.models import build
from tests.fixtures.lake import small_world, write_lake

CDR = Path(sys.executable).with_name("cdr")
SETPRIV = shutil.which("setpriv")
WITHOUT_OVERRIDE = (
    SETPRIV or "setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"
)


def run_unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
    """`cdr ARGS...` as a process that file permissions apply to -> its exit code and output."""
    command = (*WITHOUT_OVERRIDE, str(CDR), *args) if os.geteuid() == 0 else (str(CDR), *args)
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def tree(root: Path) -> dict[str, str]:
    """Every file and folder under root -> its content's hash (or that it is a folder)."""
    return {
        str(path.relative_to(root)): "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
    }


def read_only(root: Path) -> None:
    for path in (root, *root.rglob("*")):
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = write_lake(tmp_path_factory.mktemp("world") / "data", *small_world())
    build(data_dir)
    return data_dir


@pytest.fixture
def locked(world: Path, tmp_path: Path):
    """A read-only copy of the world's data dir, and a read-only folder beside it."""
    if os.geteuid() == 0 and SETPRIV is None:
        pytest.skip("as root, needs setpriv to run without the right to write anywhere")
    data_dir = shutil.copytree(world, tmp_path / "data")
    (tmp_path / "shelf").mkdir()
    read_only(data_dir)
    read_only(tmp_path / "shelf")
    yield data_dir, tmp_path / "shelf"
    for path in (tmp_path, *tmp_path.rglob("*")):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("build",), "error: cannot create a warehouse in {data}: "),
        (("dashboards",), "error: cannot write into {data} (permission denied): pass --out a folder you can write into"),
        (("dashboards", "--out", "{shelf}/site"),
         "error: cannot write into {shelf} (permission denied): pass --out a folder you can write into"),
        (("dashboards", "--out", "{shelf}"),
         "error: cannot write into {shelf} (permission denied): pass --out a folder you can write into"),
        (("report", "finance", "--month", "2026-01", "--out", "{data}/exports"),
         "error: cannot write into {data} (permission denied): pass --out a folder you can write into"),
        (("report", "finance", "--month", "2026-01", "--out", "{shelf}"),
         "error: cannot write into {shelf} (permission denied): pass --out a folder you can write into"),
    ],
)
def test_a_folder_that_cannot_be_written_is_one_line_and_exit_1_with_nothing_changed(locked, args, message):
    data_dir, shelf = locked
    before = tree(data_dir.parent)
    done = run_unprivileged(*(arg.format(data=data_dir, shelf=shelf) for arg in args), "--data-dir", str(data_dir))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(message.format(data=data_dir, shelf=shelf)) and done.stderr.count("\n") == 1, done.stderr
    assert tree(data_dir.parent) == before



UNSHARE = shutil.which("unshare")


def run_on_read_only_mount(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`cdr ARGS...` with data_dir bind-mounted read-only over itself (in a mount namespace of its own)."""
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    command = (UNSHARE or "unshare", "--map-root-user", "--mount", "sh", "-c", script, str(data_dir), str(CDR), *args)
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def mount_point(world: Path, tmp_path: Path) -> Path:
    """A copy of the world's data dir that can be mounted read-only, once that is known to work here."""
    if UNSHARE is None:
        pytest.skip("needs unshare to mount a folder read-only")
    probe = subprocess.run(
        (UNSHARE, "--map-root-user", "--mount", "sh", "-c", 'mount --bind -o ro "$0" "$0" && ! touch "$0/probe"',
         str(tmp_path)),
        capture_output=True, text=True, timeout=30, check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a folder read-only here: {probe.stderr.strip()}")
    return shutil.copytree(world, tmp_path / "data")


@pytest.mark.parametrize("args", [("build",), ("build", "--full")], ids=["incremental", "full"])
def test_build_on_a_read_only_file_system_is_one_line_and_exit_1_with_nothing_changed(mount_point, args):
    # There even removing a file that is not there fails: the clean-up must not bury the real error.
    before = tree(mount_point)
    done = run_on_read_only_mount(mount_point, *args, "--data-dir", str(mount_point))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(f"error: cannot create a warehouse in {mount_point}: "), done.stderr
    assert "Read-only file system" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert tree(mount_point) == before
