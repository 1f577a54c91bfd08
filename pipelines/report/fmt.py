"""Formats report values as text: money with the currency's exponent, UTC times, ages; no HTML here."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pipelines.normalize.currencies import minor_unit_exponent

NONE = "—"


def major(amount_minor: float | int, currency: str) -> Decimal:
    """Minor units to exact major units with the currency's exponent (a float, e.g. an average, is rounded first)."""
    return Decimal(round(amount_minor)).scaleb(-minor_unit_exponent(currency))


def money(amount_minor: float | int | None, currency: str, code: bool = True) -> str:
    """`-1,234.56 USD`, `150,000 JPY`, `1.250 BHD`: Stripe's sign kept, the currency's decimals, no symbol."""
    if amount_minor is None:
        return NONE
    exponent = minor_unit_exponent(currency)
    text = f"{major(amount_minor, currency):,.{exponent}f}"
    return f"{text} {currency.upper()}" if code else text


def timestamp(value: datetime | None) -> str:
    if value is None:
        return NONE
    return value.strftime("%Y-%m-%d %H:%M UTC")


def day(value: date | None) -> str:
    return NONE if value is None else value.isoformat()


def age(since: datetime | None, now: datetime) -> str:
    """How old `since` is at `now`, rounded for reading: `5 h`, `3.2 d`."""
    if since is None:
        return NONE
    hours = (now - since).total_seconds() / 3600
    if abs(hours) < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.1f} d"


def number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return NONE
    return f"{value:,.{digits}f}"


def percent(value: float | None) -> str:
    return NONE if value is None else f"{100 * value:.0f}%"
