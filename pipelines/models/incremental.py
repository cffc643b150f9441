"""Incremental builds: which lake days changed since the last build, and whether a full build is needed.

A build records in its warehouse (`build_manifest`) what it was built from: the release, a hash of
the models' SQL, the report time zone, the alert thresholds and a fingerprint of each day
partition file of the lake (records and the API's usage, of every account, by its path). The next
build compares: the UTC days whose partition appeared, went or was rewritten in any account are
dirty, and a model declaring `-- incremental: <column>` replaces only its rows for those days
(`window_end`: its windows ending after the earliest of them; `month`: its report months from that
of the earliest of them), computed by its own SQL. Anything else that differs (or no manifest at
all) makes the build a full one, and says why. The manifest also keeps what the build found that
the next need not find again: the models, tests and macros in the queries (taken back while the
queries hash, release and DuckDB are the same), and whether each lake file lacks columns (while
its identity is the same).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import duckdb
import orjson

from pipelines import __version__
from pipelines.lake import Lake
from pipelines.models.sources import LAKE_SCHEMAS, UTC_NAMES

MANIFEST_TABLE = "build_manifest"
# Besides queries/, a build runs SQL this package writes (the lake's schemas and views, account
# folders, the calendar and build macros, the runner's own statements) on the locked DuckDB. A
# checkout updated without a new release number changes them too, so the release a warehouse was
# built by names a digest of these files (relative to the package) and DuckDB's version.
_BUILD_CODE = ("models/*.py", "lake.py", "accounts.py", "opentact/api.py")
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
# Each dataset's id index -> its id census (queries/staging): an incremental build looks the changed
# days' ids up in the other days', and reads which days hold an id another day holds too.
ID_INDEXES = {"stg_cdrs_id_index": "stg_cdrs_id_census", "stg_mdrs_id_index": "stg_mdrs_id_census"}
# The columns a model may be incremental on, and so replaced by: UTC days, the report days they overlap,
# or, from the earliest of those days on, the windows ending after it (a model judging windows against
# their past) or the report months (`YYYY-MM`) from its month (a model rolling days up to months).
WINDOW_END = "window_end"
MONTH = "month"
# the columns whose models an incremental build recomputes from an instant on (`recomputed_since()`)
RECOMPUTED_COLUMNS = (WINDOW_END, MONTH)
INCREMENTAL_COLUMNS = ("utc_date", "report_date", *RECOMPUTED_COLUMNS)
# A report day lasts at most 25 hours, so one that overlaps a UTC day lies within the two UTC days
# either side of it, whatever the zone: the changed days' models are computed from the lake's
# days this far around them. In UTC a report day is its UTC day, and a partition holds the records
# created on its day: the changed days alone.
_MARGIN = 2

# A partition file's path relative to the data dir -> its identity (`Lake.identity`).
Fingerprints = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a warehouse was built from."""

    version: str
    queries_hash: str
    report_timezone: str
    # the alert thresholds' digest (`Thresholds.digest`): a model may read them
    thresholds: str
    fingerprints: Fingerprints
    # what discovering the queries found (`discover.Discovered.document`; None: not kept)
    discovered: str | None = None
    # each lake partition file (of every dataset) -> its identity and whether it lacks columns of the
    # lake's schemas (`lake_schemas_digest`), as the build read in its footer (`sources.lacking_columns`)
    footers: Mapping[str, tuple[str, bool]] = field(default_factory=dict)


def code_digest(package_dir: Path) -> str:
    """A package folder -> a digest of the files of it that write the SQL a build runs, and of DuckDB's version."""
    digest = hashlib.sha256(duckdb.__version__.encode() + b"\0")
    for path in sorted(path for pattern in _BUILD_CODE for path in package_dir.glob(pattern)):
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@cache
def build_release() -> str:
    """What a warehouse is built by: this release and the digest of its build code (`code_digest`)."""
    return f"{__version__}+{code_digest(_PACKAGE_DIR)[:12]}"


