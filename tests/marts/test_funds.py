"""The funds check: the fc_sufficient_funds macro in SQL and its Python front door, on the hand-made history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.funds.macro import FundsCheck, sufficient_funds
from pipelines.marts.build import install_macros
from tests.marts.conftest import BUILD_AT, create_warehouse, insert_balances, ts


def test_available_basis_sufficient_at_the_exact_amount(warehouse_con: duckdb.DuckDBPyConnection) -> None:
    # fca_gap usd newest row: current 700, available 650 at 2025-03-31 08:00 UTC.
    check = sufficient_funds(warehouse_con, "fca_gap", 650, "usd", at=BUILD_AT)
    assert check == FundsCheck(True, "available", 650, ts("2025-03-31T08:00:00+00:00"), pytest.approx(4.0))


def test_available_basis_insufficient(warehouse_con: duckdb.DuckDBPyConnection) -> None:
    check = sufficient_funds(warehouse_con, "fca_gap", 651, "USD", at=BUILD_AT)  # 700 current does not count
    assert (check.sufficient, check.basis, check.balance_minor) == (False, "available", 650)


def test_current_fallback_when_the_newest_row_has_no_available(warehouse_con: duckdb.DuckDBPyConnection) -> None:
    # fca_fallback: 2025-03-30 available 4500, newest 2025-03-31 00:00 only current 4000.
    check = sufficient_funds(warehouse_con, "fca_fallback", 4000, "usd", at=BUILD_AT)
    assert check == FundsCheck(True, "current_fallback", 4000, ts("2025-03-31T00:00:00+00:00"), pytest.approx(12.0))
    assert sufficient_funds(warehouse_con, "fca_fallback", 4001, "usd", at=BUILD_AT).sufficient is False


def test_no_balance_for_an_unknown_account_or_currency(warehouse_con: duckdb.DuckDBPyConnection) -> None:
    assert sufficient_funds(warehouse_con, "fca_nope", 1, "usd", at=BUILD_AT) == FundsCheck(
        None, "no_balance", None, None, None)
    assert sufficient_funds(warehouse_con, "fca_gap", 1, "gbp", at=BUILD_AT).basis == "no_balance"


def test_no_balance_when_the_newest_row_has_neither_amount(warehouse_con: duckdb.DuckDBPyConnection) -> None:
    insert_balances(warehouse_con, [("fca_gap", "cash", "chf", "2025-03-30T00:00:00+00:00", None, None, None)],
                    {"fca_gap": "cus_1"})
    check = sufficient_funds(warehouse_con, "fca_gap", 1, "chf", at=BUILD_AT)
    assert check == FundsCheck(None, "no_balance", None, ts("2025-03-30T00:00:00+00:00"), pytest.approx(36.0))


def test_the_macro_is_the_same_answer_in_sql(warehouse_con: duckdb.DuckDBPyConnection) -> None:
    install_macros(warehouse_con)
    row = warehouse_con.execute(
        "SELECT * FROM fc_sufficient_funds('fca_gap', 100, 'usd', at := TIMESTAMPTZ '2025-03-31 12:00:00+00')"
    ).fetchone()
    assert row == (True, "available", 650, ts("2025-03-31T08:00:00+00:00"), pytest.approx(4.0))
    # Without `at` the staleness runs to now(): at least the time since the row.
    (staleness,) = warehouse_con.execute(
        "SELECT staleness_hours FROM fc_sufficient_funds('fca_gap', 100, 'usd')").fetchone()
    assert staleness >= (datetime.now(UTC) - ts("2025-03-31T08:00:00+00:00")) / timedelta(hours=1) - 0.01


def test_python_default_at_is_now(warehouse_con: duckdb.DuckDBPyConnection) -> None:
    before = datetime.now(UTC)
    check = sufficient_funds(warehouse_con, "fca_jpy", 150000, "jpy")
    hours_since = (before - ts("2025-03-10T15:00:00+00:00")) / timedelta(hours=1)
    assert check.sufficient is True and check.basis == "available"
    assert hours_since <= check.staleness_hours < hours_since + 1


def test_installed_macro_persists_in_the_warehouse_file(tmp_path: Path) -> None:
    path = tmp_path / "fc_balances.duckdb"
    con = create_warehouse(path)
    install_macros(con)
    con.close()
    with duckdb.connect(str(path), read_only=True) as reader:
        assert sufficient_funds(reader, "fca_credit", 1, "usd", at=BUILD_AT).basis == "current_fallback"


def test_read_only_warehouse_without_the_macro_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "fc_balances.duckdb"
    create_warehouse(path).close()
    with duckdb.connect(str(path), read_only=True) as reader, pytest.raises(RuntimeError, match="not installed"):
        sufficient_funds(reader, "fca_gap", 1, "usd")


@pytest.mark.parametrize(
    ("account_id", "amount_minor", "currency", "at", "message"),
    [
        ("", 1, "usd", None, "account_id"),
        ("fca_gap", -1, "usd", None, "amount_minor"),
        ("fca_gap", 1.5, "usd", None, "amount_minor"),
        ("fca_gap", True, "usd", None, "amount_minor"),
        ("fca_gap", 1, "dollars", None, "currency"),
        ("fca_gap", 1, "usd", datetime(2025, 1, 1), "timezone-aware"),  # naive on purpose
    ],
)
def test_bad_input_is_refused(warehouse_con: duckdb.DuckDBPyConnection, account_id: str, amount_minor: int,
                              currency: str, at: datetime | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sufficient_funds(warehouse_con, account_id, amount_minor, currency, at=at)
