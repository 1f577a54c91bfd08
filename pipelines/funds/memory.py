"""The funds service's memory of known balances: the warehouse read once and again when its file changes, the event
store followed by sequence number, refreshed accounts learnt directly; answered by the fc_sufficient_funds macro.

Not thread-safe by design: the service calls it from one thread only, so no request opens the DuckDB file unless
the file changed since the last read, and a run holding the file never makes a request wait or fail.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from pipelines.funds.macro import FundsCheck
from pipelines.lifecycle.eventstore import load_forgotten
from pipelines.sql import load_sql

# A run writes what it fetched in batches, a little after fetching it: rows fetched up to this long before the newest
# row already read are read again (harmlessly: only a newer as_of replaces a known balance).
FETCH_TO_COMMIT_LAG = timedelta(hours=6)
_EVENTS_PAGE = 5000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class AccountState:
    status: str | None
    permissions: list[str] | None
    customer_id: str | None
    observed: float  # unix seconds of the observation that told us


@dataclass(frozen=True)
class Known:
    """What memory knows for one check."""

    check: FundsCheck
    known: bool  # the warehouse, the event store or a refresh has seen the account
    forgotten: bool  # `fc-balances forget` erased the account (or its customer): nothing may be said or kept
    state: AccountState | None


def currencies_of(account: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every (currency) balance row of an account object, as_of in unix seconds; none without a balance."""
    balance = account.get("balance")
    if not isinstance(balance, Mapping) or not isinstance(balance.get("as_of"), int | float):
        return []
    current = balance.get("current") if isinstance(balance.get("current"), Mapping) else {}
    cash = balance.get("cash") if isinstance(balance.get("cash"), Mapping) else {}
    available = (cash or {}).get("available") if isinstance((cash or {}).get("available"), Mapping) else {}
    rows = []
    for currency in sorted(set(current or {}) | set(available or {})):
        now_minor, avail_minor = (current or {}).get(currency), (available or {}).get(currency)
        rows.append({"account_id": account.get("id"), "currency": str(currency).lower(),
                     "as_of": float(balance["as_of"]),
                     "available_minor": avail_minor if type(avail_minor) is int else None,
                     "current_minor": now_minor if type(now_minor) is int else None})
    return rows


