"""The lake's storage (landing stage): every path under the data dir and every byte written there.

Everything goes through a `Lake`, so the data dir can be a local folder or an fsspec URL such as
``s3://bucket/cdr``. Writes are atomic: locally by `StagedFiles` (pipelines/durable.py: a temporary
in ``.staging/``, since directory scans read hidden files too, made durable and renamed over the
target; several files of one `Lake.batch` made durable together); on object stores by a single PUT,
which readers see whole or not at all. DuckDB reads an object-store lake through the lake's fsspec filesystem,
registered on each connection by `register_lake`.

Layout (binding for the SQL models); `<name>` is an account (pipelines/accounts.py)::

    <root>/lake/<dataset>/account=<name>/date=YYYY-MM-DD/data.parquet   dataset in DATASETS, zstd
    <root>/quarantine/<kind>/account=<name>/date=YYYY-MM-DD/*.jsonl     rejected records (see land.py)
    <root>/state/account=<name>/<kind>/...                              sync state (see state.py)
    <root>/state/syncs.json                              the newest sync runs (see runs.py)
    <root>/last_build.json                               the last build's outcome (see models/publish.py)
    <root>/.staging/                                     temporaries of local writes
    <root>/.sync.lock                                    held by the one sync writing the data dir (see sync_lock.py)

A `Lake` reads every account (what the build and the status read); `Lake.for_account(name)`
is the `AccountLake` one account's sync writes through. A data dir of the single-account layout
of earlier releases (no `account=` folders) is moved to the account `default` on first use: see
`Lake.migrate_layout`.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import polars as pl
from fsspec.core import split_protocol, url_to_fs
from fsspec.implementations.local import LocalFileSystem

from pipelines.accounts import DEFAULT_ACCOUNT, account_name_problem
from pipelines.durable import TEMP_NAME, StagedFiles, fsync_dir, remove_empty_dirs_below
from pipelines.errors import CdrError, LakeError, UsageError, causes, clip, connection_failure, few, one_line
from pipelines.opentact.api import known_record_type
from pipelines.sync_lock import DataDirBusy, hold_sync_lock

LAKE_DIR = "lake"
QUARANTINE_DIR = "quarantine"
STATE_DIR = "state"
PARTITION_FILE = "data.parquet"
STAGING_DIR = ".staging"
ACCOUNT_FOLDER = "account="
QUARANTINE_GLOB = f"{QUARANTINE_DIR}/*/{ACCOUNT_FOLDER}*/date=*/*.jsonl"

# The lake's datasets: detail records per record type, and the API's own usage aggregates
# (for reconciliation) per record type.
DATASETS: tuple[str, ...] = ("cdrs", "mdrs", "usage_cdrs", "usage_mdrs")
# The record types, each with a quarantine and a sync state of its own.
KINDS: tuple[str, ...] = tuple(dataset for dataset in DATASETS if not dataset.startswith("usage_"))

# zstd level 1: far cheaper than the default level for nearly the same size, and landing
# shares the CPU with reading the API.
ZSTD_LEVEL = 1

_PARTITION_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_ACCOUNT_DIR = re.compile(rf"^{ACCOUNT_FOLDER}(.*)$")
# What QUARANTINE_GLOB matches.
_QUARANTINE_FILE = re.compile(rf"{QUARANTINE_DIR}/[^/]+/{ACCOUNT_FOLDER}[^/]*/date=[^/]*/[^/]*\.jsonl")

# What to check when an object store refuses a request (botocore reads these variables itself).
STORE_ADVICE = (
    "check the store's address and keys (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) "
    "and the bucket's permissions"
)
# A user and password written into a URL (`scheme://user:password@host`).
_URL_USER = re.compile(r"://[^/@\s]*@")


def unreachable_store(exc: BaseException) -> CdrError | None:
    """An error -> the one line saying the object store cannot be reached (or, as the AWS variables set it, not even
    be asked) and what to check; None if it is not that.

    The store's client (botocore) raises its own errors for a connection refused, a host not
    found or no answer in time, and for keys or an endpoint it cannot use, which s3fs passes on
    as they are: from any request of any command, so the CLI applies this to whatever stops a
    command, and so do the translations of the store's other errors. The store is named by its
    address only: a URL's user and password never show.
    """
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is None:  # never imported: no request went to a store
        return None
    unusable = _unusable_store_settings(exc, botocore)
    if unusable is not None:
        return unusable
    failed = next(
        (cause for cause in causes(exc) if isinstance(cause, (botocore.ConnectionError, botocore.HTTPClientError))), None
    )
    if failed is None:
        return None
    endpoint = str(failed.kwargs.get("endpoint_url") or "")
    url = urlsplit(endpoint)
    address = f" at {url.scheme}://{url.netloc.rpartition('@')[2]}" if url.scheme and url.netloc else ""
    chain = causes(failed)
    if any(isinstance(cause, (TimeoutError, botocore.ConnectTimeoutError, botocore.ReadTimeoutError)) for cause in chain):
        reason = "no answer in time"
    elif any(isinstance(cause, ConnectionRefusedError) for cause in chain):
        reason = "connection refused"
    elif said := connection_failure(failed, endpoint):  # a host not found, a failed TLS handshake, a reset
        reason = said
    else:  # the client's own words, any user and password in a URL left out
        reason = _URL_USER.sub("://", one_line(failed.kwargs.get("error") or failed, first=True))
    return CdrError(f"cannot reach the object store{address} ({reason}); {STORE_ADVICE}")


def _unusable_store_settings(exc: BaseException, botocore: object) -> UsageError | None:
    """An error of the store's client refusing the AWS variables before any request -> the one line naming them.

    Checked by botocore only when the first request is made, so on any command's first read. The
    endpoint is not shown: a value that is no URL may still hold a password.
    """
    for cause in causes(exc):
        if isinstance(cause, botocore.NoCredentialsError):  # type: ignore[attr-defined]
            return UsageError(
                "no keys for the object store: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or "
                "run where an instance role provides them)"
            )
        if isinstance(cause, botocore.PartialCredentialsError):  # type: ignore[attr-defined]
            return UsageError(
                f"incomplete keys for the object store ({cause.kwargs.get('cred_var')} is missing): set both "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        if isinstance(cause, botocore.ProfileNotFound):  # type: ignore[attr-defined]
            return UsageError(
                f"the AWS profile {clip(str(cause.kwargs.get('profile')))} (AWS_PROFILE) is in no AWS config file: "
                "fix its name, or unset it and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        # botocore's error for a URL of an unknown scheme; aiobotocore's plain ValueError for one without any.
        if isinstance(cause, botocore.EndpointResolutionError) or (  # type: ignore[attr-defined]
            type(cause) is ValueError and str(cause).startswith("Invalid endpoint:")
        ):
            return UsageError(
                "AWS_ENDPOINT_URL is not a URL the store's client accepts: give its scheme, host and port, e.g. "
                "https://s3.example.com or http://127.0.0.1:9000 (unset it for AWS S3)"
            )
    return None


def data_dir_is_a_file(url: str) -> UsageError:
    """The error of a data dir that names a file (an object, on a store)."""
    return UsageError(f"the data dir {clip(url)} is a file, not a folder: give --data-dir (CDR_DATA_DIR) a folder")


class Lake:
    """The data dir: a local path or fsspec URL, with atomic writes and the lake's layout."""

    def __init__(self, root: str | os.PathLike[str], storage_options: Mapping[str, object] | None = None) -> None:
        self.url = os.fspath(root)
        options = dict(storage_options or {})
        if split_protocol(self.url)[0] in ("s3", "s3a"):
            # Whole files are read, or DuckDB asks for exact ranges: a read-ahead block cache
            # would only add memory.
            options.setdefault("default_cache_type", "none")
            # Another process (a sync, a build) changes the lake: listings are read fresh each time.
            options.setdefault("use_listings_cache", False)
        # Storage options may carry credentials: kept only inside the filesystem object.
        self.fs, root_path = url_to_fs(self.url, **options)
        self.root = root_path.rstrip("/") or "/"
        self.is_local = isinstance(self.fs, LocalFileSystem)
        self.is_s3 = "s3" in _protocols(self.fs)
        # S3 (and stores speaking its API) create an object only if absent: the sync lock's ground.
        self.conditional_writes = self.is_s3
        # Shared with this lake's account views: the layout is checked once, and this process's
        # sync lock is known to be held (a migration inside it must not take it again).
        self._layout = _LayoutCheck()

    def __repr__(self) -> str:
        return f"Lake({self.url!r})"

    # -- paths ---------------------------------------------------------------------------------

    def path(self, relative: str) -> str:
        """A path relative to the data dir (`/`-separated) -> the full path on the filesystem."""
        parts = PurePosixPath(relative).parts
        if not parts or any(part in ("", ".", "..", "/") for part in parts):
            raise ValueError(f"not a relative path inside the data dir: {relative!r}")
        return f"{self.root.rstrip('/')}/{'/'.join(parts)}"

    def display(self, relative: str) -> str:
        """A relative path -> how to name it to a user (URL form for object stores)."""
        return f"{self.url.rstrip('/')}/{relative}"

    def for_account(self, name: str) -> AccountLake:
        """An account's part of this data dir: where its sync writes (UsageError for a name no account can have).

        The first use of a data dir moves the layout of earlier releases to the account `default`.
        """
        problem = account_name_problem(name)
        if problem is not None:
            raise UsageError(f"account {name!r}: {problem}")
        self._ready()
        view = AccountLake.__new__(AccountLake)
        view.__dict__.update(self.__dict__)
        view.account = name
        return view

    def accounts(self) -> list[str]:
        """The accounts with a folder in the lake, the quarantine or the sync state, sorted."""
        self._ready()
        tops = [f"{LAKE_DIR}/{dataset}" for dataset in DATASETS] + [f"{QUARANTINE_DIR}/{kind}" for kind in KINDS]
        names = set()
        for top in (*tops, STATE_DIR):
            for entry in self._entries(top):
                name = account_of_folder(entry)
                if name is not None and account_name_problem(name) is None:
                    names.add(name)
        return sorted(names)

    # -- bytes ---------------------------------------------------------------------------------

    def identity(self, relative: str) -> str:
        """A file -> a text that changes whenever the file is replaced or rewritten (what a build compares).

        Locally its size, modification time and inode: writes replace a file by a new one. On an
        object store, its size and the store's version tag (ETag) or modification time.
        """
        path = self.path(relative)
        if self.is_local:
            stat = os.stat(path)
            return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"
        info = self.fs.info(path)
        version = next((info[key] for key in ("ETag", "etag", "mtime", "LastModified", "created") if info.get(key)), "")
        return f"{info.get('size')}:{version}"

    def exists(self, relative: str) -> bool:
        """Whether a file exists at the relative path."""
        found = bool(self.fs.isfile(self.path(relative)))
        if not found:
            self.check_root()
        return found

    def read_bytes(self, relative: str) -> bytes | None:
        """The file's bytes, or None when it does not exist; LakeError naming the path when it cannot be read."""
        try:
            return bytes(self.fs.cat_file(self.path(relative)))
        except FileNotFoundError:
            self.check_root()
            return None
        except OSError as exc:
            raise self._os_error(relative, exc, "read") from exc

    def check_root(self) -> None:
        """Before a file found missing is taken as absent: UsageError if the data dir names a file (on S3, an
        object), or on S3 if the bucket is missing.

        A store answers "no such file" for every file of a bucket that does not exist, and for every
        file below an object's key: either would read as a data dir never synced, built or
        published. Asked once per lake.
        """
        if self._layout.root_checked:
            return
        if self.is_local:
            if os.path.exists(self.root) and not os.path.isdir(self.root):
                raise data_dir_is_a_file(self.url)
            self._layout.root_checked = True
            return
        if not self.is_s3:
            return
        bucket = self.root.split("/", 1)[0]
        try:
            self.fs.call_s3("head_bucket", Bucket=bucket)  # type: ignore[attr-defined]
        except FileNotFoundError:
            raise UsageError(
                f"the bucket {bucket} of the data dir {self.url} does not exist: create it (an empty one), "
                "or fix the URL of --data-dir (CDR_DATA_DIR)"
            ) from None
        except OSError as exc:
            raise unreachable_store(exc) or LakeError(
                f"cannot read the bucket {bucket} of the data dir {self.url} ({exc.strerror or one_line(exc, first=True)}); "
                f"{STORE_ADVICE}"
            ) from None
        if "/" in self.root and self.fs.isfile(self.root):
            raise data_dir_is_a_file(self.url)
        self._layout.root_checked = True

    def write_bytes(self, relative: str, data: bytes) -> int:
        """Atomically create or replace the file with the bytes -> the number of bytes written."""
        with self.batch() as batch:
            return batch.write_bytes(relative, data)

    @contextmanager
    def batch(self) -> Iterator[WriteBatch]:
        """Writes made durable together: when the block ends, each file written in it is in place, whole.

        Locally the files are staged and made durable at once (`StagedFiles`): none replaces its
        target if the block fails. On an object store each write is one PUT, done at once.
        """
        batch = WriteBatch(self)
        try:
            yield batch
            batch.commit()
        finally:
            batch.discard()

    def delete(self, relative: str) -> bool:
        """Remove the file (atomic: one unlink or DELETE) -> whether it existed."""
        target = self.path(relative)
        try:
            self.fs.rm_file(target)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._os_error(relative, exc, "remove") from exc
        if self.is_local:
            fsync_dir(os.path.dirname(target))
            # An empty partition directory would read as a day with a missing file.
            with suppress(OSError):
                os.rmdir(os.path.dirname(target))
        return True

    def list_files(self, relative_dir: str) -> list[str]:
        """Files anywhere under a relative directory -> their relative paths, sorted; temporaries excluded."""
        base = self.path(relative_dir)
        found = self._listed(relative_dir, self.fs.find)
        if self.is_local and (found == [base] or not found):
            # `find` of a file is the file itself, and below a file is nothing: a file standing
            # where the directory belongs must not read as an empty directory.
            blocked = self._blocked(relative_dir, wants_file=False)
            if blocked is not None:
                raise blocked
        prefix = self.root.rstrip("/") + "/"
        relative = (str(p)[len(prefix):] if str(p).startswith(prefix) else str(p).lstrip("/") for p in found)
        return sorted(p for p in relative if not TEMP_NAME.match(PurePosixPath(p).name))

    def sweep_temporaries(self) -> int:
        """Remove temporaries and empty directories left by crashed writers -> how many; call only while no one else writes.

        A writer killed between making the target's directory and renaming into it leaves an
        empty ``date=`` directory, which would read as a day whose file is missing.
        """
        removed = 0
        for top in (STAGING_DIR, LAKE_DIR, QUARANTINE_DIR, STATE_DIR):
            try:
                found = self.fs.find(self.path(top))
            except FileNotFoundError:
                continue
            for name in found:
                if TEMP_NAME.match(PurePosixPath(str(name)).name):
                    self.fs.rm_file(name)
                    removed += 1
        if self.is_local:
            for top in (LAKE_DIR, QUARANTINE_DIR, STATE_DIR):
                removed += remove_empty_dirs_below(self.path(top))
        return removed

    # -- the one writer -------------------------------------------------------------------------

    @contextmanager
    def sync_lock(self, run_id: str) -> Iterator[None]:
        """Hold the data dir's sync lock for the block (`hold_sync_lock`) -> DataDirBusy at once if another sync
        holds it."""
        with hold_sync_lock(self, run_id):
            # A layout migration inside the block must not take the lock again.
            self._layout.locked = True
            try:
                yield
            finally:
                self._layout.locked = False

    def check_directories(self, relatives: Iterable[str]) -> None:
        """LakeError naming the first of the data dir and these relative directories that exists as something else.

        A file where a directory belongs fails every write below it alike: said once, up front.
        """
        for relative in ("", *relatives):
            blocked = self._blocked(relative, wants_file=False)
            if blocked is not None:
                raise blocked


    # -- parquet partitions --------------------------------------------------------------------

    def partition_days(self, dataset: str) -> list[date]:
        """The UTC days that have a partition file in the dataset, in any account, ascending."""
        return sorted({day for relative in self.partition_files(dataset) if (day := self.partition_day(relative))})

    @staticmethod
    def partition_glob(dataset: str) -> str:
        """A dataset -> the glob of its partition files in every account, relative to the data dir."""
        return f"{LAKE_DIR}/{dataset}/{ACCOUNT_FOLDER}*/date=*/{PARTITION_FILE}"

    @staticmethod
    def partition_day(relative: str) -> date | None:
        """A path below a `date=` folder -> that UTC day (None when the folder names no real day)."""
        # split, not parsed by pathlib: asked of every lake file by every build, and pathlib's
        # normalising drops only parts no `date=` folder can be
        for part in relative.split("/"):
            match = _PARTITION_DIR.match(part)
            if match:
                try:
                    return date.fromisoformat(match.group(1))
                except ValueError:
                    return None
        return None

    @staticmethod
    def partition_account(relative: str) -> str | None:
        """A path below an `account=` folder -> that account's name (None outside any)."""
        names = (account_of_folder(part) for part in PurePosixPath(relative).parts)
        return next((name for name in names if name is not None), None)

    def location(self, relative: str) -> str:
        """A relative path or glob -> where a reader such as DuckDB opens it (an absolute path, or the store's URL)."""
        path = self.path(relative)
        return path if self.is_local else str(self.fs.unstrip_protocol(path))

    def partition_files(self, dataset: str) -> list[str]:
        """A dataset -> every account's partition files (relative paths), sorted; LakeError where the lake is
        not as the sync lays it out.

        What the glob would skip is refused: a build reading past it would publish a warehouse
        without those days over a good one. So is a file the glob reads in a `date=` folder naming
        no UTC day: an incremental build tells the days that changed by their folders' names. An
        empty day folder (a killed sync's) is passed over.
        """
        self._ready()
        base = f"{LAKE_DIR}/{dataset}"
        kind = dataset.removeprefix("usage_")
        if not self.is_local:
            return self._dated(self._listed_partition_files(base, kind), kind)
        for relative, types in ((LAKE_DIR, None), (base, kind)):
            if os.path.lexists(self.path(relative)) and not os.path.isdir(self.path(relative)):
                raise LakeError(
                    f"{self.display(relative)} is not a folder, so the build would read an empty lake: move it aside "
                    f"and re-sync the days it held with {resync_command(types, None)}"
                )
        files = []
        for name, is_dir in self._scan(base):
            if name.startswith("date="):
                raise self._outside_accounts(f"{base}/{name}")
            account = account_of_folder(name)
            if account is None:
                continue
            folder = f"{base}/{name}"
            self._check_account_folder(folder, account, is_dir, kind)
            for day_name, day_is_dir in self._scan(folder):
                if day_name.startswith("date="):
                    partition = self._partition_file(f"{folder}/{day_name}", day_is_dir, kind)
                    if partition is not None:
                        files.append(partition)
        return self._dated(sorted(files), kind)

    def _dated(self, files: list[str], kind: str) -> list[str]:
        """Partition files -> themselves; LakeError for one in a `date=` folder that names no UTC day."""
        for relative in files:
            if self.partition_day(relative) is None:
                day_dir = relative.rsplit("/", 1)[0]
                raise LakeError(
                    f"{self.display(day_dir)} names no day (the sync writes date=YYYY-MM-DD): move it out of the "
                    f"lake, and re-sync the days it held with {resync_command(kind, None, self.partition_account(day_dir))}"
                )
        return files

    def _scan(self, relative: str) -> list[tuple[str, bool]]:
        """A local directory -> its entries' names and whether each is a folder (none when it does not exist)."""
        try:
            with os.scandir(self.path(relative)) as entries:
                return [(entry.name, entry.is_dir()) for entry in entries]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise LakeError(
                f"cannot list {self.display(relative)} ({exc.strerror or exc}): make the data dir readable"
            ) from None

    def _check_account_folder(self, folder: str, account: str, is_dir: bool, kind: str) -> None:
        """LakeError unless an `account=` entry is a folder named for an account."""
        problem = account_name_problem(account)
        if problem is not None:
            raise self._not_an_account(folder, problem)
        if not is_dir:
            raise LakeError(
                f"{self.display(folder)} is a file where the lake keeps an account's folder: move it out of the lake "
                f"and re-sync the days it held with {resync_command(kind, None, account)}"
            )

    def _not_an_account(self, folder: str, problem: str, out_of: str = "the lake") -> LakeError:
        return LakeError(f"{self.display(folder)} is no account's folder ({problem}): move it out of {out_of}")

    def _outside_accounts(self, relative: str) -> LakeError:
        # The layout of earlier releases, written after this process moved it (by an earlier release's sync).
        return LakeError(
            f"{self.display(relative)} is outside any account's folder, as earlier releases wrote it: run the command "
            f"again to move it to the account {DEFAULT_ACCOUNT}"
        )

    def _partition_file(self, day_dir: str, is_dir: bool, kind: str) -> str | None:
        """A local `date=` entry -> its data file (None for an empty folder); LakeError when it cannot be one."""
        if not is_dir:
            raise LakeError(
                f"{self.display(day_dir)} is a file where the lake keeps a day's folder: move it out of the lake and "
                f"re-sync that day with {self._resync_day(day_dir, kind)}"
            )
        data = f"{day_dir}/{PARTITION_FILE}"
        try:
            if os.path.isfile(self.path(data)):
                return data
            if os.path.lexists(self.path(data)):
                raise LakeError(
                    f"{self.display(data)} is not a file: move it out of the lake and re-sync that day with "
                    f"{self._resync_day(day_dir, kind)}"
                )
            others = sorted(name for name in os.listdir(self.path(day_dir)) if not name.startswith("."))
        except OSError as exc:
            raise LakeError(
                f"cannot read {self.display(day_dir)} ({exc.strerror or exc}): make the data dir readable"
            ) from None
        if others:
            raise self._not_a_partition(day_dir, others, kind)
        return None

    def _listed_partition_files(self, base: str, kind: str) -> list[str]:
        # An object store has no folders: only a day holding objects other than its file, or objects
        # outside an account's day, can be wrong.
        days: dict[str, list[str]] = {}
        for relative in self.list_files(base):
            parts = PurePosixPath(relative).parts
            if len(parts) > 3 and parts[2].startswith("date="):
                raise self._outside_accounts("/".join(parts[:3]))
            account = account_of_folder(parts[2]) if len(parts) > 3 else None
            if account is None:
                continue
            problem = account_name_problem(account)
            if problem is not None:
                raise self._not_an_account("/".join(parts[:3]), problem)
            if len(parts) > 4 and parts[3].startswith("date="):
                days.setdefault("/".join(parts[:4]), []).append("/".join(parts[4:]))
        for day_dir, names in days.items():
            if PARTITION_FILE not in names:
                others = sorted({name for name in names if not PurePosixPath(name).name.startswith(".")})
                raise self._not_a_partition(day_dir, others, kind)
        return sorted(f"{day_dir}/{PARTITION_FILE}" for day_dir in days)

    def _not_a_partition(self, day_dir: str, others: list[str], kind: str) -> LakeError:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        return LakeError(
            f"{self.display(day_dir)} holds no {PARTITION_FILE} but {shown}: move those out of the lake and "
            f"re-sync that day with {self._resync_day(day_dir, kind)}"
        )

    def _resync_day(self, day_dir: str, kind: str) -> str:
        # Made only for an error: listing a sound lake builds no advice.
        return resync_command(kind, self.partition_day(day_dir), self.partition_account(day_dir))

    def quarantine_files(self) -> list[str]:
        """Every account's quarantine JSON-lines files (relative paths), sorted; LakeError when the quarantine
        is not a folder, or a folder in it is outside any account's."""
        self._ready()
        if self.is_local and os.path.lexists(self.path(QUARANTINE_DIR)) and not os.path.isdir(self.path(QUARANTINE_DIR)):
            raise LakeError(
                f"{self.display(QUARANTINE_DIR)} is not a folder, so the build would miss the records the sync set "
                "aside: move it aside"
            )
        files = []
        for relative in self.list_files(QUARANTINE_DIR):
            parts = PurePosixPath(relative).parts
            if len(parts) > 3 and parts[1] in KINDS and parts[2].startswith("date="):
                raise self._outside_accounts("/".join(parts[:3]))
            account = account_of_folder(parts[2]) if len(parts) > 3 else None
            if account is not None and (problem := account_name_problem(account)) is not None:
                raise self._not_an_account("/".join(parts[:3]), problem, out_of="the data dir")
            if _QUARANTINE_FILE.fullmatch(relative):
                files.append(relative)
        return files

    def _read_partition(
        self, relative: str, dataset: str, schema: Mapping[str, pl.DataType], resync: str
    ) -> pl.DataFrame | None:
        """A dataset's partition file -> its frame in exactly `schema`, or None when there is none; `resync`: the
        command that lands its day again, which a LakeError names.

        A partition an older release wrote lacks the columns added since: they read as null.
        """
        try:
            if self.is_local:
                os.stat(self.path(relative))  # a missing day fails here, far cheaper than in the reader
                frame = pl.read_parquet(self.path(relative))
            else:
                data = self.read_bytes(relative)
                if data is None:
                    return None
                frame = pl.read_parquet(io.BytesIO(data))
        except FileNotFoundError:
            return None
        except (pl.exceptions.PolarsError, OSError) as exc:
            blocked = self._blocked(relative)
            if blocked is not None:
                raise blocked from exc
            raise LakeError(
                f"lake file {self.display(relative)} is unreadable ({one_line(exc, first=True)}); "
                f"delete it and re-sync that day with {resync}"
            ) from exc
        if list(frame.schema.items()) == list(schema.items()):
            return frame
        if not readable_as(frame.schema, schema):
            expected = {name: str(dtype) for name, dtype in schema.items()}
            found = {name: str(dtype) for name, dtype in frame.schema.items()}
            raise LakeError(
                f"lake file {self.display(relative)} does not hold the {dataset} columns the sync writes "
                f"({schema_difference(expected, found)}): delete it and re-sync that day with {resync}"
            )
        return with_schema(frame, schema)

    # -- the layout of earlier releases ----------------------------------------------------------

    def migrate_layout(self) -> int:
        """Move the single-account layout of earlier releases to the account `default` -> how many entries moved.

        Each day folder of the lake and the quarantine, and each record type's state folder, moves
        by one rename, nothing copied: a crash leaves each entry whole in one layout or the other,
        and the next call moves the rest. Readers move it first (`Lake` does on first use), so none
        reads a half-moved lake. Under the sync lock (DataDirBusy while another sync holds it);
        LakeError in one line when the data dir cannot be written. On an object store each file
        moves by `fs.mv` (a copy, then a delete; a copy a crash left is recognised and dropped).
        """
        moves = self._legacy_moves()
        if not moves:
            return 0
        with ExitStack() as stack:
            if not self._layout.locked:
                try:
                    stack.enter_context(self.sync_lock(_MIGRATION_RUN))
                except DataDirBusy:
                    raise
                except LakeError as exc:
                    raise self._cannot_migrate(moves[0][0], exc.__cause__ or exc) from None
            moves = self._legacy_moves()  # again, under the lock: another process may have moved them
            for source, target in moves:
                try:
                    self._move(source, target)
                except OSError as exc:
                    raise self._cannot_migrate(source, exc) from None
        return len(moves)

    def _ready(self) -> None:
        """Move the layout of earlier releases, once per lake (and its account views)."""
        if not self._layout.checked:
            self.migrate_layout()
            self._layout.checked = True

    def _legacy_moves(self) -> list[tuple[str, str]]:
        """What the layout of earlier releases has where -> where it goes, (source, target) relative paths."""
        into = f"{ACCOUNT_FOLDER}{DEFAULT_ACCOUNT}"
        moves = []
        for top, names in ((LAKE_DIR, DATASETS), (QUARANTINE_DIR, KINDS)):
            for name in names:
                base = f"{top}/{name}"
                days = [day for day in self._entries(base) if day.startswith("date=")]
                moves += [(f"{base}/{day}", f"{base}/{into}/{day}") for day in days]
        kinds = [kind for kind in self._entries(STATE_DIR) if kind in KINDS]
        moves += [(f"{STATE_DIR}/{kind}", f"{STATE_DIR}/{into}/{kind}") for kind in kinds]
        return moves

    def _entries(self, relative: str) -> list[str]:
        """The names directly inside a directory, sorted (none when it is missing or no directory)."""
        if self.is_local:
            try:
                return sorted(os.listdir(self.path(relative)))
            except (FileNotFoundError, NotADirectoryError):
                return []
            except OSError as exc:
                raise self._os_error(relative, exc, "list", wants_file=False) from exc
        found = self._listed(relative, lambda path: self.fs.ls(path, detail=False) if self.fs.isdir(path) else [])
        return sorted({PurePosixPath(str(path)).name for path in found})

    def _listed(self, relative: str, listing: Callable[[str], list[str]]) -> list[str]:
        """What `listing` finds at a relative path (nothing when it is missing) -> the paths; LakeError when
        listing fails otherwise, or finds nothing because the lake's root itself is missing."""
        try:
            found = listing(self.path(relative))
        except FileNotFoundError:
            found = []
        except OSError as exc:
            raise self._os_error(relative, exc, "list", wants_file=False) from exc
        if not found:
            self.check_root()
        return found

    def _move(self, source: str, target: str) -> None:
        """An entry of the old layout -> renamed to its place in the new one; LakeError if something is there."""
        src, dst = self.path(source), self.path(target)
        if not self.is_local:
            self._move_objects(source, target)
            return
        if os.path.lexists(dst):
            if not (os.path.isdir(dst) and not os.path.islink(dst) and not os.listdir(dst)):
                raise self._both(source, target)
            os.rmdir(dst)  # an empty folder a killed writer left
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(src, dst)
        fsync_dir(os.path.dirname(dst))
        fsync_dir(os.path.dirname(src))

    def _move_objects(self, source: str, target: str) -> None:
        src, dst = self.path(source), self.path(target)
        files = self.fs.find(src) if self.fs.isdir(src) else [src]
        for name in files:
            name = str(name)
            there = dst + name[len(src):]
            if self.fs.exists(there):
                if self.fs.cat_file(there) != self.fs.cat_file(name):
                    raise self._both(source, target)
                self.fs.rm_file(name)  # the copy of a move a crash cut short
                continue
            self.fs.mv(name, there)
        if self.fs.isdir(src) and not self.fs.find(src):
            with suppress(FileNotFoundError):
                self.fs.rm(src, recursive=True)

    def _both(self, source: str, target: str) -> LakeError:
        return LakeError(
            f"{self.display(source)} (the layout of earlier releases) and {self.display(target)} both exist: move the "
            "one not to keep out of the data dir, then run the command again"
        )

    def _cannot_migrate(self, first: str, exc: BaseException) -> LakeError:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc, first=True)
        return LakeError(
            f"{self.display(first)} is in the single-account layout of earlier releases, which cannot be moved to the "
            f"account {DEFAULT_ACCOUNT} here ({reason}): run `cdr status --data-dir {self.url}` once as a user who "
            "can write the data dir"
        )

    # -- errors --------------------------------------------------------------------------------

    def _os_error(self, relative: str, exc: OSError, doing: str, wants_file: bool = True) -> CdrError:
        """An OS error on a path -> one line naming what is wrong where, and what to do."""
        blocked = self._blocked(relative, wants_file) or unreachable_store(exc)
        if blocked is not None:
            return blocked
        reason = exc.strerror or one_line(exc, first=True)
        advice = (
            STORE_ADVICE if not self.is_local
            else "make the data dir readable and writable by this user" if isinstance(exc, PermissionError)
            else "fix that (space, permissions, the disk) and run the command again"
        )
        return LakeError(f"cannot {doing} {self.display(relative)} ({reason}); {advice}")

    def _blocked(self, relative: str, wants_file: bool = True) -> LakeError | None:
        """The error of a file standing where the path needs a directory, or of a directory where it needs a file."""
        if not self.is_local:
            return None
        parts = PurePosixPath(relative).parts
        for depth in range(len(parts) + (0 if wants_file else 1)):
            above = "/".join(parts[:depth])
            path = self.path(above) if above else self.root
            if os.path.exists(path) and not os.path.isdir(path):
                return self._in_the_way(above)
        if wants_file and os.path.isdir(self.path(relative)):
            return LakeError(
                f"{self.display(relative)} is a directory where the data dir needs a file; move it out of the data dir"
            )
        return None

    def _in_the_way(self, relative: str) -> CdrError:
        if not relative:
            return data_dir_is_a_file(self.url)
        return LakeError(
            f"{self.display(relative)} is a file where the data dir needs a directory; move it out of the data dir"
        )


