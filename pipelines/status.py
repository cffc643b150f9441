"""What the data dir says about itself, stage by stage (`cdr status`, the dashboards' footer).

Read from what each stage leaves; the only files written here are the build's record
(`last_build.json`) and the site's marker (`site/site.json`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from pipelines.dates import days_from, format_utc, parse_datetime
from pipelines.accounts import DEFAULT_ACCOUNT, SHOWN_ACCOUNTS, Account
from pipelines.durable import atomic_file
from pipelines.errors import (
    CdrError, LakeError, UsageError, counted, few_counted, named_accounts, one_line, what_is_wrong,
)
from pipelines.lake import QUARANTINE_DIR, AccountLake, Lake, register_lake, resync_command
from pipelines.land import window_days
from pipelines.opentact.api import RECORD_TYPES
from pipelines.remote import require_data_dir
from pipelines.reports import day_ranges
from pipelines.runs import (
    AccountRun,
    SyncLogError,
    SyncRunRecord,
    accounts_json,
    changed_days_json,
    failed_slices_json,
    first_sync_command,
    read_sync_runs,
)
from pipelines.state import lost_days, read_state

log = logging.getLogger(__name__)

BUILD_RECORD = "last_build.json"
RECORD_VERSION = 1
# Where `cdr dashboards` and the build flow write the site unless told otherwise, and its marker.
SITE_DIR = "site"
SITE_MARKER = "site.json"
# Ranges of missing days, and failed slices, a terminal shows; the JSON lists them all.
SHOWN_GAPS = 6
SHOWN_FAILURES = 5


class StatusRecordError(CdrError):
    """A build record or site marker that cannot be understood."""


@dataclass(frozen=True, slots=True)
class Synced:
    """How fresh the data is: every record type synced up to `up_to`; the newest finished sync run, when and how it ended."""

    up_to: datetime
    ran_at: datetime | None = None
    run_status: str | None = None


@dataclass(frozen=True, slots=True)
class KindStatus:
    """One record type: the UTC days synced (first, last, those missing between), its mark, records and rejects."""

    kind: str
    first_day: date | None
    last_day: date | None
    high_water_mark: datetime | None
    gaps: tuple[date, ...]
    records: int
    quarantined: int


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """One account's part of the data dir: each record type's days, mark, records and rejects."""

    account: str
    kinds: tuple[KindStatus, ...]

    @property
    def never_synced(self) -> bool:
        """Whether the data dir holds nothing of the account (an account an accounts file lists whose first sync
        failed, or not run yet, has not even a folder)."""
        return all(k.first_day is None and k.high_water_mark is None and not k.records and not k.quarantined
                   for k in self.kinds)


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """The last build that ran its data tests: when, from which sync run (and how that run stood), whether they passed."""

    built_at: datetime
    passed: bool
    sync_run_id: str | None
    sync_status: str | None
    # "full build: <why>" or "incremental build: <n> changed day(s) rebuilt"; None in older records
    how: str | None = None


@dataclass(frozen=True, slots=True)
class DataStatus:
    """Everything `cdr status` reports about one data dir: each account's record types, then the data dir's runs."""

    data_dir: str
    accounts: tuple[AccountStatus, ...]
    last_sync: SyncRunRecord | None
    last_build: BuildRecord | None
    site: str
    dashboards_made_at: datetime | None

    @property
    def several(self) -> bool:
        """Whether the data dir holds more than one account (each is then shown on its own)."""
        return len(self.accounts) > 1

    @property
    def kinds(self) -> tuple[KindStatus, ...]:
        """Each record type over the whole data dir: the one account's own figures, or all accounts' combined."""
        if not self.several:
            return self.accounts[0].kinds
        return tuple(_combined([a.kinds[n] for a in self.accounts]) for n in range(len(RECORD_TYPES)))

    @property
    def synced(self) -> bool:
        """Whether any sync has left anything in the data dir."""
        return self.last_sync is not None or any(k.first_day is not None or k.high_water_mark for k in self.kinds)


def synced_at(data_dir: Path | str) -> Synced | None:
    """The data dir -> how fresh its data is: the least recent high-water mark of any account and record type,
    and the last sync run (None: never synced)."""
    lake = Lake(data_dir)
    marks = [mark for account in _account_names(lake) for mark in _marks(lake.for_account(account)) if mark is not None]
    if not marks:
        return None
    finished = next((run for run in read_sync_runs(lake) if run.finished_at is not None), None)
    return Synced(min(marks), finished and finished.finished_at, finished and finished.status)


def read_status(data_dir: Path | str, listed: Sequence[str] = ()) -> DataStatus:
    """A data dir -> its status; UsageError if it is a file or a folder not there, CdrError naming a state or lake
    file that cannot be read.

    `listed`: the accounts an accounts file lists (`pipelines.reports.listed_accounts`); one the data dir holds
    nothing of is among its accounts all the same, never synced: else a reseller's accounts whose first sync failed
    would show only among the last sync's outcomes, and not at all once another sync is logged.
    """
    lake = Lake(data_dir)
    if lake.is_local:
        # A folder not there is a mistyped --data-dir, not one never synced; an object store has no folders:
        # a prefix without objects is a data dir never synced.
        require_data_dir(data_dir)
    lake.check_root()
    runs = read_sync_runs(lake)
    listing = _Listing.of(lake)
    return DataStatus(
        data_dir=lake.url,
        accounts=tuple(
            AccountStatus(name, tuple(_kind_status(lake.for_account(name), kind, listing) for kind in RECORD_TYPES))
            for name in _account_names(lake, listed)
        ),
        last_sync=runs[0] if runs else None,
        last_build=_read_build(lake),
        site=lake.display(SITE_DIR),
        dashboards_made_at=_read_site_marker(lake),
    )


def status_document(status: DataStatus) -> dict[str, Any]:
    """A status -> the JSON object `cdr status --json` prints (null where there is nothing yet).

    With several accounts, `accounts` gives each one's record types, and the top-level `cdrs` and
    `mdrs` combine them so that a reader of one data dir stays right: `first_day`/`last_day` span
    every account's days, `gaps` are the days missing in any account (within its own days),
    `records` and `quarantined` are sums, and `high_water_mark` is the least advanced account's
    mark (accounts with none yet left out, as `synced_at` does). `last_sync` then also lists the
    run's `accounts` outcomes when it logged them.
    """
    document: dict[str, Any] = {"data_dir": status.data_dir, "synced": status.synced}
    document |= _kinds_json(status.kinds)
    run = status.last_sync
    document["last_sync"] = {
        "run_id": run and run.run_id,
        "types": list(run.types) if run else [],
        "started_at": _instant(run and run.started_at),
        "finished_at": _instant(run and run.finished_at),
        "status": run and run.status,
        "failed_slices": failed_slices_json(run.failed_slices if run else ()),
        "error": run and run.error,
        "changed_days": changed_days_json(run.changed_days if run else {}),
    }
    if status.several and run and run.accounts:
        document["last_sync"]["accounts"] = accounts_json(run.accounts)
    build = status.last_build
    document["last_build"] = {
        "built_at": _instant(build and build.built_at),
        "status": None if build is None else "passed" if build.passed else "failed",
        "sync_run_id": build and build.sync_run_id,
        "how": build and build.how,
    }
    document["dashboards"] = {"made_at": _instant(status.dashboards_made_at), "site": status.site}
    if status.several:
        document["accounts"] = {a.account: _kinds_json(a.kinds) for a in status.accounts}
    return document


def status_lines(status: DataStatus, accounts: Sequence[Account] = ()) -> list[str]:
    """A status -> a short aligned block for a terminal. `accounts`: the configured ones, whose keys' places let the
    last sync's accounts that failed alike on their keys share a line."""
    rows: list[tuple[str, str]] = []
    if not status.synced:
        rows.append(("data dir", f"{status.data_dir}: never synced (`cdr sync --range last_7_days` lands the first days)"))
    else:
        rows.append(("data dir", status.data_dir))
    if len(status.accounts) > SHOWN_ACCOUNTS:
        rows += _many_accounts_rows(status)
    else:
        for account in status.accounts:
            if status.several and account.never_synced:
                rows.append(_never_synced_row([account.account]))
                continue
            rows += [("account", account.account)] if status.several else []
            for kind in account.kinds:
                rows += _kind_rows(kind)
    rows += _sync_rows(status.last_sync, status.several, accounts)
    build = status.last_build
    if build is None:
        rows.append(("last build", "none (`cdr build` makes the warehouse)"))
    else:
        source = f"from sync {build.sync_run_id}" + (f" ({build.sync_status})" if build.sync_status else "")
        outcome = "data tests passed" if build.passed else "data tests FAILED (kept as warehouse.failed.duckdb)"
        outcome += f"; {build.how}" if build.how else ""
        rows.append(("last build", f"{_when(build.built_at)}, {source if build.sync_run_id else 'before any logged sync'}: {outcome}"))
    made = status.dashboards_made_at
    rows.append(("dashboards", f"made {_when(made)} in {status.site}" if made else f"none in {status.site} (`cdr dashboards`)"))
    width = max(len(label) for label, _ in rows) + 2
    return [f"{label:<{width}}{text}" for label, text in rows]


