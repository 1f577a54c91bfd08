"""What is already known before asking Stripe: newest balances and priorities, read without taking the writer lock."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.sql import load_sql
from pipelines.stripe_fc.policy import KnownState

READ_RETRY_SECONDS = 2.0  # a run's batch write holds the DuckDB file for a moment; a reader waits that long at most


class KnownStateError(Exception):
    """The warehouse or the event store cannot be read; one line."""


@contextmanager
def read_only_warehouse(duckdb_path: str | os.PathLike[str],
                        retry_seconds: float = READ_RETRY_SECONDS) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A read-only DuckDB connection (None when the file does not exist yet).

    DuckDB lets another process open a file read-only only while no writer has it open; a run opens it for each
    batch write and closes it again, so a reader retries for a moment instead of waiting for the run's lock.
    """
    path = Path(duckdb_path)
    if not path.exists():
        yield None
        return
    deadline = time.monotonic() + retry_seconds
    while True:
        try:
            connection = duckdb.connect(str(path), read_only=True)
            break
        except duckdb.Error as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise KnownStateError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
            time.sleep(0.02)
    try:
        connection.execute("SET TimeZone = 'UTC'")
        yield connection
    finally:
        connection.close()


@contextmanager
def read_only_store(store_path: str | os.PathLike[str]) -> Iterator[sqlite3.Connection | None]:
    """The event store opened read-only (None when it does not exist yet); never creates or changes it."""
    path = Path(store_path)
    if not path.exists():
        yield None
        return
    try:
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error as exc:
        raise KnownStateError(f"cannot read event store {path}: {exc}") from None
    try:
        yield connection
    finally:
        connection.close()


def _has_table(connection: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = $name", {"name": name}
    ).fetchone()
    return bool(row and row[0])


def read_known_state(duckdb_path: str | os.PathLike[str], store_path: str | os.PathLike[str],
                     now: datetime | None = None) -> KnownState:
    """Each account's newest balance as_of (warehouse and pending events) and the unexpired priorities."""
    now = now or datetime.now(UTC)
    known = KnownState()
    with read_only_warehouse(duckdb_path) as connection:
        if connection is not None and _has_table(connection, "fc_refresh_priority"):
            for account_id, as_of_us, priority in connection.execute(
                load_sql("policy/known_state"), {"now": now}
            ).fetchall():
                if as_of_us is not None:
                    known.newest_as_of[account_id] = as_of_us / 1e6
                if priority is not None:
                    known.priorities[account_id] = int(priority)
    try:
        with read_only_store(store_path) as store:
            rows = store.execute(load_sql("events/store_pending_as_of")).fetchall() if store is not None else []
    except sqlite3.Error as exc:
        raise KnownStateError(f"cannot read event store {store_path}: {exc}") from None
    for account_id, as_of in rows:
        if as_of is not None and as_of > known.newest_as_of.get(account_id, float("-inf")):
            known.newest_as_of[account_id] = float(as_of)
    return known


def pending_accounts(store_path: str | os.PathLike[str], account_id: str) -> list[dict[str, Any]]:
    """The account objects of one account's events not yet applied to the warehouse, newest first."""
    try:
        with read_only_store(store_path) as store:
            if store is None:
                return []
            rows = store.execute(load_sql("events/store_pending_account"), {"account_id": account_id}).fetchall()
    except sqlite3.Error as exc:
        raise KnownStateError(f"cannot read event store {store_path}: {exc}") from None
    accounts = []
    for (payload,) in rows:
        try:
            event = json.loads(payload)
        except ValueError:
            continue
        obj = (event.get("data") or {}).get("object") if isinstance(event, Mapping) else None
        if isinstance(obj, dict) and obj.get("id") == account_id:
            accounts.append(obj)
    return accounts
