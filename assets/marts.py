"""The marts layer: one Dagster asset per mart (daily partitions for history), built in DuckDB, then Iceberg."""

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from assets.checks import (
    RELINK_CHECK_SPEC,
    DataQualityConfig,
    check_accounts_to_relink,
    mart_check_specs,
    resolve_thresholds,
    table_check_results,
)
from assets.schemas import table_metadata
from pipelines.contract.tables import TABLES
from pipelines.marts.build import (
    MART_TABLES,
    HistorySettings,
    build_partitions,
    build_table,
    ensure_mart_tables,
    install_macros,
    out_of_date_start,
    set_watermark,
)
from pipelines.marts.specs import MART_SPECS, MARTS, MartSpec
from pipelines.report.previews import MartPreview, mart_preview
from pipelines.resources import EARLIEST_HISTORY_START, WarehouseResource

MARTS_GROUP = "marts"
PARTITIONS_UP_TO_DATE = "partitions_up_to_date"
# Dagster needs the first partition when the definitions load, before any setting is resolved, so it is fixed
# here; FC_BALANCES_HISTORY_START (read when a run starts) may only move the first built day later.
PARTITIONS_START = EARLIEST_HISTORY_START
# UTC days up to today (end_offset=1: today is a partition, rebuilt as the day goes on).
DAILY_PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START.isoformat(), timezone="UTC", end_offset=1
)
PREVIOUS_DAY = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)


def run_range(context: dg.AssetExecutionContext, first_allowed: date) -> tuple[date, date]:
    window = context.partition_time_window
    first = window.start.astimezone(UTC).date()
    last = (window.end.astimezone(UTC) - timedelta(days=1)).date()
    return max(first, first_allowed), last


def mart_deps(spec: MartSpec) -> list[Any]:
    """What a mart reads, as Dagster deps: a partitioned mart reads a partitioned input's days back to its lookback
    (features: the 89 days before, for the 90-day window) and its own previous day."""
    deps: list[Any] = []
    for name in spec.reads:
        read = MART_SPECS.get(name)
        if spec.partitioned and read is not None and read.partitioned:
            deps.append(dg.AssetDep(name, partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-spec.lookback_days)))
        else:
            deps.append(name)
    if spec.partitioned:
        deps.append(dg.AssetDep(spec.name, partition_mapping=PREVIOUS_DAY))
    return deps


def range_check_specs(spec: MartSpec) -> list[dg.AssetCheckSpec]:
    """A partitioned mart's checks: its declared ones, and whether any day is left out of date (warn)."""
    checks = mart_check_specs(spec.name)
    if "up_to_date" in spec.checks:
        checks.append(dg.AssetCheckSpec(
            PARTITIONS_UP_TO_DATE, asset=spec.name, blocking=False,
            description="after the build, no day up to today is out of date (warn)"))
    return checks


def range_checks(con: Any, spec: MartSpec, first: date, last: date, build_at: datetime, settings: HistorySettings,
                 ) -> tuple[list[dg.AssetCheckResult], MartPreview]:
    """The checks of a run's days and the asset page's preview of them, after the build."""
    table = spec.name
    results = list(table_check_results(con, table, resolve_thresholds(DataQualityConfig()), build_at,
                                       days=(first, last)))
    preview = mart_preview(con, table, days=(first, last))  # the run's days, for the asset page
    if "up_to_date" in spec.checks:
        behind = out_of_date_start(con, build_at.date(), settings)
        results.append(dg.AssetCheckResult(
            check_name=PARTITIONS_UP_TO_DATE, asset_key=table, passed=behind is None,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"out_of_date_from": behind.isoformat() if behind else ""}))
    return results, preview


def range_metadata(context: dg.OpExecutionContext, table: str, first: date, last: date, rows: int,
                   build_at: datetime, built_seconds: float, published: int, preview: MartPreview,
                   **extra: Any) -> dict[str, Any]:
    """The materialization's metadata of a run's days (logged in one line too)."""
    days_built = max((last - first).days + 1, 0)
    context.log.info(f"{table}: {days_built} days {first}..{last}, {rows} rows in {built_seconds:.2f}s")
    metadata: dict[str, Any] = {
        "days_built": days_built, "rows_written": rows, "built_at": dg.MetadataValue.timestamp(build_at),
        "build_seconds": round(built_seconds, 3), "iceberg_rows_written": published, **extra,
    }
    if days_built == 1:
        metadata["dagster/row_count"] = rows
    metadata["preview"] = dg.MetadataValue.md(preview.markdown)
    metadata.update({name: dg.MetadataValue.float(value) for name, value in preview.numbers.items()})
    return metadata


