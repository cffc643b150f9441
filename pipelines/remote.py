"""A data dir on an object store: the local folder where its warehouse is built and read.

DuckDB cannot write a database file to an object store, nor open one there. So a build makes the
warehouse in a local work folder (in the user's cache folder, $XDG_CACHE_HOME/cdr or ~/.cache/cdr:
one folder per data dir URL) and publishes it with one upload, which readers see whole or not at all; readers
(`cdr sql`, reports, alerts, dashboards) query a local copy, fetched again only when the store's
version tag (ETag) differs from the one copied. A local data dir is its own work folder.

Work folder of `s3://bucket/prefix`::

    <cache>/<bucket>-<hash of the URL>/warehouse.duckdb     the copy of the published warehouse
    <cache>/<bucket>-<hash of the URL>/warehouse.etag       the store's ETag of that copy
    <cache>/<bucket>-<hash of the URL>/origin.json          the data dir URL (its views read that lake)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path

from pipelines.durable import atomic_file
from pipelines.errors import CdrError, UsageError, one_line
from pipelines.lake import STORE_ADVICE, Lake, unreachable_store

WAREHOUSE_FILE = "warehouse.duckdb"
ETAG_FILE = "warehouse.etag"
ORIGIN_FILE = "origin.json"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
# A fetch racing a publish sees the ETag change under it: fetched again this many times.
_FETCH_ATTEMPTS = 3


def is_remote(data_dir: object) -> bool:
    """A data dir -> whether it is an object-store URL (kept as text by the settings) rather than a folder."""
    return isinstance(data_dir, str) and bool(_URL.match(data_dir))


def work_dir(data_dir: Path | str) -> Path:
    """A data dir -> the local folder its warehouse is built in (made): the data dir itself, or its cache folder."""
    if not is_remote(data_dir):
        return Path(data_dir)
    from pipelines.settings import cache_root

    url = str(data_dir).rstrip("/")
    bucket = re.sub(r"[^A-Za-z0-9._-]", "_", url.split("://", 1)[1].split("/", 1)[0])[:40]
    folder = cache_root() / f"{bucket}-{hashlib.sha256(url.encode()).hexdigest()[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    origin = folder / ORIGIN_FILE
    if not origin.is_file():
        with atomic_file(origin) as temp:
            Path(temp).write_text(json.dumps({"data_dir": url}), encoding="utf-8")
    return folder


def origin_lake(warehouse: Path) -> Lake | None:
    """A warehouse file -> the object-store lake its views read, when it is the copy of one (else None)."""
    try:
        url = json.loads((Path(warehouse).parent / ORIGIN_FILE).read_text(encoding="utf-8"))["data_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Lake(url) if is_remote(url) else None


def warehouse_name(warehouse: Path | str) -> str:
    """A warehouse file -> how to name it to a user: the store's URL for the copy of an object store's warehouse
    (a path in the cache folder would send them looking in the wrong place), else its path."""
    lake = origin_lake(Path(warehouse)) if Path(warehouse).name == WAREHOUSE_FILE else None
    return lake.display(WAREHOUSE_FILE) if lake is not None else str(warehouse)


def data_dir_exists(data_dir: Path | str) -> bool:
    """Whether the data dir is there: a folder, or at least one object under the URL's prefix; UsageError
    when it names a file."""
    lake = Lake(data_dir)
    if lake.is_local:
        lake.check_root()
        return Path(data_dir).is_dir()
    try:
        found = bool(lake.fs.ls(lake.root, detail=False))
    except FileNotFoundError:
        found = False
    except OSError as exc:
        raise _store_error(lake, "list", exc) from None
    if not found:
        lake.check_root()
    return found


def require_data_dir(data_dir: Path | str) -> None:
    """UsageError unless the data dir is there (`data_dir_exists`), saying how to get one."""
    if not data_dir_exists(data_dir):
        raise UsageError(f"data dir {data_dir} does not exist: sync first (`cdr sync`) or pass --data-dir")


def fetch_warehouse(data_dir: str) -> Path:
    """An object-store data dir -> the local copy of its published warehouse, fetched if the store's is another.

    Returns the copy's path even when the store has no warehouse (then it does not exist either).
    """
    lake = Lake(data_dir)
    local = work_dir(data_dir) / WAREHOUSE_FILE
    etag_file = local.parent / ETAG_FILE
    for _ in range(_FETCH_ATTEMPTS):
        etag = _etag(lake)
        if etag is None:
            # Nothing published (any more): an old copy must not pass for the data dir's warehouse.
            etag_file.unlink(missing_ok=True)
            local.unlink(missing_ok=True)
            return local
        if local.is_file() and _read_text(etag_file) == etag:
            return local
        temp = local.parent / f".{WAREHOUSE_FILE}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            lake.fs.get_file(lake.path(WAREHOUSE_FILE), str(temp))
            if _etag(lake) != etag:
                continue  # published anew while this copy was fetched: it may be either
            etag_file.unlink(missing_ok=True)
            os.replace(temp, local)
        except OSError as exc:
            raise _store_error(lake, "fetch", exc, WAREHOUSE_FILE) from None
        finally:
            temp.unlink(missing_ok=True)
        _write_text(etag_file, etag)
        return local
    raise CdrError(f"the warehouse {lake.display(WAREHOUSE_FILE)} kept changing while it was fetched: run the command again")


def forget_copy(data_dir: Path | str) -> None:
    """Before the work folder's warehouse is replaced by a new build: its copy no longer matches any ETag."""
    if is_remote(data_dir):
        (work_dir(data_dir) / ETAG_FILE).unlink(missing_ok=True)


