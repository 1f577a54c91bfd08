"""Builds the analytics marts day by day in DuckDB from the contract tables; installs the SQL macros (no Dagster)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import duckdb

from pipelines.marts.specs import FIRST_DAY, MART_SPECS, MARTS, MartSpec, utc
from pipelines.settings import default
from pipelines.sql import load_sql
from pipelines.warehouse.base import memory_limit_lowered

# Derived from the specs (pipelines/marts/specs.py), the one place each mart is declared.
MART_TABLES: tuple[str, ...] = tuple(spec.name for spec in MARTS)  # in build order
MART_INPUTS: dict[str, tuple[str, ...]] = {spec.name: spec.reads for spec in MARTS}
PARTITION_COLUMNS: dict[str, str] = {s.name: s.partition_column for s in MARTS if s.partition_column is not None}
# A range of partitions is built batch_days per transaction, the accounts split into hash buckets of about
# BUCKET_ROWS rows each (days of the batch plus the days before it the batch reads), so one statement's memory
# stays bounded whatever the number of accounts.
BUCKET_ROWS: dict[str, int] = {name: MART_SPECS[name].bucket_rows for name in PARTITION_COLUMNS}
MACROS: tuple[str, ...] = ("fc_sufficient_funds",)
CURRENT_FEATURES_VIEW = "fc_current_underwriting_features"
_HISTORY_START: date = default("FC_BALANCES_HISTORY_START")  # both declared in pipelines/settings.py
_CARRY_FORWARD_DAYS: int = default("FC_BALANCES_CARRY_FORWARD_DAYS")


class MartBuildError(ValueError):
    """The marts cannot be built as asked (unknown mart, missing input table, naive build time, bad range)."""


@dataclass(frozen=True)
class HistorySettings:
    """How history is cut into days: the first partition and how long a balance is carried forward."""

    history_start: date = _HISTORY_START
    carry_forward_days: int = _CARRY_FORWARD_DAYS

    def __post_init__(self) -> None:
        if self.carry_forward_days < 0:
            raise MartBuildError(f"carry_forward_days must be 0 or more, got {self.carry_forward_days}")


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


def _day_params(spec: MartSpec, day: date, seed: bool, build_at: datetime) -> dict[str, object]:
    """The parameters of a mart's one-day SQL, all but its bucket."""
    day_end = utc(day + timedelta(days=1))
    return {"day": day, "day_end": day_end, "seed": seed, "seed_end": day_end if seed else FIRST_DAY,
            "built_at": build_at} | dict(spec.sql_constants)


def _build_one_day(
    con: duckdb.DuckDBPyConnection, spec: MartSpec, day: date, build_at: datetime, settings: HistorySettings
) -> int:
    """One day by the mart's one-day SQL (features: sql/marts/fc_underwriting_features.sql, the reference the range
    builds are tested against): a grouped pass over its window's days beats a window pass over every key's days."""
    table, column, sql = spec.name, spec.partition_column, spec.day_sql
    assert column is not None and sql is not None
    seed = day <= settings.history_start or not _built(con, table, day - timedelta(days=1))
    params = _day_params(spec, day, seed, build_at)
    buckets = _buckets(con, spec.lookback_days + 1, spec.day_bucket_rows)

    def work() -> int:
        con.execute(load_sql("marts/delete_partition").format(table=table, column=column), {"day": day})
        for bucket in range(buckets):
            con.execute(load_sql(sql), params | {"bucket": bucket, "buckets": buckets})
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
    """Rebuild the days first..last of a partitioned mart, its spec's batch_days per transaction; total rows.

    Each batch reads its own days (plus its spec's lookback days before) and the partition before it, in hash
    buckets of accounts sized so one statement holds about BUCKET_ROWS[table] rows: memory follows the batch, not
    history, and a crash loses at most the batch in progress (the next run rebuilds it).
    """
    if table not in PARTITION_COLUMNS:
        raise MartBuildError(f"{table} is not a partitioned mart; partitioned: {', '.join(PARTITION_COLUMNS)}")
    if last < first:
        raise MartBuildError(f"empty range {first}..{last}")
    _check_build_at(build_at)
    spec = MART_SPECS[table]
    column = PARTITION_COLUMNS[table]
    total = 0
    for batch_first, batch_last in day_batches(first, last, spec.batch_days):
        if spec.day_sql is not None and batch_first == batch_last:
            with memory_limit_lowered(con, 0):  # SQL only: Python holds nothing more
                rows = _build_one_day(con, spec, batch_first, build_at, settings)
        else:
            span = (batch_last - batch_first).days + 1 + spec.lookback_days
            buckets = _buckets(con, span, BUCKET_ROWS[table])
            seed = batch_first <= settings.history_start or not _built(con, table, batch_first - timedelta(days=1))
            params = {"first": batch_first, "last": batch_last, "seed": seed, "built_at": build_at} | dict(
                spec.sql_constants)
            if spec.range_params is not None:
                params |= spec.range_params(batch_first, batch_last, seed, settings)
            bounds = {"first": batch_first, "last": batch_last}

            def work(bounds: dict[str, date] = bounds, buckets: int = buckets, params: dict[str, object] = params
                     ) -> int:
                con.execute(load_sql("marts/delete_partitions").format(table=table, column=column), bounds)
                left = (spec.range_engine(con, params, buckets) if spec.range_engine is not None
                        else range(buckets))
                if spec.sql is not None:
                    for bucket in left:
                        con.execute(load_sql(spec.sql), params | {"bucket": bucket, "buckets": buckets})
                else:
                    # No range statement (features: the buckets past float64's exact integers): the one-day SQL, a
                    # day at a time, each day reading the bucket's previous day just inserted.
                    assert spec.day_sql is not None
                    left = list(left)
                    for day in _days(bounds["first"], bounds["last"]):
                        day_params = _day_params(spec, day, bool(params["seed"]) and day == bounds["first"], build_at)
                        for bucket in left:
                            con.execute(load_sql(spec.day_sql), day_params | {"bucket": bucket, "buckets": buckets})
                counts = dict(con.execute(
                    load_sql("marts/count_partitions").format(table=table, column=column), bounds).fetchall())
                for day in _days(bounds["first"], bounds["last"]):
                    _record(con, table, day, build_at, int(counts.get(day, 0)))
                return sum(int(n) for n in counts.values())

            with memory_limit_lowered(con, spec.python_memory):
                rows = _in_transaction(con, work)
        total += rows
        if on_batch is not None:  # progress: a full rebuild of a large history takes minutes
            on_batch(batch_first, batch_last, rows)
    return total


