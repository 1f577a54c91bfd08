"""The marts layer: one Dagster asset per mart (daily partitions for history), built in DuckDB, then Iceberg."""

import inspect
import time
from collections.abc import Iterator
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
    Shard,
    build_partitions,
    build_table,
    ensure_mart_tables,
    install_macros,
    out_of_date_start,
    range_rows,
    set_watermark,
)
from pipelines.marts.specs import MART_SPECS, MARTS, MartSpec
from pipelines.report.previews import mart_preview
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
# The shard steps' Dagster pool: a limit of 1 on it (dagster.yaml or Dagster+) queues them instead of having them
# wait on the warehouse's writer lock, the DuckDB file taking one writer at a time.
WRITER_POOL = "fc_balances_duckdb_writer"


def _run_range(context: dg.AssetExecutionContext, first_allowed: date) -> tuple[date, date]:
    window = context.partition_time_window
    first = window.start.astimezone(UTC).date()
    last = (window.end.astimezone(UTC) - timedelta(days=1)).date()
    return max(first, first_allowed), last


def _deps(spec: MartSpec) -> list[Any]:
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


def _ins(spec: MartSpec) -> dict[str, dg.AssetIn]:
    """_deps as the graph's inputs (no data passes: the marts live in DuckDB)."""
    ins: dict[str, dg.AssetIn] = {}
    for dep in _deps(spec):
        key, mapping = (dep, None) if isinstance(dep, str) else (dep.asset_key.to_user_string(), dep.partition_mapping)
        ins[f"after_{key}"] = dg.AssetIn(key, dagster_type=dg.Nothing, partition_mapping=mapping)
    return ins


def _partitioned_mart(spec: MartSpec) -> dg.AssetsDefinition:
    """A graph: plan (the range, one build time) fans out one step per account hash shard (FC_BALANCES_MART_SHARDS,
    read when the run starts), each building and committing its shard's keys; then one step records the watermark,
    runs the checks and publishes the days to Iceberg once (one snapshot per run)."""
    table = spec.name
    checks = mart_check_specs(table)
    if "up_to_date" in spec.checks:
        checks.append(dg.AssetCheckSpec(
            PARTITIONS_UP_TO_DATE, asset=table, blocking=False,
            description="after the build, no day up to today is out of date (warn)"))
    check_outputs = {f"{table}_{check.name}": check.name for check in checks}

    ins = _ins(spec)

    @dg.op(name=f"{table}_plan", out=dg.DynamicOut(dict), ins={name: dg.In(dg.Nothing) for name in ins})
    def plan(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> Iterator[dg.DynamicOutput[dict]]:
        settings = warehouse.history()
        shards = warehouse.shards()
        first, last = _run_range(context, settings.history_start)
        build_at = datetime.now(UTC)  # after the lock below is free: no balance of an earlier run is newer
        dirty_from = None
        with warehouse.open() as wh, wh.connection() as con:
            ensure_mart_tables(con)
            install_macros(con)
            dirty_from = out_of_date_start(con, build_at.date(), settings)
        task = {"first": first.isoformat(), "last": last.isoformat(), "build_at": build_at.isoformat(),
                "dirty_from": dirty_from.isoformat() if dirty_from else None, "count": shards}
        for index in range(shards):
            yield dg.DynamicOutput({**task, "index": index}, mapping_key=f"shard_{index}")

    @dg.op(name=f"{table}_shard", pool=WRITER_POOL)
    def shard(context: dg.OpExecutionContext, warehouse: WarehouseResource, task: dict) -> dict:
        first, last = date.fromisoformat(task["first"]), date.fromisoformat(task["last"])
        which = Shard(task["index"], task["count"])
        started = time.monotonic()
        if first <= last:
            # Another shard's step may hold the writer lock: this one waits for it (up to the lock timeout).
            with warehouse.open() as wh, wh.connection() as con:
                build_partitions(
                    con, table, first, last, datetime.fromisoformat(task["build_at"]), warehouse.history(),
                    on_batch=lambda a, b, n: context.log.info(
                        f"{table} shard {which.index + 1}/{which.count}: {a}..{b} built"), shard=which)
        return {**task, "seconds": time.monotonic() - started}

    @dg.op(name=f"{table}_publish", out={"result": dg.Out(dg.Nothing),
                                          **{name: dg.Out(dg.Nothing, is_required=False) for name in check_outputs}})
    def publish(context: dg.OpExecutionContext, warehouse: WarehouseResource, done: list[dict]) -> Iterator[Any]:
        task = done[0]
        settings = warehouse.history()
        first, last = date.fromisoformat(task["first"]), date.fromisoformat(task["last"])
        build_at = datetime.fromisoformat(task["build_at"])
        dirty_from = date.fromisoformat(task["dirty_from"]) if task["dirty_from"] else None
        today = build_at.date()
        built_seconds = max(float(d["seconds"]) for d in done)
        thresholds = resolve_thresholds(DataQualityConfig())
        with warehouse.open() as wh:
            with wh.connection() as con:
                # A run that covered every out-of-date day up to today moves the watermark.
                if first <= last and last >= today and (dirty_from is None or first <= dirty_from):
                    set_watermark(con, table, build_at)
                rows = range_rows(con, table, first, last) if first <= last else 0  # every shard's
                results = list(table_check_results(con, table, thresholds, build_at, days=(first, last)))
                preview = mart_preview(con, table, days=(first, last))  # the run's days, for the asset page
                if "up_to_date" in spec.checks:
                    behind = out_of_date_start(con, today, settings)
                    results.append(dg.AssetCheckResult(
                        check_name=PARTITIONS_UP_TO_DATE, asset_key=table, passed=behind is None,
                        severity=dg.AssetCheckSeverity.WARN,
                        metadata={"out_of_date_from": behind.isoformat() if behind else ""}))
            published = 0
            if first <= last:
                published = wh.publish([table], days=(first, last), run_id=context.run.run_id)[table]
        days_built = max((last - first).days + 1, 0)
        context.log.info(f"{table}: {days_built} days {first}..{last}, {rows} rows in {len(done)} shard(s), "
                         f"slowest {built_seconds:.2f}s")
        metadata: dict[str, Any] = {
            "days_built": days_built, "rows_written": rows, "built_at": dg.MetadataValue.timestamp(build_at),
            "build_seconds": round(built_seconds, 3), "iceberg_rows_written": published, "shards": len(done),
        }
        if days_built == 1:
            metadata["dagster/row_count"] = rows
        metadata["preview"] = dg.MetadataValue.md(preview.markdown)
        metadata.update({name: dg.MetadataValue.float(value) for name, value in preview.numbers.items()})
        yield dg.Output(None, output_name="result", metadata=metadata)
        for result in results:
            if not result.passed:
                context.log.warning(f"{table} {result.check_name} did not pass")
            yield result

    def compose(**after: Any) -> Any:
        outputs = publish(plan(**after).map(shard).collect())
        return {"result": outputs.result, **{name: getattr(outputs, name) for name in check_outputs}}

    compose.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in ins])
    return dg.graph_asset(
        compose,
        name=table,
        group_name=MARTS_GROUP,
        kinds={"duckdb", "iceberg"},
        ins=ins,
        partitions_def=DAILY_PARTITIONS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=checks,
        description=TABLES[table].description,
        metadata={**table_metadata(table), "partition_column": spec.partition_column},
    )


