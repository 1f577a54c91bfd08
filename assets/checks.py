"""Data-quality checks on fc_balances, fc_balance_refreshes and the marts; the blocking ones stop the marts."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field

from pipelines.contract.schema import quote
from pipelines.contract.tables import BALANCE_TYPES, TABLES
from pipelines.contract.values import ATTEMPTED_OUTCOMES, FAILED_OUTCOMES, RELINK_REASONS
from pipelines.marts.day_runs import day_runs
from pipelines.marts.specs import MARTS
from pipelines.normalize.currencies import ISO_4217_CODES
from pipelines.resources import WarehouseResource
from pipelines.settings import SETTINGS
from pipelines.sql import load_sql

UNIQUE_KEY = "unique_key"
CURRENCIES_VALID = "currencies_valid"
AS_OF_NOT_IN_FUTURE = "as_of_not_in_future"
AMOUNTS_MATCH_TYPE = "amounts_match_balance_type"
BALANCES_FRESH = "balances_fresh"
REFRESH_FAILURE_RATE = "refresh_failure_rate"
ACCOUNTS_TO_RELINK = "accounts_to_relink"

# Their defaults and bounds are declared with the other settings (pipelines/settings.py).
STALENESS_ENV, FAILURE_RATE_ENV, CLOCK_SKEW_ENV = (
    "FC_BALANCES_STALENESS_HOURS", "FC_BALANCES_MAX_FAILURE_RATE", "FC_BALANCES_CLOCK_SKEW_SECONDS")


def _config_field(variable: str) -> Any:
    setting = SETTINGS[variable]
    return Field(default=None, description=f"{setting.meaning} ({variable}; {setting.readme_default()}).")


class DataQualityConfig(dg.Config):
    """Thresholds; a value left unset comes from its environment variable, then the default."""

    staleness_hours: float | None = _config_field(STALENESS_ENV)
    max_failure_rate: float | None = _config_field(FAILURE_RATE_ENV)
    clock_skew_seconds: float | None = _config_field(CLOCK_SKEW_ENV)


@dataclass(frozen=True)
class Thresholds:
    staleness_hours: float = SETTINGS[STALENESS_ENV].default
    max_failure_rate: float = SETTINGS[FAILURE_RATE_ENV].default
    clock_skew_seconds: float = SETTINGS[CLOCK_SKEW_ENV].default


def resolve_thresholds(config: DataQualityConfig) -> Thresholds:
    """Every threshold, checked before any SQL runs, so a bad value fails with one line and no half results."""
    return Thresholds(
        staleness_hours=SETTINGS[STALENESS_ENV].resolve(config.staleness_hours),
        max_failure_rate=SETTINGS[FAILURE_RATE_ENV].resolve(config.max_failure_rate),
        clock_skew_seconds=SETTINGS[CLOCK_SKEW_ENV].resolve(config.clock_skew_seconds),
    )


@dataclass(frozen=True)
class TableChecks:
    """Which checks a table gets beyond its declared unique key (which it always gets)."""

    currency: bool = True
    as_of: bool = False
    amounts: bool = False
    freshness: bool = False


# The fixed allow-list of tables the check SQL templates are filled from; keys come from the declarations, the
# marts' checks from their specs (pipelines/marts/specs.py).
CHECKED_TABLES: dict[str, TableChecks] = {
    "fc_balances": TableChecks(as_of=True, amounts=True, freshness=True),
    **{spec.name: TableChecks(currency="currency" in TABLES[spec.name].column_names, as_of="as_of" in spec.checks,
                              amounts="amounts" in spec.checks) for spec in MARTS},
}


# Partitioned marts: their checks look at the days a run rebuilt, not all history.
PARTITIONED_CHECKS: dict[str, str] = {s.name: s.partition_column for s in MARTS if s.partition_column is not None}
Days = tuple[Any, Any] | None  # a partitioned mart's (first, last) day a check reads; None: the whole table
# Rows one unique-key grouping holds at most: its hash table stays a small part of DuckDB's memory limit.
UNIQUE_KEY_CHUNK_ROWS = 3_000_000


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    cursor = con.execute(sql, params or {})
    row = cursor.fetchone()
    names = [column[0] for column in cursor.description]
    return dict(zip(names, row, strict=True)) if row is not None else {}


def _template(name: str, table: str, days: Days) -> tuple[str, dict[str, Any]]:
    """The check's SQL and its day parameters. `table` and its key columns come from CHECKED_TABLES, never from
    input; a partitioned table's checks read the given days only (bound as parameters)."""
    source, params = quote(table), {}
    if days is not None and table in PARTITIONED_CHECKS:
        column = quote(PARTITIONED_CHECKS[table])
        source = f"(SELECT * FROM {source} WHERE {column} BETWEEN $scope_first AND $scope_last)"
        params = {"scope_first": days[0], "scope_last": days[1]}
    sql = load_sql(f"checks/{name}").format(
        table=source, key_columns=", ".join(quote(column) for column in TABLES[table].key)
    )
    return sql, params


