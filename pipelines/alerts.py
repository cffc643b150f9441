"""Alerts delivery stage: the warehouse's `rpt_alerts` -> the alerts of a range, printed, and each sent once.

Detection is SQL (`queries/alerts/`). An alert is recorded in `<data dir>/alerts/sent.json` only after
its send succeeded, so a failed one is sent again; a condition that stays on is snoozed (`is_due`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import httpx
import orjson
from filelock import FileLock, Timeout

from pipelines.accounts import DEFAULT_ACCOUNT
from pipelines.dates import Window, format_utc, parse_bound, parse_datetime
from pipelines.durable import atomic_file
from pipelines.errors import (
    CdrError, UsageError, clip, connection_failure, counted, one_line, one_of, shown_url, unusable_host, what_is_wrong,
)
from pipelines.lake import Lake
from pipelines.remote import is_remote, warehouse_name, work_dir
from pipelines.sql import QueryResult, connect_read_only

# rpt_alerts' columns, in its order (the shared design): `--format json` and a webhook's body carry exactly these.
ALERT_COLUMNS = (
    "account", "alert_key", "rule", "severity", "product", "direction", "country_code", "connection_id",
    "connection_name", "carrier", "currency", "window_start", "window_end", "observed", "baseline", "threshold", "message",
)
_TYPES = ("VARCHAR",) * 11 + ("TIMESTAMP WITH TIME ZONE",) * 2 + ("DOUBLE",) * 3 + ("VARCHAR",)
SCOPE_COLUMNS = ALERT_COLUMNS[ALERT_COLUMNS.index("product"):ALERT_COLUMNS.index("window_start")]
SEVERITIES = ("info", "warning", "critical")
DEFAULT_RANGE = "last_7_days"
# A terminal shows the alert in a few words; csv and json carry every column.
TABLE_COLUMNS = ("window_start", "window_end", "severity", "rule", "message")
# The same, over a warehouse of several accounts: whose alert it is comes first.
ACCOUNT_TABLE_COLUMNS = ("account", *TABLE_COLUMNS)

ALERTS_DIR = "alerts"
SENT_FILE = "sent.json"
SENT_VERSION = 1
# Two senders (a cron's `cdr alerts --notify` and the nightly flow) take turns.
SEND_LOCK_WAIT_SECS = 60.0


@dataclass(frozen=True, slots=True)
class Alert:
    """One row of rpt_alerts."""

    alert_key: str
    rule: str
    severity: str
    product: str | None
    direction: str | None
    country_code: str | None
    connection_id: str | None
    connection_name: str | None
    carrier: str | None
    currency: str | None
    window_start: datetime
    window_end: datetime
    observed: float | None
    baseline: float | None
    threshold: float | None
    message: str
    account: str = DEFAULT_ACCOUNT

    @property
    def named_account(self) -> str | None:
        """The account the alert names, or None for the `default` account of a data dir without an accounts file
        (left out, as in the alert's own key: queries/macros/alert_key.sql)."""
        return None if self.account == DEFAULT_ACCOUNT else self.account

    @property
    def condition(self) -> str:
        """The alert's account, rule and scope, without its window -> a stable key (md5 hex, nulls as '')."""
        account = [] if self.named_account is None else [self.named_account]
        parts = [*account, self.rule, *(getattr(self, name) or "" for name in SCOPE_COLUMNS)]
        return hashlib.md5("|".join(parts).encode()).hexdigest()

    def row(self) -> tuple[object, ...]:
        """The alert -> its values in ALERT_COLUMNS' order."""
        return tuple(getattr(self, name) for name in ALERT_COLUMNS)

    def json(self) -> bytes:
        """The alert -> one JSON object of exactly rpt_alerts' fields (as `cdr sql --format json` writes a row)."""
        return orjson.dumps(dict(zip(ALERT_COLUMNS, self.row())), option=orjson.OPT_UTC_Z)


def check_severity(value: str, option: str) -> str:
    """A severity as typed -> its name; UsageError naming the option and the valid ones."""
    return one_of(value, SEVERITIES, option)


def at_or_above(severity: str, minimum: str) -> bool:
    """Whether a severity is `minimum` or worse."""
    return SEVERITIES.index(severity) >= SEVERITIES.index(minimum)


def read_alerts(
    warehouse: Path, window: Window, *, min_severity: str = "info", account: str | None = None
) -> list[Alert]:
    """A warehouse, a range and a minimum severity -> the alerts (of `account`, else of every account) whose
    windows overlap the range, oldest first (a longer window before a shorter one starting with it); CdrError
    if the warehouse has no rpt_alerts."""
    con = connect_read_only(warehouse)
    try:
        present = {
            name for (name,) in con.execute(
                "select column_name from information_schema.columns where table_name = 'rpt_alerts'"
            ).fetchall()
        }
        if not present:
            raise CdrError(
                f"the warehouse {clip(warehouse_name(warehouse))} has no rpt_alerts table (it was built before alerts "
                "existed): run `cdr build`"
            )
        missing = [name for name in ALERT_COLUMNS if name not in present]
        if missing:
            raise CdrError(f"rpt_alerts lacks the columns {', '.join(missing)}: run `cdr build` to rebuild it")
        wanted = SEVERITIES[SEVERITIES.index(min_severity):]
        rows = con.execute(
            f"select {', '.join(ALERT_COLUMNS)} from rpt_alerts "
            "where window_start < ? and window_end > ? and list_contains(?, severity) "
            "and (?::varchar is null or account = ?::varchar) "
            "order by window_start, window_end desc, rule, account, alert_key",
            [window.end, window.start, list(wanted), account, account],
        ).fetchall()
    except duckdb.Error as exc:
        raise CdrError(f"cannot read rpt_alerts: {one_line(exc)}") from None
    finally:
        con.close()
    return [Alert(**dict(zip(ALERT_COLUMNS, row, strict=True))) for row in rows]


def alerts_result(alerts: Sequence[Alert], *, columns: Sequence[str] = ALERT_COLUMNS) -> QueryResult:
    """Alerts -> a query result of the given columns, for `pipelines.sql`'s table, csv and json writers."""
    kinds = dict(zip(ALERT_COLUMNS, _TYPES))
    rows = [tuple(getattr(alert, name) for name in columns) for alert in alerts]
    return QueryResult(columns=tuple(columns), types=tuple(kinds[name] for name in columns), batches=iter([rows]))


# -- which conditions are open ---------------------------------------------------------------------

# The last report day is often only partly synced (the nightly sync runs to `now`), so a daily rule
# may not fire on it yet: a condition that fired the day before still counts as on.
OPEN_DAYS = 2
OPEN_MEANING = (
    f"An alert is open when its condition (its rule and scope) fired in the last {OPEN_DAYS} days of data "
    "(the last day may be only partly synced); it has been on since the start of its run of back-to-back "
    "windows (a window without it means it cleared)."
)


@dataclass(frozen=True, slots=True)
class OpenCondition:
    """A condition still on: its latest alert, when its current run of back-to-back windows began, and how many
    alerts that run holds."""

    latest: Alert
    since: datetime
    alerts: int


def open_from(last_day: date, tz: str) -> datetime:
    """The warehouse's last report day and time zone -> the instant an alert's window must end after to be open
    (local midnight OPEN_DAYS - 1 days earlier); UsageError if the zone is unknown."""
    return parse_bound((last_day - timedelta(days=OPEN_DAYS - 1)).isoformat(), tz=tz, name="the first open day")


def open_conditions(alerts: Iterable[Alert], after: datetime) -> list[OpenCondition]:
    """Alerts and `open_from`'s instant -> each condition whose latest window ends after it, worst severity first,
    then newest first; a run breaks where a window starts after the run's end (a gap: cleared, as in `is_due`)."""
    runs: dict[str, OpenCondition] = {}
    ends: dict[str, datetime] = {}
    for alert in sorted(alerts, key=lambda a: (a.window_start, -a.window_end.timestamp(), a.alert_key)):
        run = runs.get(alert.condition)
        if run is None or alert.window_start > ends[alert.condition]:
            runs[alert.condition] = OpenCondition(latest=alert, since=alert.window_start, alerts=1)
            ends[alert.condition] = alert.window_end
            continue
        # Of two windows ending together, the longer one speaks for the condition (a day over one of its hours).
        newer = alert.window_end > run.latest.window_end or (
            alert.window_end == run.latest.window_end and alert.window_start < run.latest.window_start
        )
        latest = alert if newer else run.latest
        runs[alert.condition] = OpenCondition(latest=latest, since=run.since, alerts=run.alerts + 1)
        ends[alert.condition] = max(ends[alert.condition], alert.window_end)
    still_on = [run for key, run in runs.items() if ends[key] > after]
    return sorted(
        still_on,
        key=lambda run: (
            -SEVERITIES.index(run.latest.severity) if run.latest.severity in SEVERITIES else 1,
            -run.latest.window_end.timestamp(), run.latest.rule, run.latest.condition,
        ),
    )


# -- what was sent ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConditionState:
    """What was sent of one condition: the end of the window last sent, and of the latest window seen."""

    sent_window_end: datetime | None
    last_window_end: datetime


@dataclass(slots=True)
class SentRecord:
    """`alerts/sent.json`: each alert handled (key -> when it was sent, or snoozed) and each condition's state."""

    alerts: dict[str, dict[str, str]] = field(default_factory=dict)
    conditions: dict[str, ConditionState] = field(default_factory=dict)

    def note(self, alert: Alert, *, sent: bool, now: datetime) -> None:
        """Record that the alert was sent (or snoozed) at `now`."""
        self.alerts[alert.alert_key] = {"sent_at" if sent else "snoozed_at": format_utc(now)}
        self.conditions[alert.condition] = advance(self.conditions.get(alert.condition), alert, sent=sent)


def advance(state: ConditionState | None, alert: Alert, *, sent: bool) -> ConditionState:
    """A condition's state and one of its alerts, sent or snoozed -> its state after that alert."""
    last = alert.window_end if state is None else max(state.last_window_end, alert.window_end)
    sent_end = alert.window_end if sent else (None if state is None else state.sent_window_end)
    return ConditionState(sent_window_end=sent_end, last_window_end=last)


def is_due(state: ConditionState | None, alert: Alert, snooze: timedelta) -> bool:
    """Whether an alert is sent (True) or snoozed, given its condition's state: sent when the condition is new,
    cleared and returned, or has stayed on `snooze` past the window last sent."""
    if state is None or alert.window_start > state.last_window_end:
        return True
    return state.sent_window_end is None or alert.window_start >= state.sent_window_end + snooze


@dataclass(frozen=True, slots=True)
class Decision:
    """One alert not handled before: send it, or snooze it."""

    alert: Alert
    send: bool


def plan_delivery(alerts: Iterable[Alert], record: SentRecord, snooze: timedelta) -> list[Decision]:
    """Alerts (oldest first) and the record -> a decision for each alert never handled before, in order."""
    states = dict(record.conditions)
    plan = []
    for alert in alerts:
        if alert.alert_key in record.alerts:
            continue
        send = is_due(states.get(alert.condition), alert, snooze)
        states[alert.condition] = advance(states.get(alert.condition), alert, sent=send)
        plan.append(Decision(alert, send))
    return plan


def sent_path(data_dir: Path | str) -> Path:
    """A data dir -> the path of its record of sent alerts (on an object store: in its local work folder,
    where the senders' lock is; the record itself is the store's)."""
    return work_dir(data_dir) / ALERTS_DIR / SENT_FILE


def read_sent(data_dir: Path | str) -> SentRecord:
    """A data dir -> its record of sent alerts (empty if none yet); CdrError if the file cannot be understood."""
    path: Path | str = sent_path(data_dir)
    try:
        if is_remote(data_dir):
            path = Lake(data_dir).display(f"{ALERTS_DIR}/{SENT_FILE}")
            data = Lake(data_dir).read_bytes(f"{ALERTS_DIR}/{SENT_FILE}")
            if data is None:
                raise FileNotFoundError(path)
        else:
            data = Path(path).read_bytes()
        document = orjson.loads(data)
        if document.get("version") != SENT_VERSION:
            raise ValueError(f"unknown version {document.get('version')!r}")
        return SentRecord(
            alerts={str(key): {str(k): str(v) for k, v in value.items()} for key, value in document["alerts"].items()},
            conditions={
                str(key): ConditionState(
                    sent_window_end=None if value["sent_window_end"] is None else parse_datetime(value["sent_window_end"]),
                    last_window_end=parse_datetime(value["last_window_end"]),
                )
                for key, value in document["conditions"].items()
            },
        )
    except FileNotFoundError:
        return SentRecord()
    except OSError as exc:
        raise CdrError(f"cannot read {clip(str(path))}: {clip(exc.strerror or str(exc))}") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CdrError(
            f"cannot understand {clip(str(path))} ({what_is_wrong(exc)}): restore it, or move it aside to send every alert "
            "in the range again"
        ) from None


def write_sent(data_dir: Path | str, record: SentRecord) -> None:
    """The record of sent alerts -> `alerts/sent.json`, replaced whole."""
    path = sent_path(data_dir)
    document = {
        "version": SENT_VERSION,
        "alerts": record.alerts,
        "conditions": {
            key: {
                "sent_window_end": None if state.sent_window_end is None else format_utc(state.sent_window_end),
                "last_window_end": format_utc(state.last_window_end),
            }
            for key, state in record.conditions.items()
        },
    }
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    if is_remote(data_dir):
        Lake(data_dir).write_bytes(f"{ALERTS_DIR}/{SENT_FILE}", data)  # one PUT, replaced whole
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as temp, open(temp, "wb") as file:
            file.write(data)
    except OSError as exc:
        raise CdrError(f"cannot record the sent alerts in {clip(str(path))}: {clip(exc.strerror or str(exc))}") from None


class DeliveryFailed(CdrError):
    """A send failed: what went before it is recorded, it and the rest are sent on the next call."""


class DeliveryInterrupted(CdrError):
    """Ctrl-C stopped a delivery: what was sent before is recorded, the rest go on the next call (exit 130)."""

    exit_code = 130

    def __init__(self, line: str) -> None:
        self.line = line  # the CLI prints it as is, as it does a stopped sync's
        super().__init__(line)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a delivery did: the alerts sent and snoozed now, and how many had been handled before."""

    sent: tuple[Alert, ...]
    snoozed: tuple[Alert, ...]
    handled_before: int

    def summary(self, where: str) -> str:
        """The delivery -> one line naming where it sent (never a secret)."""
        return (
            f"sent {counted(len(self.sent), 'new alert')} to {where}; {len(self.snoozed)} snoozed (condition still on), "
            f"{self.handled_before} handled before"
        )


def deliver(
    alerts: Sequence[Alert], data_dir: Path, send: Callable[[Sequence[Alert]], None], *, snooze: timedelta,
    now: datetime, where: str, one_by_one: bool = True,
) -> Delivery:
    """Alerts, the data dir, a `send` callable (raising CdrError on failure) -> those never handled before sent
    (each alone, or all in one call) or snoozed, each recorded once its send succeeded; DeliveryFailed on a failure."""
    path = sent_path(data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path.parent / f".{SENT_FILE}.lock"), timeout=SEND_LOCK_WAIT_SECS)
        lock.acquire()
    except Timeout:
        raise CdrError(
            f"another sender (`cdr alerts --notify` or the nightly flow) has held {clip(str(path))} for "
            f"{SEND_LOCK_WAIT_SECS:.0f} s: try again when it is done"
        ) from None
    except OSError as exc:
        raise CdrError(f"cannot record sent alerts in {clip(str(path.parent))}: {clip(exc.strerror or str(exc))}") from None
    try:
        record = read_sent(data_dir)
        plan = plan_delivery(alerts, record, snooze)
        sent: list[Alert] = []
        pending: list[Decision] = []
        due = sum(decision.send for decision in plan)
        for index, decision in enumerate(plan):
            pending.append(decision)
            if (one_by_one and decision.send) or index == len(plan) - 1:
                batch = [d.alert for d in pending if d.send]
                if batch:
                    try:
                        send(batch)
                    except CdrError as exc:
                        raise DeliveryFailed(
                            f"sending to {where} failed after {len(sent)} of {counted(due, 'new alert')} ({exc}); "
                            f"{_next_call(due - len(sent))}"
                        ) from None
                    except KeyboardInterrupt:
                        raise DeliveryInterrupted(
                            f"interrupted: {len(sent)} of {counted(due, 'new alert')} sent to {where} and recorded; "
                            f"{_next_call(due - len(sent))}"
                        ) from None
                for done in pending:
                    record.note(done.alert, sent=done.send, now=now)
                write_sent(data_dir, record)
                sent += batch
                pending.clear()
    finally:
        lock.release()
    snoozed = tuple(d.alert for d in plan if not d.send)
    return Delivery(sent=tuple(sent), snoozed=snoozed, handled_before=len(alerts) - len(plan))


def _next_call(left: int) -> str:
    """How many alerts a stopped delivery left -> what the next call does with them."""
    return "the next call sends it" if left == 1 else f"the next call sends the {left:,} left"


# -- a webhook -------------------------------------------------------------------------------------

WEBHOOK_TIMEOUT_SECS = 10.0


def webhook_origin(url: str) -> str:
    """A webhook URL -> its scheme and host, all a message may show of it (its path or query may hold a token);
    UsageError unless an http or https URL with a host."""
    try:
        parsed = httpx.URL(url)
        urlsplit(url).port  # noqa: B018 - raises for a port beyond 65535, which httpx lets through
    except (httpx.InvalidURL, TypeError, ValueError):
        parsed = None
    if parsed is None or unusable_host(parsed.host):
        raise UsageError("--notify must be an http:// or https:// URL; that one cannot be parsed")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError("--notify must be an http:// or https:// URL with a host, e.g. https://hooks.example.com/…")
    return shown_url(url)


def webhook_sender(client: httpx.Client, url: str) -> Callable[[Sequence[Alert]], None]:
    """An httpx client and a webhook URL -> a `send` that POSTs each alert's JSON; CdrError (never quoting the URL)
    on a network failure or a non-2xx answer."""
    origin = webhook_origin(url)

    def send(alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            try:
                response = client.post(url, content=alert.json(), headers={"content-type": "application/json"})
            except httpx.HTTPError as exc:
                cause = one_line(exc, first=True).replace(url, origin) or type(exc).__name__
                raise CdrError(connection_failure(exc, url) or f"{type(exc).__name__}: {cause}") from None
            if not response.is_success:
                raise CdrError(f"answered HTTP {response.status_code} {response.reason_phrase}".rstrip())

    return send


def notify_webhook(
    alerts: Sequence[Alert], data_dir: Path, url: str, *, snooze: timedelta, now: datetime,
    timeout: float = WEBHOOK_TIMEOUT_SECS,
) -> Delivery:
    """Alerts, the data dir and a webhook URL -> each alert never sent before POSTed as JSON, recorded once sent."""
    from pipelines import __version__

    origin = webhook_origin(url)
    with httpx.Client(timeout=timeout, headers={"user-agent": f"opentact-cdr/{__version__}"}) as client:
        return deliver(alerts, data_dir, webhook_sender(client, url), snooze=snooze, now=now, where=origin)


# -- a digest, for notification blocks -------------------------------------------------------------


def digest(alerts: Sequence[Alert]) -> tuple[str, str]:
    """New alerts -> (subject, body) of one notification: the count per severity, then a line per alert (naming
    its account, as messages do not: two accounts' alerts can read the same)."""
    counts = [f"{sum(a.severity == s for a in alerts)} {s}" for s in reversed(SEVERITIES) if any(a.severity == s for a in alerts)]
    subject = f"CDR alerts: {counted(len(alerts), 'new alert')} ({', '.join(counts)})"
    body = "\n".join(
        f"[{a.severity}] {'' if a.named_account is None else f'{a.named_account}: '}{a.rule}, "
        f"{format_utc(a.window_start)[:16]}Z: {a.message}"
        for a in alerts
    )
    return subject, body
