"""Builds the analytics marts day by day in DuckDB from the contract tables; installs the SQL macros (no Dagster)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import duckdb

from pipelines.contract.tables import TABLES
from pipelines.marts import feature_windows
from pipelines.sql import load_sql

# In build order: a mart comes after the marts it reads.
MART_TABLES: tuple[str, ...] = (
    "fc_latest_balances",
    "fc_daily_balances",
    "fc_underwriting_features",
    "fc_customer_liquidity",
)
# The tables each mart reads: contract tables and other marts (a partitioned mart also reads itself: the
# previous day's partition).
MART_INPUTS: dict[str, tuple[str, ...]] = {
    "fc_latest_balances": ("fc_balances", "fc_accounts"),
    "fc_daily_balances": ("fc_balances",),
    "fc_underwriting_features": ("fc_balances", "fc_daily_balances"),
    "fc_customer_liquidity": ("fc_latest_balances",),
}
# Partitioned marts and the DATE column naming each partition, from the declarations (their Iceberg partition).
PARTITION_COLUMNS: dict[str, str] = {
    name: TABLES[name].partition.column  # type: ignore[union-attr]
    for name in MART_INPUTS if TABLES[name].partition is not None
}
FEATURE_WINDOWS: tuple[int, ...] = (30, 90)
# A range of partitions is built this many days per transaction, the accounts split into hash buckets of about
# BUCKET_ROWS rows each (days of the batch plus the days before it the batch reads), so one statement's memory
# stays bounded whatever the number of accounts.
RANGE_BATCH_DAYS: dict[str, int] = {
    "fc_daily_balances": 31,
    # Each batch also computes its windows over the 89 days before it, so longer batches waste less.
    "fc_underwriting_features": 365,
}
RANGE_LOOKBACK_DAYS: dict[str, int] = {"fc_daily_balances": 0, "fc_underwriting_features": max(FEATURE_WINDOWS) - 1}
RANGE_SQL: dict[str, str] = {
    "fc_daily_balances": "marts/fc_daily_balances",
    "fc_underwriting_features": "marts/fc_underwriting_features_range",
}
# Rows per bucket: a features bucket becomes numpy matrices (marts/feature_windows.py, or 18 windowed aggregates
# in the SQL statement that takes over past float64's exact integers), so its buckets are smaller. At 500,000 rows,
# with the slices computed ahead in a thread, a 100,000-account batch builds as fast as the earlier code did at
# 1,000,000, and the features phase peaks about 150 MiB lower (as measured).
BUCKET_ROWS: dict[str, int] = {"fc_daily_balances": 2_000_000, "fc_underwriting_features": 500_000}
# The one-day features statement groups a bucket's 90 days (no window frames, no window function): lighter per row.
# At 3,000,000 the daily run at 100,000 accounts peaks at 0.80 GiB and takes 0.6 s less than at 1,500,000 (0.74 GiB).
ONE_DAY_BUCKET_ROWS = 3_000_000
MACROS: tuple[str, ...] = ("fc_sufficient_funds",)
CURRENT_FEATURES_VIEW = "fc_current_underwriting_features"
# "Before everything" for a watermark that does not exist yet (bound as a parameter, unlike -infinity).
_FIRST_DAY = datetime.min.replace(tzinfo=UTC)


class MartBuildError(ValueError):
    """The marts cannot be built as asked (unknown mart, missing input table, naive build time, bad range)."""


@dataclass(frozen=True)
class HistorySettings:
    """How history is cut into days: the first partition and how long a balance is carried forward."""

    history_start: date = date(2024, 1, 1)
    carry_forward_days: int = 31

    def __post_init__(self) -> None:
        if self.carry_forward_days < 0:
            raise MartBuildError(f"carry_forward_days must be 0 or more, got {self.carry_forward_days}")


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _check_build_at(build_at: datetime) -> None:
    if build_at.tzinfo is None or build_at.utcoffset() is None:
        raise MartBuildError("build_at must be timezone-aware (e.g. datetime.now(UTC))")


def _all_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute(load_sql("marts/all_tables")).fetchall()}


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    # `table` comes from the fixed MART_TABLES allow-list.
    row = con.execute(load_sql("warehouse/count_rows").format(table=table)).fetchone()
    return int(row[0]) if row else 0


def require_mart_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Fail with one line unless every mart and its inputs exist (they come from the declarations and migrations)."""
    _require_inputs(con, MART_TABLES)


def ensure_mart_tables(con: duckdb.DuckDBPyConnection) -> None:
    """require_mart_tables, and create the current-features view where missing (a warehouse made before the
    migrations created it); a no-op write otherwise."""
    require_mart_tables(con)
    if CURRENT_FEATURES_VIEW not in _all_tables(con):
        con.execute(load_sql("marts/create_views"))


