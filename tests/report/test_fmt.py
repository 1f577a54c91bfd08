"""Money in reports: the currency's exponent from pipelines.normalize.currencies, Stripe's sign, exact digits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines.report import fmt


@pytest.mark.parametrize(("minor", "currency", "shown"), [
    (123456, "usd", "1,234.56 USD"),
    (-5, "usd", "-0.05 USD"),
    (1234567, "jpy", "1,234,567 JPY"),
    (-7005, "bhd", "-7.005 BHD"),
    (9_007_199_254_740_993, "usd", "90,071,992,547,409.93 USD"),  # beyond a float's exact integers
    (1234.6, "usd", "12.35 USD"),  # an average in minor units rounds to the minor unit
    (None, "usd", fmt.NONE),
])
def test_money_uses_the_currency_exponent(minor: float | int | None, currency: str, shown: str) -> None:
    assert fmt.money(minor, currency) == shown


def test_money_without_the_code_and_ages() -> None:
    assert fmt.money(150000, "krw", code=False) == "150,000"
    now = datetime(2025, 6, 30, 12, tzinfo=UTC)
    assert fmt.age(now - timedelta(hours=5), now) == "5 h"
    assert fmt.age(now - timedelta(days=3, hours=6), now) == "3.2 d"
