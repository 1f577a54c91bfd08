"""The funds check's warnings: the account's relink reason from fc_account_health's SQL, computed at check time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.contract.known import KnownStateError, pending_accounts, read_only_warehouse
from pipelines.contract.schema import create_table_sql
from pipelines.funds.answer import FundsCheckError
from pipelines.marts.health import account_health, health_settings
from pipelines.normalize.normalizer import normalize_accounts
from pipelines.settings import SettingsError
from pipelines.sql import load_sql

DUCKDB_FILE_NAME = "fc_balances.duckdb"
_OVERLAY_VIEW = "funds_health_account"  # the name sql/funds/health_account_overlay.sql reads
_INPUTS = ("fc_balance_refreshes", "fc_balances")


def _temp_accounts(connection: duckdb.DuckDBPyConnection, from_file: bool, account_id: str) -> None:
    """A temporary fc_accounts in the declared shape holding the file's row of this account (a file from before
    migration 0007 gets nulls in the newer columns), shadowing the file's table."""
    connection.execute(create_table_sql("fc_accounts").replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE", 1))
    if from_file:
        connection.execute(load_sql("funds/health_account_row"), {"account_id": account_id})


def account_warnings(warehouse_dir: Path, store_path: Path, account_id: str,
                     newer: tuple[Mapping[str, Any], ...] = (), env: Mapping[str, str] | None = None
                     ) -> tuple[str, ...]:
    """The account's relink reason as a one-item tuple (empty when healthy or never seen).

    The newest state wins: an account object just refreshed (`newer`), else its newest event not yet landed, else
    the warehouse's row; refresh history and balances come from the warehouse. Never changes any file.
    """
    try:
        settings = health_settings(env)
    except SettingsError as exc:
        raise FundsCheckError(str(exc)) from None
    objects = [*reversed(newer), *pending_accounts(store_path, account_id)]  # newest first
    now = datetime.now(UTC)
    try:
        with read_only_warehouse(warehouse_dir / DUCKDB_FILE_NAME) as warehouse:
            connection = warehouse if warehouse is not None else duckdb.connect()
            try:
                connection.execute("SET TimeZone = 'UTC'")
                _temp_accounts(connection, warehouse is not None and _has(connection, "fc_accounts"), account_id)
                for name in _INPUTS:
                    if warehouse is None or not _has(connection, name):
                        connection.execute(create_table_sql(name).replace(
                            "CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE", 1))
                if objects:
                    connection.register(_OVERLAY_VIEW, normalize_accounts(objects[:1], now))
                    connection.execute(load_sql("funds/health_account_overlay"))
                    connection.unregister(_OVERLAY_VIEW)
                row = account_health(connection, account_id, now, settings)
            finally:
                if warehouse is None:
                    connection.close()
    except (KnownStateError, duckdb.Error) as exc:
        raise FundsCheckError(f"cannot read the account's health: {str(exc).splitlines()[0]}") from None
    reason = row.get("relink_reason") if row else None
    return (reason,) if reason else ()


def _has(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    rows = connection.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = $t AND NOT temporary",
                              {"t": table}).fetchall()  # fetched to the end: the connection is used after it
    return bool(rows and rows[0][0])
