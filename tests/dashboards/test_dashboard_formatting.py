from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from dashboards.render import partial_months
from dashboards.formatting import (
    format_count,
    format_day,
    format_instant,
    format_minutes,
    format_money,
    format_rate,
    format_seconds,
    month_label,
    plot_text,
    shorten,
)


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("1234567.5"), "1,234,567.50"),
        (Decimal("12.345600000"), "12.35"),
        (Decimal("12.344999999"), "12.34"),
        (Decimal("0.005"), "0.01"),
        (Decimal("-0.005"), "-0.01"),
        (Decimal("0E-9"), "0.00"),
        (Decimal("-0.000"), "0.00"),
        (Decimal("1E+3"), "1,000.00"),
        (Decimal("-42.100000001"), "-42.10"),
        (Decimal("0.1") + Decimal("0.2"), "0.30"),
        (Decimal("99999999999999999999.999999999"), "100,000,000,000,000,000,000.00"),
    ],
)
def test_money_is_shown_to_the_cent_rounded_half_up(amount, expected):
    assert format_money(amount) == expected


def test_money_below_half_a_cent_never_reads_as_zero():
    assert format_money(Decimal("1.666E-4"), "USD") == "<0.01 USD"
    assert format_money(Decimal("-0.004999999")) == "-<0.01"


@pytest.mark.parametrize("amount", ["0.004", "0.0001", "0.005", "1.5", "1234.567"])
def test_a_negative_amount_reads_as_its_positive_twin_with_a_minus(amount):
    # A finance reader compares a credit with its debit: only the sign may differ, tiny amounts included.
    positive = format_money(Decimal(amount), "EUR")
    assert format_money(-Decimal(amount), "EUR") == f"-{positive}"


def test_money_names_its_currency_and_shows_missing_as_a_dash():
    assert format_money(Decimal("5.5"), "EUR") == "5.50 EUR"
    assert format_money(None, "EUR") == "—"


def test_money_refuses_floats_and_non_finite_values():
    with pytest.raises(TypeError, match="Decimal"):
        format_money(0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        format_money(Decimal("NaN"))


def test_counts_minutes_rates_and_changes():
    assert format_count(1234567) == "1,234,567"
    assert format_minutes(61) == "1.02"  # 1.0166… rounds half-up to the cent of a minute
    assert format_minutes(90) == "1.50"
    assert format_minutes(3600 * 1000) == "60,000.00"
    assert format_rate(0.7534) == "75.3 %"
    assert format_rate(None) == "—"


def test_seconds_read_as_minutes_and_seconds():
    assert format_seconds(45.25) == "45.2 s"
    assert format_seconds(125) == "2 min 05 s"
    assert format_seconds(None) == "—"


def test_days_and_instants():
    assert format_day(date(2026, 3, 1)) == "2026-03-01"
    assert format_instant(datetime(2026, 11, 1, 2, 30, tzinfo=UTC)) == "2026-11-01 02:30 UTC"
    # Another offset is shown in UTC, the one zone every reader shares.
    assert format_instant(datetime(2026, 11, 1, 3, 30, tzinfo=timezone(timedelta(hours=1)))) == "2026-11-01 02:30 UTC"
    assert format_instant(None) == "never"
    with pytest.raises(ValueError, match="naive"):
        format_instant(datetime(2026, 11, 1))


def test_plot_text_encodes_everything_plotly_would_read_as_markup():
    assert plot_text("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert plot_text('AT&T "x" \'y\' $z$') == "AT&amp;T &#34;x&#34; &#39;y&#39; &#36;z&#36;"
    assert plot_text("a\nb\tc") == "a b c"
    assert plot_text(None) == "—"
    assert plot_text(44) == "44"


def test_plot_text_shortens_before_encoding_so_no_entity_is_cut():
    assert plot_text("<<<<<<<<<<", limit=4) == "&lt;&lt;&lt;…"


def test_shorten_marks_the_cut():
    assert shorten("abcdef", 6) == "abcdef"
    assert shorten("abcdefg", 6) == "abcde…"
    with pytest.raises(ValueError):
        shorten("abc", 0)


@pytest.mark.parametrize(
    ("first", "last", "partial"),
    [
        # whole months from the 1st to the last day
        (date(2026, 8, 1), date(2026, 10, 31), {}),
        (date(2024, 2, 1), date(2024, 2, 29), {}),
        # the data ends six days into November, began mid-August
        (date(2026, 8, 15), date(2026, 11, 6), {"2026-08": "partial: 15–31", "2026-11": "partial: 1–6"}),
        (date(2026, 11, 3), date(2026, 11, 6), {"2026-11": "partial: 3–6"}),
        (date(2026, 2, 1), date(2026, 2, 27), {"2026-02": "partial: 1–27"}),
        (None, None, {}),
    ],
)
def test_partial_months_are_those_the_data_begins_or_ends_inside(first, last, partial):
    assert {month: coverage.label() for month, coverage in partial_months(first, last).items()} == partial


def test_a_partial_month_is_labelled_with_its_days():
    partial = partial_months(date(2026, 10, 1), date(2026, 11, 6))
    assert [month_label(m, partial) for m in ("2026-10", "2026-11")] == ["2026-10", "2026-11 (partial: 1–6)"]