class WriteBatch:
    """A lake's writes in one `Lake.batch`: local files staged together, object-store files PUT at once."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.staging = os.path.join(lake.root, STAGING_DIR)
        self.staged = StagedFiles(self.staging) if lake.is_local else None
        self.written: list[str] = []

    def write_bytes(self, relative: str, data: bytes) -> int:
        """Create or replace the file with the bytes (in place when the batch ends) -> the number of bytes."""
        target = self.lake.path(relative)
        try:
            if self.staged is None:
                self.lake.fs.pipe_file(target, data)
            else:
                # The target's folder now: a file in its way fails here, naming the file, not at the rename.
                self.staged.make_folder(target)
                if not self.written:
                    os.makedirs(self.staging, exist_ok=True)
                _write_file(self.staged.temporary(target), data)
        except OSError as exc:
            raise self.lake._os_error(relative, exc, "write") from exc
        self.written.append(relative)
        return len(data)

    def write_partition(self, dataset: str, day: date, frame: pl.DataFrame) -> int:
        """Create or replace one of the account's day partitions (Parquet, zstd) -> bytes written."""
        lake = self.lake
        assert isinstance(lake, AccountLake), "partitions are an account's"
        return self.write_bytes(lake.partition(dataset, day), parquet_bytes(frame))

    def commit(self) -> None:
        if self.staged is None or not self.written:
            return
        try:
            self.staged.commit()
        except OSError as exc:
            raise self.lake._os_error(self._named(exc), exc, "write") from exc

    def discard(self) -> None:
        if self.staged is not None:
            self.staged.discard()

    def _named(self, exc: OSError) -> str:
        """A failed commit's error -> the relative path of the file it is about (the first, when it names none)."""
        paths = {path: relative for (temp, target), relative in zip(self.staged.moves if self.staged else [], self.written)
                 for path in (temp, target)}
        return next((paths[name] for name in (exc.filename, exc.filename2) if name in paths), self.written[0])


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    """A frame -> a partition file's bytes (Parquet, zstd)."""
    # Into memory, then written by the batch: cheaper than the writer's own file output, and the
    # same bytes for a local file and an object store's PUT.
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", compression_level=ZSTD_LEVEL)
    return buffer.getvalue()


