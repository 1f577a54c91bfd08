"""The one Dagster code location: ingest and mart assets, checks, the job, its daily schedule, resources."""

from __future__ import annotations

import dagster as dg

from assets.balances import stripe_fc_ingest
from pipelines.resources import resources_from_env

try:  # the marts and checks layers, when present
    from assets.checks import CHECKS
    from assets.marts import MART_ASSETS
except ImportError:  # pragma: no cover - removed once the marts land
    CHECKS, MART_ASSETS = [], []

JOB_NAME = "fc_balances_job"

# DuckDB takes one writer at a time, so the whole job runs its steps in one process, one after another.
fc_balances_job = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.all(),
    description="Refresh every eligible account's balance, land the contract tables, rebuild the marts.",
    executor_def=dg.in_process_executor,
    tags={"dagster/concurrency_key": "fc_balances_warehouse"},
)

fc_balances_daily = dg.ScheduleDefinition(
    name="fc_balances_daily",
    job=fc_balances_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily at 06:00 UTC: refresh balances and rebuild the marts (off until turned on).",
)

defs = dg.Definitions(
    assets=[stripe_fc_ingest, *MART_ASSETS],
    asset_checks=[*CHECKS],
    jobs=[fc_balances_job],
    schedules=[fc_balances_daily],
    resources=resources_from_env(),
    executor=dg.in_process_executor,
)