def newest_sync_run(data_dir: Path | str) -> SyncRunRecord | None:
    """A data dir -> its newest sync run (None: none logged, or the log is unreadable: a build does not fail over it)."""
    try:
        runs = read_sync_runs(Lake(data_dir))
    except SyncLogError as exc:
        log.warning("%s", exc)
        return None
    return runs[0] if runs else None


def record_build(
    data_dir: Path | str, built_from: SyncRunRecord | None, *, passed: bool, how: str | None = None, now: datetime | None = None
) -> None:
    """A build that ran its data tests -> `last_build.json` in the data dir; a failure to write it is only logged.

    The warehouse is published (or kept as failed) by then: its record cannot undo that.
    """
    document = {
        "version": RECORD_VERSION,
        "built_at": format_utc(now or datetime.now(timezone.utc)),
        "status": "passed" if passed else "failed",
        "sync_run_id": built_from and built_from.run_id,
        "sync_status": built_from and built_from.status,
        "how": how,
    }
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    lake = Lake(data_dir)
    if not lake.is_local:
        try:
            lake.write_bytes(BUILD_RECORD, data)  # one PUT: whole or not at all
        except LakeError as exc:
            log.error("could not record the build: %s", exc)
        return
    target = Path(data_dir) / BUILD_RECORD
    try:
        with atomic_file(target) as temp:
            Path(temp).write_bytes(data)
    except OSError as exc:
        log.error("could not record the build in %s: %s", target, exc.strerror or exc)


