"""The marts layer: one Dagster asset per mart (daily partitions for history), built in DuckDB, then Parquet."""

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from assets.checks import DataQualityConfig, mart_check_specs, resolve_thresholds, table_check_results
from pipelines.marts import (
    MART_TABLES,
    PARTITION_COLUMNS,
    build_customer_liquidity,
    build_partitions,
    ensure_mart_tables,
    install_macros,
    out_of_date_start,
    set_watermark,
    update_latest_balances,
)
from pipelines.resources import EARLIEST_HISTORY_START, WarehouseResource

MARTS_GROUP = "marts"
CONTRACT_INPUTS = ("fc_balances", "fc_accounts")
PARTITIONS_UP_TO_DATE = "partitions_up_to_date"
# Dagster needs the first partition when the definitions load, before any setting is resolved, so it is fixed
# here; FC_BALANCES_HISTORY_START (read when a run starts) may only move the first built day later.
PARTITIONS_START = EARLIEST_HISTORY_START
# UTC days up to today (end_offset=1: today is a partition, rebuilt as the day goes on).
DAILY_PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START.isoformat(), timezone="UTC", end_offset=1
)
PREVIOUS_DAY = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
LONGEST_WINDOW = dg.TimeWindowPartitionMapping(start_offset=-89)


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
            "Daily partitions (UTC). Per (account_id, currency, day): the values of the last row with as_of on or "
            "before the end of that UTC day, carried forward over days without rows for at most "
            "FC_BALANCES_CARRY_FORWARD_DAYS (31) days after the last observation; observed says whether the day "
            "had a row of its own. Built from the previous day's partition and that day's balances.",
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
            "Daily partitions by window_end, point in time. Per (account_id, currency, window_days) for every "
            "key with a balance on or before window_end, windows of 30 and 90 days ending on window_end: "
            "statistics of the daily current balance over the window's days that have a value (null, and "
            "days_with_value 0, when none), negative days and streaks for cash accounts, and the newest balance "
            "as of the end of window_end (as of the build for today). fc_current_underwriting_features is the "
            "newest window_end.",
            (
                *_ACCOUNT_KEY,
                ("balance_type", "VARCHAR", "cash or credit, from the newest row as of window_end"),
                ("window_days", "INTEGER", "30 or 90"),
                ("window_start", "DATE", "first day of the window (window_end - window_days + 1)"),
                ("window_end", "DATE", "the window's last UTC day, included; the partition"),
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
                ("latest_current_minor", "BIGINT", "current_minor of the newest row as of the end of window_end"),
                ("latest_available_minor", "BIGINT", "available_minor of that row"),
                ("latest_as_of", "TIMESTAMP WITH TIME ZONE", "as_of of that row"),
                ("staleness_hours", "DOUBLE", "hours from latest_as_of to the end of window_end (or built_at)"),
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


def _run_range(context: dg.AssetExecutionContext, first_allowed: date) -> tuple[date, date]:
    window = context.partition_time_window
    first = window.start.astimezone(UTC).date()
    last = (window.end.astimezone(UTC) - timedelta(days=1)).date()
    return max(first, first_allowed), last


def _partitioned_mart(spec: MartSpec, deps: list[Any]) -> dg.AssetsDefinition:
    table = spec.table
    checks = mart_check_specs(table)
    if table == "fc_underwriting_features":
        checks.append(dg.AssetCheckSpec(
            PARTITIONS_UP_TO_DATE, asset=table, blocking=False,
            description="after the build, no day up to today is out of date (warn)"))

    @dg.asset(
        name=table,
        group_name=MARTS_GROUP,
        kinds={"duckdb", "parquet"},
        deps=[*deps, dg.AssetDep(table, partition_mapping=PREVIOUS_DAY)],
        partitions_def=DAILY_PARTITIONS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=checks,
        description=spec.description,
        metadata={"dagster/column_schema": column_schema(table), "partition_column": PARTITION_COLUMNS[table]},
    )
    def mart(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Any:
        settings = warehouse.history()
        thresholds = resolve_thresholds(DataQualityConfig())
        first, last = _run_range(context, settings.history_start)
        build_at = datetime.now(UTC)  # after the lock below is free: no balance of an earlier run is newer
        today = build_at.date()
        started = time.monotonic()
        rows = 0
        with warehouse.open() as wh:
            with wh.connection() as con:
                ensure_mart_tables(con)
                install_macros(con)
                if first <= last:
                    dirty_from = out_of_date_start(con, today, settings)
                    rows = build_partitions(
                        con, table, first, last, build_at, settings,
                        on_day=lambda day, n: context.log.debug(f"{table} {day}: {n} rows"),
                    )
                    # A run that covered every out-of-date day up to today moves the watermark.
                    if last >= today and (dirty_from is None or first <= dirty_from):
                        set_watermark(con, table, build_at)
                results = list(table_check_results(con, table, thresholds, build_at, days=(first, last)))
                if table == "fc_underwriting_features":
                    behind = out_of_date_start(con, today, settings)
                    results.append(dg.AssetCheckResult(
                        check_name=PARTITIONS_UP_TO_DATE, asset_key=table, passed=behind is None,
                        severity=dg.AssetCheckSeverity.WARN,
                        metadata={"out_of_date_from": behind.isoformat() if behind else ""}))
            built_seconds = time.monotonic() - started
            parquet_rows = wh.export_parquet([table], days=(first, last))[table] if first <= last else 0
        days_built = max((last - first).days + 1, 0)
        context.log.info(f"{table}: {days_built} days {first}..{last}, {rows} rows in {built_seconds:.2f}s")
        metadata: dict[str, Any] = {
            "days_built": days_built, "rows_written": rows, "built_at": dg.MetadataValue.timestamp(build_at),
            "build_seconds": round(built_seconds, 3), "parquet_rows_written": parquet_rows,
        }
        if days_built == 1:
            metadata["dagster/row_count"] = rows
        yield dg.MaterializeResult(metadata=metadata)
        for result in results:
            if not result.passed:
                context.log.warning(f"{table} {result.check_name} did not pass")
            yield result

    return mart


def _unpartitioned_mart(spec: MartSpec, deps: list[str]) -> dg.AssetsDefinition:
    table = spec.table

    @dg.asset(
        name=table,
        group_name=MARTS_GROUP,
        kinds={"duckdb", "parquet"},
        deps=deps,
        description=spec.description,
        metadata={"dagster/column_schema": column_schema(table)},
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
                if table == "fc_latest_balances":
                    rows = update_latest_balances(con, build_at)
                else:
                    rows = build_customer_liquidity(con, build_at)
            built_seconds = time.monotonic() - started
            parquet_rows = wh.export_parquet([table])[table]
        context.log.info(f"{table}: {rows} rows as of {build_at.isoformat()} in {built_seconds:.2f}s")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows,
            "built_at": dg.MetadataValue.timestamp(build_at),
            "build_seconds": round(built_seconds, 3),
            "parquet_rows_written": parquet_rows,
        })

    return mart


MART_ASSETS: list[dg.AssetsDefinition] = [
    _unpartitioned_mart(MART_SPECS["fc_latest_balances"], list(CONTRACT_INPUTS)),
    _partitioned_mart(MART_SPECS["fc_daily_balances"], ["fc_balances"]),
    _partitioned_mart(MART_SPECS["fc_underwriting_features"], [
        "fc_balances", dg.AssetDep("fc_daily_balances", partition_mapping=LONGEST_WINDOW)]),
    _unpartitioned_mart(MART_SPECS["fc_customer_liquidity"], ["fc_latest_balances"]),
]
assert [next(iter(a.keys)).to_user_string() for a in MART_ASSETS] == list(MART_TABLES)

marts_job = dg.define_asset_job(
    "fc_marts_job",
    selection=dg.AssetSelection.groups(MARTS_GROUP),
    partitions_def=DAILY_PARTITIONS,
    description="Rebuild the marts from the warehouse's contract tables for a range of days (launched by "
    "`fc-balances marts` and after each daily ingest with the out-of-date range), without calling Stripe.",
    executor_def=dg.in_process_executor,
)