def _write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


class AccountLake(Lake):
    """One account's part of a data dir (`Lake.for_account`): where that account's sync writes.

    Its partitions, quarantine and state are the account's; files of the whole data dir (the
    sync log, the lock) and the unscoped listings (`partition_files`, `quarantine_files`) are
    the data dir's, as on any `Lake`.
    """

    account: str

    def __repr__(self) -> str:
        return f"AccountLake({self.url!r}, {self.account!r})"

    def partition(self, dataset: str, day: date) -> str:
        """(dataset, UTC day) -> this account's partition file, relative to the data dir."""
        return partition_path(dataset, self.account, day)

    def dataset_dir(self, dataset: str) -> str:
        """A dataset -> the folder of this account's days of it, relative to the data dir."""
        return partition_path(dataset, self.account, None)

    def quarantine_dir(self, kind: str) -> str:
        """A record type -> the folder of this account's quarantined records of it."""
        return f"{QUARANTINE_DIR}/{known_record_type(kind)}/{ACCOUNT_FOLDER}{self.account}"

    def partition_days(self, dataset: str) -> list[date]:
        """The UTC days that have a partition file in this account's dataset, ascending; LakeError for a partition
        file in a `date=` folder naming no UTC day, as `partition_files`."""
        base = self.dataset_dir(dataset)
        depth = len(PurePosixPath(base).parts)
        files = []
        for relative in self.list_files(base):
            parts = PurePosixPath(relative).parts[depth:]
            if len(parts) == 1 and _PARTITION_DIR.match(parts[0]):
                raise self._in_the_way(relative)  # a day that would read as missing
            if len(parts) == 2 and parts[1] == PARTITION_FILE and parts[0].startswith("date="):
                files.append(relative)
        kind = dataset.removeprefix("usage_")
        return sorted(day for relative in self._dated(files, kind) if (day := self.partition_day(relative)) is not None)

    def read_partition(self, dataset: str, day: date, schema: Mapping[str, pl.DataType]) -> pl.DataFrame | None:
        """One of this account's day partitions -> its frame in exactly `schema`, or None when the day has none."""
        resync = resync_command(dataset.removeprefix("usage_"), day, self.account)
        return self._read_partition(self.partition(dataset, day), dataset, schema, resync)

    def write_partition(self, dataset: str, day: date, frame: pl.DataFrame) -> int:
        """Atomically create or replace one of this account's day partitions (Parquet, zstd) -> bytes written.

        Several are written cheaper in one `batch` (`WriteBatch.write_partition`).
        """
        with self.batch() as batch:
            return batch.write_partition(dataset, day, frame)

    def delete_partition(self, dataset: str, day: date) -> bool:
        """Remove one of this account's day partitions -> whether it existed."""
        return self.delete(self.partition(dataset, day))