def fingerprints(lake: Lake, listed: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """A lake -> each day partition's file (of every dataset and account) and its identity (`Lake.identity`).

    The sync never rewrites a partition in place (a new file replaces it), and skips rewriting one
    that would not change, so a day whose identity is unchanged holds the same rows. `listed`:
    each dataset's partition files, when the caller listed them already.
    """
    return {
        relative: lake.identity(relative)
        for dataset in LAKE_SCHEMAS
        for relative in (lake.partition_files(dataset) if listed is None else listed[dataset])
        if Lake.partition_day(relative) is not None
    }


def dirty_days(previous: Fingerprints, current: Fingerprints) -> set[date]:
    """The fingerprints a warehouse was built from, and the lake's now -> the UTC days that changed in any account."""
    changed = (relative for relative in {*previous, *current} if previous.get(relative) != current.get(relative))
    return {day for relative in changed if (day := Lake.partition_day(relative)) is not None}


def window_days(days: set[date], report_timezone: str | None = None) -> list[date]:
    """Dirty UTC days (and the report time zone; None: any) -> the lake days their models are computed
    from (each with the days around it, but in UTC)."""
    margin = 0 if report_timezone in UTC_NAMES else _MARGIN
    return sorted({day + timedelta(days=offset) for day in days for offset in range(-margin, margin + 1)})


# What a build reads from the queries folder: models, macros, tests, seeds and alert thresholds.
_BUILD_INPUTS = (".sql", ".csv", ".toml")


def queries_hash(queries_dir: Path) -> str:
    """A queries folder -> a hash of every file a build reads from it (its READMEs aside)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(queries_dir).rglob("*") if p.is_file() and p.suffix in _BUILD_INPUTS):
        digest.update(str(path.relative_to(queries_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def read_manifest(con: duckdb.DuckDBPyConnection, database: str) -> Manifest | None:
    """A warehouse attached to `con` as `database` -> what it was built from; None if it cannot be read."""
    try:
        row = con.execute(
            "select version, queries_hash, report_timezone, thresholds, lake_fingerprints, discovered, lake_footers "
            f"from {database}.{MANIFEST_TABLE}"
        ).fetchone()
    except duckdb.Error:
        return None
    if row is None:
        return None
    return Manifest(
        version=row[0], queries_hash=row[1], report_timezone=row[2], thresholds=row[3], fingerprints=_fingerprints(row[4]),
        discovered=row[5], footers=_footers(row[6]),
    )


def _footers(document: str) -> dict[str, tuple[str, bool]]:
    """A manifest's footers, as written -> by partition path; none when read against other schemas."""
    footers = orjson.loads(document)
    if footers.get("schemas") != lake_schemas_digest():
        return {}
    return {relative: (identity, lacking) for relative, (identity, lacking) in footers["files"].items()}


def lake_schemas_digest() -> str:
    """A digest of the lake's schemas: what a footer's columns are judged against."""
    schemas = [
        [dataset, [[name, str(dtype)] for name, dtype in schema.items()]] for dataset, schema in LAKE_SCHEMAS.items()
    ]
    return hashlib.sha256(orjson.dumps(schemas)).hexdigest()


def _fingerprints(document: str) -> dict[str, str]:
    """A manifest's fingerprints, as written -> by partition path.

    An earlier format (per dataset and day, before accounts) reads as none: its warehouse was
    built from other queries, so the build is a full one anyway.
    """
    return {str(relative): identity for relative, identity in orjson.loads(document).items() if isinstance(identity, str)}


def full_build_reason(
    previous: Manifest | None, *, warehouse_exists: bool, queries: str, report_timezone: str, thresholds: str,
    forced: bool, killed_builds: int,
) -> str | None:
    """Why this build must be a full one (None: it can be incremental)."""
    if forced:
        return "asked for (--full)"
    if not warehouse_exists:
        return "first build"
    if previous is None:
        return "the warehouse has no readable build manifest"
    if previous.version != build_release():
        return f"the warehouse was built by release {previous.version}, this is {build_release()}"
    if previous.queries_hash != queries:
        return "the models changed (queries/)"
    if previous.report_timezone != report_timezone:
        return f"the report time zone changed ({previous.report_timezone} -> {report_timezone})"
    if previous.thresholds != thresholds:
        return "the alert thresholds changed (CDR_ALERTS_CONFIG)"
    if killed_builds:
        return "a previous build never finished"
    return None


def manifest_statement(
    queries: str, report_timezone: str, thresholds: str, found: Fingerprints, discovered: str,
    footers: Mapping[str, tuple[str, bool]],
) -> tuple[str, list[object]]:
    """What this build read (and found in the queries and the lake's footers) -> the statement (and its
    parameters) creating its manifest table."""
    document = dict(sorted(found.items()))
    return (
        f"create table {MANIFEST_TABLE} as select ?::varchar as version, ?::varchar as queries_hash, "
        "?::varchar as report_timezone, ?::varchar as thresholds, ?::varchar as lake_fingerprints, "
        "?::varchar as discovered, ?::varchar as lake_footers",
        [
            build_release(), queries, report_timezone, thresholds, orjson.dumps(document).decode(), discovered,
            orjson.dumps({"schemas": lake_schemas_digest(), "files": dict(sorted(footers.items()))}).decode(),
        ],
    )