def record_days(con: duckdb.DuckDBPyConnection, table: str, first: date, last: date, build_at: datetime) -> int:
    """Record each day first..last of a partitioned mart as built at build_at with its rows (in the caller's
    transaction: a sharded build's commit, shard_commit.py); the rows of the range."""
    column = PARTITION_COLUMNS[table]
    counts = dict(con.execute(load_sql("marts/count_partitions").format(table=table, column=column),
                              {"first": first, "last": last}).fetchall())
    for day in _days(first, last):
        _record(con, table, day, build_at, int(counts.get(day, 0)))
    return sum(int(n) for n in counts.values())


def set_watermark(con: duckdb.DuckDBPyConnection, table: str, build_at: datetime) -> None:
    """Record that every partition of `table` up to today is up to date with balances fetched before build_at."""
    _in_transaction(con, lambda: _record(con, table, None, build_at, 0) or 0)


def build_table(con: duckdb.DuckDBPyConnection, table: str, build_at: datetime, full: bool = False) -> int:
    """Build an unpartitioned mart as its spec says, in one transaction; its rows.

    refill: empty it and run its SQL (one row per key, not history). since_watermark: run its SQL over the balances
    fetched since its last build (all of them with `full` or on the first build), then its publishing SQL.
    """
    _check_build_at(build_at)
    spec = MART_SPECS[table]
    if spec.partitioned:
        raise MartBuildError(f"{table} is a partitioned mart: build it by days")
    _require_inputs(con, [table])
    with memory_limit_lowered(con, spec.python_memory):
        return _build_unpartitioned(con, spec, build_at, full)


def _build_unpartitioned(con: duckdb.DuckDBPyConnection, spec: MartSpec, build_at: datetime, full: bool) -> int:
    table = spec.name
    if spec.builder is not None:  # a mart that builds itself (its own transaction and build record)
        return spec.builder(con, build_at)
    params: dict[str, object] = {"build_at": build_at}
    if spec.build == "since_watermark":
        since = con.execute(load_sql("marts/watermark"), {"mart": table}).fetchone()[0]
        params = {"since": since or FIRST_DAY, "built_at": build_at, "full": full or since is None}

    def work() -> int:
        if spec.build == "refill":
            con.execute(load_sql("marts/clear_table").format(table=table))
        con.execute(load_sql(spec.sql), params)
        if spec.then_sql is not None:
            con.execute(load_sql(spec.then_sql))
        rows = _count(con, table)
        _record(con, table, None, build_at, rows)
        return rows

    return _in_transaction(con, work)


def out_of_date_start(con: duckdb.DuckDBPyConnection, today: date, settings: HistorySettings) -> date | None:
    """The earliest day whose partitions are out of date (see sql/marts/out_of_date.sql); None if none is."""
    if today < settings.history_start:
        return None
    since = con.execute(load_sql("marts/since_watermark"), {"marts": list(PARTITION_COLUMNS)}).fetchone()[0]
    row = con.execute(load_sql("marts/out_of_date"), {
        "history_start": settings.history_start, "today": today, "carry_days": settings.carry_forward_days,
        "since": since or FIRST_DAY,
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
    build_days = first is not None and last is not None and first <= last
    # Decided before any build: a range that covers every out-of-date day up to today moves the watermarks.
    complete = build_days and last >= today and (full or first <= (out_of_date_start(con, today, settings) or today))
    for spec in MARTS:
        if not spec.partitioned:
            counts[spec.name] = build_table(con, spec.name, build_at, full=full)
        elif build_days:
            counts[spec.name] = build_partitions(con, spec.name, first, last, build_at, settings)
            if complete:
                set_watermark(con, spec.name, build_at)
    return counts


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or replace) the SQL macros in the connected database; needs a read-write connection."""
    for macro in MACROS:
        con.execute(load_sql(f"macros/{macro}"))
