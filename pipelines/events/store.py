"""The durable event store (SQLite) fed by webhooks and the events API: add once, list pending, mark loaded."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pipelines.lifecycle.eventstore import load_forgotten
from pipelines.redact import redact
from pipelines.settings import EVENT_STORE_RELATIVE, read, warehouse_dir
from pipelines.sql import load_sql

EVENT_STORE_ENV = "FC_BALANCES_EVENT_STORE"
ACCOUNT_EVENT_PREFIX = "financial_connections.account."
ACCOUNT_EVENT_PATTERN = "financial_connections.account.*"
ACCOUNT_OBJECT = "financial_connections.account"
SOURCES = frozenset({"webhook", "events_api", "funds_check"})
MAX_EVENT_ID_LENGTH = 255
EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,250}")
class EventStoreError(Exception):
    """The event store cannot be opened or written; the message is one line naming the file."""


class InvalidEventError(ValueError):
    """An event lacks what the store needs (a string id, a type, an integer created); one line."""


def event_store_path(warehouse_directory: str | os.PathLike[str] | None = None,
                     env: Mapping[str, str] | None = None) -> Path:
    """FC_BALANCES_EVENT_STORE if set, else `<warehouse>/events/webhook_events.sqlite`."""
    explicit = read(EVENT_STORE_ENV, env)
    if explicit:
        return Path(explicit).expanduser().absolute()
    directory = warehouse_directory if warehouse_directory is not None else warehouse_dir(env)
    return (Path(directory).expanduser() / EVENT_STORE_RELATIVE).absolute()


@dataclass(frozen=True)
class EventSummary:
    """The fields of an event the store indexes."""

    event_id: str
    type: str
    created: int
    account_id: str | None


def summarize_event(event: Any) -> EventSummary:
    """Check an event's shape and pick out its id, type, created and account id; InvalidEventError if unusable."""
    if not isinstance(event, Mapping):
        raise InvalidEventError("the event is not a JSON object")
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_EVENT_ID_LENGTH:
        raise InvalidEventError("the event has no string id")
    if not isinstance(event_type, str) or not event_type:
        raise InvalidEventError(f"event {event_id} has no string type")
    if type(created) is not int or created < 0:
        raise InvalidEventError(f"event {event_id} has no integer created")
    return EventSummary(event_id, event_type, created, account_of(event).get("id"))


