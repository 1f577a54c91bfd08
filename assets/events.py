"""The events layer: the `fc_events` asset drains the event store into DuckDB; a sensor feeds it from /v1/events."""

# No `from __future__ import annotations`: Dagster checks the `context` annotation as a real class.

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dagster as dg

from assets.schemas import table_metadata
from pipelines.events import (
    ACCOUNT_EVENT_PATTERN,
    EventsCursor,
    EventStore,
    PollResult,
    drain_store,
    poll_events,
)
from pipelines.resources import StripeResource, WarehouseResource

EVENTS_GROUP = "events"
FC_EVENTS_JOB_NAME = "fc_events_job"
SENSOR_NAME = "stripe_events_sensor"
SENSOR_INTERVAL_SECONDS = 60
SENSOR_MAX_PAGES_PER_TICK = 50  # 5,000 events; the rest are read on the next tick
EXPORTED_TABLES = ("fc_events", "fc_accounts", "fc_balances", "fc_rejected_balances")


def _shown_uri(uri: str) -> str:
    """A location for metadata, without user info or query string (where credentials could hide)."""
    parts = urlsplit(uri)
    if len(parts.scheme) <= 1:  # a local path (or a Windows drive letter)
        return uri
    return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))


@dg.asset(
    key="fc_events",
    group_name=EVENTS_GROUP,
    kinds={"duckdb", "parquet"},
    description=(
        "Stripe financial_connections.account.* events, one row per event id, landed from the event store that the "
        "webhook receiver (`fc-balances webhooks`) and the stripe_events_sensor fill. Materializing also applies "
        "them: each event's account upserts fc_accounts (the newest observation wins) and its balance, if any, is "
        "recorded in fc_balances, so refreshed_balance events from other flows land without another refresh and "
        "disconnected/deactivated/reactivated events update the account's status. Store: "
        "$FC_BALANCES_EVENT_STORE, default <warehouse>/events/webhook_events.sqlite."
    ),
    metadata=table_metadata("fc_events"),
)
def fc_events(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    started = time.monotonic()
    store_path = warehouse.event_store_path()
    with EventStore(store_path) as store, warehouse.open() as wh:
        drained = drain_store(store, wh)
        exported = wh.export_parquet(EXPORTED_TABLES)
        totals = wh.row_counts()
        left = store.stats().pending
        parquet_uri = wh.parquet_uri
    counts = drained.counts
    if counts.get("fc_rejected_balances"):
        context.log.warning(
            f"{counts['fc_rejected_balances']} balance rows from events broke the contract "
            "and went to fc_rejected_balances"
        )
    context.log.info(
        f"landed {counts.get('events', 0)} stored events ({counts.get('fc_events', 0)} new in fc_events) "
        f"in {drained.batches} batches; {left} arrived meanwhile and wait for the next run"
    )
    events_by_type = {key.split(":", 1)[1]: value for key, value in counts.items() if key.startswith("type:")}
    metadata: dict[str, Any] = {
        "dagster/row_count": totals.get("fc_events", 0),
        "events_drained": counts.get("events", 0),
        "fc_events_inserted": counts.get("fc_events", 0),
        "accounts_upserted": counts.get("fc_accounts", 0),
        "balances_inserted": counts.get("fc_balances", 0),
        "rejected_balances_inserted": counts.get("fc_rejected_balances", 0),
        "events_without_account": counts.get("events_without_account", 0),
        "events_pending_after": left,
        "events_by_type": dg.MetadataValue.json(events_by_type),
        "parquet_rows": dg.MetadataValue.json(exported),
        "parquet_uri": _shown_uri(parquet_uri),
        "event_store": str(store_path),
        "duration_seconds": round(time.monotonic() - started, 2),
    }
    return dg.MaterializeResult(metadata=metadata)


fc_events_job = dg.define_asset_job(
    FC_EVENTS_JOB_NAME,
    selection=dg.AssetSelection.assets("fc_events"),
    description="Land the stored Stripe account events in fc_events and apply them to fc_accounts and fc_balances.",
    executor_def=dg.in_process_executor,
    tags={"dagster/concurrency_key": "fc_balances_warehouse"},
)


@dg.sensor(
    name=SENSOR_NAME,
    job=fc_events_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        f"Reads GET /v1/events (type={ACCOUNT_EVENT_PATTERN}) after its cursor into the event store and requests "
        "fc_events_job when events wait there (from this sensor or from webhooks). The first tick reads every "
        "event Stripe still keeps (30 days), over several ticks if needed; set the cursor to a bare evt_ id to "
        "read only what is newer. Off until turned on."
    ),
)
def stripe_events_sensor(
    context: dg.SensorEvaluationContext, stripe: StripeResource, warehouse: WarehouseResource
) -> dg.SensorResult:
    cursor = EventsCursor.parse(context.cursor)
    client = stripe.client()

    async def poll(store: EventStore) -> PollResult:
        try:
            return await poll_events(client, store, cursor, max_pages=SENSOR_MAX_PAGES_PER_TICK)
        finally:
            await client.aclose()

    with EventStore(warehouse.event_store_path()) as store:
        result = asyncio.run(poll(store))
        stats = store.stats()
    for note in result.notes:
        context.log.warning(note)
    context.log.info(
        f"read {result.events_read} events in {result.pages} requests, {result.events_stored} new; "
        f"{stats.pending} waiting in the store"
        + ("" if result.backfill_complete else "; older events are read on the next ticks")
    )
    new_cursor = result.cursor.serialize()
    if stats.pending and stats.newest_pending_id:
        # Keyed by the newest waiting event: a tick that finds nothing newer does not start a second run.
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=stats.newest_pending_id)], cursor=new_cursor)
    return dg.SensorResult(skip_reason="no new Stripe account events", cursor=new_cursor)


EVENT_ASSETS = [fc_events]
EVENT_JOBS = [fc_events_job]
SENSORS = [stripe_events_sensor]
