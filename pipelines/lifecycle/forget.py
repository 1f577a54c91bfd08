"""Deletion requests: every row about a customer or account out of DuckDB, Iceberg (every byte) and the event store."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from pipelines.contract.schema import quote
from pipelines.contract.tables import EXPORTED_TABLES, TABLES
from pipelines.lifecycle.eventstore import forget_in_store
from pipelines.lifecycle.subjects import Forgotten, ensure_salt, read_salt, subject_hash, subject_type
from pipelines.sql import load_sql
from pipelines.warehouse import Warehouse

EVENT_STORE_KEY = "event_store"  # rows_removed's key for the SQLite event store

# Test hook: called with a step's name between the steps of a deletion (the kill -9 tests stop the process there).
STEP_HOOK: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(name)


def subject_tables() -> list[tuple[str, bool, bool]]:
    """(table, has account_id, has customer_id) for every declared table holding a subject's id."""
    found = []
    for declared in TABLES.values():
        names = set(declared.column_names)
        if "account_id" in names or "customer_id" in names:
            found.append((declared.name, "account_id" in names, "customer_id" in names))
    return found


def _condition(has_account: bool, has_customer: bool) -> str:
    parts = []
    if has_account:
        parts.append(load_sql("lifecycle/match_account"))
    if has_customer:
        parts.append(load_sql("lifecycle/match_customer"))
    if has_customer and not has_account:
        # An aggregate over a customer's accounts: it holds the forgotten account's data, so its rows go too
        # (the next marts build brings them back without it).
        parts.append(load_sql("lifecycle/match_aggregate"))
    return "(" + ") OR (".join(_strip_comments(p) for p in parts) + ")"


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--")).strip()


def _scope(con: duckdb.DuckDBPyConnection, salt: str, hashes: list[str]) -> None:
    """Fill the temporary scope tables: the hashes, then the accounts and customers they reach."""
    con.execute(load_sql("lifecycle/scope_create"))
    for digest in hashes:
        con.execute(load_sql("lifecycle/scope_hash"), {"subject_hash": digest})
    both = [name for name, has_account, has_customer in subject_tables() if has_account and has_customer]
    for name in both:
        con.execute(load_sql("lifecycle/scope_accounts").format(table=quote(name)), {"salt": salt})
    for name in both:
        con.execute(load_sql("lifecycle/scope_customers").format(table=quote(name)))


