"""Settings: one frozen object, the only reader of os.environ."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PRODUCTION_URL = "https://api.opentact.org"
STAGING_URL = "https://api.stage.opentact.org"


class Settings(BaseSettings):
    """Everything configurable, from the environment (or explicit keyword arguments)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    # The API
    opentact_api_key: SecretStr | None = Field(default=None, alias="OPENTACT_API_KEY")
    opentact_base_url: str = Field(default=PRODUCTION_URL, alias="OPENTACT_BASE_URL")
    # How the client reads it (the concurrency default is measured: bench/RESULTS.md)
    opentact_concurrency: int = Field(default=4, ge=1, le=64, alias="OPENTACT_CONCURRENCY")
    opentact_page_size: int = Field(default=250, ge=1, le=250, alias="OPENTACT_PAGE_SIZE")
    # A window's end is frozen at most at now minus this: records still being written settle.
    opentact_settle_lag_secs: float = Field(default=120.0, ge=0, alias="OPENTACT_SETTLE_LAG_SECS")
    opentact_timeout_secs: float = Field(default=30.0, gt=0, alias="OPENTACT_TIMEOUT_SECS")
    # One request's retries stop (with an error naming it) after this long.
    opentact_retry_max_secs: float = Field(default=300.0, gt=0, alias="OPENTACT_RETRY_MAX_SECS")
    opentact_backoff_base_secs: float = Field(default=0.5, gt=0, alias="OPENTACT_BACKOFF_BASE_SECS")
    opentact_backoff_max_secs: float = Field(default=30.0, gt=0, alias="OPENTACT_BACKOFF_MAX_SECS")
    # A UTC day of more pages than this is read hour by hour: shorter, stabler queries.
    opentact_slice_max_pages: int = Field(default=100, ge=1, alias="OPENTACT_SLICE_MAX_PAGES")
    # Slices read ahead of the one being consumed (bounded memory, no idle gap between slices).
    opentact_prefetch_slices: int = Field(default=1, ge=0, le=8, alias="OPENTACT_PREFETCH_SLICES")
    # A slice with more rejected records than this share is a broken source, not bad luck: its
    # day keeps what the lake had, the rejects are quarantined and the slice fails.
    opentact_max_rejected_percent: float = Field(default=5.0, ge=0, le=100, alias="OPENTACT_MAX_REJECTED_PERCENT")

    # Where everything lands: lake/, quarantine/, state/, warehouse.duckdb, site/
    data_dir: Path = Field(default=Path("data"), alias="CDR_DATA_DIR")

    # A sync with no range starts this many days before the high-water mark, to pick up
    # late and re-rated records.
    lookback_days: int = Field(default=3, ge=0, alias="CDR_LOOKBACK_DAYS")
    # The longest window one sync may cover: a typo such as --start 0001-01-01 is refused at
    # once instead of planning millions of slices; a longer backfill is several syncs.
    max_sync_days: int = Field(default=1096, ge=1, alias="CDR_MAX_SYNC_DAYS")

    # Calendar used to resolve date literals
    timezone: str = Field(default="UTC", alias="CDR_TIMEZONE")
    week_start: str = Field(default="monday", alias="CDR_WEEK_START")
    # IANA zone whose local dates (of created_at) date every report, export and dashboard;
    # reconciliation with the API's usage stays in UTC days, as the API dates usage in UTC.
    report_timezone: str = Field(default="UTC", alias="CDR_REPORT_TIMEZONE")

    def with_overrides(self, **changes: object) -> "Settings":
        """A copy with the given (non-None) fields replaced."""
        current = {name: getattr(self, name) for name in type(self).model_fields}
        current.update({k: v for k, v in changes.items() if v is not None})
        return type(self).model_validate(current)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit (non-None) overrides on top."""
    return Settings().with_overrides(**overrides)
