"""Thresholds: the alert rules' settings (`queries/alerts/thresholds.toml`, a file's overrides on top) as one table.

`CDR_ALERTS_CONFIG` names a file whose keys replace the shipped ones; both are checked whole before
a build writes anything, each key against the range the shipped file allows it (`[rule.allowed]`).
The build loads them as `alert_thresholds(rule, name, value)`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from pipelines.errors import UsageError, clip
from pipelines.settings import read_toml

THRESHOLDS_FILE = Path("alerts") / "thresholds.toml"
VERSION_KEY = "version"
# A key shipped as a whole number counts weeks, days, hours or points: it takes whole numbers up to
# this, far beyond any history and inside the 32-bit integers the rules' SQL computes with.
WHOLE_MAX = 100_000
# In the shipped file, `[rule.allowed]` gives a key whose meaning bounds it `[lowest, highest]`; a key
# without one takes any number >= 0. Data of the file, not thresholds: no row, no part of the digest.
ALLOWED_TABLE = "allowed"
# A bound may be another key of the rule, plus a whole number: `weeks`, `start_hour + 1`.
_KEY_BOUND = re.compile(r"([a-z][a-z0-9_]*)(?: \+ ([0-9]+))?")
_ANY = (0, math.inf)

Bound = int | float | str
Ranges = Mapping[tuple[str, str], tuple[Bound, Bound]]


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
    shipped = read_toml(shipped_path, f"shipped alert thresholds {clip(str(shipped_path))}")
    version = shipped.pop(VERSION_KEY, None)
    if not isinstance(version, int) or isinstance(version, bool):
        raise UsageError(f"{shipped_path}: `version = <whole number>` is missing")
    ranges = _ranges(shipped, shipped_path)
    whole = {
        (rule, name)
        for rule, table in shipped.items() if isinstance(table, dict)
        for name, value in table.items() if isinstance(value, int) and not isinstance(value, bool)
    }
    values = _values(shipped, shipped_path, known=None, whole=whole, ranges=ranges)
    if override is not None:
        changes = read_toml(Path(override), f"alerts config (CDR_ALERTS_CONFIG) {clip(str(override))}")
        given = changes.pop(VERSION_KEY, version)
        if given != version:
            raise UsageError(
                f"alerts config {clip(str(override))}: version {clip(repr(given), 20)} is not the shipped version "
                f"{version}; compare it with {clip(str(shipped_path))} and update it"
            )
        values = _values(changes, Path(override), known=values, whole=whole, ranges=ranges)
    return Thresholds(version, values, None if override is None else Path(override))


def _ranges(document: dict[str, object], path: Path) -> dict[tuple[str, str], tuple[Bound, Bound]]:
    """The shipped document -> the range each key of a `[rule.allowed]` table allows; those tables are taken out of
    the document (they are not thresholds). UsageError for a range that is not `[lowest, highest]` of a key."""
    ranges: dict[tuple[str, str], tuple[Bound, Bound]] = {}
    for rule, table in document.items():
        if not isinstance(table, dict) or ALLOWED_TABLE not in table:
            continue
        allowed = table.pop(ALLOWED_TABLE)
        keys = {name for name, value in table.items() if not isinstance(value, dict)}
        for name, bounds in allowed.items() if isinstance(allowed, dict) else [(ALLOWED_TABLE, allowed)]:
            if name not in keys or not isinstance(bounds, list) or len(bounds) != 2 or not all(
                _is_number(bound) or (isinstance(bound, str) and _bound_key(bound) in keys) for bound in bounds
            ):
                raise UsageError(
                    f"{path}: [{rule}.{ALLOWED_TABLE}] gives each key of [{rule}] `[lowest, highest]`, each bound a number "
                    f"or a key (`weeks`, `start_hour + 1`); got {clip(name, 40)} = {clip(json.dumps(bounds, default=str), 40)}"
                )
            ranges[(rule, name)] = (bounds[0], bounds[1])
    return ranges


def _values(
    document: Mapping[str, object], path: Path, known: Mapping[tuple[str, str], float] | None,
    whole: set[tuple[str, str]], ranges: Ranges,
) -> dict[tuple[str, str], float]:
    """A TOML document of `[rule] name = number` tables -> the values with its own on top of `known`; with `known`,
    only known keys; each value a number in its range (any number >= 0 without one), the keys in `whole` only whole
    numbers up to WHOLE_MAX."""
    shown = clip(str(path))
    rules = {rule for rule, _ in known} if known is not None else None
    given: dict[tuple[str, str], object] = {}
    for rule, table in document.items():
        if rules is not None and rule not in rules:
            raise UsageError(f"{shown}: unknown rule [{clip(rule, 40)}]; the rules are {', '.join(sorted(rules))}")
        if not isinstance(table, dict):
            raise UsageError(f"{shown}: `{clip(rule, 40)}` must be a table of settings ([{clip(rule, 40)}])")
        for name, value in table.items():
            if known is not None and (rule, name) not in known:
                names = sorted(key for r, key in known if r == rule)
                raise UsageError(f"{shown}: unknown key {rule}.{clip(name, 40)}; [{rule}] takes {', '.join(names)}")
            given[(rule, name)] = value
    raw = {**(known or {}), **given}

    def refused(key: tuple[str, str], values: Mapping[tuple[str, str], object]) -> UsageError:
        if key in given:
            got = clip(json.dumps(given[key], default=str), 40)  # as TOML writes it: true, "3"
        else:  # out of range through a key the file gave
            value = float(raw[key])  # type: ignore[arg-type]
            got = f"{int(value) if value.is_integer() else value} (the shipped value)"
        rule, name = key
        return UsageError(f"{shown}: {rule}.{clip(name, 40)} must be {_wanted(rule, name, key in whole, ranges, values)}, got {got}")

    # The file's own keys first: a key it did not give can only fall out of its range through a key it gave.
    order = [*given, *(key for key in raw if key not in given)]
    for key in order:
        value = raw[key]
        if not (_is_number(value) and math.isfinite(value) and (key not in whole or value == int(value))):
            raise refused(key, raw)
    # Every value a number now, so a bound naming another key reads one.
    values = {key: float(value) for key, value in raw.items()}  # type: ignore[arg-type]
    for key in order:
        low, high = ranges.get(key, _ANY)
        if not _resolve(low, key[0], values) <= values[key] <= min(
            _resolve(high, key[0], values), WHOLE_MAX if key in whole else math.inf
        ):
            raise refused(key, values)
    return values


def _wanted(rule: str, name: str, is_whole: bool, ranges: Ranges, values: Mapping[tuple[str, str], object]) -> str:
    """A key -> the values it takes, as a message says them: `a number >= 0`, `a whole number from 1 to weeks (8)`."""
    low, high = ranges.get((rule, name), _ANY)
    if is_whole and _is_number(high) and high > WHOLE_MAX:
        high = WHOLE_MAX
    kind = "a whole number" if is_whole else "a number"
    if high == math.inf:
        return f"{kind} >= {_shown(low, rule, values)}"
    return f"{kind} from {_shown(low, rule, values)} to {_shown(high, rule, values)}"


def _shown(bound: Bound, rule: str, values: Mapping[tuple[str, str], object]) -> str:
    """A bound -> as a message says it: `100,000`, `0.5`, `start_hour + 1 (9)` (the key's value when it is a number)."""
    if isinstance(bound, str):
        value = values.get((rule, _bound_key(bound)))
        return f"{bound} ({_shown(_resolve(bound, rule, values), rule, values)})" if _is_number(value) else bound
    return f"{int(bound):,}" if float(bound).is_integer() else f"{bound:g}"


def _resolve(bound: Bound, rule: str, values: Mapping[tuple[str, str], object]) -> float:
    """A bound -> its number: itself, or the named key's value plus what is added to it."""
    if not isinstance(bound, str):
        return bound
    match = _KEY_BOUND.fullmatch(bound)
    assert match is not None  # _ranges let only such bounds through
    value = values[(rule, match[1])]
    assert _is_number(value)  # _values resolves bounds only once every value is a number
    return value + int(match[2] or 0)


def _bound_key(bound: str) -> str | None:
    """A bound naming a key (`start_hour + 1`) -> that key; None for any other text."""
    match = _KEY_BOUND.fullmatch(bound)
    return match[1] if match else None


def _is_number(value: object) -> TypeGuard[int | float]:
    """Whether a TOML value is a number (TOML's true and false are not), NaN not included."""
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