def check_unique_key(con: duckdb.DuckDBPyConnection, table: str, days: Days = None) -> dg.AssetCheckResult:
    # A partitioned mart's key holds its day, so a key can only repeat within a day: checking a long range a few
    # days at a time gives the same counts while each grouping holds those days' keys, not all history.
    # Each chunk's keys are grouped by their hashes first; only a chunk where a hash repeats is grouped by the key
    # itself, for exact counts (at 146 M feature rows: 12 s instead of 16).
    found = {"duplicated_keys": 0, "rows_involved": 0}
    for chunk in _day_chunks(con, table, days):
        if not _one(con, *_template("repeated_key_hashes", table, chunk))["repeated_hashes"]:
            continue
        for name, value in _one(con, *_template("unique_key", table, chunk)).items():
            found[name] += int(value)
    key = ", ".join(TABLES[table].key)
    return dg.AssetCheckResult(
        check_name=UNIQUE_KEY, asset_key=table, passed=found["duplicated_keys"] == 0,
        description=f"({key}) occurs once per row",
        metadata={"duplicated_keys": found["duplicated_keys"], "rows_involved": int(found["rows_involved"])},
    )


def _day_chunks(con: duckdb.DuckDBPyConnection, table: str, days: Days) -> list[Days]:
    """Runs of consecutive days of the range holding at most UNIQUE_KEY_CHUNK_ROWS rows each, as (first, last),
    from the rows each day holds; the whole range for a table that is not partitioned."""
    if days is None or table not in PARTITIONED_CHECKS or days[1] < days[0]:
        return [days]
    sql = load_sql("marts/count_partitions").format(table=quote(table), column=quote(PARTITIONED_CHECKS[table]))
    rows_by_day = dict(con.execute(sql, {"first": days[0], "last": days[1]}).fetchall())
    return [(run[0], run[-1]) for run in day_runs(rows_by_day, UNIQUE_KEY_CHUNK_ROWS)]


def check_currencies(con: duckdb.DuckDBPyConnection, table: str, days: Days = None) -> dg.AssetCheckResult:
    sql, params = _template("invalid_currencies", table, days)
    found = _one(con, sql, params | {"codes": sorted(ISO_4217_CODES)})
    return dg.AssetCheckResult(
        check_name=CURRENCIES_VALID, asset_key=table, passed=found["bad_rows"] == 0,
        description="every currency is a lowercase ISO 4217 code",
        metadata={"bad_rows": found["bad_rows"], "sample": ", ".join(found["sample"] or [])},
    )


