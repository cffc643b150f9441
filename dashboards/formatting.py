"""Dashboards stage: exact display strings for money, counts, rates and durations, and safe text.

Money arrives as `Decimal` (DECIMAL in the warehouse) and is formatted with format strings on
the `Decimal` itself, never through a float, so a tile or table shows exactly what finance
exports. Figures plot floats (an axis has no use for 9 decimals) but their hover labels carry
the exact strings built here.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

# Text that plotly.js renders goes through its own pseudo-HTML parser (tags such as <b> and
# <a>, entities, and `$...$` for MathJax), so data text is entity-encoded for it: the parser
# decodes numeric entities and amp/lt/gt back into the literal characters.
_PLOT_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&#34;",
    "'": "&#39;",
    "$": "&#36;",
}
_PLOT_TABLE = str.maketrans(_PLOT_ENTITIES)
# Control characters would break a label onto lines plotly does not expect.
_CONTROL_TABLE = {code: " " for code in range(32)} | {127: " "}

ELLIPSIS = "…"
MISSING = "—"


def plot_text(value: object, limit: int | None = None) -> str:
    """Any data value -> text that plotly.js shows literally (entities encoded), optionally shortened."""
    text = MISSING if value is None else str(value).translate(_CONTROL_TABLE)
    if limit is not None:
        text = shorten(text, limit)
    return text.translate(_PLOT_TABLE)


def shorten(text: str, limit: int) -> str:
    """Text -> at most `limit` characters, an ellipsis marking a cut."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def format_money(amount: Decimal | None, currency: str | None = None, *, min_decimals: int = 2) -> str:
    """An exact amount -> '1,234.5678 USD': grouped, at least `min_decimals`, every significant one kept."""
    if amount is None:
        return MISSING
    decimals = max(min_decimals, money_decimals(amount))
    # Formatting a Decimal to at least its significant decimals pads, never rounds, and does
    # not go through the 28-digit arithmetic context (a DECIMAL(38, 9) has 38 digits).
    text = f"{amount:,.{decimals}f}"
    if text.startswith("-") and not amount:
        text = text[1:]
    return f"{text} {currency}" if currency else text


def format_money_column(amounts: list[Decimal | None], currency: str | None = None) -> list[str]:
    """Exact amounts -> strings with one common number of decimals, so a table column lines up."""
    decimals = max([2, *(money_decimals(amount) for amount in amounts if amount is not None)])
    return [format_money(amount, currency, min_decimals=decimals) for amount in amounts]


def money_decimals(amount: Decimal) -> int:
    """An exact amount -> how many decimals it needs to be shown exactly (1.2500 -> 2, 1E+3 -> 0)."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be a Decimal, not {type(amount).__name__}")
    if not amount.is_finite():
        raise ValueError(f"money must be finite, not {amount}")
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    if not any(digits):
        return 0
    # Trailing zeros of the coefficient are not significant; read them from the digits rather
    # than through `normalize`, which rounds to the context's 28 digits.
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -exponent - trailing_zeros)


def format_count(value: int | None) -> str:
    """A count -> '12,345'."""
    return MISSING if value is None else f"{int(value):,}"


def format_minutes(seconds: int | None) -> str:
    """Billed seconds -> billed minutes with two decimals, '1,234.50' (exact: seconds / 60, half-up)."""
    if seconds is None:
        return MISSING
    minutes = (Decimal(int(seconds)) / Decimal(60)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{minutes:,.2f}"


def format_rate(value: float | Decimal | None, decimals: int = 1) -> str:
    """A ratio in [0, 1] -> a percentage, '97.3 %'."""
    if value is None:
        return MISSING
    percent = Decimal(str(value)) * 100
    return f"{percent:,.{decimals}f} %"


def format_change(value: float | Decimal | None) -> str:
    """A relative change (0.125 = +12.5 %) -> '+12.5 %' with its sign."""
    if value is None:
        return MISSING
    percent = Decimal(str(value)) * 100
    return f"{percent:+,.1f} %"


def format_seconds(seconds: float | Decimal | None) -> str:
    """A duration in seconds -> '2 min 05 s' (or '45.2 s' under a minute)."""
    if seconds is None:
        return MISSING
    value = Decimal(str(seconds))
    if value < 60:
        return f"{value:.1f} s"
    whole = int(value.to_integral_value(rounding=ROUND_HALF_UP))
    return f"{whole // 60} min {whole % 60:02d} s"


def format_day(day: date | None) -> str:
    """A date -> '2026-10-01'."""
    return MISSING if day is None else day.isoformat()


def format_instant(moment: datetime | None) -> str:
    """An aware datetime -> '2026-10-01 02:30 UTC' (naive is refused: it would be ambiguous)."""
    if moment is None:
        return "never"
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no meaning here: pass an aware one")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
