"""The configuration documented in README.md and .env.example is the one pipelines/settings.py reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _alias_defaults() -> dict[str, object]:
    """Each setting's environment variable -> its default value."""
    return {field.alias: field.default for field in Settings.model_fields.values() if field.alias}


def _same(documented: str, default: object) -> bool:
    if default is None:
        return documented in ("", "—")
    if isinstance(default, bool):
        return documented.lower() == str(default).lower()
    if isinstance(default, float):
        return float(documented) == default
    if isinstance(default, Path):
        return Path(documented) == default
    return documented == str(default)


def _readme_rows() -> dict[str, str]:
    """The README's configuration table: variable -> documented default."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        defaults = re.findall(r"`([^`]*)`", cells[1]) or [cells[1].split(" ")[0]]
        if len(defaults) == 1:
            defaults *= len(names)
        rows.update(zip(names, defaults, strict=True))
    return rows


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


@pytest.mark.parametrize("alias", sorted(_alias_defaults()))
def test_every_setting_is_documented_with_its_default(alias: str) -> None:
    default = _alias_defaults()[alias]
    readme, example = _readme_rows(), _env_example()
    assert alias in readme, f"{alias} missing from the README's configuration table"
    assert _same(readme[alias], default), f"README says {alias} defaults to {readme[alias]!r}, settings say {default!r}"
    assert alias in example, f"{alias} missing from .env.example"
    assert _same(example[alias], default), f".env.example sets {alias}={example[alias]!r}, settings default to {default!r}"


def test_nothing_documented_that_settings_do_not_read() -> None:
    known = set(_alias_defaults())
    assert set(_readme_rows()) <= known
    assert set(_env_example()) <= known
