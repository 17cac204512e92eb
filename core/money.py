"""Money is stored in integer minor units; people see major units."""

from __future__ import annotations

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "JPY": "¥"}
ZERO_DECIMAL = {"JPY", "KRW", "ISK"}


def format_money(minor: int, currency: str = "USD") -> str:
    """``123456, "USD"`` -> ``$1,234.56``."""
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    symbol = SYMBOLS.get(currency, currency + " ")
    if currency in ZERO_DECIMAL:
        return f"{sign}{symbol}{minor:,}"
    return f"{sign}{symbol}{minor // 100:,}.{minor % 100:02d}"