def site_marker(now: datetime) -> bytes:
    """When a site's pages are made -> the marker written with them (what `cdr status` reads)."""
    return orjson.dumps({"version": RECORD_VERSION, "made_at": format_utc(now)}, option=orjson.OPT_INDENT_2)


# -- internals ---------------------------------------------------------------------------------


def _account_names(lake: Lake, listed: Sequence[str] = ()) -> list[str]:
    """The data dir's accounts and those `listed` (sorted); a data dir never synced without an accounts file shows the
    one account of no accounts file."""
    return sorted({*lake.accounts(), *listed}) or [DEFAULT_ACCOUNT]


def _marks(account: AccountLake) -> list[datetime | None]:
    return [read_state(account, kind).high_water_mark for kind in RECORD_TYPES]


@dataclass(frozen=True, slots=True)
class _Listing:
    """What the lake holds, listed once for every account and sorted out by account once (each account's
    status reads its own share: scanning every account's files for each would grow with the square of the
    accounts): per (record type, account) its partitions' days with their rows and its usage partitions' days;
    quarantined records per (account, record type)."""

    rows: dict[tuple[str, str], dict[date | None, int]]
    usage: dict[tuple[str, str], set[date]]
    rejects: dict[tuple[str, str], int]

    @classmethod
    def of(cls, lake: Lake) -> _Listing:
        rows: dict[tuple[str, str], dict[date | None, int]] = {}
        usage: dict[tuple[str, str], set[date]] = {}
        for kind in RECORD_TYPES:
            for relative, count in _rows_per_file(lake, kind).items():
                days = rows.setdefault((kind, str(Lake.partition_account(relative))), {})
                day = Lake.partition_day(relative)
                days[day] = days.get(day, 0) + count
            for relative in lake.partition_files(f"usage_{kind}"):
                if (day := Lake.partition_day(relative)) is not None:
                    usage.setdefault((kind, str(Lake.partition_account(relative))), set()).add(day)
        return cls(rows=rows, usage=usage, rejects=_quarantined_per_account(lake))