def _partitioned_mart(spec: MartSpec) -> dg.AssetsDefinition:
    table = spec.name

    @dg.asset(
        name=table,
        group_name=MARTS_GROUP,
        kinds={"duckdb", "iceberg"},
        deps=mart_deps(spec),
        partitions_def=DAILY_PARTITIONS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=range_check_specs(spec),
        description=TABLES[table].description,
        metadata={**table_metadata(table), "partition_column": spec.partition_column},
    )
    def mart(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Any:
        settings = warehouse.history()
        first, last = run_range(context, settings.history_start)
        build_at = datetime.now(UTC)  # after the lock below is free: no balance of an earlier run is newer
        today = build_at.date()
        started = time.monotonic()
        rows = 0
        with warehouse.shared_connection() as (wh, con):  # the run's marts open the file once
            ensure_mart_tables(con)
            install_macros(con)
            if first <= last:
                dirty_from = out_of_date_start(con, today, settings)
                rows = build_partitions(
                    con, table, first, last, build_at, settings,
                    on_batch=lambda a, b, n: context.log.info(f"{table}: {a}..{b} built, {n} rows"),
                )
                # A run that covered every out-of-date day up to today moves the watermark.
                if last >= today and (dirty_from is None or first <= dirty_from):
                    set_watermark(con, table, build_at)
            results, preview = range_checks(con, spec, first, last, build_at, settings)
            built_seconds = time.monotonic() - started
            published = 0
            if first <= last:  # through the open connection
                published = wh.publish([table], days=(first, last), run_id=context.run.run_id)[table]
        yield dg.MaterializeResult(metadata=range_metadata(
            context, table, first, last, rows, build_at, built_seconds, published, preview))
        for result in results:
            if not result.passed:
                context.log.warning(f"{table} {result.check_name} did not pass")
            yield result

    return mart


def _unpartitioned_mart(spec: MartSpec) -> dg.AssetsDefinition:
    table = spec.name

    @dg.asset(
        name=table,
        group_name=MARTS_GROUP,
        kinds={"duckdb", "iceberg"},
        deps=mart_deps(spec),
        description=TABLES[table].description,
        metadata=table_metadata(table),
        # Its checks run inside its step, on its open connection, as the partitioned marts' do: no step of their own.
        check_specs=[*mart_check_specs(table), *([RELINK_CHECK_SPEC] if "relink" in spec.checks else [])],
    )
    def mart(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        # Taken once, when the step starts: after the ingest of the same run, so no balance of this run is
        # newer than the build (the run's start could be an hour before a large ingest ends).
        build_at = datetime.now(UTC)
        started = time.monotonic()
        thresholds = resolve_thresholds(DataQualityConfig())
        with warehouse.shared_connection() as (wh, con):  # the run's marts open the file once
            ensure_mart_tables(con)
            install_macros(con)  # cheap; keeps the funds-check macro in step with the shipped SQL
            rows = build_table(con, table, build_at)
            checks = list(table_check_results(con, table, thresholds, build_at))
            if "relink" in spec.checks:
                checks.append(check_accounts_to_relink(con))
            preview = mart_preview(con, table)
            built_seconds = time.monotonic() - started
            published = wh.publish([table], run_id=context.run.run_id)[table]  # through the open connection
        context.log.info(f"{table}: {rows} rows as of {build_at.isoformat()} in {built_seconds:.2f}s")
        for check in checks:
            if not check.passed:
                context.log.warning(f"{table} {check.check_name} did not pass: {check.description or ''}".rstrip())
        return dg.MaterializeResult(check_results=checks, metadata={
            "dagster/row_count": rows,
            "built_at": dg.MetadataValue.timestamp(build_at),
            "build_seconds": round(built_seconds, 3),
            "iceberg_rows_written": published,
            "preview": dg.MetadataValue.md(preview.markdown),
            **{name: dg.MetadataValue.float(value) for name, value in preview.numbers.items()},
        })

    return mart


# One asset per declared mart (pipelines/marts/specs.py), in build order.
MART_ASSETS: list[dg.AssetsDefinition] = [
    _partitioned_mart(spec) if spec.partitioned else _unpartitioned_mart(spec) for spec in MARTS
]
assert [next(iter(a.keys)).to_user_string() for a in MART_ASSETS] == list(MART_TABLES)

marts_job = dg.define_asset_job(
    "fc_marts_job",
    selection=dg.AssetSelection.groups(MARTS_GROUP),  # daily partitions, inferred from the assets
    description="Rebuild the marts from the warehouse's contract tables for a range of days (launched by "
    "`fc-balances marts` and after each daily ingest with the out-of-date range), without calling Stripe.",
    executor_def=dg.in_process_executor,
)