def check_as_of(
    con: duckdb.DuckDBPyConnection, table: str, now: datetime, skew_seconds: float, days: Days = None
) -> dg.AssetCheckResult:
    latest_allowed = now + timedelta(seconds=skew_seconds)
    sql, params = _template("future_as_of", table, days)
    found = _one(con, sql, params | {"latest_allowed": latest_allowed})
    metadata: dict[str, Any] = {"future_rows": found["future_rows"], "clock_skew_seconds": skew_seconds}
    if found["latest_as_of"] is not None:
        metadata["latest_as_of"] = found["latest_as_of"].isoformat()
    return dg.AssetCheckResult(
        check_name=AS_OF_NOT_IN_FUTURE, asset_key=table, passed=found["future_rows"] == 0,
        description=f"no as_of after the check time plus {skew_seconds:g}s of clock skew", metadata=metadata,
    )


def check_amounts(con: duckdb.DuckDBPyConnection, table: str, days: Days = None) -> dg.AssetCheckResult:
    sql, params = _template("amounts_by_balance_type", table, days)
    found = _one(con, sql, params | {"balance_types": list(BALANCE_TYPES)})
    return dg.AssetCheckResult(
        check_name=AMOUNTS_MATCH_TYPE, asset_key=table, passed=not any(found.values()),
        description="cash rows carry no used amount, credit rows no available amount, types are cash or credit",
        metadata=found,
    )


def check_freshness(con: duckdb.DuckDBPyConnection, now: datetime, staleness_hours: float) -> dg.AssetCheckResult:
    found = _one(con, load_sql("checks/stale_balances"), {"cutoff": now - timedelta(hours=staleness_hours)})
    metadata: dict[str, Any] = {
        "stale_balances": found["stale_balances"], "active_balances": found["active_balances"],
        "staleness_hours_threshold": staleness_hours,
    }
    if found["oldest_as_of"] is not None:
        metadata["oldest_as_of"] = found["oldest_as_of"].isoformat()
    return dg.AssetCheckResult(
        check_name=BALANCES_FRESH, asset_key="fc_balances", passed=found["stale_balances"] == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"every active account's newest balance is at most {staleness_hours:g} hours old",
        metadata=metadata,
    )


def check_failure_rate(con: duckdb.DuckDBPyConnection, max_rate: float) -> dg.AssetCheckResult:
    found = _one(con, load_sql("checks/last_run_refresh_failures"),
                 {"attempted": list(ATTEMPTED_OUTCOMES), "failed": list(FAILED_OUTCOMES)})
    description = f"the last run's refresh failure rate is at most {max_rate:g}"
    if not found or not found["attempted"]:
        return dg.AssetCheckResult(
            check_name=REFRESH_FAILURE_RATE, asset_key="fc_balance_refreshes", passed=True,
            severity=dg.AssetCheckSeverity.WARN, description=description,
            metadata={"run_id": found.get("run_id") or "", "attempted": 0, "max_failure_rate": max_rate},
        )
    rate = found["failed"] / found["attempted"]
    return dg.AssetCheckResult(
        check_name=REFRESH_FAILURE_RATE, asset_key="fc_balance_refreshes", passed=rate <= max_rate,
        severity=dg.AssetCheckSeverity.WARN, description=description,
        metadata={"run_id": found["run_id"], "ran_at": found["ran_at"].isoformat(), "accounts": found["accounts"],
                  "attempted": found["attempted"], "failed": found["failed"], "failure_rate": round(rate, 4),
                  "max_failure_rate": max_rate},
    )


RELINK_CHECK_SPEC = dg.AssetCheckSpec(
    ACCOUNTS_TO_RELINK, asset="fc_account_health", blocking=False,
    description="no account needs a relink (warn, with the count per relink_reason)")