def _kind_status(account: AccountLake, kind: str, listing: _Listing) -> KindStatus:
    """An account's record type -> its days, mark, records and rejects, from its state, partition names and footers."""
    state = read_state(account, kind)
    rows = listing.rows.get((kind, account.account), {})
    with_data = {day for day in rows if day is not None}
    landed = {day for window in state.landed for day in window_days(window)}
    counted = listing.usage.get((kind, account.account), set())
    lost = lost_days(state, with_data, counted)
    synced = with_data | landed
    first, last = (min(synced), max(synced)) if synced else (None, None)
    span = days_from(first, last + timedelta(days=1)) if first and last else []
    gaps = [day for day in span if day not in with_data and (day not in landed or day in lost)]
    return KindStatus(
        kind=kind,
        first_day=first,
        last_day=last,
        high_water_mark=state.high_water_mark,
        gaps=tuple(gaps),
        records=sum(rows.values()),
        quarantined=listing.rejects.get((account.account, kind), 0),
    )


def _combined(kinds: list[KindStatus]) -> KindStatus:
    """One record type in several accounts -> the data dir's figures (see `status_document`)."""
    firsts = [k.first_day for k in kinds if k.first_day is not None]
    lasts = [k.last_day for k in kinds if k.last_day is not None]
    marks = [k.high_water_mark for k in kinds if k.high_water_mark is not None]
    return KindStatus(
        kind=kinds[0].kind,
        first_day=min(firsts, default=None),
        last_day=max(lasts, default=None),
        high_water_mark=min(marks, default=None),
        gaps=tuple(sorted({day for k in kinds for day in k.gaps})),
        records=sum(k.records for k in kinds),
        quarantined=sum(k.quarantined for k in kinds),
    )


def _kinds_json(kinds: tuple[KindStatus, ...]) -> dict[str, Any]:
    return {
        kind.kind: {
            "first_day": _day(kind.first_day),
            "last_day": _day(kind.last_day),
            "high_water_mark": _instant(kind.high_water_mark),
            "gaps": [day.isoformat() for day in kind.gaps],
            "records": kind.records,
            "quarantined": kind.quarantined,
        }
        for kind in kinds
    }


def _rows_per_file(lake: Lake, kind: str) -> dict[str, int]:
    """A record type -> every account's partition files with their rows."""
    files = lake.partition_files(kind)
    return dict(zip(files, _row_count(lake, kind, files), strict=True))


def _row_count(lake: Lake, kind: str, files: list[str]) -> list[int]:
    """Partition files -> the rows of each, from the Parquet footers alone; LakeError naming a file that is not Parquet."""
    if not files:
        return []
    import duckdb

    locations = [lake.location(relative) for relative in files]
    con = duckdb.connect()
    register_lake(con, lake)
    try:
        # A file's footer lists one row per row group: summed per file, in the order asked.
        rows = con.execute(
            "select file_name, sum(num_rows) from parquet_file_metadata(?) group by file_name", [locations]
        ).fetchall()
    except duckdb.Error as exc:
        named = next((relative for relative in files if lake.location(relative) in str(exc)), None)
        if named is None:
            raise LakeError(f"cannot read the {kind} lake's Parquet footers ({one_line(exc, first=True)})") from None
        reason = one_line(exc, first=True).replace(lake.location(named), PurePosixPath(named).name)
        raise LakeError(
            f"{lake.display(named)} is not a readable Parquet file ({reason}): delete it and re-sync that day with "
            f"{resync_command(kind, Lake.partition_day(named))}"
        ) from None
    finally:
        con.close()
    counts = {name: int(count) for name, count in rows}
    return [counts.get(location, 0) for location in locations]


