"""The durable event store (SQLite) fed by webhooks and the events API, and how its events land in the warehouse."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import stripe

from pipelines.normalize import UTC_TIMESTAMP, normalize_accounts, normalize_balances
from pipelines.redact import redact
from pipelines.schema import arrow_schema
from pipelines.settings import warehouse_dir
from pipelines.sql import load_sql
from pipelines.stripe_fc.client import StripeFCClient
from pipelines.warehouse import NormalizedBatch, Warehouse

EVENT_STORE_ENV = "FC_BALANCES_EVENT_STORE"
EVENT_STORE_RELATIVE = Path("events") / "webhook_events.sqlite"
ACCOUNT_EVENT_PREFIX = "financial_connections.account."
ACCOUNT_EVENT_PATTERN = "financial_connections.account.*"
ACCOUNT_OBJECT = "financial_connections.account"
SOURCES = frozenset({"webhook", "events_api", "funds_check"})
MAX_EVENT_ID_LENGTH = 255
_EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,250}")
FC_EVENTS_BATCH_VIEW = "fc_events_batch"  # the fixed name sql/events/insert_fc_events.sql reads from

FC_EVENTS_SCHEMA = arrow_schema("fc_events")


class EventStoreError(Exception):
    """The event store cannot be opened or written; the message is one line naming the file."""


class InvalidEventError(ValueError):
    """An event lacks what the store needs (a string id, a type, an integer created); one line."""


def event_store_path(warehouse_directory: str | os.PathLike[str] | None = None,
                     env: Mapping[str, str] | None = None) -> Path:
    """FC_BALANCES_EVENT_STORE if set, else `<warehouse>/events/webhook_events.sqlite`."""
    environ = env if env is not None else os.environ
    explicit = environ.get(EVENT_STORE_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser().absolute()
    directory = warehouse_directory if warehouse_directory is not None else warehouse_dir(environ)
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
    return EventSummary(event_id, event_type, created, _account_of(event).get("id"))


def _account_of(event: Mapping[str, Any]) -> dict[str, Any]:
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

    def add(self, event: Mapping[str, Any], received_at: float, source: str, payload: str | None = None) -> bool:
        """Store an event durably; False when its id was already stored. `payload` keeps the raw body as sent."""
        return self.add_many([event], received_at, source, [payload])[0]

    def add_many(self, events: Sequence[Mapping[str, Any]], received_at: float, source: str,
                 payloads: Sequence[str | None] | None = None) -> list[bool]:
        """Store events in one transaction; per event, whether it was new. Invalid events raise before writing."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {sorted(SOURCES)}, got {source!r}")
        rows = []
        for index, event in enumerate(events):
            summary = summarize_event(event)
            payload = payloads[index] if payloads is not None else None
            if payload is None:
                payload = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            rows.append({
                "event_id": summary.event_id, "type": summary.type, "created": summary.created,
                "account_id": summary.account_id, "received_at": float(received_at), "source": source,
                "payload": payload,
            })
        if not rows:
            return []
        sql = load_sql("events/store_insert")
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                stored = []
                for row in rows:
                    stored.append(self._connection.execute(sql, row).rowcount == 1)
                self._connection.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise EventStoreError(f"storing events in {self.path} failed: {_one_line(exc)}") from None
        return stored

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


# ---------------------------------------------------------------------------------------------- into the warehouse


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _utc(seconds: float) -> datetime:
    """The same microsecond `_micros` gives, so fc_balances.fetched_at equals fc_events.received_at exactly."""
    return _EPOCH + timedelta(microseconds=_micros(seconds))


def fc_events_table(events: Sequence[StoredEvent]) -> pa.Table:
    """The fc_events rows of stored events."""
    return pa.Table.from_arrays(
        [
            pa.array([e.event_id for e in events], pa.string()),
            pa.array([e.type for e in events], pa.string()),
            pa.array([e.created * 1_000_000 for e in events], pa.int64()).cast(UTC_TIMESTAMP),
            pa.array([e.account_id for e in events], pa.string()),
            pa.array([_micros(e.received_at) for e in events], pa.int64()).cast(UTC_TIMESTAMP),
            pa.array([e.payload for e in events], pa.string()),
        ],
        schema=FC_EVENTS_SCHEMA,
    )


