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

    # Where everything lands: lake/, quarantine/, state/, warehouse.duckdb, site/
    data_dir: Path = Field(default=Path("data"), alias="CDR_DATA_DIR")

    # A sync with no range starts this many days before the high-water mark, to pick up
    # late and re-rated records.
    lookback_days: int = Field(default=3, ge=0, alias="CDR_LOOKBACK_DAYS")

    # Calendar used to resolve date literals and to date the reports
    timezone: str = Field(default="UTC", alias="CDR_TIMEZONE")
    week_start: str = Field(default="monday", alias="CDR_WEEK_START")

    def with_overrides(self, **changes: object) -> "Settings":
        """A copy with the given (non-None) fields replaced."""
        current = {name: getattr(self, name) for name in type(self).model_fields}
        current.update({k: v for k, v in changes.items() if v is not None})
        return type(self).model_validate(current)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit (non-None) overrides on top."""
    return Settings().with_overrides(**overrides)