def _quarantined_per_account(lake: Lake) -> dict[tuple[str, str], int]:
    """The records the sync set aside, per (account, record type), each counted once as the warehouse's
    stg_quarantine does (every re-sync of a window sets the same records aside again, in a file of its own);
    LakeError naming a quarantine file that cannot be read."""
    files = lake.quarantine_files()
    if not files:
        return {}
    import duckdb

    from pipelines.models.sources import QUARANTINE_MACROS, quarantine_source_sql, unreadable_quarantine_file

    select, _ = quarantine_source_sql(lake, files)
    con = duckdb.connect()
    register_lake(con, lake)
    try:
        for statement in QUARANTINE_MACROS:
            con.execute(statement)
        rows = con.execute(
            f"select account, kind, count(distinct quarantine_record_key(raw_json)) from ({select}) group by all"
        ).fetchall()
    except duckdb.Error as exc:
        raise unreadable_quarantine_file(lake, con, files) or LakeError(
            f"cannot read the quarantine in {lake.display(QUARANTINE_DIR)} ({one_line(exc, first=True)})"
        ) from None
    finally:
        con.close()
    return {(str(account), str(kind)): int(count) for account, kind, count in rows}


def _read_build(lake: Lake) -> BuildRecord | None:
    document = _read_record(lake, BUILD_RECORD, "delete it: the next `cdr build` writes it again")
    if document is None:
        return None
    try:
        built_at, status = parse_datetime(document["built_at"]), document["status"]
        if status not in ("passed", "failed"):
            raise ValueError(f"unknown build status {status!r}")
        run_id, run_status = document["sync_run_id"], document["sync_status"]
        return BuildRecord(
            built_at=built_at,
            passed=status == "passed",
            sync_run_id=None if run_id is None else str(run_id),
            sync_status=None if run_status is None else str(run_status),
            how=None if document.get("how") is None else str(document["how"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _corrupt(lake, BUILD_RECORD, exc, "delete it: the next `cdr build` writes it again") from exc


def _read_site_marker(lake: Lake) -> datetime | None:
    relative = f"{SITE_DIR}/{SITE_MARKER}"
    advice = "delete it: the next `cdr dashboards` writes it again"
    document = _read_record(lake, relative, advice)
    if document is None:
        return None
    try:
        return parse_datetime(document["made_at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _corrupt(lake, relative, exc, advice) from exc


def _read_record(lake: Lake, relative: str, advice: str) -> dict[str, Any] | None:
    data = lake.read_bytes(relative)
    if data is None:
        return None
    try:
        document = orjson.loads(data)
        if not isinstance(document, dict) or document.get("version") != RECORD_VERSION:
            raise ValueError(f"it is not a version {RECORD_VERSION} record")
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise _corrupt(lake, relative, exc, advice) from exc
    return document


def _corrupt(lake: Lake, relative: str, exc: BaseException, advice: str) -> StatusRecordError:
    return StatusRecordError(f"{lake.display(relative)} is corrupt ({what_is_wrong(exc)}); {advice}")


def _kind_rows(kind: KindStatus) -> list[tuple[str, str]]:
    if kind.first_day is None or kind.last_day is None:
        return [(kind.kind, "never synced")]
    days = (kind.last_day - kind.first_day).days + 1
    mark = f"synced up to {_when(kind.high_water_mark)}" if kind.high_water_mark else "no completed sync yet"
    rows = [
        (kind.kind, f"{kind.first_day.isoformat()} to {kind.last_day.isoformat()} ({counted(days, 'day')}), {mark}"),
        ("", f"{counted(kind.records, 'record')}, {kind.quarantined:,} quarantined"),
    ]
    if kind.gaps:
        count = len(kind.gaps)
        rows.append(("", f"missing {counted(count, 'day')}: {day_ranges(kind.gaps, SHOWN_GAPS)}"))
    return rows


def _many_accounts_rows(status: DataStatus) -> list[tuple[str, str]]:
    """More accounts than a terminal shows each of -> the data dir's records together (the JSON's top-level
    figures), then the blocks of only the accounts that need a look (`_needing_a_look`), at most SHOWN_ACCOUNTS."""
    look = _needing_a_look(status)
    what = "with missing days, a record type never synced, or synced less far than most"
    rows = [("accounts", f"{len(status.accounts):,}, their records together below; "
                         + (f"{counted(len(look), 'account')} {what}, each below" if look else f"none {what}"))]
    for kind in status.kinds:
        rows += _kind_rows(kind)
    never = [account.account for account in look if account.never_synced]
    if never:  # one line, however many: they hold nothing to show, and one command gives them their first sync
        rows.append(_never_synced_row(never))
    look = [account for account in look if not account.never_synced]
    for account in look[:SHOWN_ACCOUNTS]:
        rows.append(("account", account.account))
        for kind in account.kinds:
            rows += _kind_rows(kind)
    if len(look) > SHOWN_ACCOUNTS:
        rows.append(("", f"and {counted(len(look) - SHOWN_ACCOUNTS, 'more account')} so (`cdr status --json` has each "
                         "account's figures)"))
    return rows


def _never_synced_row(names: Sequence[str]) -> tuple[str, str]:
    """Accounts the data dir holds nothing of -> the row naming them (a few) and the command of their first sync."""
    if len(names) == 1:
        return ("account", f"{names[0]}: never synced (`{first_sync_command(names)}` lands its first days)")
    return ("accounts", f"{few_counted(names, 'account')}: never synced (`{first_sync_command(names)}` lands their "
                        "first days)")


def _needing_a_look(status: DataStatus) -> list[AccountStatus]:
    """The accounts with a day missing, a record type never synced (or never completed), or a record type synced
    less far than most accounts' (its mark before their median: one account synced further by hand leaves the
    others in step): what a reseller's hundreds of accounts in step would hide."""
    medians = []
    for kinds in zip(*(a.kinds for a in status.accounts)):
        marks = sorted(k.high_water_mark for k in kinds if k.high_water_mark is not None)
        medians.append(marks[len(marks) // 2] if marks else None)
    return [
        account for account in status.accounts
        if any(k.high_water_mark is None or k.gaps or (median is not None and k.high_water_mark < median)
               for k, median in zip(account.kinds, medians))
    ]


def _sync_rows(run: SyncRunRecord | None, several: bool, accounts: Sequence[Account]) -> list[tuple[str, str]]:
    if run is None:
        return [("last sync", "none logged")]
    ended = f", finished {_when(run.finished_at)}" if run.finished_at else ""
    rows = [("last sync", f"{run.status}: run {run.run_id} ({','.join(run.types)}), started {_when(run.started_at)}{ended}")]
    outcomes = run.accounts if several else ()
    if len(outcomes) > SHOWN_ACCOUNTS:
        rows += _many_outcomes_rows(outcomes, accounts)
    else:
        rows += [("", f"account {a.account}: {_outcome(a)}") for a in outcomes]
    # The run's error only joins its failed accounts' errors, unless the run itself failed.
    joined = "; ".join(f"account {a.account}: {a.error}" for a in outcomes if a.status == "failed")
    if run.error and run.error != joined:
        rows.append(("", run.error))
    failed = run.failed_slices
    rows += [("", f"failed {f.kind} {f.slice}: {f.cause}") for f in failed[:SHOWN_FAILURES]]
    if len(failed) > SHOWN_FAILURES:
        rows.append(("", f"and {counted(len(failed) - SHOWN_FAILURES, 'more failed slice')} (`cdr status --json` lists them)"))
    return rows


def _outcome(run: AccountRun) -> str:
    """An account's outcome of a sync -> how a line says it: `completed`, or `failed (its cause)`."""
    return run.status + (f" ({run.error})" if run.error else "")


def _many_outcomes_rows(outcomes: Sequence[AccountRun], accounts: Sequence[Account]) -> list[tuple[str, str]]:
    """More outcomes than a terminal shows each of -> the completed ones counted, then each other outcome once with a
    few of its accounts (`pipelines.sync.by_cause`: a reseller's lapsed keys, each naming its own variable, or an
    outage share one line), at most SHOWN_ACCOUNTS lines."""
    from pipelines.sync import by_cause, key_name

    keys = {account.name: key_name(account) for account in accounts}
    others = [a for a in outcomes if a.status != "completed"]
    rows = [("", f"{counted(len(outcomes) - len(others), 'account')} completed")]
    groups = by_cause((a.account, _outcome(a), keys.get(a.account)) for a in others)
    rows += [("", f"{named_accounts(names)}: {outcome}")
             for names, outcome in groups[:SHOWN_ACCOUNTS]]
    rest = sum(len(names) for names, _ in groups[SHOWN_ACCOUNTS:])
    if rest:
        rows.append(("", f"and {counted(rest, 'more account')} (`cdr status --json` lists each one's outcome)"))
    return rows


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else format_utc(moment)


def _day(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