def _unpartitioned_mart(spec: MartSpec) -> dg.AssetsDefinition:
    table = spec.name

    @dg.asset(
        name=table,
        group_name=MARTS_GROUP,
        kinds={"duckdb", "iceberg"},
        deps=_deps(spec),
        description=TABLES[table].description,
        metadata=table_metadata(table),
        check_specs=[RELINK_CHECK_SPEC] if "relink" in spec.checks else None,
    )
    def mart(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        # Taken once, when the step starts: after the ingest of the same run, so no balance of this run is
        # newer than the build (the run's start could be an hour before a large ingest ends).
        build_at = datetime.now(UTC)
        started = time.monotonic()
        with warehouse.open() as wh:
            with wh.connection() as con:
                ensure_mart_tables(con)
                install_macros(con)  # cheap; keeps the funds-check macro in step with the shipped SQL
                rows = build_table(con, table, build_at)
                checks = [check_accounts_to_relink(con)] if "relink" in spec.checks else []
                preview = mart_preview(con, table)
            built_seconds = time.monotonic() - started
            published = wh.publish([table], run_id=context.run.run_id)[table]
        context.log.info(f"{table}: {rows} rows as of {build_at.isoformat()} in {built_seconds:.2f}s")
        for check in checks:
            if not check.passed:
                context.log.warning(f"{table} {check.check_name}: {check.description}")
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

# The same marts, a step per process: the shard steps of the partitioned marts start side by side, their DuckDB
# work taking turns on the writer lock (every step of it waits up to FC_BALANCES_LOCK_TIMEOUT for another's).
sharded_marts_job = dg.define_asset_job(
    "fc_marts_sharded_job",
    selection=dg.AssetSelection.groups(MARTS_GROUP),
    description="fc_marts_job under the multiprocess executor: with FC_BALANCES_MART_SHARDS above 1, the shards of "
    "the partitioned marts in processes of their own.",
    executor_def=dg.multiprocess_executor,
)