def check_accounts_to_relink(con: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    """Warn when any account of fc_account_health has a relink_reason; the count of each reason in metadata."""
    counts = dict(con.execute(load_sql("checks/relink_reasons")).fetchall())
    metadata: dict[str, Any] = {reason: int(counts.pop(reason, 0)) for reason in RELINK_REASONS}
    metadata.update({str(reason): int(n) for reason, n in counts.items()})  # a reason not declared: shown too
    total = sum(metadata.values())
    return dg.AssetCheckResult(
        check_name=ACCOUNTS_TO_RELINK, asset_key="fc_account_health", passed=total == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{total} accounts to relink" if total else "no account needs a relink",
        metadata={"accounts_to_relink": total, **metadata},
    )


def table_check_results(
    con: duckdb.DuckDBPyConnection, table: str, thresholds: Thresholds, now: datetime,
    days: Days = None,
) -> Iterator[dg.AssetCheckResult]:
    """Every check CHECKED_TABLES gives `table`, evaluated on one connection (a partitioned mart: on `days`)."""
    checks = CHECKED_TABLES[table]
    yield check_unique_key(con, table, days)
    if checks.currency:
        yield check_currencies(con, table, days)
    if checks.as_of:
        yield check_as_of(con, table, now, thresholds.clock_skew_seconds, days)
    if checks.amounts:
        yield check_amounts(con, table, days)
    if checks.freshness:
        yield check_freshness(con, now, thresholds.staleness_hours)


def mart_check_specs(table: str) -> list[dg.AssetCheckSpec]:
    """The checks a partitioned mart runs itself, on the days it rebuilt (blocking ones stop what follows)."""
    return _specs(table)


def _specs(table: str) -> list[dg.AssetCheckSpec]:
    checks = CHECKED_TABLES[table]
    specs = [dg.AssetCheckSpec(UNIQUE_KEY, asset=table, blocking=True,
                               description=f"({', '.join(TABLES[table].key)}) is unique")]
    if checks.currency:
        specs.append(dg.AssetCheckSpec(CURRENCIES_VALID, asset=table, blocking=True,
                                       description="currencies are lowercase ISO 4217 codes"))
    if checks.as_of:
        specs.append(dg.AssetCheckSpec(AS_OF_NOT_IN_FUTURE, asset=table, blocking=True,
                                       description="no as_of in the future (beyond a clock-skew allowance)"))
    if checks.amounts:
        specs.append(dg.AssetCheckSpec(AMOUNTS_MATCH_TYPE, asset=table, blocking=True,
                                       description="cash rows carry no used amount, credit rows no available"))
    if checks.freshness:
        specs.append(dg.AssetCheckSpec(BALANCES_FRESH, asset=table, blocking=False,
                                       description=f"active accounts' balances are recent (warn; {STALENESS_ENV})"))
    return specs


def _log_failures(context: dg.AssetCheckExecutionContext, table: str, results: list[dg.AssetCheckResult]) -> None:
    for result in results:
        if not result.passed:
            details = ", ".join(f"{name}={value.value}" for name, value in result.metadata.items())
            context.log.warning(f"{table} {result.check_name} did not pass: {details}")


_FAILURE_RATE_SPEC = dg.AssetCheckSpec(
    REFRESH_FAILURE_RATE, asset="fc_balance_refreshes", blocking=False,
    description=f"The last run's failed + timed_out + error share of attempted refreshes (warn; {FAILURE_RATE_ENV}).",
)


# The ingest's checks in one step (one reader open, one step of the daily run): fc_balances' and the failure rate.
@dg.multi_asset_check(name="fc_ingest_checks", specs=[*_specs("fc_balances"), _FAILURE_RATE_SPEC],
                      description="Data-quality checks on the tables the ingest lands.")
def ingest_checks(
    context: dg.AssetCheckExecutionContext, config: DataQualityConfig, warehouse: WarehouseResource
) -> Iterator[dg.AssetCheckResult]:
    thresholds = resolve_thresholds(config)
    now = datetime.now(UTC)
    with warehouse.reader() as con:
        results = list(table_check_results(con, "fc_balances", thresholds, now))
        rate = check_failure_rate(con, thresholds.max_failure_rate)
    _log_failures(context, "fc_balances", results)
    yield from results
    yield rate


# The marts check themselves inside their assets (the partitioned ones the days they rebuilt; see assets/marts.py).
CHECKS: list[dg.AssetChecksDefinition] = [ingest_checks]
