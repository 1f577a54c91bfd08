"""Landing stored events in the warehouse: accounts upserted, balances recorded, fc_events appended."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from pipelines.contract.schema import arrow_schema
from pipelines.events.store import EventStore, StoredEvent, account_of, is_account_event
from pipelines.normalize.normalizer import UTC_TIMESTAMP, normalize_accounts, normalize_balances
from pipelines.settings import default
from pipelines.sql import load_sql
from pipelines.warehouse import NormalizedBatch, Warehouse

DEFAULT_BATCH_SIZE: int = default("FC_BALANCES_BATCH_SIZE")

FC_EVENTS_BATCH_VIEW = "fc_events_batch"  # the fixed name sql/events/insert_fc_events.sql reads from

FC_EVENTS_SCHEMA = arrow_schema("fc_events")

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
    `created` update the account's status, and `upcoming_deactivation`, `expected_deactivation_date_updated` and
    `account_numbers_updated` its expected_deactivation_at and account_numbers_status (the whole state is applied,
    whatever the type, so any account event carries every change it shows). Every call is idempotent, so a drain
    interrupted after the warehouse commit and before `mark_loaded` is simply repeated.
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
        account = account_of(event) if is_account_event(stored.type) else {}
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
        counts["fc_events"] += warehouse.insert_arrow(FC_EVENTS_BATCH_VIEW, fc_events_table(events),
                                                      load_sql("events/insert_fc_events"))
    return dict(counts)


@dataclass(frozen=True)
class DrainResult:
    counts: dict[str, int]
    batches: int


def drain_store(store: EventStore, warehouse: Warehouse, batch_size: int = DEFAULT_BATCH_SIZE) -> DrainResult:
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
