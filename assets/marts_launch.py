"""Launches the marts over the days the data says are out of date: one run, after each successful ingest run."""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg

from assets.marts import marts_job
from pipelines.marts.build import out_of_date_start, require_mart_tables
from pipelines.resources import WarehouseResource

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def out_of_date_range(warehouse: WarehouseResource, today: date | None = None) -> tuple[date, date] | None:
    """(first, today) when some day is out of date, else None; read from the warehouse's own data."""
    today = today or datetime.now(UTC).date()
    settings = warehouse.history()
    # Opened for writing only so a new or older warehouse is created or migrated first; the read itself writes
    # and publishes nothing (the sensor runs this after every ingest), so the Iceberg catalog stays closed (its
    # opening thread took half a second of a daily `fc-balances marts` at 100,000 accounts, waited for at exit).
    with warehouse.open(publishing=False, keep_connected=True) as wh, wh.reading() as con:
        require_mart_tables(con)
        first = out_of_date_start(con, today, settings)
    return (first, today) if first is not None else None


def range_tags(first: date, last: date) -> dict[str, str]:
    """The tags that make one run of the marts job cover a range of daily partitions."""
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def marts_after(ingest_job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    """The sensor that launches the marts job over the out-of-date days after each successful `ingest_job` run."""

    @dg.run_status_sensor(
        name="marts_after_ingest",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[ingest_job],
        request_job=marts_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"After each successful {ingest_job.name} run (its blocking checks passed), rebuild the marts "
        "from the earliest out-of-date day to today as one run.",
    )
    def marts_after_ingest(context: dg.RunStatusSensorContext, warehouse: WarehouseResource) -> dg.SensorResult:
        found = out_of_date_range(warehouse)
        if found is None:
            return dg.SensorResult(skip_reason="no day is out of date")
        first, last = found
        return dg.SensorResult(run_requests=[dg.RunRequest(
            run_key=f"{context.dagster_run.run_id}-marts", tags=range_tags(first, last))])

    return marts_after_ingest
