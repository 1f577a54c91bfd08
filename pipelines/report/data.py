"""Reads what a balance report shows from the warehouse, read-only: one query per table for a list of customers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from pipelines.settings import SettingsError, read
from pipelines.sql import load_sql
from pipelines.warehouse import DUCKDB_FILE_NAME, WarehouseError, open_reader

# Newest window_end only once the history issue lands; until then the unpartitioned mart is the current one.
FEATURE_SOURCES = ("fc_current_underwriting_features", "fc_underwriting_features")
MARTS_READ = ("fc_latest_balances", "fc_daily_balances", "fc_customer_liquidity")
REFRESHES_SHOWN = 5


class ReportError(ValueError):
    """A report cannot be made (no warehouse, unknown customer, ...); the message is the one line the user sees."""


@dataclass(frozen=True)
class DailyPoint:
    day: date
    observed: bool
    current_minor: int | None
    second_minor: int | None  # available for cash, used for credit


@dataclass
class Series:
    """The daily balances of one (account, currency) over the window; days without a row are left out (gaps)."""

    currency: str
    balance_type: str
    points: list[DailyPoint] = field(default_factory=list)


@dataclass
class AccountData:
    account: dict[str, Any]
    latest: list[dict[str, Any]] = field(default_factory=list)
    series: dict[str, Series] = field(default_factory=dict)  # by currency
    features: list[dict[str, Any]] = field(default_factory=list)
    refreshes: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    health: dict[str, Any] | None = None  # its fc_account_health row (None: not in the mart's last build)


@dataclass
class CustomerData:
    customer_id: str
    accounts: list[AccountData] = field(default_factory=list)
    liquidity: list[dict[str, Any]] = field(default_factory=list)

    @property
    def has_balances(self) -> bool:
        return any(account.latest for account in self.accounts)


@dataclass(frozen=True)
class Window:
    report_time: datetime
    first_day: date
    last_day: date
    features_source: str
    shows_access_stopped: bool
    shows_health: bool = False  # the warehouse has fc_account_health

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def all_days(self) -> list[date]:
        return [self.first_day + timedelta(days=offset) for offset in range(self.days)]


@contextmanager
def open_warehouse(directory: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse's read-only connection (UTC): never the writer lock, never a write; waits for a writing step."""
    path = Path(directory).expanduser() / DUCKDB_FILE_NAME
    if not path.is_file():
        raise ReportError(f"no warehouse at {Path(directory).expanduser()}: {DUCKDB_FILE_NAME} does not exist "
                          "(run `fc-balances run` first, or pass --warehouse)")
    try:
        timeout, memory_limit = read("FC_BALANCES_LOCK_TIMEOUT"), read("FC_BALANCES_DUCKDB_MEMORY_LIMIT")
        with open_reader(path.parent, timeout, memory_limit) as con:
            yield con
    except (WarehouseError, SettingsError) as exc:
        raise ReportError(str(exc)) from None


def features_source(relations: set[str]) -> str:
    """The one place that picks where features are read from: the current-window view when it exists."""
    return next((name for name in FEATURE_SOURCES if name in relations), FEATURE_SOURCES[-1])


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def check_sources(con: duckdb.DuckDBPyConnection, directory: str | Path) -> set[str]:
    """The warehouse's relations; fails with one line when it is empty or its marts were never built."""
    relations = {name for (name,) in con.execute(load_sql("report/relations")).fetchall()}
    if "fc_accounts" not in relations or "fc_balances" not in relations:
        raise ReportError(f"the warehouse at {directory} is empty: run `fc-balances run` first")
    missing = [name for name in MARTS_READ if name not in relations]
    if features_source(relations) not in relations:
        missing.append(FEATURE_SOURCES[-1])
    if missing:
        raise ReportError(f"the warehouse at {directory} has no marts yet ({', '.join(missing)}): build them with "
                          "`fc-balances run` or `dagster asset materialize --select group:marts`")
    if con.execute(load_sql("report/count_accounts")).fetchone() == (0,):
        raise ReportError(f"the warehouse at {directory} has no accounts yet: run `fc-balances run` first")
    return relations


def missing_customers(
    con: duckdb.DuckDBPyConnection, customers: list[str], accounts: list[dict[str, Any]]
) -> tuple[list[str], list[str]]:
    """(unknown customers, customers known from their balances but with no account), in the order given."""
    with_accounts = {row["customer_id"] for row in accounts}
    lacking = [customer for customer in customers if customer not in with_accounts]
    if not lacking:
        return [], []
    seen = {name for (name,) in con.execute(load_sql("report/customers_with_balances"),
                                            {"customers": lacking}).fetchall()}
    return [c for c in lacking if c not in seen], [c for c in lacking if c in seen]


def load_accounts(con: duckdb.DuckDBPyConnection, customers: list[str]) -> list[dict[str, Any]]:
    return _rows(con, load_sql("report/accounts"), {"customers": customers})


def make_window(con: duckdb.DuckDBPyConnection, relations: set[str], days: int, report_time: datetime,
                account_columns: set[str], newest_day: date | None = None) -> Window:
    """The report's window: `days` days ending on the newest day of fc_daily_balances (today when it is empty);
    `newest_day` gives that day when the connection holds only some customers' rows (a report as of a time)."""
    (newest,) = (newest_day,) if newest_day else con.execute(load_sql("report/daily_last_day")).fetchone() or (None,)
    last_day = newest or report_time.date()
    return Window(report_time=report_time, first_day=last_day - timedelta(days=days - 1), last_day=last_day,
                  features_source=features_source(relations),
                  shows_access_stopped="access_stopped_at" in account_columns,
                  shows_health="fc_account_health" in relations)


def load_customers(
    con: duckdb.DuckDBPyConnection, customers: list[str], accounts: list[dict[str, Any]], window: Window
) -> dict[str, CustomerData]:
    """Everything the reports of `customers` show, one query per table for the whole list."""
    book = {customer: CustomerData(customer) for customer in customers}
    by_account: dict[str, AccountData] = {}
    for row in accounts:
        data = AccountData(account=row)
        book[row["customer_id"]].accounts.append(data)
        by_account[row["account_id"]] = data
    ids = {"accounts": list(by_account)}

    for row in _rows(con, load_sql("report/latest_balances"), ids):
        by_account[row["account_id"]].latest.append(row)

    cursor = con.execute(load_sql("report/daily_balances"),
                         {**ids, "first_day": window.first_day, "last_day": window.last_day})
    for account_id, currency, day, balance_type, observed, current, available, used in cursor.fetchall():
        series = by_account[account_id].series.get(currency)
        if series is None:
            series = by_account[account_id].series[currency] = Series(currency, balance_type)
        second = used if balance_type == "credit" else available
        series.points.append(DailyPoint(day, bool(observed), current, second))

    # `features_source` returns one of the fixed FEATURE_SOURCES: a name from an allow-list, not a value.
    for row in _rows(con, load_sql("report/features").format(features=window.features_source), ids):
        by_account[row["account_id"]].features.append(row)

    for row in _rows(con, load_sql("report/refreshes"), {**ids, "limit": REFRESHES_SHOWN}):
        data = by_account[row["account_id"]]
        data.refreshes.append(row)
        data.outcomes = row["outcomes"]

    if window.shows_health:
        for row in _rows(con, load_sql("report/health"), ids):
            by_account[row["account_id"]].health = row

    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in _rows(con, load_sql("report/liquidity"), {"customers": customers}):
        by_customer[row["customer_id"]].append(row)
    for customer, rows in by_customer.items():
        book[customer].liquidity = rows
    return book
