"""Money as people write it, stored as integer minor units of the production's currency.

One parser for every front end (the CLI, every importer, the web): :func:`parse_money`
reads what a person typed in major units (``1500``, ``1,500.00``, ``$1,500``,
``1500 EUR``, ``1.500,00``) with the currency's own number of minor digits (ISO 4217:
two for USD, none for JPY, three for BHD) and returns exact minor units. It refuses,
saying how to write it instead, an amount in another currency than the production's
(castroom never converts), an ambiguous one (``1.500`` in a USD production: fifteen
hundred, or one and a half?) and more decimals than the currency has (no silent
rounding of money).

How separators are read: ``,`` followed by three digits groups thousands (``1,500``), as
do a space, ``'`` and ``_``; with two different marks the last one is the decimal mark
(``1,500.50`` and ``1.500,50`` are both fifteen hundred and a half); a mark that cannot
be grouping (``12,5``) is the decimal mark. A single ``.`` followed by three digits is
refused as ambiguous, except in a currency with three minor digits, where it is decimal.
"""

from __future__ import annotations

import functools
import re
import typing
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from .errors import CastroomError, ValidationFailed
from .model import MAX_SAFE_INT, Entity, Money

#: The symbol shown before an amount; a currency without one shows its code.
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "JPY": "¥"}
#: Currencies people write with a bare ``$``, ``¥`` or ``kr``: in a production in one of
#: them, ``$1,500`` is that currency (an Australian writes ``$`` for A$).
_SHARED_SIGNS: dict[str, frozenset[str]] = {
    "$": frozenset(
        "USD CAD AUD NZD SGD HKD TWD MXN BSD BBD BZD BMD BND KYD FJD GYD JMD LRD NAD SBD SRD"
        " TTD XCD ARS CLP COP CUP DOP UYU".split()
    ),
    "¥": frozenset({"JPY", "CNY"}),
    "kr": frozenset({"SEK", "NOK", "DKK", "ISK"}),
}
#: Other marks an amount may carry, each naming one currency.
_SIGNS: dict[str, str] = {
    "US$": "USD",
    "CA$": "CAD",
    "C$": "CAD",
    "A$": "AUD",
    "AU$": "AUD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "S$": "SGD",
    "R$": "BRL",
    "€": "EUR",
    "£": "GBP",
    "₹": "INR",
    "₩": "KRW",
    "₪": "ILS",
    "₺": "TRY",
    "₽": "RUB",
    "zł": "PLN",
    "Fr": "CHF",
    "CHF": "CHF",
}


class MoneyError(CastroomError):
    """An amount castroom will not guess at; the message says how to write it."""


#: ISO 4217's exponent of the currencies productions use most, so that showing money
#: does not import iso4217 (it parses its XML tables on import: ~30 ms of a `castroom
#: check`). tests/test_money.py checks each against iso4217 itself.
COMMON_DIGITS = {
    **dict.fromkeys(
        ("USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK", "INR"), 2
    ),
    **dict.fromkeys(("CNY", "HKD", "SGD", "BRL", "MXN", "ZAR", "PLN", "CZK", "ILS"), 2),
    **dict.fromkeys(("JPY", "KRW", "ISK"), 0),
}


@functools.cache
def minor_digits(currency: str = "USD") -> int:
    """Digits after the decimal point in the currency's major unit, from ISO 4217 (2 for
    USD, 0 for JPY, 3 for BHD); 2 for a code ISO 4217 does not list."""
    common = COMMON_DIGITS.get(currency.upper())
    if common is not None:
        return common
    import iso4217  # its tables load on first use, not when `castroom` starts

    try:
        exponent = iso4217.Currency(currency.upper()).exponent
    except ValueError:
        return 2
    return 2 if exponent is None else exponent


def format_money(minor: int, currency: str = "USD") -> str:
    """``123456, "USD"`` -> ``$1,234.56``; ``-500, "JPY"`` -> ``-¥500``; ``100, "CHF"``
    -> ``CHF 1.00``. :func:`parse_money` reads every such string back exactly."""
    minor = int(minor)
    sign = "-" if minor < 0 else ""
    symbol = SYMBOLS.get(currency, currency + " ")
    return f"{sign}{symbol}{_grouped(abs(minor), minor_digits(currency))}"


