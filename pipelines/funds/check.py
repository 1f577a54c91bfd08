"""`funds-check`: a fresh answer for one account, refreshing it on demand; never imports Dagster, never takes a lock."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from pipelines.contract.known import KnownStateError, pending_accounts, read_only_warehouse
from pipelines.contract.values import FundsRefreshOutcome, RefreshOutcome
from pipelines.funds.answer import (
    DEFAULT_REFRESH_TIMEOUT,
    FundsAnswer,
    FundsCheckError,
    StripeAccess,
    parse_max_age,
    validate,
)
from pipelines.funds.health import account_warnings
from pipelines.funds.macro import FundsCheck
from pipelines.settings import EVENT_STORE_RELATIVE, SETTINGS, SettingsError, read
from pipelines.sql import load_sql

REFRESHED_BALANCE_EVENT = "financial_connections.account.refreshed_balance"
DUCKDB_FILE_NAME = "fc_balances.duckdb"
# --------------------------------------------------------------------------------------------- the local answer


def balance_rows(account: Mapping[str, Any], currency: str) -> list[dict[str, Any]]:
    """The fc_pending_balances row of an account object's balance in `currency` (none when it has none)."""
    balance = account.get("balance")
    if not isinstance(balance, Mapping) or not isinstance(balance.get("as_of"), int | float):
        return []
    current = (balance.get("current") or {}).get(currency)
    cash = balance.get("cash") if isinstance(balance.get("cash"), Mapping) else {}
    available = ((cash or {}).get("available") or {}).get(currency)
    if current is None and available is None:
        return []
    return [{"account_id": account.get("id"), "currency": currency, "as_of": float(balance["as_of"]),
             "available_minor": available if isinstance(available, int) else None,
             "current_minor": current if isinstance(current, int) else None}]


@dataclass(frozen=True)
class LocalState:
    check: FundsCheck
    known: bool  # the warehouse or the event store has seen the account
    status: str | None
    permissions: list[str] | None


def answer_locally(warehouse_dir: Path, store_path: Path, account_id: str, amount_minor: int, currency: str,
                   extra_accounts: tuple[Mapping[str, Any], ...] = ()) -> LocalState:
    """The fc_sufficient_funds macro over the warehouse's fc_balances plus the balances not landed yet."""
    pending = pending_accounts(store_path, account_id)
    rows = [row for account in (*pending, *extra_accounts) for row in balance_rows(account, currency)]
    status = permissions = None
    if pending:
        status, permissions = pending[0].get("status"), pending[0].get("permissions")
    try:
        with read_only_warehouse(warehouse_dir / DUCKDB_FILE_NAME) as warehouse:
            connection = warehouse if warehouse is not None else duckdb.connect()
            try:
                connection.execute("SET TimeZone = 'UTC'")
                connection.execute(load_sql("funds/pending_table"))
                for row in rows:
                    connection.execute(load_sql("funds/pending_insert"), row)
                known = bool(pending)
                if warehouse is not None and _has(connection, "fc_balances"):
                    connection.execute(load_sql("funds/balances_table"), {"account_id": account_id})
                    state = connection.execute(load_sql("funds/account_state"), {"account_id": account_id}).fetchone()
                    if state is not None:
                        known = True
                        status, permissions = status or state[0], permissions or state[1]
                else:
                    connection.execute(load_sql("funds/balances_table_no_warehouse"))
                # The macro's own SQL, as a temporary macro (a read-only file may lack it, and it reads fc_balances,
                # which here is the temporary table above).
                connection.execute(load_sql("macros/fc_sufficient_funds").replace(
                    "CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO", 1))
                row = connection.execute(load_sql("macros/call_fc_sufficient_funds"), {
                    "account_id": account_id, "amount_minor": amount_minor, "currency": currency,
                    "at": datetime.now(UTC),
                }).fetchone()
            finally:
                if warehouse is None:
                    connection.close()
    except (KnownStateError, duckdb.Error) as exc:
        raise FundsCheckError(f"cannot read the warehouse: {str(exc).splitlines()[0]}") from None
    assert row is not None
    check = FundsCheck(*row)
    return LocalState(check, known or check.as_of is not None, status, list(permissions) if permissions else None)


def _has(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = connection.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = $t AND NOT temporary",
                             {"t": table}).fetchone()
    return bool(row and row[0])


# --------------------------------------------------------------------------------------------- landing a balance


def refreshed_event(account: Mapping[str, Any], completed_at: int) -> dict[str, Any]:
    """The refreshed_balance event (source funds_check) a check records for an account it retrieved; its id derives
    from the account, its balance and `completed_at`, so recording the same balance twice stores it once."""
    balance = account.get("balance") or {}
    digest = hashlib.sha256(f"{account.get('id')}:{balance.get('as_of')}:{completed_at}".encode()).hexdigest()
    return {"id": f"evt_fcbcheck{digest[:24]}", "object": "event", "type": REFRESHED_BALANCE_EVENT,
            "created": int(completed_at), "livemode": bool(account.get("livemode")),
            "data": {"object": dict(account)}}


def land_account(store_path: Path, account: Mapping[str, Any], completed_at: int) -> str:
    """Store the account as a refreshed_balance event (source funds_check), durably, for the fc_events job.

    Written with the event store's own schema and insert SQL; the id is derived from the account and its balance,
    so landing the same balance twice stores it once.
    """
    event = refreshed_event(account, completed_at)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(store_path, timeout=30.0, isolation_level=None)
    try:
        deadline = time.monotonic() + 30.0
        while True:
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:  # another process switching a new file to WAL
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        connection.execute("PRAGMA synchronous = FULL")
        connection.executescript(load_sql("events/store_schema"))
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(load_sql("events/store_insert"), {
            "event_id": event["id"], "type": event["type"], "created": event["created"],
            "account_id": account.get("id"), "received_at": time.time(), "source": "funds_check",
            "payload": json.dumps(event, separators=(",", ":")),
        })
        connection.execute("COMMIT")
    except sqlite3.Error as exc:
        raise FundsCheckError(f"cannot store the refreshed balance in {store_path}: {exc}") from None
    finally:
        connection.close()
    return event["id"]


