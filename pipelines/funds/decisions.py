"""The funds service's decision log: each answer stored durably before it is sent, read back by id, landed in DuckDB.

The log is a table of the event store's SQLite file (WAL, synchronous=FULL), so it survives restarts, is cleaned by
`fc-balances forget` with the subject's events, and is landed in `fc_funds_decisions` by the fc_events job.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipelines.contract.schema import arrow_schema
from pipelines.redact import redact
from pipelines.settings import default
from pipelines.sql import load_sql

if TYPE_CHECKING:
    from pipelines.events.store import EventStore
    from pipelines.warehouse import Warehouse

DECISION_PREFIX = "fchk_"
FC_FUNDS_DECISIONS_BATCH_VIEW = "fc_funds_decisions_batch"  # the name sql/funds/insert_fc_funds_decisions.sql reads
_BUSY_SECONDS = 30.0


class DecisionLogError(Exception):
    """The decision log cannot be opened or written; one line naming the file."""


def new_decision_id() -> str:
    return DECISION_PREFIX + secrets.token_hex(12)


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=_BUSY_SECONDS, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + _BUSY_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            # FULL: an answered decision must survive a power loss, like a stored event.
            connection.execute("PRAGMA synchronous = FULL")
            connection.executescript(load_sql("events/store_schema"))
            return connection
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) and time.monotonic() < deadline:  # another process switching the file to WAL
                time.sleep(0.05)
                continue
            connection.close()
            raise


class DecisionLog:
    """Decisions written by one thread in group commits: all decisions waiting share one transaction and one fsync.

    `record` returns a future that completes once the decision is on disk, so concurrent requests pay for one
    commit together instead of queueing for one each.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().absolute()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = _connect(self.path)
            self._reader = _connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise DecisionLogError(f"cannot open the decision log {self.path}: {_one_line(exc)}") from None
        self._read_lock = threading.Lock()
        self._waiting: list[tuple[dict[str, Any], Future[None]]] = []
        self._condition = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._write_loop, name="fc-funds-decisions", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"DecisionLog({str(self.path)!r})"

    def record(self, decision: dict[str, Any], customer_id: str | None = None) -> Future[None]:
        """Queue a decision (the answer as it will be sent, with its id and created); done once it is durable."""
        row = {"decision_id": decision["id"], "created": float(decision["created_at"]),
               "account_id": decision["account"], "customer_id": customer_id,
               "answer": json.dumps({k: v for k, v in decision.items() if k != "created_at"}, sort_keys=True)}
        done: Future[None] = Future()
        with self._condition:
            if self._closing:
                raise DecisionLogError("the decision log is closed")
            self._waiting.append((row, done))
            self._condition.notify()
        return done

    def get(self, decision_id: str) -> dict[str, Any] | None:
        """The decision as it was answered, or None."""
        with self._read_lock:
            try:
                row = self._reader.execute(load_sql("funds/decision_get"), {"decision_id": decision_id}).fetchone()
            except sqlite3.Error as exc:
                raise DecisionLogError(f"reading the decision log {self.path} failed: {_one_line(exc)}") from None
        return json.loads(row[0]) if row else None

    def _write_loop(self) -> None:
        sql = load_sql("funds/decision_insert")
        while True:
            with self._condition:
                while not self._waiting and not self._closing:
                    self._condition.wait()
                if not self._waiting:
                    return
                batch, self._waiting = self._waiting, []
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                for row, _ in batch:
                    self._writer.execute(sql, row)
                self._writer.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK")
                error = DecisionLogError(f"storing a decision in {self.path} failed: {_one_line(exc)}")
                for _, done in batch:
                    done.set_exception(error)
                continue
            for _, done in batch:
                done.set_result(None)

    def close(self) -> None:
        """Write what is queued, then close."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._thread.join()
        with self._read_lock:
            self._reader.close()
        self._writer.close()


# --------------------------------------------------------------------------------------------- landing


def _utc(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


def decisions_table(rows: list[tuple[str, float, str | None, str]]) -> pa.Table:
    """The fc_funds_decisions rows of stored decisions (decision_id, created, customer_id, answer JSON)."""
    records = []
    for decision_id, created, customer_id, text in rows:
        answer = json.loads(text)
        records.append({
            "id": decision_id, "created": datetime.fromtimestamp(created, UTC), "account_id": answer["account"],
            "customer_id": customer_id, "amount_minor": answer["amount"], "currency": answer["currency"],
            "sufficient": answer["sufficient"], "basis": answer["basis"], "balance_minor": answer["balance_minor"],
            "as_of": _utc(answer["as_of"]), "staleness_hours": answer["staleness_hours"],
            "refreshed": answer["refreshed"], "refresh_outcome": answer["refresh_outcome"],
            "max_age_seconds": float(answer["max_age_seconds"]),
        })
    return pa.Table.from_pylist(records, schema=arrow_schema("fc_funds_decisions"))


def land_decisions(store: EventStore, warehouse: Warehouse,
                   batch_size: int = default("FC_BALANCES_BATCH_SIZE")) -> int:
    """Land every stored decision not landed yet in fc_funds_decisions; how many rows were inserted.

    Idempotent: an id already landed is left alone, so a crash between the DuckDB commit and the marks repeats it.
    """
    inserted = 0
    while True:
        with store.locked() as connection:
            rows = connection.execute(load_sql("funds/decisions_pending"), {"limit": batch_size}).fetchall()
        if not rows:
            return inserted
        inserted += warehouse.insert_arrow(FC_FUNDS_DECISIONS_BATCH_VIEW, decisions_table(rows),
                                           load_sql("funds/insert_fc_funds_decisions"))
        stamp = time.time()
        with store.locked() as connection:
            connection.execute("BEGIN IMMEDIATE")
            for decision_id, *_ in rows:
                connection.execute(load_sql("funds/decision_mark_loaded"),
                                   {"decision_id": decision_id, "loaded_at": stamp})
            connection.execute("COMMIT")


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return redact(lines[0]) if lines else type(error).__name__
