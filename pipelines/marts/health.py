"""Account health: the fc_account_health mart, one account's health for a funds check or a report (no Dagster)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import duckdb

from pipelines.contract.tables import TABLES
from pipelines.contract.values import FAILED_REFRESH_OUTCOMES
from pipelines.settings import SETTINGS, default
from pipelines.sql import load_sql

HEALTH_TABLE = "fc_account_health"
WARNING_DAYS_ENV, REFRESH_FAILURES_ENV = "FC_BALANCES_DEACTIVATION_WARNING_DAYS", "FC_BALANCES_REFRESH_FAILURES"
WINDOW_DAYS = 30  # days_with_balance_30d


@dataclass(frozen=True)
class HealthSettings:
    """When an account counts as deactivating soon, and after how many failed refreshes in a row as failing."""

    deactivation_warning_days: int = default(WARNING_DAYS_ENV)  # both declared in pipelines/settings.py
    refresh_failures: int = default(REFRESH_FAILURES_ENV)


def health_settings(env: Mapping[str, str] | None = None) -> HealthSettings:
    """FC_BALANCES_DEACTIVATION_WARNING_DAYS and FC_BALANCES_REFRESH_FAILURES, read now; a bad one names itself."""
    return HealthSettings(SETTINGS[WARNING_DAYS_ENV].read(env), SETTINGS[REFRESH_FAILURES_ENV].read(env))


def build_health_mart(con: duckdb.DuckDBPyConnection, built_at: datetime) -> int:
    """The mart spec's builder: fc_account_health with the settings as they are when the build runs."""
    return build_account_health(con, built_at, health_settings())


def _params(built_at: datetime, settings: HealthSettings, account_id: str | None) -> dict[str, Any]:
    if built_at.tzinfo is None or built_at.utcoffset() is None:
        raise ValueError("built_at must be timezone-aware (e.g. datetime.now(UTC))")
    day_end = datetime.combine(built_at.astimezone(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)
    return {
        "built_at": built_at, "account_id": account_id,
        "warning_days": settings.deactivation_warning_days, "failure_threshold": settings.refresh_failures,
        "failed_outcomes": list(FAILED_REFRESH_OUTCOMES),
        "window_start": day_end - timedelta(days=WINDOW_DAYS), "window_end": day_end,
    }


def build_account_health(con: duckdb.DuckDBPyConnection, built_at: datetime, settings: HealthSettings) -> int:
    """Refill fc_account_health as of `built_at` in one transaction, recording the build; its rows."""
    params = _params(built_at, settings, None)
    con.begin()
    try:
        con.execute(load_sql("marts/clear_table").format(table=HEALTH_TABLE))
        con.execute(load_sql("marts/insert_account_health").format(rows=load_sql(f"marts/{HEALTH_TABLE}")), params)
        rows = int(con.execute(load_sql("warehouse/count_rows").format(table=HEALTH_TABLE)).fetchone()[0])
        con.execute(load_sql("marts/forget_build"), {"mart": HEALTH_TABLE, "day": None})
        con.execute(load_sql("marts/record_build"),
                    {"mart": HEALTH_TABLE, "day": None, "built_at": built_at, "row_count": rows})
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return rows


def account_health(con: duckdb.DuckDBPyConnection, account_id: str, at: datetime,
                   settings: HealthSettings) -> dict[str, Any] | None:
    """One account's fc_account_health row computed now from what `con` holds (None when it has no fc_accounts row).

    Works on a read-only connection: temporary tables named fc_accounts or fc_balances shadow the file's.
    """
    rows = con.execute(load_sql(f"marts/{HEALTH_TABLE}"), _params(at, settings, account_id)).fetchall()
    if not rows:
        return None
    return dict(zip(TABLES[HEALTH_TABLE].column_names, rows[0], strict=True))