# --------------------------------------------------------------------------------------------- the check


def store_path_for(warehouse_dir: Path, env: Mapping[str, str]) -> Path:
    explicit = _setting("FC_BALANCES_EVENT_STORE", env)
    return Path(explicit).expanduser().absolute() if explicit else (warehouse_dir / EVENT_STORE_RELATIVE).absolute()


def check_funds(account_id: str, amount_minor: int, currency: str, max_age: str | float | timedelta = "1h",
                refresh: bool = True, timeout: float = DEFAULT_REFRESH_TIMEOUT,
                warehouse: str | os.PathLike[str] | None = None,
                stripe: StripeAccess | None = None, env: Mapping[str, str] | None = None) -> FundsAnswer:
    """Is there enough money in `account_id` for a debit of `amount_minor` `currency`, by a balance no older than
    `max_age` (refreshed now when it is older and the account can be refreshed)? FundsCheckError on bad input."""
    environ = env if env is not None else os.environ
    amount_minor, currency = validate(account_id, amount_minor, currency)
    age = parse_max_age(max_age)
    if timeout <= 0:
        raise FundsCheckError("timeout must be more than 0 seconds")
    directory = Path(warehouse or _setting("FC_BALANCES_WAREHOUSE", environ)).expanduser()
    store = store_path_for(directory.absolute(), environ)
    local = answer_locally(directory, store, account_id, amount_minor, currency)

    def warned(answer: FundsAnswer, newer: tuple[Mapping[str, Any], ...] = ()) -> FundsAnswer:
        return replace(answer, warnings=account_warnings(directory, store, account_id, newer, environ))

    staleness = local.check.staleness_hours
    if local.permissions is not None and "balances" not in local.permissions and not refresh:
        return warned(no_balance_answer(FundsRefreshOutcome.NOT_REQUESTED,
                                        "the account does not grant the balances permission"))
    if staleness is not None and staleness * 3600 <= age.total_seconds() and _grants(local):
        return warned(answer_from(local.check, False, FundsRefreshOutcome.NOT_NEEDED))
    if not refresh:
        if not local.known:
            raise FundsCheckError(f"unknown account {account_id}: neither the warehouse nor the event store has it")
        why = "no balance known" if staleness is None else f"the balance is {staleness:.2f} h old"
        return warned(answer_from(local.check, False, FundsRefreshOutcome.NOT_REQUESTED, f"{why}; --no-refresh given"))
    if stripe is None:
        stripe = stripe_access_from_env(environ)
    import asyncio

    from pipelines.funds.refresh import refresh_account  # the Stripe SDK is imported only when a refresh is needed

    result = asyncio.run(refresh_account(stripe, account_id, timeout))
    if result.account is not None and result.account.get("balance") is not None:
        newest_local = local.check.as_of.timestamp() if local.check.as_of else None
        as_of = (result.account.get("balance") or {}).get("as_of")
        if result.outcome == RefreshOutcome.SUCCEEDED or (newest_local is None or (as_of or 0) > newest_local):
            land_account(store, result.account, result.completed_at or int(time.time()))
    extra = (result.account,) if result.account is not None else ()
    if result.outcome == RefreshOutcome.SKIPPED_NO_PERMISSION:
        return warned(no_balance_answer(result.outcome, result.reason), extra)
    answered = answer_locally(directory, store, account_id, amount_minor, currency, extra).check
    refreshed = result.outcome == RefreshOutcome.SUCCEEDED
    return warned(answer_from(answered, refreshed, result.outcome, result.reason), extra)


def _grants(local: LocalState) -> bool:
    return local.permissions is None or "balances" in local.permissions


def answer_from(check: FundsCheck, refreshed: bool, outcome: str, reason: str | None = None) -> FundsAnswer:
    if check.basis == "no_balance" and reason is None:
        reason = "no balance in this currency is known"
    return FundsAnswer(check.sufficient, check.basis, check.balance_minor, check.as_of, check.staleness_hours,
                       refreshed, outcome, reason)


def no_balance_answer(outcome: str, reason: str | None) -> FundsAnswer:
    return FundsAnswer(None, "no_balance", None, None, None, False, outcome, reason)


def _setting(variable: str, env: Mapping[str, str]) -> Any:
    """A declared setting (pipelines/settings.py) as the funds path reads it: a bad value is a FundsCheckError."""
    try:
        return read(variable, env)
    except SettingsError as exc:
        raise FundsCheckError(str(exc)) from None


def stripe_access_from_env(env: Mapping[str, str]) -> StripeAccess:
    key = _setting("STRIPE_API_KEY", env)
    if not key:
        raise FundsCheckError("no Stripe API key: set STRIPE_API_KEY (and STRIPE_API_BASE for a sandbox)")
    reserve = _setting("FC_BALANCES_CHECK_RESERVE_RPS", env)
    # A run given the whole limit (reserve 0) still leaves checks to pace at the declared default share.
    fallback = SETTINGS["FC_BALANCES_CHECK_RESERVE_RPS"].default
    return StripeAccess(key, _setting("STRIPE_API_BASE", env), reserve if reserve > 0 else fallback)
