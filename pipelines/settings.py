"""Settings: one frozen object, the only reader of os.environ and of the working directory's .env.

Precedence: a command-line option, then the environment, then `.env`, then the default.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.dates import WEEK_STARTS, ZONES, zone_meant, zone_name
from pipelines.errors import UsageError, bad_value, choice, clip, closest, hinted, one_line, shown_url, unusable_host

PRODUCTION_URL = "https://api.opentact.org"

# Command-line options that override a setting, named as the user typed them.
OPTION_NAMES = {
    "data_dir": "--data-dir", "timezone": "--tz", "week_start": "--week-start", "mask_numbers": "--mask-numbers",
}

# Read from the working directory, as a shell's relative paths are.
DOTENV = Path(".env")

_SECRET_FIELDS = frozenset({"opentact_api_key"})
_SHOWN_CHARS = 40
# What DuckDB's memory_limit accepts, less its forms that mean "no limit".
_MEMORY_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B)", re.IGNORECASE)
_MEMORY_UNITS = {
    f"{prefix}{infix}B": (1024 if infix else 1000) ** power
    for power, prefix in enumerate("KMGT", start=1) for infix in ("", "I")
}
# Below this DuckDB cannot hold even one model's working set.
_MIN_BUILD_MEMORY = 100 * 1000**2

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})

# CDR_TASK_RUNNER's values: where a sync's slices run.
TASK_RUNNERS = ("thread", "dask")

# Object stores a data dir may be on (through fsspec; the endpoint, region and keys come from the
# AWS_* variables, which botocore reads itself).
STORE_SCHEMES = ("s3",)
DATA_DIR_URLS = (
    "the data dir must be a local folder or an s3://bucket/prefix URL (for another S3-compatible store, "
    "set AWS_ENDPOINT_URL; mount any other store as a folder)"
)

DATA_DIR_FOLDERS = (
    "an s3:// data dir's folder names cannot be empty, . or .. (as in s3://bucket//prefix): write it as "
    "s3://bucket/prefix"
)


def api_key_problem(key: str) -> str | None:
    """An API key -> why an HTTP header cannot carry it as issued, or None if it can.

    The reason never quotes the key: it ends up in messages.
    """
    if not key:
        return "it is empty"
    if key.strip() != key:
        return "it has leading or trailing whitespace"
    if "\n" in key or "\r" in key:
        return "it contains a line break"
    # A bearer token is visible ASCII; anything else is a copy-and-paste accident that the
    # HTTP layer would reject (or mangle) on every request.
    if not all("!" <= char <= "~" for char in key):
        return "it contains a space, a control character or a non-ASCII character"
    return None


# Said when there is no key to read the API with (no accounts file, OPENTACT_API_KEY unset).
MISSING_API_KEY = (
    "OPENTACT_API_KEY is not set (or is empty): export it (the variables are listed in .env.example) "
    "to read the Opentact API"
)


def missing_api_key(settings: Settings) -> UsageError:
    """The refusal when there is no key (MISSING_API_KEY), naming a variable the environment or .env sets under a
    name a letter or two from OPENTACT_API_KEY's (`OPENTACT_APIKEY=...`), which nothing reads. Never its value."""
    # by the name in capitals (as the settings read names in any case) -> the name as written, and where
    names = {name.upper(): (name, "the environment") for name in os.environ}
    if settings._dotenv is not None:
        dotenv = clip(str(settings._dotenv))
        names |= {name.upper(): (name, dotenv) for name in dotenv_values(settings._dotenv, encoding="utf-8")}
    names.pop("OPENTACT_API_KEY", None)  # set, but empty
    near = closest("OPENTACT_API_KEY", names, cutoff=0.85)
    if near is None:
        return UsageError(MISSING_API_KEY)
    name, where = names[near]
    return UsageError(f"{MISSING_API_KEY} ({where} sets {clip(name)}: did you mean OPENTACT_API_KEY?)")