def _require_inputs(con: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> None:
    available = _all_tables(con)
    for table in tables:
        missing = [name for name in (*MART_INPUTS[table], table, "_fc_mart_partitions") if name not in available]
        if missing:
            raise MartBuildError(
                f"{table} needs {', '.join(missing)}, which the warehouse does not have (open it with the current "
                "fc-balances to migrate it)"
            )


def _record(con: duckdb.DuckDBPyConnection, mart: str, day: date | None, built_at: datetime, rows: int) -> None:
    params = {"mart": mart, "day": day}
    con.execute(load_sql("marts/forget_build"), params)
    con.execute(load_sql("marts/record_build"), params | {"built_at": built_at, "row_count": rows})


def _built(con: duckdb.DuckDBPyConnection, mart: str, day: date) -> bool:
    return bool(con.execute(load_sql("marts/partition_built"), {"mart": mart, "day": day}).fetchone()[0])


def _in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], int]) -> int:
    con.begin()
    try:
        result = work()
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return result


def _partition_rows(con: duckdb.DuckDBPyConnection, table: str, day: date) -> int:
    column = PARTITION_COLUMNS[table]
    row = con.execute(load_sql("marts/count_partition").format(table=table, column=column), {"day": day}).fetchone()
    return int(row[0]) if row else 0


def build_partition(
    con: duckdb.DuckDBPyConnection, table: str, day: date, build_at: datetime, settings: HistorySettings
) -> int:
    """Replace one day of a partitioned mart in one transaction (delete the day, insert the day); its rows."""
    return build_partitions(con, table, day, day, build_at, settings)


def day_batches(first: date, last: date, size: int) -> list[tuple[date, date]]:
    """first..last cut into consecutive ranges of at most `size` days."""
    return [(start, min(start + timedelta(days=size - 1), last))
            for start in (first + timedelta(days=offset) for offset in range(0, (last - first).days + 1, size))]


