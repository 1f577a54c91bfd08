"""The events layer: the `fc_events` asset drains the event store into DuckDB; a sensor feeds it from /v1/events."""

# No `from __future__ import annotations`: Dagster checks the `context` annotation as a real class.

import asyncio
import json
import time
from typing import Any

import dagster as dg

from assets.schemas import table_metadata
from pipelines.events import (
    ACCOUNT_EVENT_PATTERN,
    DrainResult,
    EventsCursor,
    EventStore,
    PollResult,
    drain_store,
    poll_events,
)
from pipelines.funds.decisions import land_decisions
from pipelines.lifecycle.eventstore import pending_gaps, prune, record_gap
from pipelines.lifecycle.landing import Landing, land
from pipelines.lifecycle.reconcile import stripe_client_from_environment
from pipelines.lifecycle.retry import RetryState, next_request
from pipelines.resources import StripeResource, WarehouseResource

EVENTS_GROUP = "events"
FC_EVENTS_JOB_NAME = "fc_events_job"
SENSOR_NAME = "stripe_events_sensor"
SENSOR_INTERVAL_SECONDS = 60
SENSOR_MAX_PAGES_PER_TICK = 50  # 5,000 events; the rest are read on the next tick
PUBLISHED_TABLES = ("fc_events", "fc_accounts", "fc_balances", "fc_rejected_balances", "fc_funds_decisions")


@dg.asset(
    key="fc_events",
    group_name=EVENTS_GROUP,
    kinds={"duckdb", "iceberg"},
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
    warehouse.validate()  # every setting this step reads, before it writes
    store_path = warehouse.event_store_path()

    async def drain(landing: Landing) -> tuple[DrainResult, int]:
        drained = drain_store(landing.store, landing.warehouse)
        # The funds service's decisions, into fc_funds_decisions.
        return drained, land_decisions(landing.store, landing.warehouse)

    # The sensor found its cursor expired: land the tracked accounts as Stripe has them now. The job needs no key
    # otherwise (webhooks alone feed it), so the key is looked up only when a gap waits; without one, the next
    # ingest run reconciles instead.
    landed = asyncio.run(land(warehouse.open, store_path, drain, PUBLISHED_TABLES, context.run.run_id,
                          stripe_client_from_environment))
    if landed.gap_waits:
        context.log.warning("an events gap waits: STRIPE_API_KEY is not set here, the next ingest reconciles it")
    (drained, decisions), gaps, published, totals, catalog_uri = (
        landed.result, landed.gaps if landed.gaps.gaps else None, landed.published, landed.totals, landed.catalog_uri)
    with EventStore(store_path) as store:
        with store.locked() as connection:
            pruned = prune(connection, warehouse.retention_days())
        left = store.stats().pending
    counts = drained.counts
    if gaps is not None:
        counts["fc_accounts"] = counts.get("fc_accounts", 0) + gaps.accounts_reconciled
        counts["fc_balances"] = counts.get("fc_balances", 0) + gaps.balances_landed
        context.log.warning(
            f"reconciled {gaps.gaps} gap(s) in the Stripe events: {gaps.accounts_reconciled} accounts retrieved, "
            f"{gaps.balances_landed} balances landed"
        )
    # The rows fc_events wrote into fc_accounts / fc_balances are materializations of those assets too, so their
    # lineage and freshness in the UI tell the truth; fc_events still owns only itself.
    for table in ("fc_accounts", "fc_balances"):
        if counts.get(table):
            context.log_event(dg.AssetMaterialization(
                asset_key=table,
                description=f"rows landed by fc_events (run {context.run.run_id})",
                metadata={"dagster/row_count": totals.get(table, 0), "rows_written_this_run": counts[table],
                          "written_by": "fc_events"},
            ))
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
        "events_pruned": pruned,
        "funds_decisions_landed": decisions,
        "event_gaps_reconciled": gaps.gaps if gaps is not None else 0,
        "events_by_type": dg.MetadataValue.json(events_by_type),
        "iceberg_rows": dg.MetadataValue.json(published),
        "iceberg_catalog": catalog_uri,
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
    retry = RetryState.parse(_cursor_extra(context.cursor).get("retry"))
    client = stripe.client()

    async def poll(store: EventStore) -> PollResult:
        try:
            return await poll_events(client, store, cursor, max_pages=SENSOR_MAX_PAGES_PER_TICK)
        finally:
            await client.aclose()

    with EventStore(warehouse.event_store_path()) as store:
        result = asyncio.run(poll(store))
        with store.locked() as connection:
            if result.expired_cursor:  # an outage longer than Stripe keeps events: the next run reconciles it
                record_gap(connection, result.expired_cursor, "events_sensor")
            gaps = pending_gaps(connection)
        stats = store.stats()
        skipped = store.skipped_forgotten
    for note in result.notes:
        context.log.warning(note)
    context.log.info(
        f"read {result.events_read} events in {result.pages} requests, {result.events_stored} new; "
        f"{stats.pending} waiting in the store"
        + ("" if result.backfill_complete else "; older events are read on the next ticks")
    )
    if skipped:
        context.log.info(f"skipped_forgotten {skipped}: events about forgotten subjects were not stored")
    waiting = stats.newest_pending_id if stats.pending else None
    if waiting is None and gaps:
        waiting = f"gap-{gaps[-1].gap_id}"
    if waiting:
        # Keyed by the newest waiting event: a tick that finds nothing newer does not start a second run, unless
        # the last run ended without landing it (failed): then a retry under a new key, with a bounded backoff.
        retry = next_request(retry, waiting, time.time(), _run_status(context, retry))
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=retry.run_key)],
                               cursor=_with_extra(result.cursor, retry))
    return dg.SensorResult(skip_reason="no new Stripe account events", cursor=_with_extra(result.cursor, retry))


def _cursor_extra(text: str | None) -> dict[str, Any]:
    """The sensor's own fields stored beside the events cursor in the same JSON."""
    if not text or not text.strip().startswith("{"):
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _with_extra(cursor: EventsCursor, retry: RetryState) -> str:
    if retry.pending_id is None:
        return cursor.serialize()
    return json.dumps({**json.loads(cursor.serialize()), "retry": retry.as_dict()}, sort_keys=True)


def _run_status(context: dg.SensorEvaluationContext, retry: RetryState) -> str | None:
    """The status of the last run the sensor requested, None when there is none (or no instance to ask)."""
    if retry.pending_id is None:
        return None
    try:
        runs = context.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": retry.run_key}), limit=1)
    except Exception:
        return None
    return runs[0].status.value if runs else None


EVENT_ASSETS = [fc_events]
EVENT_JOBS = [fc_events_job]
SENSORS = [stripe_events_sensor]