class KnownBalances:
    """Newest balance per (account, currency) and each account's state, in memory."""

    def __init__(self, duckdb_path: Path, store_path: Path, memory_limit: str = "256MB") -> None:
        self.duckdb_path = duckdb_path
        self.store_path = store_path
        self.accounts: dict[str, AccountState] = {}
        self._db = duckdb.connect()
        self._db.execute("SET TimeZone = 'UTC'")
        self._db.execute("SET memory_limit = ?", [memory_limit])
        self._db.execute(load_sql("funds/memory_tables"))
        self._db.execute(load_sql("macros/fc_sufficient_funds").replace(
            "CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO", 1))
        self._store = sqlite3.connect(f"{store_path.absolute().as_uri()}?mode=ro", uri=True, timeout=30.0,
                                      check_same_thread=False)
        self._after_seq = 0
        self._signature: tuple[Any, ...] | None = None
        self._since = _EPOCH
        self._since_observed = _EPOCH
        self.warehouse_reads = 0  # times the DuckDB file was opened (the tests and the bench read it)
        self.warehouse_busy = 0  # times it was held by a writer and memory answered without it

    def close(self) -> None:
        self._db.close()
        self._store.close()

    # -- following the sources ------------------------------------------------------------------------------------

    def _file_signature(self) -> tuple[Any, ...] | None:
        parts = []
        for path in (self.duckdb_path, self.duckdb_path.with_name(self.duckdb_path.name + ".wal")):
            try:
                stat = path.stat()
                parts.append((stat.st_mtime_ns, stat.st_size))
            except FileNotFoundError:
                parts.append(None)
        return None if parts[0] is None else tuple(parts)

    def follow(self) -> None:
        """Take in what changed: the warehouse file (only when its signature moved), then new stored events."""
        signature = self._file_signature()
        if signature is not None and signature != self._signature and self._read_warehouse():
            self._signature = signature
        self._read_events()

    def _read_warehouse(self) -> bool:
        """Read what the warehouse landed since the last read; False when a writer holds the file right now."""
        path = str(self.duckdb_path).replace("'", "''")
        try:
            self._db.execute(f"ATTACH '{path}' AS fc_warehouse (READ_ONLY)")
        except (duckdb.IOException, duckdb.ConnectionException):
            # A writer holds the file (another process's lock, or this process's own read-write connection): answer
            # from memory and read the file at the next check.
            self.warehouse_busy += 1
            return False
        self.warehouse_reads += 1
        try:
            newest = self._db.execute(load_sql("funds/memory_load_watermark")).fetchone()
            self._db.execute(load_sql("funds/memory_load_balances"), {"since": self._since})
            rows = self._db.execute(load_sql("funds/memory_load_accounts"), {"since": self._since_observed}).fetchall()
        except duckdb.CatalogException:  # a warehouse file without the contract tables yet
            return True
        finally:
            self._db.execute("DETACH fc_warehouse")
        for account_id, customer_id, status, permissions, observed in rows:
            self._observe(account_id, AccountState(status, list(permissions) if permissions is not None else None,
                                                   customer_id, float(observed)))
        if newest and newest[0] is not None:
            self._since = max(self._since, newest[0] - FETCH_TO_COMMIT_LAG)
        if newest and newest[1] is not None:
            self._since_observed = max(self._since_observed, newest[1] - FETCH_TO_COMMIT_LAG)
        return True

    def _read_events(self) -> None:
        while True:
            rows = self._store.execute(load_sql("funds/memory_events"),
                                       {"after": self._after_seq, "limit": _EVENTS_PAGE}).fetchall()
            for seq, created, payload in rows:
                self._after_seq = max(self._after_seq, int(seq))
                try:
                    event = json.loads(payload)
                except ValueError:
                    continue
                obj = (event.get("data") or {}).get("object") if isinstance(event, Mapping) else None
                if isinstance(obj, Mapping) and isinstance(obj.get("id"), str):
                    self.learn(obj, float(created))
            if len(rows) < _EVENTS_PAGE:
                return

    def learn(self, account: Mapping[str, Any], observed: float) -> None:
        """Take in an account object as Stripe rendered it (an event's, or one the service just retrieved)."""
        holder = account.get("account_holder") if isinstance(account.get("account_holder"), Mapping) else {}
        permissions = account.get("permissions")
        self._observe(str(account["id"]), AccountState(
            account.get("status"), list(permissions) if isinstance(permissions, list) else None,
            (holder or {}).get("customer"), observed))
        for row in currencies_of(account):
            self._db.execute(load_sql("funds/memory_upsert"), row)

    def _observe(self, account_id: str, state: AccountState) -> None:
        known = self.accounts.get(account_id)
        if known is None or state.observed >= known.observed:
            self.accounts[account_id] = state

    # -- answering ------------------------------------------------------------------------------------------------

    def known(self, account_id: str, amount_minor: int, currency: str) -> Known:
        """The macro's answer over memory, after taking in what changed."""
        self.follow()
        forgotten = load_forgotten(self._store)
        state = self.accounts.get(account_id)
        if forgotten and (forgotten.matches(account_id) or (state is not None
                                                             and forgotten.matches(state.customer_id))):
            self._db.execute(load_sql("funds/memory_forget"), {"account_id": account_id})  # nothing kept about it
            self.accounts.pop(account_id, None)
            return Known(FundsCheck(None, "no_balance", None, None, None), False, True, None)
        row = self._db.execute(load_sql("macros/call_fc_sufficient_funds"), {
            "account_id": account_id, "amount_minor": amount_minor, "currency": currency, "at": datetime.now(UTC),
        }).fetchone()
        assert row is not None  # the macro always answers one row
        check = FundsCheck(*row)
        return Known(check, state is not None or check.as_of is not None, False, state)
