"""The one Dagster code location: ingest, event and mart assets, checks, jobs, the daily schedule, resources."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from assets.balances import INGEST_TABLES, stripe_fc_ingest
from assets.checks import CHECKS
from assets.events import EVENT_ASSETS, EVENT_JOBS, SENSORS
from assets.marts import MARTS_GROUP, marts_job
from assets.marts_launch import marts_after
from assets.marts_sharded import mart_assets, mart_jobs
from pipelines.resources import WarehouseResource, default_resources

JOB_NAME = "fc_balances_job"
INGEST_JOB_NAME = "fc_balances_ingest_job"

# Events are drained by their own job (the sensor launches it); the daily job refreshes and checks. The
# marts follow as a run of their own over the out-of-date days, which only the landed data can tell
# (`marts_after_ingest` launches it; `fc-balances run` does the same in process).
daily_selection = (
    dg.AssetSelection.all() - dg.AssetSelection.assets("fc_events") - dg.AssetSelection.groups(MARTS_GROUP)
)

# DuckDB takes one writer at a time, so each job runs its steps in one process, one after another.
fc_balances_job = dg.define_asset_job(
    JOB_NAME,
    selection=daily_selection,
    description="Refresh every eligible account's balance, land the contract tables and check them; the marts "
    "follow in their own run over the out-of-date days.",
    executor_def=dg.in_process_executor,
)

# Only the Stripe ingest, without checks or marts: what each past day of `fc-balances run --history-days` runs.
fc_balances_ingest_job = dg.define_asset_job(
    INGEST_JOB_NAME,
    selection=dg.AssetSelection.assets(*INGEST_TABLES).without_checks(),
    description="Refresh balances and land the contract tables only (no checks, no marts).",
    executor_def=dg.in_process_executor,
)

fc_balances_daily = dg.ScheduleDefinition(
    name="fc_balances_daily",
    job=fc_balances_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily at 06:00 UTC: refresh balances; then marts_after_ingest rebuilds the out-of-date days "
    "(off until turned on).",
)


def build_definitions(resources: Mapping[str, Any] | None = None) -> dg.Definitions:
    """The code location with the given resources in place of the defaults (the CLI's sandbox, tests).

    Building it reads one setting, FC_BALANCES_MART_SHARDS (the warehouse resource's mart_shards, else the
    environment), because it shapes the marts' assets; the default resources read the others when a run starts.
    """
    resources = {**default_resources(), **(resources or {})}
    warehouse = resources["warehouse"]
    shards = warehouse.shards() if isinstance(warehouse, WarehouseResource) else 1
    return dg.Definitions(
        assets=[stripe_fc_ingest, *mart_assets(shards), *EVENT_ASSETS],
        asset_checks=[*CHECKS],
        jobs=[fc_balances_job, fc_balances_ingest_job, marts_job, *mart_jobs(shards), *EVENT_JOBS],
        schedules=[fc_balances_daily],
        sensors=[*SENSORS, marts_after(fc_balances_job)],
        resources=resources,
        executor=dg.in_process_executor,
    )


defs = build_definitions()
