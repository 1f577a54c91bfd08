"""The funds check before an ACH debit: a Python front door to the fc_sufficient_funds DuckDB macro."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from pipelines.contract.values import FUNDS_BASES
from pipelines.lifecycle.subjects import forgotten_in
from pipelines.marts.build import install_macros
from pipelines.sql import load_sql

BASES = FUNDS_BASES  # declared once, with fc_funds_decisions.basis


@dataclass(frozen=True)
class FundsCheck:
    """The macro's answer: `sufficient` is None when there is no balance to judge by."""

    sufficient: bool | None
    basis: str
    balance_minor: int | None
    as_of: datetime | None
    staleness_hours: float | None


def _macro_installed(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(load_sql("macros/macro_installed"), {"name": "fc_sufficient_funds"}).fetchone()
    return bool(row and row[0])


def sufficient_funds(
    con: duckdb.DuckDBPyConnection,
    account_id: str,
    amount_minor: int,
    currency: str,
    at: datetime | None = None,
) -> FundsCheck:
    """Whether the newest balance of `account_id` in `currency` covers a debit of `amount_minor`.

    Uses the available amount when present, else the current amount (basis `current_fallback`); `at` is
    the time staleness is measured to (default now). Installs the macro first when the database lacks it.
    """
    if not isinstance(account_id, str) or not account_id:
        raise ValueError("account_id must be a non-empty string")
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor < 0:
        raise ValueError(f"amount_minor must be a non-negative integer in minor units, got {amount_minor!r}")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise ValueError(f"currency must be a three-letter ISO 4217 code, got {currency!r}")
    if at is None:
        at = datetime.now(UTC)
    elif at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    if forgotten_in(con, account_id):
        # A forgotten account has no data here and gets none: answered without reading anything about it.
        return FundsCheck(None, "no_balance", None, None, None)
    if not _macro_installed(con):
        try:
            install_macros(con)
        except duckdb.Error as error:  # e.g. a read-only connection to a warehouse built before the marts
            raise RuntimeError(
                "fc_sufficient_funds is not installed in this database and cannot be installed on this "
                f"connection ({type(error).__name__}); materialize the marts once or call install_macros "
                "on a read-write connection"
            ) from None
    row = con.execute(
        load_sql("macros/call_fc_sufficient_funds"),
        {"account_id": account_id, "amount_minor": amount_minor, "currency": currency.lower(), "at": at},
    ).fetchone()
    assert row is not None  # the macro always returns exactly one row
    sufficient, basis, balance_minor, as_of, staleness_hours = row
    return FundsCheck(sufficient, basis, balance_minor, as_of, staleness_hours)
