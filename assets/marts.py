"""The marts layer: one Dagster asset per analytics mart, built in DuckDB from the contract tables, then Parquet."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from pipelines.marts import MART_INPUTS, MART_TABLES, build_marts, install_macros
from pipelines.report.previews import mart_preview
from pipelines.resources import WarehouseResource

MARTS_GROUP = "marts"
CONTRACT_INPUTS = ("fc_balances", "fc_accounts")


@dataclass(frozen=True)
class MartSpec:
    table: str
    description: str
    columns: tuple[tuple[str, str, str], ...]  # (name, DuckDB type, meaning), in the table's column order


_ACCOUNT_KEY = (
    ("account_id", "VARCHAR", "Financial Connections account id"),
    ("customer_id", "VARCHAR", "the account holder's customer id (null for other holder types)"),
    ("currency", "VARCHAR", "lowercase ISO 4217 code"),
)
_AMOUNTS = (
    ("current_minor", "BIGINT", "current balance in minor units, Stripe's sign (+ owed to the holder)"),
    ("available_minor", "BIGINT", "cash available in minor units (null for credit or when not given)"),
    ("used_minor", "BIGINT", "credit used in minor units (null for cash)"),
    ("current", "DECIMAL(38,4)", "current_minor in major units, exact"),
    ("available", "DECIMAL(38,4)", "available_minor in major units, exact"),
    ("used", "DECIMAL(38,4)", "used_minor in major units, exact"),
)
_BUILT_AT = ("built_at", "TIMESTAMP WITH TIME ZONE", "the build time the mart was computed for (its step's start)")

MART_SPECS: dict[str, MartSpec] = {
    spec.table: spec
    for spec in (
        MartSpec(
            "fc_latest_balances",
            "Per (account_id, currency) the newest fc_balances row, with the account's status, category and "
            "institution, and staleness_hours from as_of to the build time.",
            (
                *_ACCOUNT_KEY,
                ("balance_type", "VARCHAR", "cash or credit, from the row"),
                ("as_of", "TIMESTAMP WITH TIME ZONE", "when the institution computed the balance"),
                *_AMOUNTS,
                ("fetched_at", "TIMESTAMP WITH TIME ZONE", "when the pipeline read it"),
                ("account_status", "VARCHAR", "active, inactive or disconnected (fc_accounts.status)"),
                ("category", "VARCHAR", "fc_accounts.category"),
                ("subcategory", "VARCHAR", "fc_accounts.subcategory"),
                ("institution_name", "VARCHAR", "fc_accounts.institution_name"),
                ("display_name", "VARCHAR", "fc_accounts.display_name"),
                ("last4", "VARCHAR", "fc_accounts.last4"),
                ("staleness_hours", "DOUBLE", "hours from as_of to built_at"),
                _BUILT_AT,
            ),
        ),
        MartSpec(
            "fc_daily_balances",
            "Per (account_id, currency, day) from the first UTC day with a balance to the build day: the values "
            "of the last row with as_of on or before the end of that UTC day, carried forward over days without "
            "rows; observed says whether the day had a row of its own.",
            (
                *_ACCOUNT_KEY,
                ("day", "DATE", "UTC calendar day"),
                ("balance_type", "VARCHAR", "cash or credit, from the carried row"),
                ("observed", "BOOLEAN", "the day had a row of its own (false: carried forward)"),
                ("as_of", "TIMESTAMP WITH TIME ZONE", "as_of of the carried row"),
                *_AMOUNTS,
                _BUILT_AT,
            ),
        ),
        MartSpec(
            "fc_underwriting_features",
            "Per (account_id, currency, window_days) for windows of 30 and 90 days ending on the build day: "
            "statistics of the daily current balance over the window's days that have a value, negative days "
            "and streaks for cash accounts, and the latest balance.",
            (
                *_ACCOUNT_KEY,
                ("balance_type", "VARCHAR", "cash or credit, from the newest row"),
                ("window_days", "INTEGER", "30 or 90"),
                ("window_start", "DATE", "first day of the window (build day - window_days + 1)"),
                ("window_end", "DATE", "the build day (UTC), included"),
                ("days_with_value", "BIGINT", "days of the window with a daily current_minor"),
                ("days_observed", "BIGINT", "days of the window with a row of their own"),
                ("coverage", "DOUBLE", "days_with_value / window_days"),
                ("avg_daily_balance_minor", "DOUBLE", "mean of daily current_minor"),
                ("min_daily_balance_minor", "BIGINT", "minimum of daily current_minor"),
                ("max_daily_balance_minor", "BIGINT", "maximum of daily current_minor"),
                ("p10_daily_balance_minor", "DOUBLE", "10th percentile, linear interpolation (quantile_cont)"),
                ("p90_daily_balance_minor", "DOUBLE", "90th percentile, linear interpolation (quantile_cont)"),
                ("stddev_daily_balance_minor", "DOUBLE", "population standard deviation of daily current_minor"),
                ("days_negative", "BIGINT", "cash: days with daily current_minor < 0; null for credit"),
                ("longest_negative_streak", "BIGINT", "cash: most consecutive days below 0; null for credit"),
                ("latest_current_minor", "BIGINT", "current_minor of the newest row"),
                ("latest_available_minor", "BIGINT", "available_minor of the newest row"),
                ("latest_as_of", "TIMESTAMP WITH TIME ZONE", "as_of of the newest row"),
                ("staleness_hours", "DOUBLE", "hours from latest_as_of to built_at"),
                _BUILT_AT,
            ),
        ),
        MartSpec(
            "fc_customer_liquidity",
            "Per (customer_id, currency) over the customer's active accounts: the sum of the latest cash "
            "available balances (current where available is missing, counted apart) and of the latest credit "
            "current balances.",
            (
                ("customer_id", "VARCHAR", "the customer (accounts of other holder types are left out)"),
                ("currency", "VARCHAR", "lowercase ISO 4217 code"),
                ("accounts", "BIGINT", "active accounts with a balance in this currency"),
                ("cash_accounts", "BIGINT", "of which cash"),
                ("cash_available_minor", "BIGINT", "sum of latest cash available_minor, current_minor where null"),
                ("cash_available", "DECIMAL(38,4)", "the same in major units, exact"),
                ("cash_accounts_current_fallback", "BIGINT", "cash accounts counted with current (no available)"),
                ("credit_accounts", "BIGINT", "of which credit"),
                ("credit_current_minor", "BIGINT", "sum of latest credit current_minor (usually negative: owed)"),
                ("credit_current", "DECIMAL(38,4)", "the same in major units, exact"),
                ("oldest_as_of", "TIMESTAMP WITH TIME ZONE", "the oldest as_of among the summed balances"),
                ("newest_as_of", "TIMESTAMP WITH TIME ZONE", "the newest as_of among the summed balances"),
                ("max_staleness_hours", "DOUBLE", "hours from oldest_as_of to built_at"),
                _BUILT_AT,
            ),
        ),
    )
}


def column_schema(table: str) -> dg.TableSchema:
    columns = MART_SPECS[table].columns
    return dg.TableSchema(columns=[dg.TableColumn(name, kind, description=meaning) for name, kind, meaning in columns])


def _mart_asset(spec: MartSpec) -> dg.AssetsDefinition:
    inputs = MART_INPUTS[spec.table]
    deps = [*CONTRACT_INPUTS, *(name for name in inputs if name in MART_TABLES)]

    @dg.asset(
        name=spec.table,
        group_name=MARTS_GROUP,
        kinds={"duckdb", "parquet"},
        deps=deps,
        description=spec.description,
        metadata={"dagster/column_schema": column_schema(spec.table)},
    )
    def mart(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        # Taken once, when the step starts: after the ingest of the same run, so no balance of this run is
        # newer than the build (the run's start could be an hour before a large ingest ends).
        build_at = datetime.now(UTC)
        started = time.monotonic()
        with warehouse.open() as wh:
            with wh.connection() as con:
                install_macros(con)  # cheap; keeps the funds-check macro in step with the shipped SQL
                rows = build_marts(con, build_at, [spec.table])[spec.table]
                preview = mart_preview(con, spec.table)
            built_seconds = time.monotonic() - started
            parquet_rows = wh.export_parquet([spec.table])[spec.table]
        context.log.info(f"{spec.table}: {rows} rows as of {build_at.isoformat()} in {built_seconds:.2f}s")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows,
            "built_at": dg.MetadataValue.timestamp(build_at),
            "build_seconds": round(built_seconds, 3),
            "parquet_rows_written": parquet_rows,
            "preview": dg.MetadataValue.md(preview.markdown),
            **{name: dg.MetadataValue.float(value) for name, value in preview.numbers.items()},
        })

    return mart


MART_ASSETS: list[dg.AssetsDefinition] = [_mart_asset(MART_SPECS[table]) for table in MART_TABLES]

marts_job = dg.define_asset_job(
    "fc_marts_job",
    selection=dg.AssetSelection.groups(MARTS_GROUP),
    description="Rebuild the marts from the warehouse's contract tables, without calling Stripe.",
    executor_def=dg.in_process_executor,
)
