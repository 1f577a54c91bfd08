"""The event store's part of the data lifecycle: forgotten subjects, their events' deletion, pruning, gaps."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pipelines.lifecycle.subjects import Forgotten, subject_hash
from pipelines.sql import load_sql


@contextmanager
def _immediate(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction that takes the store's write lock up front; rolled back on any failure."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def load_forgotten(connection: sqlite3.Connection) -> Forgotten:
    """The salt and forgotten hashes the store holds (empty when nothing was forgotten)."""
    rows = connection.execute(load_sql("events/forgotten_load")).fetchall()
    if not rows:
        return Forgotten()
    return Forgotten.of(rows[0][0], (row[1] for row in rows if row[1]))


def _register_hash(connection: sqlite3.Connection, salt: str) -> None:
    def fc_hash(value: object) -> str | None:
        return subject_hash(salt, value) if isinstance(value, str) and value else None

    connection.create_function("fc_hash", 1, fc_hash, deterministic=True)


def forget_in_store(connection: sqlite3.Connection, salt: str, hashes: dict[str, str]) -> int:
    """Record the subjects as forgotten and delete their stored events and funds decisions, in one transaction; rows
    deleted.

    `hashes` maps subject hash -> subject type. Idempotent: a repeat deletes nothing more.
    """
    _register_hash(connection, salt)
    with _immediate(connection):
        stored = connection.execute(load_sql("events/forgotten_salt_stored")).fetchone()
        if stored and stored[0] != salt:
            raise ValueError("the event store holds another warehouse's salt: point it at this warehouse's store")
        connection.execute(load_sql("events/forgotten_salt"), {"salt": salt})
        for digest, kind in hashes.items():
            connection.execute(load_sql("events/forgotten_add"), {"subject_hash": digest, "subject_type": kind})
        removed = connection.execute(load_sql("events/forget_events")).rowcount
        # The funds service's decisions about the subject go in the same transaction (pipelines/funds/decisions.py).
        removed += max(connection.execute(load_sql("events/forget_decisions")).rowcount, 0)
    return max(removed, 0)


def prune(connection: sqlite3.Connection, retention_days: float, now: float | None = None) -> int:
    """Delete events already landed in the warehouse and created more than `retention_days` ago; how many."""
    before = (time.time() if now is None else now) - retention_days * 86_400
    with _immediate(connection):
        removed = connection.execute(load_sql("events/store_prune"), {"before": before}).rowcount
    return max(removed, 0)


@dataclass(frozen=True)
class Gap:
    gap_id: int
    gap_from: int | None  # unix seconds of the last event read before the gap
    gap_to: float  # unix seconds when it was detected
    detected_by: str


def record_gap(connection: sqlite3.Connection, cursor_event_id: str | None, detected_by: str,
               now: float | None = None) -> None:
    """Remember an expired cursor until an fc_events run reconciles it."""
    gap_from = None
    if cursor_event_id:
        row = connection.execute(load_sql("events/event_created"), {"event_id": cursor_event_id}).fetchone()
        gap_from = int(row[0]) if row else None
    with _immediate(connection):
        connection.execute(load_sql("events/gap_add"), {
            "gap_from": gap_from, "gap_to": time.time() if now is None else now, "detected_by": detected_by,
        })


def pending_gaps(connection: sqlite3.Connection) -> list[Gap]:
    return [Gap(*row) for row in connection.execute(load_sql("events/gap_pending")).fetchall()]


def gap_reconciled(connection: sqlite3.Connection, gap_id: int, now: float | None = None) -> None:
    connection.execute(load_sql("events/gap_done"), {"gap_id": gap_id, "reconciled_at": now or time.time()})
