"""A small hand-made warehouse (real DuckDB file) shared by the marts, funds and checks tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.contract.migrations import migrate
from pipelines.marts.build import HistorySettings
from pipelines.normalize.currencies import minor_unit_exponent

BUILD_AT = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)
BUILD_DAY = date(2025, 3, 31)
# The hand-made history starts 2024-12-01: daily partitions from 2024-11-20 keep the tests quick.
SETTINGS = HistorySettings(history_start=date(2024, 11, 20), carry_forward_days=31)


def ts(text: str) -> datetime:
    """An aware timestamp from ISO text (with its own offset)."""
    return datetime.fromisoformat(text)


# (account_id, customer_id, category, status)
ACCOUNTS = [
    ("fca_gap", "cus_1", "cash", "active"),        # gaps, two rows in a day, two currencies
    ("fca_neg", "cus_1", "cash", "active"),        # negative streaks
    ("fca_inactive", "cus_1", "cash", "inactive"),  # left out of customer liquidity
    ("fca_credit", "cus_2", "credit", "active"),
    ("fca_old", "cus_2", "cash", "active"),        # last row older than both windows
    ("fca_fallback", "cus_2", "cash", "active"),   # latest row has no available amount
    ("fca_jpy", "cus_3", "cash", "active"),        # zero-decimal currency, a single observation
    ("fca_long_neg", "cus_3", "cash", "active"),   # a negative run that starts before the 30-day window
]

# (account_id, balance_type, currency, as_of, current_minor, available_minor, used_minor)
BALANCES = [
    ("fca_gap", "cash", "usd", "2025-03-25T10:00:00+00:00", 1000, 900, None),
    ("fca_gap", "cash", "usd", "2025-03-25T20:00:00+00:00", 1200, 1100, None),
    ("fca_gap", "cash", "usd", "2025-03-28T09:00:00+00:00", 500, None, None),
    ("fca_gap", "cash", "usd", "2025-03-31T08:00:00+00:00", 700, 650, None),
    ("fca_gap", "cash", "eur", "2025-03-29T10:00:00+00:00", 4000, 3900, None),
    ("fca_neg", "cash", "usd", "2025-03-20T12:00:00+00:00", 100, 100, None),
    ("fca_neg", "cash", "usd", "2025-03-21T12:00:00+00:00", -50, -50, None),
    ("fca_neg", "cash", "usd", "2025-03-22T12:00:00+00:00", -60, -60, None),
    ("fca_neg", "cash", "usd", "2025-03-23T12:00:00+00:00", 10, 10, None),
    ("fca_neg", "cash", "usd", "2025-03-24T12:00:00+00:00", -1, -1, None),
    ("fca_neg", "cash", "usd", "2025-03-26T12:00:00+00:00", -5, -5, None),
    ("fca_neg", "cash", "usd", "2025-03-27T12:00:00+00:00", 20, 20, None),
    ("fca_neg", "cash", "usd", "2025-03-28T12:00:00+00:00", -3, -3, None),
    ("fca_inactive", "cash", "usd", "2025-03-30T12:00:00+00:00", 999999, 999999, None),
    # 2025-03-28 22:00 in New York is 2025-03-29 02:00 UTC: the UTC day counts.
    ("fca_credit", "credit", "usd", "2025-03-28T22:00:00-04:00", -50000, None, -50000),
    ("fca_credit", "credit", "usd", "2025-03-31T06:00:00+00:00", -52000, None, -52000),
    ("fca_old", "cash", "usd", "2024-12-01T00:00:00+00:00", 300, 250, None),
    ("fca_fallback", "cash", "usd", "2025-03-30T00:00:00+00:00", 5000, 4500, None),
    ("fca_fallback", "cash", "usd", "2025-03-31T00:00:00+00:00", 4000, None, None),
    ("fca_jpy", "cash", "jpy", "2025-03-10T15:00:00+00:00", 150000, 150000, None),
    ("fca_long_neg", "cash", "usd", "2025-01-15T12:00:00+00:00", -100, -100, None),
    ("fca_long_neg", "cash", "usd", "2025-03-06T12:00:00+00:00", 200, 200, None),
]


def _major(amount: int | None, currency: str) -> Decimal | None:
    return None if amount is None else Decimal(amount).scaleb(-minor_unit_exponent(currency))


def insert_balances(con: duckdb.DuckDBPyConnection, balances: list[tuple], customers: dict[str, str]) -> None:
    fetched_at = datetime(2025, 3, 31, 9, 0, tzinfo=UTC)
    con.executemany(
        "INSERT INTO fc_balances VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (account, customers[account], kind, ccy, ts(as_of), cur, avail, used,
             _major(cur, ccy), _major(avail, ccy), _major(used, ccy), fetched_at)
            for account, kind, ccy, as_of, cur, avail, used in balances
        ],
    )


def create_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    # A session zone far from UTC: the marts must still cut days in UTC.
    con.execute("SET TimeZone = 'America/New_York'")
    migrate(con, str(path))
    observed_at = datetime(2025, 3, 31, 9, 0, tzinfo=UTC)
    con.executemany(
        "INSERT INTO fc_accounts (account_id, customer_id, account_holder_type, institution_name, category, "
        "subcategory, status, permissions, livemode, observed_at) VALUES (?, ?, 'customer', 'StripeBank', ?, "
        "'other', ?, ['balances'], false, ?)",
        [(account, customer, category, status, observed_at) for account, customer, category, status in ACCOUNTS],
    )
    insert_balances(con, BALANCES, {account: customer for account, customer, _, _ in ACCOUNTS})
    return con


@pytest.fixture
def warehouse_con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = create_warehouse(tmp_path / "fc_balances.duckdb")
    yield con
    con.close()


def days(start: date, end: date) -> list[date]:
    """Every day from start to end inclusive."""
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def quantile_linear(values: list[float], q: float) -> float:
    """Linear-interpolation quantile (the definition quantile_cont uses), written out independently."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (position - lower) * (ordered[upper] - ordered[lower])



def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
