"""Builds the analytics marts and installs the SQL macros in DuckDB from the contract tables (no Dagster)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import duckdb

from pipelines.sql import load_sql

# In build order: a mart comes after the marts it reads.
MART_TABLES: tuple[str, ...] = (
    "fc_latest_balances",
    "fc_daily_balances",
    "fc_underwriting_features",
    "fc_customer_liquidity",
)
# The tables each mart reads: contract tables and other marts.
MART_INPUTS: dict[str, tuple[str, ...]] = {
    "fc_latest_balances": ("fc_balances", "fc_accounts"),
    "fc_daily_balances": ("fc_balances",),
    "fc_underwriting_features": ("fc_daily_balances", "fc_latest_balances"),
    "fc_customer_liquidity": ("fc_latest_balances",),
}
MACROS: tuple[str, ...] = ("fc_sufficient_funds",)


class MartBuildError(ValueError):
    """The marts cannot be built as asked (unknown mart, missing input table, naive build time)."""


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute(load_sql("warehouse/user_tables")).fetchall()}


def _build_order(tables: Iterable[str] | None) -> list[str]:
    if tables is None:
        return list(MART_TABLES)
    wanted = [tables] if isinstance(tables, str) else list(tables)
    unknown = sorted(set(wanted) - set(MART_TABLES))
    if unknown:
        raise MartBuildError(f"unknown mart(s) {', '.join(unknown)}; known: {', '.join(MART_TABLES)}")
    return [table for table in MART_TABLES if table in wanted]


def build_marts(
    con: duckdb.DuckDBPyConnection, build_at: datetime, tables: Iterable[str] | None = None
) -> dict[str, int]:
    """(Re)build the given marts (default all) as of `build_at`, in one transaction; return their row counts.

    Each mart is replaced whole with CREATE OR REPLACE inside the transaction, so readers see either the old
    tables or the new ones, and a failure leaves the old ones in place.
    """
    if build_at.tzinfo is None or build_at.utcoffset() is None:
        raise MartBuildError("build_at must be timezone-aware (e.g. datetime.now(UTC))")
    order = _build_order(tables)
    available = _existing_tables(con)
    for table in order:
        missing = [name for name in MART_INPUTS[table] if name not in available and name not in order]
        if missing:
            raise MartBuildError(f"{table} reads {', '.join(missing)}, which the warehouse does not have yet")
    counts: dict[str, int] = {}
    con.begin()
    try:
        for table in order:
            con.execute(load_sql(f"marts/{table}"), {"build_at": build_at})
            # `table` comes from the fixed MART_TABLES allow-list.
            row = con.execute(load_sql("warehouse/count_rows").format(table=table)).fetchone()
            counts[table] = int(row[0]) if row else 0
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return counts


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or replace) the SQL macros in the connected database; needs a read-write connection."""
    for macro in MACROS:
        con.execute(load_sql(f"macros/{macro}"))
