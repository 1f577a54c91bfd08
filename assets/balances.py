"""The ingest layer: one multi-asset lists accounts, refreshes and awaits balances, lands the contract tables."""

import asyncio
import time
from typing import Any

import dagster as dg

from assets.schemas import table_metadata
from pipelines.contract.known import read_known_state
from pipelines.contract.tables import EXPORTED_TABLES, INGEST_TABLES, TABLES
from pipelines.lifecycle.landing import Landed, Landing, land
from pipelines.resources import StripeResource, WarehouseResource
from pipelines.stripe_fc.client import StripeFCClient
from pipelines.stripe_fc.engine import Progress, RefreshEngine, format_progress
from pipelines.stripe_fc.policy_metadata import policy_metadata
from pipelines.warehouse.sink import WarehouseSink

INGEST_GROUP = "stripe_fc"
# Published after every ingest: every exported table but the marts (their own assets publish them), so a table
# declared by other work (fc_events, a service's decisions) reaches Iceberg with no code of its own; an unchanged
# table costs one fingerprint query and no snapshot.
PUBLISHED_AFTER_INGEST = tuple(name for name in EXPORTED_TABLES if TABLES[name].group != "marts")

def _spec(table: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=table,
        description=TABLES[table].description,
        group_name=INGEST_GROUP,
        kinds={"stripe", "duckdb", "iceberg"},
        metadata=table_metadata(table),
    )



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
    # Every setting this step reads, before the first request: a bad one fails with its line, nothing written.
    stripe.validate()
    warehouse.validate()
    client = stripe.client()

    def log_progress(progress: Progress, progress_client: StripeFCClient) -> None:
        context.log.info(format_progress(progress, progress_client))

    policy = stripe.policy_settings()
    engine = RefreshEngine(client, None, run_id, stripe.engine_settings(), on_progress=log_progress, policy=policy)

    store_path = warehouse.event_store_path()

    async def refresh(landing: Landing) -> tuple[Progress, WarehouseSink]:
        engine.is_forgotten = landing.forgotten.matches
        if policy.active:  # one read-only query before listing, so refreshes can start as accounts are listed
            engine.known = await asyncio.to_thread(read_known_state, landing.warehouse.duckdb_path, store_path)
        engine.sink = sink = WarehouseSink(landing.warehouse, warehouse.rows_per_batch(), warehouse.flush_seconds)
        try:
            return await engine.run(), sink
        finally:
            await sink.flush()  # whatever was observed before a failure is kept

    async def ingest() -> Landed[tuple[Progress, WarehouseSink]]:
        try:
            await engine.prepare()  # a bad key or address fails here, before the warehouse is touched
            # An outage the events sensor saw is reconciled after the refreshes, skipping the accounts just seen.
            return await land(warehouse.open, store_path, refresh, PUBLISHED_AFTER_INGEST, run_id,
                              gap_client=lambda: client, already_seen=lambda done: done[1].seen)
        finally:
            await client.aclose()

    landed = asyncio.run(ingest())
    (progress, sink), gaps, published, totals = landed.result, landed.gaps, landed.published, landed.totals
    catalog_uri = landed.catalog_uri
    if gaps.gaps:
        context.log.warning(
            f"reconciled {gaps.gaps} gap(s) in the Stripe events longer than Stripe keeps them: "
            f"{gaps.accounts_reconciled} accounts, {gaps.balances_landed} balances landed"
        )

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
        "skipped_forgotten": progress.skipped_forgotten,
        "event_gaps_reconciled": gaps.gaps,
        **policy_metadata(progress, policy),
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
                "iceberg_rows_written": published.get(table, 0),
                "iceberg_table": f"fc_balances.{table}",
                "iceberg_catalog": catalog_uri,
                **run_metadata,
            },
        )
