"""The ingest layer: one multi-asset lists accounts, refreshes and awaits balances, lands the contract tables."""

import asyncio
import time
from typing import Any

import dagster as dg

from pipelines.ingest import WarehouseSink
from pipelines.normalize import SCHEMAS
from pipelines.resources import StripeResource, WarehouseResource
from pipelines.stripe_fc.client import StripeFCClient
from pipelines.stripe_fc.engine import Progress, RefreshEngine, format_progress

INGEST_GROUP = "stripe_fc"

TABLE_DESCRIPTIONS = {
    "fc_accounts": "One row per Financial Connections account: its latest observed state.",
    "fc_balances": (
        "Balance history, one row per (account_id, as_of, currency): Stripe's sign (+ owed to the holder), "
        "minor units as BIGINT and exact DECIMAL(38,4) major units; never duplicated by re-runs."
    ),
    "fc_balance_refreshes": "One row per account per run: what happened to its balance refresh.",
    "fc_rejected_balances": "Balances that broke the contract (e.g. a non-ISO currency), with the reason and raw JSON.",
}

COLUMN_DESCRIPTIONS = {
    "customer_id": "account_holder.customer (null for other holder types)",
    "as_of": "when the institution computed the balance",
    "fetched_at": "when the pipeline read it",
    "observed_at": "when the pipeline observed this state",
    "current_minor": "Stripe's integer in the currency's minor unit, Stripe's sign",
    "available_minor": "cash.available in minor units (cash balances only)",
    "used_minor": "credit.used in minor units (credit balances only)",
    "current": "current_minor / 10^exponent (ISO 4217 as Stripe applies it), exact",
    "available": "available_minor / 10^exponent, exact",
    "used": "used_minor / 10^exponent, exact",
    "outcome": "succeeded, failed, timed_out, skipped_cooldown, skipped_inactive, skipped_no_permission or error",
    "requested_at": "when we asked for the refresh (null if it was already pending)",
    "completed_at": "when the refresh finished (the refreshed_balance event's time)",
    "reason": "why the balance was rejected",
    "payload": "the raw balance as JSON text",
}


def table_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(field.name, str(field.type), description=COLUMN_DESCRIPTIONS.get(field.name))
        for field in SCHEMAS[table]
    ])


def _spec(table: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=table,
        description=TABLE_DESCRIPTIONS[table],
        group_name=INGEST_GROUP,
        kinds={"stripe", "duckdb", "parquet"},
        metadata={"dagster/column_schema": table_schema(table)},
    )


INGEST_TABLES = ("fc_accounts", "fc_balances", "fc_balance_refreshes", "fc_rejected_balances")


@dg.multi_asset(
    specs=[_spec(table) for table in INGEST_TABLES],
    can_subset=False,
    description=(
        "Lists customers' Financial Connections accounts, refreshes the eligible ones within Stripe's rate limits, "
        "awaits the outcomes through the events API and writes the contract tables in batches while it runs. "
        "One step on purpose: listing, refreshing and awaiting overlap, which separate steps could not."
    ),
)
def stripe_fc_ingest(context: dg.AssetExecutionContext, stripe: StripeResource, warehouse: WarehouseResource):
    started = time.monotonic()
    run_id = context.run.run_id
    client = stripe.client()

    def log_progress(progress: Progress, progress_client: StripeFCClient) -> None:
        context.log.info(format_progress(progress, progress_client))

    engine = RefreshEngine(client, None, run_id, stripe.engine_settings(), on_progress=log_progress)

    async def ingest() -> tuple[Progress, WarehouseSink, dict[str, int], dict[str, int], str]:
        try:
            await engine.prepare()  # a bad key or address fails here, before the warehouse is touched
            with warehouse.open() as wh:
                engine.sink = sink = WarehouseSink(wh, warehouse.rows_per_batch(), warehouse.flush_seconds)
                try:
                    progress = await engine.run()
                finally:
                    await sink.flush()  # whatever was observed before a failure is kept
                exported = await asyncio.to_thread(wh.export_parquet, INGEST_TABLES)
                return progress, sink, exported, wh.row_counts(), wh.parquet_uri
        finally:
            await client.aclose()

    progress, sink, exported, totals, parquet_uri = asyncio.run(ingest())

    outcomes = progress.outcomes
    rejected_now = sink.inserted["fc_rejected_balances"]
    if rejected_now:
        context.log.warning(f"{rejected_now} balance rows broke the contract and went to fc_rejected_balances")
    run_metadata: dict[str, Any] = {
        "customers_listed": progress.customers_listed,
        "accounts_seen": progress.accounts_listed,
        "refresh_requested": progress.refresh_requested,
        **{f"outcome_{name}": outcomes[name] for name in sorted(outcomes)},
        "requests_made": client.stats.total,
        "rate_limited_429": client.stats.rate_limited,
        "retries_after_429": client.stats.retries_429,
        "events_read": progress.events_read,
        "accounts_retrieved_directly": progress.retrieves,
        "write_batches": sink.batches,
        "duration_seconds": round(time.monotonic() - started, 2),
        "requests_by_endpoint": dg.MetadataValue.json(dict(client.stats.requests)),
    }
    for table in INGEST_TABLES:
        yield dg.MaterializeResult(
            asset_key=table,
            metadata={
                "dagster/row_count": totals.get(table, 0),
                "rows_written_this_run": sink.inserted[table],  # new rows, or changed rows for upserted tables
                "parquet_rows_rewritten": exported.get(table, 0),
                "parquet_uri": parquet_uri,
                **run_metadata,
            },
        )