def partition_path(dataset: str, account: str, day: date | None) -> str:
    """(dataset, account, UTC day) -> the partition file's path relative to the data dir (no day: its folder)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown lake dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    problem = account_name_problem(account)
    if problem is not None:
        raise UsageError(f"account {account!r}: {problem}")
    folder = f"{LAKE_DIR}/{dataset}/{ACCOUNT_FOLDER}{account}"
    return folder if day is None else f"{folder}/date={day.isoformat()}/{PARTITION_FILE}"


def account_of_folder(name: str) -> str | None:
    """A folder name -> the account an `account=<name>` folder is for (None for any other folder)."""
    match = _ACCOUNT_DIR.match(name)
    return match.group(1) if match else None


@dataclass
class _LayoutCheck:
    """Whether a lake's layout was checked (and moved) yet, and whether this process holds its sync lock."""

    checked: bool = False
    locked: bool = False
    root_checked: bool = False


# The run id a migration's hold of the sync lock names (in the message a sync it blocks prints).
_MIGRATION_RUN = "layout-migration"


def readable_as(found: Mapping[str, pl.DataType], schema: Mapping[str, pl.DataType]) -> bool:
    """A partition's columns and the schema it should have -> whether it reads as that schema.

    Releases only add columns, and fields to a struct column (such as `errors`' items): a partition
    may lack some (written before they were added), but a column or field the schema does not
    name, or of another type, is not the sync's.
    """
    return all(name in schema and _reads_as(dtype, schema[name]) for name, dtype in found.items())