def publish_warehouse(data_dir: Path | str, built: Path) -> None:
    """A new warehouse built in the work folder -> published to the object-store data dir with one upload.

    The store replaces the object whole when the upload completes: readers fetch the old or the new one.
    """
    if not is_remote(data_dir):
        return
    lake = Lake(data_dir)
    try:
        lake.fs.put_file(str(built), lake.path(WAREHOUSE_FILE))
    except OSError as exc:
        raise _store_error(lake, "publish", exc, WAREHOUSE_FILE) from None
    etag = _etag(lake)
    if etag is not None:
        _write_text(built.parent / ETAG_FILE, etag)


def publish_folder(data_dir: Path | str, folder: Path, relative: str, last: str | None = None) -> None:
    """A local folder (the dashboards' site) -> the same files below `relative` in the object-store data dir.

    Each file is one upload; objects there that the folder no longer has are removed, then `last`
    (the site's marker, which `cdr status` reads) goes up.
    """
    if not is_remote(data_dir):
        return
    lake = Lake(data_dir)
    names = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    for name in names:
        if name != last:
            lake.write_bytes(f"{relative}/{name}", (folder / name).read_bytes())
    for stale in sorted(set(lake.list_files(relative)) - {f"{relative}/{name}" for name in names}):
        lake.delete(stale)
    if last in names:
        lake.write_bytes(f"{relative}/{last}", (folder / last).read_bytes())


def local_folder(data_dir: Path | str, name: str) -> Path:
    """A data dir and a folder of its (site/, exports/) -> where to write that folder locally: in the data dir,
    or in the work folder of an object-store data dir."""
    return work_dir(data_dir) / name


def warehouse_location(data_dir: Path | str) -> Path | str:
    """A data dir -> where its warehouse is published, as a user names it (a path, or the store's URL)."""
    if is_remote(data_dir):
        return Lake(data_dir).display(WAREHOUSE_FILE)
    return Path(data_dir) / WAREHOUSE_FILE


def _etag(lake: Lake) -> str | None:
    """The published warehouse's ETag (None: none is published)."""
    lake.fs.invalidate_cache(lake.path(WAREHOUSE_FILE))
    try:
        info = lake.fs.info(lake.path(WAREHOUSE_FILE))
    except FileNotFoundError:
        lake.check_root()
        return None
    except OSError as exc:
        raise _store_error(lake, "read", exc, WAREHOUSE_FILE) from None
    return str(info.get("ETag") or info.get("LastModified") or info.get("size"))


def _store_error(lake: Lake, doing: str, exc: BaseException, relative: str | None = None) -> CdrError:
    where = lake.display(relative) if relative else lake.url
    reason = getattr(exc, "strerror", None) or one_line(exc, first=True)
    return unreachable_store(exc) or CdrError(f"cannot {doing} {where} ({reason}); {STORE_ADVICE}")


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _write_text(path: Path, text: str) -> None:
    with atomic_file(path) as temp:
        Path(temp).write_text(text, encoding="utf-8")
