"""The marts layer: one Dagster asset per analytics mart, built in DuckDB from the contract tables, then Parquet."""

import time
from datetime import UTC, datetime

import dagster as dg

from assets.schemas import table_metadata
from pipelines.marts import MART_INPUTS, MART_TABLES, build_marts, install_macros
from pipelines.report.previews import mart_preview
from pipelines.resources import WarehouseResource
from pipelines.tables import TABLES

MARTS_GROUP = "marts"
CONTRACT_INPUTS = ("fc_balances", "fc_accounts")


def _mart_asset(table: str) -> dg.AssetsDefinition:
    inputs = MART_INPUTS[table]
    deps = [*CONTRACT_INPUTS, *(name for name in inputs if name in MART_TABLES)]

    @dg.asset(
        name=table,
        group_name=MARTS_GROUP,
        kinds={"duckdb", "parquet"},
        deps=deps,
        description=TABLES[table].description,
        metadata=table_metadata(table),
    )
    def mart(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        # Taken once, when the step starts: after the ingest of the same run, so no balance of this run is
        # newer than the build (the run's start could be an hour before a large ingest ends).
        build_at = datetime.now(UTC)
        started = time.monotonic()
        with warehouse.open() as wh:
            with wh.connection() as con:
                install_macros(con)  # cheap; keeps the funds-check macro in step with the shipped SQL
                rows = build_marts(con, build_at, [table])[table]
                preview = mart_preview(con, table)
            built_seconds = time.monotonic() - started
            parquet_rows = wh.export_parquet([table])[table]
        context.log.info(f"{table}: {rows} rows as of {build_at.isoformat()} in {built_seconds:.2f}s")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows,
            "built_at": dg.MetadataValue.timestamp(build_at),
            "build_seconds": round(built_seconds, 3),
            "parquet_rows_written": parquet_rows,
            "preview": dg.MetadataValue.md(preview.markdown),
            **{name: dg.MetadataValue.float(value) for name, value in preview.numbers.items()},
        })

    return mart


MART_ASSETS: list[dg.AssetsDefinition] = [_mart_asset(table) for table in MART_TABLES]

marts_job = dg.define_asset_job(
    "fc_marts_job",
    selection=dg.AssetSelection.groups(MARTS_GROUP),
    description="Rebuild the marts from the warehouse's contract tables, without calling Stripe.",
    executor_def=dg.in_process_executor,
)
