"""core/money.py: money as people write it, read back exactly in minor units.

Examples pin what people type and what they are told; hypothesis properties (derandomised
on CI by conftest's profile, randomised by `make fuzz`) check that every way castroom
writes an amount reads back exactly, that people's own ways of writing an amount read as
they mean, and that nothing else is guessed at.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from castroom.core import model
from castroom.core.money import (
    COMMON_DIGITS,
    MoneyError,
    format_money,
    minor_digits,
    money_fields,
    parse_money,
    plain_amount,
    to_major,
)

CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "KRW", "BHD", "SEK", "XYZ"]
amounts = st.integers(min_value=-model.MAX_SAFE_INT, max_value=model.MAX_SAFE_INT)


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1500", "USD", 150000),
        ("1,500.00", "USD", 150000),
        ("$1,500", "USD", 150000),
        ("1,500", "USD", 150000),
        ("1500 USD", "USD", 150000),
        ("usd 1500", "USD", 150000),
        ("US$1,500.5", "USD", 150050),
        ("1500 EUR", "EUR", 150000),
        ("€1.500,00", "EUR", 150000),
        ("1.500,00", "USD", 150000),  # both marks: the last one is the decimal mark
        ("1 500,50", "EUR", 150050),
        ("1'500.50", "CHF", 150050),
        ("1_500", "USD", 150000),
        ("1.500.000", "USD", 150000000),  # two dots can only group thousands
        ("12,5", "EUR", 1250),  # a comma that cannot group is the decimal mark
        ("0.500", "USD", 50),  # a leading 0 groups nothing
        ("1500.000", "USD", 150000),  # neither can a group of four: decimals, zeros
        ("  $ 1,500.00  ", "USD", 150000),
        ("-$12.05", "USD", -1205),
        ("-12.05 USD", "USD", -1205),
        ("$-12.05", "USD", -1205),
        ("+12", "USD", 1200),
        ("¥1,500", "JPY", 1500),
        ("1500", "JPY", 1500),  # JPY has no minor unit
        ("1500.00", "JPY", 1500),
        ("$1,500", "AUD", 150000),  # an Australian writes $ for A$
        ("A$1,500", "AUD", 150000),
        ("BHD 1.500", "BHD", 1500),  # three minor digits: the point is decimal
        ("1500 kr", "SEK", 150000),
        ("1500 XYZ", "XYZ", 150000),  # a code ISO does not list, but the production's
    ],
)
def test_amounts_read_as_people_mean_them(text: str, currency: str, minor: int) -> None:
    assert parse_money(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("1.500", "USD", "'1.500' is ambiguous: $1,500.00 or $1.50? Write 1500.00 or 1.50"),
        ("10.555", "USD", "'10.555' is ambiguous: write 10555.00 for $10,555.00 (USD has 2"),
        ("1.500", "JPY", "'1.500' is ambiguous: write 1500 for ¥1,500 (JPY has no minor unit)"),
        (
            "1500 EUR",
            "USD",
            "'1500 EUR' is in EUR, but this production's money is in USD (castroom does not"
            " convert): write the amount in USD, like 1500.00",
        ),
        ("€15", "USD", "is in EUR, but this production's money is in USD"),
        ("£15", "EUR", "is in GBP, but this production's money is in EUR"),
        ("$15", "EUR", "is in dollars, but this production's money is in EUR"),
        ("CA$15", "USD", "is in CAD, but"),
        ("15 jpy", "USD", "is in JPY, but"),
        ("¥1500", "USD", "is in yen or yuan, but"),
        ("10.555", "EUR", "'10.555' is ambiguous"),
        ("10.5555", "USD", "'10.5555' has too many decimals (USD has 2 decimals): write 10.55"),
        ("10.5", "JPY", "'10.5' has too many decimals (JPY has no minor unit): write 10 or 11"),
        ("1,50,000", "USD", "is not an amount castroom can read (thousands are grouped in threes"),
        ("1,5,00.00", "USD", "is not an amount castroom can read"),
        ("1  500", "USD", "is not an amount castroom can read"),
        ("1,500.000.00", "USD", "is not an amount castroom can read"),
        ("15 dollars", "USD", "'15 dollars' is not an amount of money: write it in USD major"),
        ("", "USD", "like 1500, 1,500.00 or $1,500.00"),
        ("lots", "JPY", "like 1500, 1,500 or ¥1,500"),
        ("1e400", "USD", "is not an amount of money"),
        ("nan", "USD", "is not an amount of money"),
        ("--5", "USD", "is not an amount of money"),
        ("-$-5", "USD", "is not an amount of money"),
        ("(1,500)", "USD", "is not an amount of money"),
        ("1500.", "USD", "is not an amount of money"),
        ("99999999999999999", "USD", "is too large an amount (at most $90,071,992,547,409.91)"),
    ],
)
def test_amounts_refused_say_how_to_write_them(text: str, currency: str, message: str) -> None:
    with pytest.raises(MoneyError) as refused:
        parse_money(text, currency)
    assert message in str(refused.value)


def test_formats_and_digits() -> None:
    assert format_money(123456) == "$1,234.56"
    assert format_money(-5, "EUR") == "-€0.05"
    assert format_money(1500, "JPY") == "¥1,500"
    assert format_money(100, "CHF") == "CHF 1.00"
    assert format_money(1500, "BHD") == "BHD 1.500"
    assert plain_amount(150000) == "1500.00" and plain_amount(1500, "JPY") == "1500"
    assert plain_amount(-5, "BHD") == "-0.005"
    assert minor_digits("jpy") == 0 and minor_digits("USD") == 2 and minor_digits("KWD") == 3
    assert minor_digits("XYZ") == 2  # not in ISO 4217: two, like most
    assert str(to_major(123456)) == "1234.56" and str(to_major(1500, "JPY")) == "1500"


def test_the_common_currencies_digits_are_iso_4217s() -> None:
    """The exponents kept so that showing money need not import iso4217 are its own."""
    import iso4217

    assert COMMON_DIGITS and all(
        iso4217.Currency(code).exponent == digits for code, digits in COMMON_DIGITS.items()
    )


def test_money_fields_come_from_the_model() -> None:
    assert money_fields(model.Talent) == {"rate"}
    assert money_fields(model.Role) == {"rate_cap"}
    assert money_fields(model.Deal) == {"rate"}
    assert money_fields(model.Production) == {"budget_cap"}
    assert money_fields(model.Scene) == frozenset()


@given(amounts, st.sampled_from(CURRENCIES))
def test_what_castroom_writes_reads_back_exactly(minor: int, currency: str) -> None:
    assert parse_money(format_money(minor, currency), currency) == minor
    assert parse_money(plain_amount(minor, currency), currency) == minor
    assert to_major(minor, currency).scaleb(minor_digits(currency)) == minor


@st.composite
def written(draw: st.DrawFn) -> tuple[str, str, int]:
    """An amount written one of the ways people write one: grouped by ``,`` ``.`` space
    ``'`` ``_`` or not at all, a decimal point or comma, a sign or code before or after."""
    currency = draw(st.sampled_from(CURRENCIES))
    digits = minor_digits(currency)
    minor = draw(st.integers(min_value=0, max_value=model.MAX_SAFE_INT))
    whole, part = divmod(minor, 10**digits)
    point = draw(st.sampled_from([".", ","]))
    group = draw(st.sampled_from(["", " ", "'", "_", "," if point == "." else "."]))
    number = f"{whole:,}".replace(",", group) if group else str(whole)
    shown = digits and (part or draw(st.booleans()))
    if shown:
        fraction = f"{part:0{digits}d}" + "0" * draw(st.integers(0, 2))
        alone = number.isdigit() and len(number) <= 3 and number[0] != "0"
        if alone and len(fraction) == 3 and not (point == "." and digits == 3):
            fraction += "0"  # "1.500" is ambiguous and "1,500" groups thousands, on purpose
        number += point + fraction
    elif number.count(".") == 1:
        number = number.replace(".", "")  # "1.500" alone is ambiguous, on purpose
    mark = draw(st.sampled_from(["", currency, currency.lower(), "sign"]))
    if mark == "sign":
        signs = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "A$", "SEK": "kr"}
        mark = signs.get(currency, "")
    space = draw(st.sampled_from(["", " "]))
    text = draw(st.sampled_from([f"{mark}{space}{number}", f"{number}{space}{mark}"]))
    return text, currency, minor


@given(written())
def test_what_people_write_reads_as_they_mean(case: tuple[str, str, int]) -> None:
    text, currency, minor = case
    assert parse_money(text, currency) == minor


@given(
    st.text(alphabet="0123456789.,'_ -+$€£¥EURSDJPYkr", max_size=24) | st.text(max_size=24),
    st.sampled_from(CURRENCIES),
)
def test_anything_else_is_read_exactly_or_refused_in_one_line(text: str, currency: str) -> None:
    try:
        minor = parse_money(text, currency)
    except MoneyError as refused:
        assert "\n" not in str(refused).replace(repr(text), "")
        return
    assert abs(minor) <= model.MAX_SAFE_INT
    # Accepted: the digits written are the amount's, give or take zeros (nothing invented).
    written_digits = int(re.sub(r"\D", "", text))
    assert str(written_digits).rstrip("0") == str(abs(minor)).rstrip("0")


@given(st.integers(1, 999), st.integers(0, 999), st.sampled_from(["USD", "EUR", "JPY", "GBP"]))
def test_a_single_point_before_three_digits_is_never_guessed(
    whole: int, part: int, currency: str
) -> None:
    with pytest.raises(MoneyError, match="ambiguous"):
        parse_money(f"{whole}.{part:03d}", currency)