def _reads_as(found: pl.DataType, wanted: pl.DataType) -> bool:
    """A column's type as written -> whether it reads as `wanted`: the same, or lacking struct fields added since."""
    if found == wanted:
        return True
    if isinstance(found, pl.List) and isinstance(wanted, pl.List):
        return _reads_as(found.inner, wanted.inner)
    if isinstance(found, pl.Struct) and isinstance(wanted, pl.Struct):
        fields = {field.name: field.dtype for field in wanted.fields}
        return all(field.name in fields and _reads_as(field.dtype, fields[field.name]) for field in found.fields)
    return False


def schema_difference(expected: Mapping[str, str], found: Mapping[str, str]) -> str:
    """The columns a partition should have and those it has (name -> type) -> what keeps it from reading, briefly.

    The columns it lacks only beside ones it should not have (another dataset's file): alone, they
    mean an older release wrote it, and they read as null.
    """
    unexpected = [name for name in found if name not in expected]
    differences = (
        ("missing", [name for name in expected if name not in found] if unexpected else []),
        ("unexpected", unexpected),
        ("other types:", [
            f"{name} {found[name]} (the sync writes {expected[name]})"
            for name in expected if name in found and found[name] != expected[name]
        ]),
    )
    shown = [f"{label} {few(names)}" for label, names in differences if names]
    return "; ".join(shown) or "its columns are in another order"


