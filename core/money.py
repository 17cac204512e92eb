"""Money is stored in integer minor units; people see major units."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .errors import CastroomError

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "JPY": "¥"}
ZERO_DECIMAL = {"JPY", "KRW", "ISK", "CLP", "VND"}


def minor_digits(currency: str = "USD") -> int:
    """Digits after the decimal point in the currency's major unit (2 for USD, 0 for JPY)."""
    return 0 if currency.upper() in ZERO_DECIMAL else 2


def format_money(minor: int, currency: str = "USD") -> str:
    """``123456, "USD"`` -> ``$1,234.56``; ``-500, "JPY"`` -> ``-¥500``."""
    minor = int(minor)
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    symbol = SYMBOLS.get(currency, currency + " ")
    if minor_digits(currency) == 0:
        return f"{sign}{symbol}{minor:,}"
    return f"{sign}{symbol}{minor // 100:,}.{minor % 100:02d}"


_STRIP = re.compile(r"[\s,_]")
_AMOUNT = re.compile(r"^[+-]?\d+(\.\d+)?$")
#: Amounts are stored as Yjs numbers (float64): beyond this they would not be exact.
MAX_SAFE_INT = 2**53 - 1


def parse_money(text: str, currency: str = "USD") -> int:
    """People's major units to exact minor units: ``"$1,234.5"`` -> ``123450``.

    Accepts an optional currency symbol or code, thousands separators and a sign; refuses
    more decimals than the currency has (no silent rounding of money).
    """
    raw = _STRIP.sub("", str(text))
    for mark in sorted({*SYMBOLS.values(), currency.upper(), *SYMBOLS}, key=len, reverse=True):
        raw = raw.replace(mark, "")
    if not _AMOUNT.match(raw):
        raise CastroomError(f"not an amount of money: {text!r}")
    try:
        value = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern already refused it
        raise CastroomError(f"not an amount of money: {text!r}") from None
    scaled = value.scaleb(minor_digits(currency))
    if scaled != scaled.to_integral_value():
        raise CastroomError(
            f"{text!r} has more decimals than {currency} allows ({minor_digits(currency)})"
        )
    if abs(scaled) > MAX_SAFE_INT:
        raise CastroomError(f"{text!r} is too large an amount")
    return int(scaled)


def to_major(minor: int, currency: str = "USD") -> Decimal:
    """Exact major units, for arithmetic shown to people: ``123456`` -> ``Decimal('1234.56')``."""
    return Decimal(int(minor)).scaleb(-minor_digits(currency))