def account_of(event: Mapping[str, Any]) -> dict[str, Any]:
    """The account in `data.object`, or {} when the event carries none."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if isinstance(obj, Mapping) and obj.get("object") == ACCOUNT_OBJECT and isinstance(obj.get("id"), str):
        return dict(obj)
    return {}


def is_account_event(event_type: str) -> bool:
    return event_type.startswith(ACCOUNT_EVENT_PREFIX)


@dataclass(frozen=True)
class StoredEvent:
    """One row of the store."""

    seq: int
    event_id: str
    type: str
    created: int
    account_id: str | None
    received_at: float
    source: str
    payload: str

    def event(self) -> dict[str, Any]:
        value = json.loads(self.payload)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class StoreStats:
    total: int
    pending: int
    newest_pending_id: str | None
    max_seq: int


class EventStore:
    """A SQLite file (WAL, synchronous=FULL) of events keyed by id; safe to share between threads and processes.

    DuckDB takes one writer at a time and the webhook receiver is a long-lived process of its own, so events land
    here first and the fc_events asset moves them into DuckDB. `add` returns only once the row is on disk.
    """

    def __init__(self, path: str | os.PathLike[str], busy_timeout: float = 30.0) -> None:
        self.path = Path(path).expanduser().absolute()
        self._lock = threading.Lock()
        self.skipped_forgotten = 0  # events about forgotten subjects refused since opening
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so each write is one explicit transaction.
            self._connection = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise EventStoreError(f"cannot open event store {self.path}: {_one_line(exc)}") from None
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                self._connection.execute("PRAGMA journal_mode = WAL")
                # FULL: in WAL mode NORMAL may lose the last commits on power loss; a 2xx promises the event is kept.
                self._connection.execute("PRAGMA synchronous = FULL")
                self._connection.executescript(load_sql("events/store_schema"))
                break
            except sqlite3.OperationalError as exc:
                # Switching a new file to WAL takes an exclusive lock and SQLite answers "locked" at once, without
                # its busy handler, when another process does the same: wait for it like any other writer.
                if "locked" in str(exc) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                self._connection.close()
                raise EventStoreError(f"cannot use event store {self.path}: {_one_line(exc)}") from None
            except sqlite3.Error as exc:
                self._connection.close()
                raise EventStoreError(f"cannot use event store {self.path}: {_one_line(exc)}") from None

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def locked(self) -> Iterator[sqlite3.Connection]:
        """The store's connection for one lifecycle operation (pipelines/lifecycle/eventstore.py)."""
        with self._lock:
            yield self._connection

    def add(self, event: Mapping[str, Any], received_at: float, source: str, payload: str | None = None) -> bool:
        """Store an event durably; False when its id was already stored. `payload` keeps the raw body as sent."""
        return self.add_many([event], received_at, source, [payload])[0]

    def add_many(self, events: Sequence[Mapping[str, Any]], received_at: float, source: str,
                 payloads: Sequence[str | None] | None = None) -> list[bool]:
        """Store events in one transaction; per event, whether it was new. Invalid events raise before writing."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {sorted(SOURCES)}, got {source!r}")
        rows = []
        with self._lock:
            forgotten = load_forgotten(self._connection)  # subjects forgotten: their events are never stored
        keep = [True] * len(events)
        for index, event in enumerate(events):
            summary = summarize_event(event)
            if forgotten and forgotten.account_is_forgotten(account_of(event)):
                keep[index] = False
                self.skipped_forgotten += 1
                continue
            payload = payloads[index] if payloads is not None else None
            if payload is None:
                payload = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            rows.append({
                "event_id": summary.event_id, "type": summary.type, "created": summary.created,
                "account_id": summary.account_id, "received_at": float(received_at), "source": source,
                "payload": payload,
            })
        if not rows:
            return [False] * len(events)
        sql = load_sql("events/store_insert")
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                stored = iter([self._connection.execute(sql, row).rowcount == 1 for row in rows])
                self._connection.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise EventStoreError(f"storing events in {self.path} failed: {_one_line(exc)}") from None
        return [next(stored) if kept else False for kept in keep]

    def pending(self, limit: int = 1000, max_seq: int | None = None) -> list[StoredEvent]:
        """Events not yet landed in the warehouse, in arrival order (only up to `max_seq` if given)."""
        params = {"limit": int(limit), "max_seq": max_seq if max_seq is not None else 2**62}
        with self._lock:
            try:
                rows = self._connection.execute(load_sql("events/store_pending"), params).fetchall()
            except sqlite3.Error as exc:
                raise EventStoreError(f"reading {self.path} failed: {_one_line(exc)}") from None
        return [StoredEvent(*row) for row in rows]

    def mark_loaded(self, event_ids: Iterable[str], loaded_at: float | None = None) -> int:
        """Mark events as landed in the warehouse, in one transaction; how many changed."""
        stamp = time.time() if loaded_at is None else loaded_at
        params = [{"event_id": event_id, "loaded_at": stamp} for event_id in event_ids]
        if not params:
            return 0
        sql = load_sql("events/store_mark_loaded")
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                changed = sum(self._connection.execute(sql, row).rowcount for row in params)
                self._connection.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise EventStoreError(f"updating {self.path} failed: {_one_line(exc)}") from None
        return changed

    def stats(self) -> StoreStats:
        with self._lock:
            try:
                total, pending, newest, max_seq = self._connection.execute(load_sql("events/store_stats")).fetchone()
            except sqlite3.Error as exc:
                raise EventStoreError(f"reading {self.path} failed: {_one_line(exc)}") from None
        return StoreStats(int(total), int(pending), newest, int(max_seq))

    def _rollback(self) -> None:
        try:
            if self._connection.in_transaction:
                self._connection.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return redact(lines[0]) if lines else type(error).__name__
