"""Dashboards stage: display strings for money, counts, rates and durations, and safe text.

Money arrives as `Decimal` (DECIMAL in the warehouse) and is shown to the cent, rounded half
up on the `Decimal` itself, never through a float: a page is read by people, and nine decimals
of a rate hide the figure. The exact amounts stay in the finance export and `cdr sql`. Figures
plot floats, and their hover labels carry the strings built here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Context, Decimal

from pipelines.reports import MonthCoverage

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
# Pages name products as the records do: voice, sms, mms. The API's usage, and so reconciliation,
# counts calls (voice) and messages (sms and mms together); an alert's product is null when it
# concerns messages of either type. Both show as one name, so no page speaks the API's words.
ALL_MESSAGES = "sms + mms"
_PRODUCT_NAMES = {"calls": "voice", "messages": ALL_MESSAGES}


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


def product_name(product: str | None) -> str:
    """A report's product (voice, sms, mms; the API's calls or messages; null: messages of either type) -> 'voice',
    'sms', 'mms' or 'sms + mms'."""
    return ALL_MESSAGES if product is None else _PRODUCT_NAMES.get(product, product)


def is_voice(product: str | None) -> bool:
    """A report's product -> whether its records are calls, billed by the second, rather than messages, billed by
    the part: the other measure does not apply to them, and shows as MISSING, never as a zero."""
    return product_name(product) == "voice"


CENT = Decimal("0.01")
# Enough digits for any DECIMAL(38, 9) amount: the default context's 28 would refuse the largest.
_MONEY_CONTEXT = Context(prec=60)


def format_money(amount: Decimal | None, currency: str | None = None) -> str:
    """An exact amount -> '1,234.57 USD': grouped, to the cent (half up, away from zero); '<0.01' for less
    than half a cent but not none, '-<0.01' for as little below zero."""
    if amount is None:
        return MISSING
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be a Decimal, not {type(amount).__name__}")
    if not amount.is_finite():
        raise ValueError(f"money must be finite, not {amount}")
    # One rule for both signs: the size as a positive amount shows, then a minus before a negative one,
    # so -0.004 reads like 0.004 with its sign ('-<0.01'), as -1.50 reads like 1.50.
    cents = abs(amount).quantize(CENT, rounding=ROUND_HALF_UP, context=_MONEY_CONTEXT)
    # A charge below half a cent is still a charge: never shown as a zero.
    size = "<0.01" if amount and not cents else f"{cents:,.2f}"
    text = f"-{size}" if amount < 0 else size
    return f"{text} {currency}" if currency else text


def format_count(value: int | None) -> str:
    """A count -> '12,345'."""
    return MISSING if value is None else f"{int(value):,}"


def format_minutes(seconds: int | None) -> str:
    """Billed seconds -> billed minutes with two decimals, '1,234.50' (exact: seconds / 60, half-up)."""
    if seconds is None:
        return MISSING
    minutes = (Decimal(int(seconds)) / Decimal(60)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{minutes:,.2f}"


def format_billed_minutes(seconds: int | None, *, calls: bool) -> str:
    """Billed seconds and whether the records counted include calls -> billed minutes ('1,234.50'), or MISSING
    for messages alone: minutes do not apply to them, and 0.00 would read as "none billed"."""
    return format_minutes(seconds) if calls else MISSING


def format_rate(value: float | Decimal | None, decimals: int = 1) -> str:
    """A ratio in [0, 1] -> a percentage, '97.3 %'."""
    if value is None:
        return MISSING
    percent = Decimal(str(value)) * 100
    return f"{percent:,.{decimals}f} %"


def format_seconds(seconds: float | Decimal | None) -> str:
    """A duration in seconds -> '2 min 05 s' (or '45.2 s' under a minute)."""
    if seconds is None:
        return MISSING
    value = Decimal(str(seconds))
    if value < 60:
        return f"{value:.1f} s"
    whole = int(value.to_integral_value(rounding=ROUND_HALF_UP))
    return f"{whole // 60} min {whole % 60:02d} s"


def zoned(label: str, zone: str) -> str:
    """A time axis' label and the zone its times are in -> 'Hour of day (Europe/Berlin)': a day or an hour means
    nothing to a reader without its zone, so every time axis names it."""
    return f"{label} ({zone})"


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


def month_label(month: str, partial: Mapping[str, MonthCoverage]) -> str:
    """A month 'YYYY-MM' and the partial months (`dashboards.render.partial_months`) -> '2026-11', or
    '2026-11 (partial: 1–6)'."""
    return f"{month} ({partial[month].label()})" if month in partial else month


def month_before(month: str) -> str:
    """A month 'YYYY-MM…' -> the calendar month before it, 'YYYY-MM'."""
    year, number = (int(part) for part in str(month)[:7].split("-"))
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"