@dataclass
class _Groups:
    """Account dicts grouped by the timestamp the normalizers stamp on them."""

    by_observed: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    by_fetched: dict[float, list[dict[str, Any]]] = field(default_factory=dict)


def apply_events(events: Sequence[StoredEvent], warehouse: Warehouse) -> dict[str, int]:
    """Land stored events in the warehouse; counts of events by kind and rows written per table.

    Every `financial_connections.account.*` event carries the account as the event left it, so each one upserts
    fc_accounts with observed_at = the event's `created` (the newest observation wins, so a late or re-delivered
    event never overwrites a newer state) and records its balance, if any, in fc_balances (deduplicated by
    account_id, as_of, currency; fetched_at = when we received the event). `refreshed_balance` thereby lands a
    balance that another flow refreshed without refreshing again; `disconnected`, `deactivated`, `reactivated` and
    `created` update the account's status. Every call is idempotent, so a drain interrupted after the warehouse
    commit and before `mark_loaded` is simply repeated.
    """
    counts: Counter[str] = Counter()
    groups = _Groups()
    # Oldest first, so inside one batch a later event of the same second still wins the upsert tie.
    for stored in sorted(events, key=lambda e: (e.created, e.seq)):
        counts["events"] += 1
        counts[f"type:{stored.type}"] += 1
        try:
            event = stored.event()
        except ValueError:
            counts["events_unreadable"] += 1
            continue
        account = _account_of(event) if is_account_event(stored.type) else {}
        if not account:
            counts["events_without_account"] += 1
            continue
        counts["events_applied"] += 1
        groups.by_observed.setdefault(stored.created, []).append(account)
        if account.get("balance") is not None:
            groups.by_fetched.setdefault(stored.received_at, []).append(account)

    account_tables = [normalize_accounts(accounts, _utc(created)) for created, accounts in groups.by_observed.items()]
    balance_tables = [normalize_balances(accounts, _utc(fetched)) for fetched, accounts in groups.by_fetched.items()]
    batch = NormalizedBatch(
        accounts=pa.concat_tables(account_tables) if account_tables else None,
        balances=pa.concat_tables([t.balances for t in balance_tables]) if balance_tables else None,
        rejected=pa.concat_tables([t.rejected for t in balance_tables]) if balance_tables else None,
    )
    written = warehouse.write_batch(batch)
    for table in ("fc_accounts", "fc_balances", "fc_rejected_balances"):
        counts[table] += written.get(table, 0)

    if events:
        with warehouse.connection() as connection:
            connection.register(FC_EVENTS_BATCH_VIEW, fc_events_table(events))
            try:
                result = connection.execute(load_sql("events/insert_fc_events")).fetchone()
            finally:
                connection.unregister(FC_EVENTS_BATCH_VIEW)
        counts["fc_events"] += int(result[0]) if result else 0
    return dict(counts)


@dataclass(frozen=True)
class DrainResult:
    counts: dict[str, int]
    batches: int


def drain_store(store: EventStore, warehouse: Warehouse, batch_size: int = 2000) -> DrainResult:
    """Land every event pending at the start (later arrivals wait for the next drain), batch by batch."""
    max_seq = store.stats().max_seq
    totals: Counter[str] = Counter()
    batches = 0
    while batch := store.pending(batch_size, max_seq=max_seq):
        totals.update(apply_events(batch, warehouse))
        # After the warehouse committed: a crash in between only repeats an idempotent apply.
        store.mark_loaded(event.event_id for event in batch)
        batches += 1
    return DrainResult(dict(totals), batches)


# ---------------------------------------------------------------------------------------------- the events API