def api_key_refusal(problem: str, name: str = "OPENTACT_API_KEY") -> str:
    """Why a key is unusable -> the one-line refusal (which never quotes the key)."""
    return f"{name} is not allowed: {problem}; set it to the key exactly as issued"


def base_url_problem(url: str) -> str | None:
    """An API base URL -> why the key must not be sent to it (a phrase following the URL), or None if it may."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed [IPv6 bracket
        parts, host = None, None
    if parts is None or parts.scheme not in ("https", "http") or not host or unusable_host(host):
        return "is not an http(s) URL such as https://api.opentact.org"
    # The key goes in the Bearer header; a password here would be sent too and shown in every error naming the API.
    if parts.username is not None or parts.password is not None:
        return "must not hold a user name or password (the API key is sent in its own header)"
    if parts.scheme == "http" and not _is_loopback(host):
        return (
            "uses plain http://, which would send the API key unencrypted: "
            "use https:// (plain http is allowed only for loopback hosts such as the local sandbox)"
        )
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    return None


def base_url_refusal(name: str, url: str) -> str | None:
    """A base URL and the setting it came from -> the one-line refusal (showing only its scheme, host and port),
    or None if the key may be sent to it."""
    problem = base_url_problem(url)
    return None if problem is None else f"{name} {shown_url(url)} {problem}"


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Everything configurable, from the environment (or explicit keyword arguments)."""

    # An empty variable (`OPENTACT_API_KEY=` as in .env.example) means "not set"; no float may
    # be inf or nan, which would pass every bound and break arithmetic later.
    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", populate_by_name=True, env_ignore_empty=True, allow_inf_nan=False
    )

    # The API
    opentact_api_key: SecretStr | None = Field(default=None, alias="OPENTACT_API_KEY")
    opentact_base_url: str = Field(default=PRODUCTION_URL, alias="OPENTACT_BASE_URL")
    # How the client reads it (the concurrency default is measured: bench/RESULTS.md)
    opentact_concurrency: int = Field(default=4, ge=1, le=64, alias="OPENTACT_CONCURRENCY")
    opentact_page_size: int = Field(default=250, ge=1, le=250, alias="OPENTACT_PAGE_SIZE")
    # A window's end is frozen at most at now minus this: records still being written settle.
    opentact_settle_lag_secs: float = Field(default=120.0, ge=0, le=86400, alias="OPENTACT_SETTLE_LAG_SECS")
    opentact_timeout_secs: float = Field(default=30.0, gt=0, le=3600, alias="OPENTACT_TIMEOUT_SECS")
    # One request's retries stop (with an error naming it) after this long.
    opentact_retry_max_secs: float = Field(default=300.0, gt=0, le=86400, alias="OPENTACT_RETRY_MAX_SECS")
    opentact_backoff_base_secs: float = Field(default=0.5, gt=0, le=3600, alias="OPENTACT_BACKOFF_BASE_SECS")
    opentact_backoff_max_secs: float = Field(default=30.0, gt=0, le=3600, alias="OPENTACT_BACKOFF_MAX_SECS")
    # A UTC day of more pages than this is read hour by hour: shorter, stabler queries.
    opentact_slice_max_pages: int = Field(default=100, ge=1, le=100_000, alias="OPENTACT_SLICE_MAX_PAGES")
    # Slices read ahead of the one being consumed (bounded memory, no idle gap between slices).
    opentact_prefetch_slices: int = Field(default=1, ge=0, le=8, alias="OPENTACT_PREFETCH_SLICES")
    # A slice with more rejected records than this share is a broken source, not bad luck: its
    # day keeps what the lake had, the rejects are quarantined and the slice fails.
    opentact_max_rejected_percent: float = Field(default=5.0, ge=0, le=100, alias="OPENTACT_MAX_REJECTED_PERCENT")

    # Where everything lands: lake/, quarantine/, state/, warehouse.duckdb, site/. A local folder
    # (a Path), or an object-store URL such as s3://bucket/prefix (kept as the URL text).
    data_dir: Path | str = Field(default=Path("data"), alias="CDR_DATA_DIR")

    # A sync with no range starts this many days before the high-water mark, to pick up
    # late and re-rated records.
    lookback_days: int = Field(default=3, ge=0, le=366, alias="CDR_LOOKBACK_DAYS")
    # The longest window one sync may cover: a typo such as --start 0001-01-01 is refused at
    # once instead of planning millions of slices; a longer backfill is several syncs.
    max_sync_days: int = Field(default=1096, ge=1, le=3660, alias="CDR_MAX_SYNC_DAYS")

    # Calendar used to resolve date literals
    timezone: str = Field(default="UTC", alias="CDR_TIMEZONE")
    week_start: str = Field(default="monday", alias="CDR_WEEK_START")
    # IANA zone whose local dates (of created_at) date every report, export and dashboard;
    # reconciliation with the API's usage stays in UTC days, as the API dates usage in UTC.
    report_timezone: str = Field(default="UTC", alias="CDR_REPORT_TIMEZONE")

    # Show phone numbers (cli, cld) as their country calling code and last two digits in ad-hoc SQL.
    mask_numbers: bool = Field(default=False, alias="CDR_MASK_NUMBERS")

    # A condition that stays on is sent again only once its alerts' windows start this long after the end
    # of the window last sent (`cdr alerts --notify`, the nightly flow); 0 sends every window.
    alerts_snooze_hours: float = Field(default=24.0, ge=0, le=8760, alias="CDR_ALERTS_SNOOZE_HOURS")
    # A TOML file whose keys replace the shipped alert thresholds (queries/alerts/thresholds.toml).
    alerts_config: Path | None = Field(default=None, alias="CDR_ALERTS_CONFIG")

    # DuckDB's memory for a build: what does not fit spills beside the warehouse, so a build's
    # memory stays the same however much history the lake holds (bench/RESULTS.md).
    build_memory_limit: str = Field(default="600MB", alias="CDR_BUILD_MEMORY_LIMIT")

    # A TOML file of [accounts.<name>] tables (pipelines/accounts.py); unset, ./accounts.toml if there is one.
    accounts_file: Path | None = Field(default=None, alias="CDR_ACCOUNTS_FILE")

    # Where a sync's slices run: `thread` (in this process, the default) or `dask` (on a Dask
    # cluster's workers: a local one of CDR_DASK_WORKERS processes, or the one at CDR_DASK_ADDRESS).
    task_runner: str = Field(default="thread", alias="CDR_TASK_RUNNER")
    dask_workers: int = Field(default=2, ge=1, le=256, alias="CDR_DASK_WORKERS")
    dask_address: str | None = Field(default=None, alias="CDR_DASK_ADDRESS")

    # The .env file these settings were read from, for `variable` to read the same one.
    _dotenv: Path | None = PrivateAttr(default=None)

    def __init__(self, _overridden: Collection[str] = (), **values: Any) -> None:
        """Settings from the environment, `_env_file` and keywords; UsageError naming each bad value (as the
        option it came from, for the `_overridden` fields, and with the file a value came from)."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            error = settings_error(exc, _overridden, dotenv=values.get("_env_file"))
        else:
            self._dotenv = values.get("_env_file")
            return
        raise error  # outside the except block: the ValidationError, which quotes inputs, is not chained

    @field_validator("opentact_api_key", mode="before")
    @classmethod
    def _usable_key(cls, value: object) -> object:
        key = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(key, str) and (problem := api_key_problem(key)):
            raise ValueError(problem)
        return value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir(cls, value: object) -> object:
        # A URL taken as a path would land the data in a local folder named "s3:", and a later
        # run on the real store would not find it.
        text = str(value)
        scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]+):/", text)
        if scheme is None:
            return value if isinstance(value, Path) else Path(text) if isinstance(value, str) else value
        if scheme[1].lower() not in STORE_SCHEMES or not re.match(r"[A-Za-z0-9+.-]+://[^/]+", text):
            raise ValueError(DATA_DIR_URLS)
        # A scheme is case-insensitive, fsspec's names of them are not.
        url = scheme[1].lower() + text[len(scheme[1]):].rstrip("/")
        # The store's client drops an empty folder name when it writes, but not when it lists: the
        # lake would read as empty, and a build would publish an empty warehouse over the real one.
        if any(part in ("", ".", "..") for part in url.partition("://")[2].split("/")):
            raise ValueError(DATA_DIR_FOLDERS)
        return url

    @field_validator("timezone", "report_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone_name(value)
        except UsageError:
            raise ValueError(f"{ZONES}{hinted(zone_meant(value))}") from None
        return value

    @field_validator("week_start")
    @classmethod
    def _known_week_start(cls, value: str) -> str:
        name = choice(value, tuple(WEEK_STARTS))
        if name is None:
            raise ValueError(" or ".join(WEEK_STARTS))
        return name

    @field_validator("task_runner", mode="before")
    @classmethod
    def _known_task_runner(cls, value: object) -> object:
        name = choice(value, TASK_RUNNERS) if isinstance(value, str) else None
        if name is None:
            raise ValueError("thread (in this process, the default) or dask (on a Dask cluster)")
        return name

    @field_validator("dask_address")
    @classmethod
    def _scheduler_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        address = value.strip()
        try:
            parts = urlsplit(address)
            fine = parts.scheme == "tcp" and bool(parts.hostname) and parts.port is not None and parts.port > 0
        except ValueError:  # a port that is no number, or past 65535
            fine = False
        if not fine or parts.path or parts.query or parts.fragment or parts.username:
            raise ValueError("a Dask scheduler's address, tcp://host:port such as tcp://10.0.0.5:8786")
        return address

    @field_validator("build_memory_limit")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        size = _MEMORY_SIZE.fullmatch(value.strip())
        if size is None or float(size[1]) * _MEMORY_UNITS[size[2].upper()] < _MIN_BUILD_MEMORY:
            raise ValueError("a size of at least 100MB, such as 600MB or 2GB (KB, MB, GB, TB; KiB, MiB, GiB, TiB)")
        return value.strip()

    def with_overrides(self, **changes: object) -> "Settings":
        """A copy with the given (non-None) fields replaced; UsageError naming each bad value."""
        current = {name: getattr(self, name) for name in type(self).model_fields}
        given = {k: v for k, v in changes.items() if v is not None}
        current.update(given)
        changed = type(self)(_overridden=given.keys(), **current)
        changed._dotenv = self._dotenv
        return changed

    def variable(self, name: str) -> str | None:
        """A variable no field declares (an account's `api_key_env`) -> its value, read as the settings were:
        the environment, then the same .env file; None if neither sets it (an empty value does not)."""
        value = os.environ.get(name)
        if not value and self._dotenv is not None:
            value = dotenv_values(self._dotenv, encoding="utf-8").get(name)
        return value or None


def cache_root() -> Path:
    """The folder of this user's local copies of object-store data dirs: $XDG_CACHE_HOME/cdr, else ~/.cache/cdr."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cdr"


def settings_error(exc: ValidationError, overridden: Collection[str] = (), *, dotenv: Path | None = None) -> UsageError:
    """Pydantic's errors -> one line: each bad setting, its value (never the key's), what is allowed, and
    `(in <dotenv>)` when the value came from that file rather than the environment; a value given as an
    option reads as every bad option does (`bad --tz: ...`)."""
    fields = Settings.model_fields
    by_alias = {field.alias: name for name, field in fields.items()}
    problems = []
    for error in exc.errors(include_url=False, include_context=True, include_input=True):
        loc = str(error["loc"][0]) if error["loc"] else ""
        name = by_alias.get(loc, loc)
        field = fields.get(name)
        alias = field.alias if field is not None and field.alias else loc
        option = OPTION_NAMES.get(name) if name in overridden else None
        from_file = dotenv is not None and name not in overridden and not os.environ.get(alias)
        where = f" (in {clip(str(dotenv))})" if from_file else ""
        if name in _SECRET_FIELDS:
            problems.append(api_key_refusal(str((error.get("ctx") or {}).get("error") or error["msg"]), alias + where))
            continue
        allowed = _allowed(field) if field is not None else None
        reason = (error.get("ctx") or {}).get("error") if error["type"] == "value_error" else None
        value, why = shown_value(error.get("input")), f"is not allowed: {allowed or reason or error['msg']}"
        problems.append(str(bad_value(option, f"{value} {why}")) if option else f"{alias}={value}{where} {why}")
    return UsageError("; ".join(problems))


def _allowed(field: FieldInfo) -> str | None:
    """A numeric field's bounds -> what a user may set, e.g. 'a whole number from 1 to 64'."""
    if field.annotation is bool:
        return "true or false (or 1/0, yes/no, on/off)"
    if field.annotation not in (int, float):
        return None
    bounds = {name: getattr(m, name) for m in field.metadata for name in ("ge", "gt", "le") if hasattr(m, name)}
    kind = "a whole number" if field.annotation is int else "a number"
    if "ge" in bounds and "le" in bounds:
        return f"{kind} from {bounds['ge']:g} to {bounds['le']:g}"
    lower = f"of at least {bounds['ge']:g}" if "ge" in bounds else f"above {bounds['gt']:g}" if "gt" in bounds else ""
    upper = f"and at most {bounds['le']:g}" if "le" in bounds else ""
    return " ".join(part for part in (kind, lower, upper) if part)


def shown_value(value: object) -> str:
    """A bad value (or a name) as a message shows it: short, and on one line."""
    text = str(value)
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    return text if text.isprintable() and text.strip() == text and text else repr(text)


def load_settings(*, dotenv: Path | None = DOTENV, **overrides: object) -> Settings:
    """Settings from the environment and a `.env` file (if there), with explicit (non-None) overrides on top."""
    env_file = dotenv if dotenv is not None and check_dotenv(dotenv) else None
    return Settings(_env_file=env_file).with_overrides(**overrides)


def check_dotenv(path: Path) -> bool:
    """A .env path -> whether the file exists; UsageError naming the file and line of a line that is not NAME=value.

    python-dotenv, which reads it, would skip such a line with a warning and run on without
    that setting; the line itself is never quoted, as it may hold the API key.
    """
    shown = clip(str(path))
    try:
        with open(path, encoding="utf-8") as file:
            bad = next((b.original.line for b in parse_stream(file) if b.error or (b.key and b.value is None)), None)
    except FileNotFoundError:
        return False
    except UnicodeDecodeError:
        raise UsageError(f"{shown} is not UTF-8 text: write it as NAME=value lines") from None
    except OSError as exc:
        raise UsageError(f"cannot read {shown}: {clip(exc.strerror or str(exc))}") from None
    if bad is not None:
        raise UsageError(f"{shown} line {bad}: expected NAME=value (a quoted value closes its quotes)")
    return True


def read_toml(path: Path, shown: str) -> dict[str, object]:
    """A TOML file (named `shown` in messages) -> its document; UsageError in one line when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        error = UsageError(f"{shown}: cannot read it ({exc.strerror or one_line(exc)})")
    except UnicodeDecodeError:
        error = UsageError(f"{shown}: not UTF-8 text; write it as UTF-8 TOML")
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message says where ("at line 3, column 7") and quotes no value.
        error = UsageError(f"{shown}: not valid TOML ({one_line(exc)})")
    raise error  # outside the except block: a decoding error may quote the file, which may hold a key