def with_schema(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """A frame `readable_as` the schema -> in exactly the schema: its columns in order, the missing ones (and
    struct fields) null."""
    if list(frame.schema.items()) == list(schema.items()):
        return frame
    completed = [
        pl.lit(None, dtype).alias(name) if name not in frame.schema else pl.col(name).cast(dtype)
        for name, dtype in schema.items()
        if frame.schema.get(name) != dtype
    ]
    return frame.with_columns(completed).select(list(schema))


def resync_command(kind: str | None, day: date | None, account: str | None = None) -> str:
    """What to run to land a UTC day (or, without one, a range) of an account again, as the user types it."""
    # The default account is the one a plain `cdr sync` syncs.
    accounts = f" --account {account}" if account and account != DEFAULT_ACCOUNT else ""
    types = f" --types {kind}" if kind else ""
    start, end = (day.isoformat(), (day + timedelta(days=1)).isoformat()) if day else ("YYYY-MM-DD", "YYYY-MM-DD")
    # Partitions are UTC days: --tz UTC makes the bare dates their midnights.
    return f"`cdr sync{accounts}{types} --tz UTC --start {start} --end {end}`"


def register_lake(con: object, lake: Lake) -> None:
    """Let a DuckDB connection read the lake: on an object store, through the lake's own fsspec filesystem.

    Every connection that reads the lake (a build's, the readers' of a warehouse whose views read
    it live) registers it: DuckDB 2.0 cannot install its `httpfs` extension here, and fsspec needs
    no download and takes its endpoint and keys from the same AWS variables as the sync.
    """
    if not lake.is_local:
        con.register_filesystem(lake.fs)  # type: ignore[attr-defined]


def _protocols(fs: object) -> tuple[str, ...]:
    protocol = getattr(fs, "protocol", ())
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