def _buckets(con: duckdb.DuckDBPyConnection, days_per_key: int, bucket_rows: int) -> int:
    """How many hash buckets of accounts keep a statement that reads `days_per_key` rows a key near bucket_rows."""
    keys = int(con.execute(load_sql("marts/count_keys")).fetchone()[0])
    return max(1, -(-keys * days_per_key // bucket_rows))


def _build_feature_day(
    con: duckdb.DuckDBPyConnection, day: date, build_at: datetime, settings: HistorySettings
) -> int:
    """One window end by the grouped one-day SQL (sql/marts/fc_underwriting_features.sql, the reference the range
    builds are tested against): a grouped pass over its 90 days beats a window pass over every key's dense days."""
    table, column = "fc_underwriting_features", "window_end"
    seed = day <= settings.history_start or not _built(con, table, day - timedelta(days=1))
    day_end = _utc(day + timedelta(days=1))
    params = {"day": day, "day_end": day_end, "seed": seed, "seed_end": day_end if seed else _FIRST_DAY,
              "built_at": build_at}
    buckets = _buckets(con, max(FEATURE_WINDOWS), ONE_DAY_BUCKET_ROWS)

    def work() -> int:
        con.execute(load_sql("marts/delete_partition").format(table=table, column=column), {"day": day})
        for bucket in range(buckets):
            con.execute(load_sql(f"marts/{table}"), params | {"bucket": bucket, "buckets": buckets})
        rows = _partition_rows(con, table, day)
        _record(con, table, day, build_at, rows)
        return rows

    return _in_transaction(con, work)


def build_partitions(
    con: duckdb.DuckDBPyConnection,
    table: str,
    first: date,
    last: date,
    build_at: datetime,
    settings: HistorySettings,
    on_batch: Callable[[date, date, int], None] | None = None,
) -> int:
    """Rebuild the days first..last of a partitioned mart, RANGE_BATCH_DAYS[table] days per transaction; total rows.

    Each batch reads its own days (plus, for features, the 89 days before) and the partition before it, in
    hash buckets of accounts sized so one statement holds about BUCKET_ROWS[table] rows: memory follows the batch,
    not history, and a crash loses at most the batch in progress (the next run rebuilds it).
    """
    if table not in PARTITION_COLUMNS:
        raise MartBuildError(f"{table} is not a partitioned mart; partitioned: {', '.join(PARTITION_COLUMNS)}")
    if last < first:
        raise MartBuildError(f"empty range {first}..{last}")
    _check_build_at(build_at)
    column = PARTITION_COLUMNS[table]
    total = 0
    for batch_first, batch_last in day_batches(first, last, RANGE_BATCH_DAYS[table]):
        if table == "fc_underwriting_features" and batch_first == batch_last:
            rows = _build_feature_day(con, batch_first, build_at, settings)
        else:
            span = (batch_last - batch_first).days + 1 + RANGE_LOOKBACK_DAYS[table]
            buckets = _buckets(con, span, BUCKET_ROWS[table])
            seed = batch_first <= settings.history_start or not _built(con, table, batch_first - timedelta(days=1))
            params = _range_params(table, batch_first, batch_last, seed, build_at, settings)
            bounds = {"first": batch_first, "last": batch_last}

            def work(bounds: dict[str, date] = bounds, buckets: int = buckets, params: dict[str, object] = params
                     ) -> int:
                con.execute(load_sql("marts/delete_partitions").format(table=table, column=column), bounds)
                sql_buckets = (feature_windows.build_range(con, params, buckets)
                               if table == "fc_underwriting_features" else range(buckets))
                for bucket in sql_buckets:
                    con.execute(load_sql(RANGE_SQL[table]), params | {"bucket": bucket, "buckets": buckets})
                counts = dict(con.execute(
                    load_sql("marts/count_partitions").format(table=table, column=column), bounds).fetchall())
                for day in _days(bounds["first"], bounds["last"]):
                    _record(con, table, day, build_at, int(counts.get(day, 0)))
                return sum(int(n) for n in counts.values())

            rows = _in_transaction(con, work)
        total += rows
        if on_batch is not None:  # progress: a full rebuild of a large history takes minutes
            on_batch(batch_first, batch_last, rows)
    return total


def _range_params(
    table: str, first: date, last: date, seed: bool, build_at: datetime, settings: HistorySettings
) -> dict[str, object]:
    params: dict[str, object] = {"first": first, "last": last, "seed": seed, "built_at": build_at}
    if table == "fc_daily_balances":
        seed_start = _utc(first - timedelta(days=settings.carry_forward_days))
        params |= {"first_start": _utc(first), "last_end": _utc(last + timedelta(days=1)),
                   "carry_days": settings.carry_forward_days,
                   "seed_start": seed_start, "seed_end": _utc(first) if seed else seed_start}
    else:
        params["seed_end"] = _utc(first) if seed else _FIRST_DAY
    return params


def set_watermark(con: duckdb.DuckDBPyConnection, table: str, build_at: datetime) -> None:
    """Record that every partition of `table` up to today is up to date with balances fetched before build_at."""
    _in_transaction(con, lambda: _record(con, table, None, build_at, 0) or 0)


def update_latest_balances(con: duckdb.DuckDBPyConnection, build_at: datetime, full: bool = False) -> int:
    """Bring fc_latest_balances up to date from the balances fetched since its last build; its rows."""
    _check_build_at(build_at)
    _require_inputs(con, ["fc_latest_balances"])
    since = con.execute(load_sql("marts/watermark"), {"mart": "fc_latest_balances"}).fetchone()[0]
    full = full or since is None

    def work() -> int:
        con.execute(load_sql("marts/fc_latest_balances"),
                    {"since": since or _FIRST_DAY, "built_at": build_at, "full": full})
        con.execute(load_sql("marts/replace_latest_balances"))
        rows = _count(con, "fc_latest_balances")
        _record(con, "fc_latest_balances", None, build_at, rows)
        return rows

    return _in_transaction(con, work)


def build_customer_liquidity(con: duckdb.DuckDBPyConnection, build_at: datetime) -> int:
    """Refill fc_customer_liquidity from fc_latest_balances (one row per key, not history); its rows."""
    _check_build_at(build_at)

    def work() -> int:
        con.execute(load_sql("marts/clear_table").format(table="fc_customer_liquidity"))
        con.execute(load_sql("marts/fc_customer_liquidity"), {"build_at": build_at})
        rows = _count(con, "fc_customer_liquidity")
        _record(con, "fc_customer_liquidity", None, build_at, rows)
        return rows

    return _in_transaction(con, work)


def out_of_date_start(con: duckdb.DuckDBPyConnection, today: date, settings: HistorySettings) -> date | None:
    """The earliest day whose partitions are out of date (see sql/marts/out_of_date.sql); None if none is."""
    if today < settings.history_start:
        return None
    since = con.execute(load_sql("marts/since_watermark")).fetchone()[0]
    row = con.execute(load_sql("marts/out_of_date"), {
        "history_start": settings.history_start, "today": today, "carry_days": settings.carry_forward_days,
        "since": since or _FIRST_DAY,
    }).fetchone()
    return row[0] if row else None


def build_marts(
    con: duckdb.DuckDBPyConnection,
    build_at: datetime,
    settings: HistorySettings | None = None,
    first: date | None = None,
    last: date | None = None,
    full: bool = False,
) -> dict[str, int]:
    """Build every mart the way one run does; rows written per mart (partitioned: in the rebuilt range).

    The range defaults to the out-of-date days up to the build day (or every day with `full`); the
    unpartitioned marts are updated after the partitions.
    """
    _check_build_at(build_at)
    settings = settings or HistorySettings()
    ensure_mart_tables(con)
    today = build_at.astimezone(UTC).date()
    if full:
        first, last = settings.history_start, today
    elif first is None:
        first = out_of_date_start(con, today, settings)
        last = today
    counts = dict.fromkeys(MART_TABLES, 0)
    counts["fc_latest_balances"] = update_latest_balances(con, build_at, full=full)
    if first is not None and last is not None and first <= last:
        complete = last >= today and (full or first <= (out_of_date_start(con, today, settings) or today))
        for table in PARTITION_COLUMNS:
            counts[table] = build_partitions(con, table, first, last, build_at, settings)
        if complete:
            for table in PARTITION_COLUMNS:
                set_watermark(con, table, build_at)
    counts["fc_customer_liquidity"] = build_customer_liquidity(con, build_at)
    return counts


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or replace) the SQL macros in the connected database; needs a read-write connection."""
    for macro in MACROS:
        con.execute(load_sql(f"macros/{macro}"))