def plain_amount(minor: int, currency: str = "USD") -> str:
    """Major units without a symbol or grouping, as a spreadsheet reads them: ``150000``
    -> ``1500.00`` (USD), ``1500`` (JPY). :func:`parse_money` reads it back exactly."""
    minor = int(minor)
    digits = minor_digits(currency)
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{part:0{digits}d}" if digits else f"{sign}{whole}"


def _grouped(minor: int, digits: int) -> str:
    whole, part = divmod(minor, 10**digits)
    return f"{whole:,}.{part:0{digits}d}" if digits else f"{whole:,}"


def to_major(minor: int, currency: str = "USD") -> Decimal:
    """Exact major units, for arithmetic shown to people: ``123456`` -> ``Decimal('1234.56')``."""
    return Decimal(int(minor)).scaleb(-minor_digits(currency))


@functools.cache
@functools.cache
def money_fields(cls: type[Entity]) -> frozenset[str]:
    """The fields of an entity kind that hold money (typed :data:`model.Money`); once a
    kind (evaluating a Struct's annotations costs about a millisecond)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return frozenset(
        name
        for name, hint in hints.items()
        if name in cls.__struct_fields__ and (hint == Money or Money in typing.get_args(hint))
    )


# -- reading what people write -------------------------------------------------------------

_SHAPE = re.compile(
    r"""\s*(?P<sign>[-+]?)\s*
    (?P<before>[^\d\s.,'_+-]*)\s*
    (?P<sign2>[-+]?)\s*
    (?P<number>\d(?:[\d.,'_\s]*\d)?)
    \s*(?P<after>[^\d\s]*)\s*""",
    re.VERBOSE,
)
_SEPARATOR = re.compile(r"[^\d]+")


def parse_money(text: str, currency: str = "USD") -> int:
    """What a person wrote, in major units of ``currency``, as exact minor units:
    ``"$1,234.5"`` -> ``123450``. Raises :class:`MoneyError` saying how to write it."""
    currency = currency.upper()
    text = str(text)
    shape = _SHAPE.fullmatch(text)
    if shape is None or (shape["sign"] and shape["sign2"]):
        raise MoneyError(f"{text!r} is not an amount of money: {_how(currency)}")
    for mark in (shape["before"], shape["after"]):
        if mark:
            _check_mark(text, mark, currency)
    digits = minor_digits(currency)
    value = _read_number(text, shape["number"], digits, currency)
    if (shape["sign"] or shape["sign2"]) == "-":
        value = -value
    scaled = value.scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise MoneyError(_too_precise(text, value, digits, currency))
    if abs(scaled) > MAX_SAFE_INT:
        largest = format_money(MAX_SAFE_INT, currency)
        raise MoneyError(f"{text!r} is too large an amount (at most {largest})")
    return int(scaled)


def parse_field(cls: type[Entity], name: str, text: str, currency: str) -> int:
    """:func:`parse_money` for one field of an entity kind: a refusal names the field
    (``invalid talent.rate: '1.500' is ambiguous: ...``)."""
    try:
        return parse_money(text, currency)
    except MoneyError as exc:
        raise ValidationFailed(cls.entity_kind, name, str(exc)) from None


def _how(currency: str) -> str:
    """How to write an amount in ``currency``, for messages."""
    sign = SYMBOLS.get(currency)
    big = _grouped(1500 * 10 ** minor_digits(currency), minor_digits(currency))
    marked = f"{sign}{big}" if sign else f"1500 {currency}"
    return f"write it in {currency} major units, like 1500, {big} or {marked}"


def _check_mark(text: str, mark: str, currency: str) -> None:
    """A currency sign or code must be the production's own: castroom does not convert."""
    if mark in _SHARED_SIGNS:
        if currency in _SHARED_SIGNS[mark]:
            return
        named = {"$": "dollars", "¥": "yen or yuan", "kr": "kronor or kroner"}[mark]
        raise MoneyError(_other_currency(text, named, currency))
    code = _SIGNS.get(mark) or mark.upper()
    if code == currency:
        return
    if _SIGNS.get(mark) or _is_iso(code):
        raise MoneyError(_other_currency(text, code, currency))
    raise MoneyError(f"{text!r} is not an amount of money: {_how(currency)}")


def _is_iso(code: str) -> bool:
    import iso4217

    try:
        iso4217.Currency(code)
    except ValueError:
        return False
    return True


def _other_currency(text: str, named: str, currency: str) -> str:
    return (
        f"{text!r} is in {named}, but this production's money is in {currency}"
        f" (castroom does not convert): write the amount in {currency}, like"
        f" {plain_amount(1500 * 10 ** minor_digits(currency), currency)}"
    )


def _read_number(text: str, number: str, digits: int, currency: str) -> Decimal:
    """The digits and separators of an amount as a Decimal in major units."""
    groups = _SEPARATOR.split(number)
    marks = _SEPARATOR.findall(number)
    if not marks:
        return Decimal(number)
    if any(len(mark) > 1 for mark in marks):
        raise MoneyError(_unreadable(text, groups, currency))
    last = marks[-1]
    if last in ".," and last not in marks[:-1]:
        if marks[:-1] or not _grouping(groups, marks):
            return _with_decimals(text, groups, marks[:-1], currency)
        if last == "." and len(groups[-1]) == 3 and digits != 3:
            whole = Decimal("".join(groups))
            point = Decimal(f"{groups[0]}.{groups[1]}")
            raise MoneyError(_ambiguous(text, whole, point, currency))
        if last == "." and digits == 3:
            return Decimal(f"{groups[0]}.{groups[1]}")
    if not _grouping(groups, marks):
        raise MoneyError(_unreadable(text, groups, currency))
    return Decimal("".join(groups))


def _grouping(groups: list[str], marks: list[str]) -> bool:
    """Thousands grouped in threes by one mark: ``1,500,000``, ``1 500``."""
    return (
        len(set(marks)) == 1
        and 1 <= len(groups[0]) <= 3
        and not groups[0].startswith("0")
        and all(len(group) == 3 for group in groups[1:])
    )


def _with_decimals(text: str, groups: list[str], grouping: list[str], currency: str) -> Decimal:
    """Every mark but the last groups thousands; the last is the decimal mark."""
    whole = groups[:-1]
    if grouping and not _grouping(whole, grouping):
        raise MoneyError(_unreadable(text, groups, currency))
    return Decimal(f"{''.join(whole)}.{groups[-1]}")


def _unreadable(text: str, groups: list[str], currency: str) -> str:
    return (
        f"{text!r} is not an amount castroom can read (thousands are grouped in threes,"
        f" one decimal mark): {_how(currency)}"
    )


def _ambiguous(text: str, whole: Decimal, point: Decimal, currency: str) -> str:
    digits = minor_digits(currency)
    as_whole, as_point = int(whole.scaleb(digits)), point.scaleb(digits)
    if as_point != as_point.to_integral_value():  # more decimals than the currency has
        return (
            f"{text!r} is ambiguous: write {plain_amount(as_whole, currency)} for"
            f" {format_money(as_whole, currency)} ({_decimals(currency)})"
        )
    return (
        f"{text!r} is ambiguous: {format_money(as_whole, currency)} or"
        f" {format_money(int(as_point), currency)}? Write {plain_amount(as_whole, currency)}"
        f" or {plain_amount(int(as_point), currency)}"
    )


def _too_precise(text: str, value: Decimal, digits: int, currency: str) -> str:
    step = Decimal(1).scaleb(-digits)
    low = value.quantize(step, rounding=ROUND_FLOOR)
    high = value.quantize(step, rounding=ROUND_CEILING)
    return f"{text!r} has too many decimals ({_decimals(currency)}): write {low} or {high}"


def _decimals(currency: str) -> str:
    digits = minor_digits(currency)
    return f"{currency} has no minor unit" if digits == 0 else f"{currency} has {digits} decimals"