def _per_table(con: duckdb.DuckDBPyConnection, salt: str, sql_name: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, has_account, has_customer in subject_tables():
        sql = load_sql(sql_name).format(table=quote(name), condition=_condition(has_account, has_customer))
        row = con.execute(sql, {"salt": salt}).fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts


@dataclass
class ForgetResult:
    subject_id: str
    subject_type: str
    request_id: str | None  # None: nothing was held and nothing recorded
    rows_removed: dict[str, int] = field(default_factory=dict)
    already_forgotten: bool = False


class Forgetter:
    """Runs deletion requests on an open (locked) warehouse and its event store."""

    def __init__(self, warehouse: Warehouse, event_store_path: str) -> None:
        self.warehouse = warehouse
        self.event_store_path = event_store_path

    # -- requests ----------------------------------------------------------------------------------------------

    def forget(self, subject_id: str) -> ForgetResult:
        """Record the request, then delete; an id the warehouse and store never held is reported, not recorded."""
        kind = subject_type(subject_id)
        salt = ensure_salt(self.warehouse.directory)
        digest = subject_hash(salt, subject_id)
        with self.warehouse.connection() as con:
            _scope(con, salt, [digest])
            held = sum(_per_table(con, salt, "lifecycle/count_rows").values())
            previous = con.execute(load_sql("lifecycle/request_of_hash"), {"subject_hash": digest}).fetchone()
        held += self._events_held(salt, digest)
        if not held:
            return ForgetResult(subject_id, kind, previous[0] if previous else None,
                                already_forgotten=previous is not None)
        request_id = f"del_{secrets.token_hex(12)}"
        with self.warehouse.connection() as con:
            con.execute(load_sql("lifecycle/request_add"), {
                "request_id": request_id, "requested_at": datetime.now(UTC), "subject_type": kind,
                "subject_hash": digest,
            })
        _step("recorded")
        removed = self._finish(request_id, kind, digest, "pending", salt)
        return ForgetResult(subject_id, kind, request_id, removed)

    def finish_pending(self) -> int:
        """Finish every request a crash left unfinished; how many (the next `forget` and every run call this)."""
        salt = read_salt(self.warehouse.directory)
        if salt is None:
            return 0
        with self.warehouse.connection() as con:
            unfinished = con.execute(load_sql("lifecycle/request_unfinished")).fetchall()
        for request_id, kind, digest, status in unfinished:
            self._finish(request_id, kind, digest, status, salt)
        return len(unfinished)

    # -- the steps ---------------------------------------------------------------------------------------------

    def _events_held(self, salt: str, digest: str) -> int:
        from pipelines.events import EventStore  # the store module imports the warehouse; keep this one light

        with EventStore(self.event_store_path) as store, store.locked() as connection:
            rows = connection.execute("SELECT account_id, payload FROM stored_events").fetchall()
            decisions = connection.execute(load_sql("events/count_subject_decisions")).fetchall()
        probe = Forgotten.of(salt, [digest])
        held = sum(1 for account_id, payload in rows if probe.matches(account_id) or _payload_customer_matches(
            probe, payload))
        return held + sum(1 for account_id, customer_id in decisions
                          if probe.matches(account_id) or probe.matches(customer_id))

    def _finish(self, request_id: str, kind: str, digest: str, status: str, salt: str) -> dict[str, int]:
        from pipelines.events import EventStore

        removed: dict[str, int] = {}
        if status == "pending":
            # Event store first: from here on the receiver and the sensor skip the subject.
            with EventStore(self.event_store_path) as store, store.locked() as connection:
                removed[EVENT_STORE_KEY] = forget_in_store(connection, salt, {digest: kind})
            _step("event_store")
            with self.warehouse.connection() as con:
                con.execute("BEGIN TRANSACTION")
                try:
                    _scope(con, salt, [digest])
                    removed.update(_per_table(con, salt, "lifecycle/delete_rows"))
                    con.execute(load_sql("lifecycle/request_deleted"), {
                        "request_id": request_id, "rows_removed": json.dumps(removed, sort_keys=True),
                    })
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            _step("duckdb")
        else:
            with self.warehouse.connection() as con:
                row = con.execute("SELECT rows_removed FROM fc_deletions WHERE request_id = $r",
                                  {"r": request_id}).fetchone()
            removed = json.loads(row[0]) if row and row[0] else {}
        # Republish the partitions that lost rows (their fingerprint changed), then erase every older snapshot and
        # every file no snapshot references: the subject's rows stay in no data file, manifest bound or metadata.
        self.warehouse.publish(EXPORTED_TABLES, run_id=request_id)
        _step("iceberg")
        from pipelines.warehouse.snapshots import erase_history  # pyiceberg, only when forgetting
        for name in EXPORTED_TABLES:
            erase_history(self.warehouse.catalog, name, request_id)
        _step("erased")
        with self.warehouse.connection() as con:
            con.execute(load_sql("lifecycle/request_done"),
                        {"request_id": request_id, "completed_at": datetime.now(UTC)})
        return removed


def _payload_customer_matches(probe: Forgotten, payload: str) -> bool:
    try:
        event = json.loads(payload)
    except ValueError:
        return False
    obj = (event.get("data") or {}).get("object") if isinstance(event, dict) else None
    holder = obj.get("account_holder") if isinstance(obj, dict) else None
    return isinstance(holder, dict) and probe.matches(holder.get("customer"))


def load_forgotten(warehouse: Warehouse) -> Forgotten:
    """The forgotten hashes of this warehouse, for a run to skip them (empty when nothing was forgotten)."""
    salt = read_salt(warehouse.directory)
    if salt is None:
        return Forgotten()
    with warehouse.connection() as con:
        hashes = [row[0] for row in con.execute(load_sql("lifecycle/forgotten_hashes")).fetchall()]
    return Forgotten.of(salt, hashes)