@dataclass(frozen=True)
class EventsCursor:
    """Where the events sensor is: the newest event id seen, and, while the first backfill is unfinished, the
    oldest id it has reached (the next backfill page starts after it)."""

    newest: str | None = None  # None: nothing read yet, the next poll starts from the newest event
    backfill_after: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> EventsCursor:
        """A cursor from its text: JSON as `serialize` writes it, or a bare event id (read only what is newer)."""
        if not text or not text.strip():
            return cls()
        text = text.strip()
        if not text.startswith("{"):
            if not _EVENT_ID.fullmatch(text):
                raise ValueError(f"the events sensor cursor must be JSON or an event id (evt_...), got {text[:40]!r}")
            return cls(newest=text)
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError("the events sensor cursor is not valid JSON or an event id") from None
        if not isinstance(value, dict):
            raise ValueError("the events sensor cursor must be a JSON object or an event id")
        newest, backfill = value.get("newest"), value.get("backfill_after")
        for name, item in (("newest", newest), ("backfill_after", backfill)):
            if item is not None and not (isinstance(item, str) and _EVENT_ID.fullmatch(item)):
                raise ValueError(f"the events sensor cursor's {name} must be an event id or null")
        if newest is None:
            return cls()
        return cls(newest=newest, backfill_after=backfill)

    def serialize(self) -> str:
        return json.dumps({"newest": self.newest, "backfill_after": self.backfill_after}, sort_keys=True)


@dataclass
class PollResult:
    cursor: EventsCursor
    events_read: int = 0
    events_stored: int = 0
    pages: int = 0
    backfill_complete: bool = False
    notes: list[str] = field(default_factory=list)


def _is_missing_cursor(error: stripe.InvalidRequestError) -> bool:
    """Stripe answers 400 resource_missing for a cursor id it no longer has (events are kept 30 days)."""
    code = error.code or (error.error.code if error.error else None)
    return code == "resource_missing"


async def poll_events(client: StripeFCClient, store: EventStore, cursor: EventsCursor, max_pages: int = 50,
                      event_type: str = ACCOUNT_EVENT_PATTERN, page_size: int = 100) -> PollResult:
    """Read `GET /v1/events` past the cursor into the store; the new cursor covers only what was stored.

    First poll (no cursor): read every event present, newest first, so balances refreshed before the sensor was
    switched on (kept 30 days by Stripe) land too; applying old events is safe because fc_accounts keeps the newest
    observation and fc_balances deduplicates. Later polls read `ending_before=<newest>` page by page, oldest page
    first, then continue an unfinished backfill with `starting_after`. At most `max_pages` requests per poll; what is
    left is read on the next one. To skip history, set the cursor to a bare event id.
    """
    result = PollResult(cursor=cursor)
    newest, backfill_after = cursor.newest, cursor.backfill_after
    budget = max_pages

    async def read_page(params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        nonlocal budget
        budget -= 1
        result.pages += 1
        page = await client.request("get", "/v1/events", {"type": event_type, "limit": page_size, **params})
        data = [event for event in page.get("data") or [] if isinstance(event, dict)]
        if data:
            # Pages are newest first; stored oldest first so arrival order follows time.
            stored = store.add_many(data[::-1], time.time(), "events_api")
            result.events_read += len(data)
            result.events_stored += sum(stored)
        return data, bool(page.get("has_more"))

    if newest is None:
        data, has_more = await read_page({})
        newest = data[0]["id"] if data else None
        backfill_after = data[-1]["id"] if data and has_more else None
        if newest is None:
            # Nothing there yet: the next poll starts again from scratch, which is the same as reading forward.
            result.cursor = EventsCursor()
            result.backfill_complete = True
            return result

    # Forward: events newer than `newest`, the page closest to it first, so the cursor advances in time order.
    while newest is not None and budget > 0:
        try:
            data, has_more = await read_page({"ending_before": newest})
        except stripe.InvalidRequestError as exc:
            if not _is_missing_cursor(exc):
                raise
            # The cursor's event expired: read everything present again (the store drops repeats).
            result.notes.append(f"cursor event {newest} is gone (older than Stripe keeps events); re-reading all")
            result.cursor = EventsCursor()
            return result
        if data:
            newest = data[0]["id"]
        if not has_more:
            break

    # Backfill: older events, continuing newest-first below the oldest one reached so far.
    while backfill_after is not None and budget > 0:
        try:
            data, has_more = await read_page({"starting_after": backfill_after})
        except stripe.InvalidRequestError as exc:
            if not _is_missing_cursor(exc):
                raise
            result.notes.append(f"backfill stopped: event {backfill_after} expired, older events are gone too")
            backfill_after = None
            break
        backfill_after = data[-1]["id"] if data and has_more else None

    result.cursor = EventsCursor(newest=newest, backfill_after=backfill_after)
    result.backfill_complete = backfill_after is None
    return result
