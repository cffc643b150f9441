"""Thresholds: the alert rules' settings (`queries/alerts/thresholds.toml`, a file's overrides on top) as one table.

`CDR_ALERTS_CONFIG` names a file whose keys replace the shipped ones; both are checked whole before
a build writes anything. The build loads them as `alert_thresholds(rule, name, value)`.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import UsageError, clip, one_line

THRESHOLDS_FILE = Path("alerts") / "thresholds.toml"
VERSION_KEY = "version"
# A key shipped as a whole number counts weeks, days, hours or points: it takes whole numbers up to
# this, far beyond any history and inside the 32-bit integers the rules' SQL computes with.
WHOLE_MAX = 100_000


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The settings a build uses: one value per (rule, name), the shipped version and a digest of the values."""

    version: int
    values: Mapping[tuple[str, str], float]
    override: Path | None

    @property
    def digest(self) -> str:
        """A short hash of every value: two builds with equal digests used the same thresholds."""
        text = "\n".join(f"{rule}.{name}={value!r}" for (rule, name), value in sorted(self.values.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def rows(self) -> list[tuple[str, str, float]]:
        """-> (rule, name, value) rows, sorted."""
        return [(rule, name, value) for (rule, name), value in sorted(self.values.items())]


def load_thresholds(queries_dir: Path, override: Path | None = None) -> Thresholds:
    """The queries folder and an optional override file -> the thresholds; UsageError for a bad override.

    A queries folder without the file has no thresholds (no alert rules either).
    """
    shipped_path = Path(queries_dir) / THRESHOLDS_FILE
    if not shipped_path.is_file():
        if override is not None:
            raise UsageError(f"alerts config {clip(str(override))}: this build has no alert rules to configure")
        return Thresholds(0, {}, None)
    shipped = _read(shipped_path, "shipped alert thresholds")
    version = shipped.pop(VERSION_KEY, None)
    if not isinstance(version, int) or isinstance(version, bool):
        raise UsageError(f"{shipped_path}: `version = <whole number>` is missing")
    whole = {
        (rule, name)
        for rule, table in shipped.items() if isinstance(table, dict)
        for name, value in table.items() if isinstance(value, int) and not isinstance(value, bool)
    }
    values = _values(shipped, shipped_path, known=None, whole=whole)
    if override is not None:
        changes = _read(Path(override), "alerts config (CDR_ALERTS_CONFIG)")
        given = changes.pop(VERSION_KEY, version)
        if given != version:
            raise UsageError(
                f"alerts config {clip(str(override))}: version {clip(repr(given), 20)} is not the shipped version "
                f"{version}; compare it with {clip(str(shipped_path))} and update it"
            )
        values.update(_values(changes, Path(override), known=values, whole=whole))
    return Thresholds(version, values, None if override is None else Path(override))


def _read(path: Path, what: str) -> dict[str, object]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise UsageError(f"{what} {clip(str(path))}: cannot read it ({exc.strerror or one_line(exc)})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{what} {clip(str(path))}: not valid TOML ({one_line(exc)})") from None


def _values(
    document: Mapping[str, object], path: Path, known: Mapping[tuple[str, str], float] | None,
    whole: set[tuple[str, str]],
) -> dict[tuple[str, str], float]:
    """A TOML document of `[rule] name = number` tables -> its values; with `known`, only known keys; the keys
    in `whole` only whole numbers up to WHOLE_MAX."""
    shown = clip(str(path))
    rules = {rule for rule, _ in known} if known is not None else None
    values: dict[tuple[str, str], float] = {}
    for rule, table in document.items():
        if rules is not None and rule not in rules:
            raise UsageError(f"{shown}: unknown rule [{clip(rule, 40)}]; the rules are {', '.join(sorted(rules))}")
        if not isinstance(table, dict):
            raise UsageError(f"{shown}: `{clip(rule, 40)}` must be a table of settings ([{clip(rule, 40)}])")
        for name, value in table.items():
            if known is not None and (rule, name) not in known:
                names = sorted(key for r, key in known if r == rule)
                raise UsageError(f"{shown}: unknown key {rule}.{clip(name, 40)}; [{rule}] takes {', '.join(names)}")
            got = clip(json.dumps(value, default=str), 40)  # as TOML writes it: true, "3"
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise UsageError(f"{shown}: {rule}.{clip(name, 40)} must be a number >= 0, got {got}")
            if (rule, name) in whole and (value != int(value) or value > WHOLE_MAX):
                raise UsageError(f"{shown}: {rule}.{clip(name, 40)} must be a whole number from 0 to {WHOLE_MAX:,}, got {got}")
            values[(rule, name)] = float(value)
    return values
