"""The partitioned marts in account hash shards (FC_BALANCES_MART_SHARDS above 1): graph-backed assets of a plan
step, one step per shard and one commit step, and the job that runs the shards side by side."""

import inspect
import time
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg

from assets.marts import (
    DAILY_PARTITIONS,
    MART_ASSETS,
    MARTS_GROUP,
    mart_deps,
    range_check_specs,
    range_checks,
    range_metadata,
    run_range,
)
from assets.schemas import table_metadata
from pipelines.contract.tables import TABLES
from pipelines.marts.build import ensure_mart_tables, install_macros, out_of_date_start, set_watermark
from pipelines.marts.shard_build import ShardTask, build_shard, shard_file
from pipelines.marts.shard_commit import commit_shards, plan_shards, remove_staging
from pipelines.marts.specs import MARTS, MartSpec
from pipelines.resources import WarehouseResource
from pipelines.warehouse.catalog_config import catalog_properties

SHARDED_JOB_NAME = "fc_marts_sharded_job"


def _ins(spec: MartSpec) -> dict[str, dg.AssetIn]:
    """mart_deps as the graph's inputs (no data passes: the marts live in DuckDB and Iceberg)."""
    ins: dict[str, dg.AssetIn] = {}
    for dep in mart_deps(spec):
        key, mapping = (dep, None) if isinstance(dep, str) else (dep.asset_key.to_user_string(), dep.partition_mapping)
        ins[f"after_{key}"] = dg.AssetIn(key, dagster_type=dg.Nothing, partition_mapping=mapping)
    return ins


def _task(value: dict[str, Any]) -> ShardTask:
    return ShardTask(**value)


def sharded_mart(spec: MartSpec, shards: int) -> dg.AssetsDefinition:
    """The mart as a graph: `<mart>_plan` (holds the writer lock briefly: the range, one build time, the inputs'
    Iceberg snapshots), `<mart>_shard_<n>` for each shard (no lock, no DuckDB file: reads Iceberg, stages Parquet),
    `<mart>_commit` (the lock again: the shards' rows into DuckDB in one transaction, the watermark, the checks, one
    Iceberg snapshot for the run)."""
    table = spec.name
    checks = range_check_specs(spec)
    check_outputs = {f"{table}_{check.name}": check.name for check in checks}
    ins = _ins(spec)

    @dg.op(name=f"{table}_plan", ins={name: dg.In(dg.Nothing) for name in ins})
    def plan(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> dict:
        settings = warehouse.history()
        first, last = run_range(context, settings.history_start)
        build_at = datetime.now(UTC)  # after the lock below is free: no balance of an earlier run is newer
        with warehouse.open() as wh:
            with wh.connection() as con:
                ensure_mart_tables(con)
                install_macros(con)
                dirty_from = out_of_date_start(con, build_at.date(), settings) if first <= last else None
            if first > last:
                return {"empty": True, "first": first.isoformat(), "last": last.isoformat(),
                        "build_at": build_at.isoformat()}
            task = plan_shards(wh, table, first, last, build_at, settings, shards, context.run.run_id)
        return {"empty": False, "task": task.as_dict(),
                "dirty_from": dirty_from.isoformat() if dirty_from else None}

    def shard_op(index: int) -> dg.OpDefinition:
        @dg.op(name=f"{table}_shard_{index}")
        def shard(context: dg.OpExecutionContext, warehouse: WarehouseResource, planned: dict) -> dict:
            if planned["empty"]:
                return {"rows": 0, "seconds": 0.0}
            task = _task(planned["task"])
            started = time.monotonic()
            path, rows = build_shard(task, index, catalog_properties(warehouse.folder(), warehouse.catalog_setting()),
                                     warehouse.memory_limit())
            seconds = time.monotonic() - started
            context.log.info(f"{table} shard {index + 1}/{shards}: {rows} rows staged in {seconds:.2f}s")
            return {"rows": rows, "seconds": seconds, "file": str(path)}

        return shard

    @dg.op(name=f"{table}_commit", out={"result": dg.Out(dg.Nothing),
                                         **{name: dg.Out(dg.Nothing, is_required=False) for name in check_outputs}})
    def commit(context: dg.OpExecutionContext, warehouse: WarehouseResource, planned: dict,
               done: list[dict]) -> Any:
        settings = warehouse.history()
        started = time.monotonic()
        rows = published = 0
        if planned["empty"]:
            first, last = date.fromisoformat(planned["first"]), date.fromisoformat(planned["last"])
            build_at = datetime.fromisoformat(planned["build_at"])
        else:
            task = _task(planned["task"])
            (first, last), build_at = task.days, datetime.fromisoformat(task.build_at)
        today = build_at.date()
        with warehouse.open() as wh:
            with wh.connection() as con:
                if not planned["empty"]:
                    rows = commit_shards(con, table, first, last, build_at,
                                         [shard_file(task, index) for index in range(shards)])
                    dirty_from = date.fromisoformat(planned["dirty_from"]) if planned["dirty_from"] else None
                    # A run that covered every out-of-date day up to today moves the watermark.
                    if last >= today and (dirty_from is None or first <= dirty_from):
                        set_watermark(con, table, build_at)
                results, preview = range_checks(con, spec, first, last, build_at, settings)
            if not planned["empty"]:
                published = wh.publish([table], days=(first, last), run_id=context.run.run_id)[table]
                remove_staging(task.staging)  # committed: the shards' files are done with
        built_seconds = max((float(d["seconds"]) for d in done), default=0.0) + time.monotonic() - started
        yield dg.Output(None, output_name="result", metadata=range_metadata(
            context, table, first, last, rows, build_at, built_seconds, published, preview, shards=shards))
        for result in results:
            if not result.passed:
                context.log.warning(f"{table} {result.check_name} did not pass")
            yield result

    shard_ops = [shard_op(index) for index in range(shards)]

    def compose(**after: Any) -> Any:
        planned = plan(**after)
        outputs = commit(planned, [shard(planned) for shard in shard_ops])
        return {"result": outputs.result, **{name: getattr(outputs, name) for name in check_outputs}}

    # The graph's inputs are the deps' names, which Dagster reads from the function's signature.
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
        metadata={**table_metadata(table), "partition_column": spec.partition_column, "shards": shards},
    )



def mart_assets(shards: int) -> list[dg.AssetsDefinition]:
    """The marts' assets: main's plain ones with 1 shard; above 1, the partitioned marts as sharded graphs."""
    if shards <= 1:
        return MART_ASSETS
    by_name = {spec.name: spec for spec in MARTS}
    return [sharded_mart(by_name[key], shards) if by_name[key].partitioned else asset
            for asset in MART_ASSETS for key in [asset.key.to_user_string()]]


def mart_jobs(shards: int) -> list[Any]:
    """With shards, the marts under the multiprocess executor: the shard steps of a mart start side by side."""
    if shards <= 1:
        return []
    return [dg.define_asset_job(
        SHARDED_JOB_NAME,
        selection=dg.AssetSelection.groups(MARTS_GROUP),
        description="fc_marts_job with each step in a process of its own: the account hash shards of the "
        "partitioned marts (FC_BALANCES_MART_SHARDS) build side by side, reading Iceberg, without the writer lock.",
        # Each step's process forks from a server that imported the code location once, instead of starting Python
        # and importing Dagster, DuckDB and pyiceberg again (seconds a step on a busy machine).
        executor_def=dg.multiprocess_executor.configured(
            {"start_method": {"forkserver": {"preload_modules": ["pipelines.definitions"]}}}),
    )]
