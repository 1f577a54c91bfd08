"""What DuckDB holds per Iceberg partition of a table: partition keys in SQL, row counts, fingerprints, and the
marks an in-place write leaves for the next publish. No pyiceberg here: the write path marks partitions too."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import duckdb

from pipelines.contract.schema import quote
from pipelines.contract.tables import TABLES
from pipelines.sql import load_sql
from pipelines.warehouse.base import quoted

_DAY_MICROS = 86_400_000_000
# Tables whose write updates rows in place (an upsert: write_fc_balance_refreshes.sql), so a partition can change
# without its row count changing; every other published table's rows are only inserted or deleted.
UPDATED_IN_PLACE = frozenset({"fc_balance_refreshes"})


@dataclass(frozen=True)
class PartitionState:
    row_count: int
    fingerprint: str


def partition_value_sql(table: str) -> str:
    """The SQL giving a partitioned table's row its partition value (a UTC DATE for a day transform)."""
    partition = TABLES[table].partition
    assert partition is not None
    column = quote(partition.column)
    return f"CAST({column} AS DATE)" if partition.transform == "day" else column


def partition_key_sql(table: str) -> str:
    """The SQL giving a row's partition key as Iceberg prints the partition value ('' when unpartitioned)."""
    if TABLES[table].partition is None:
        return "''"
    return f"coalesce(CAST({partition_value_sql(table)} AS VARCHAR), 'null')"


def dated(table: str) -> bool:
    """Partition keys are UTC days (a day transform or a DATE column): chunks can be ranges zone maps use."""
    partition = TABLES[table].partition
    if partition is None:
        return False
    return partition.transform == "day" or TABLES[table].column(partition.column).type == "DATE"


def day_range_sql(table: str, first: date, last: date) -> tuple[str, dict[str, object]]:
    """A WHERE condition on the partition column for the days first..last, and its parameters."""
    partition = TABLES[table].partition
    assert partition is not None
    column = quote(partition.column)
    if partition.transform == "day":
        start = datetime.combine(first, time(), UTC)
        end = datetime.combine(last + timedelta(days=1), time(), UTC)
        return f"{column} >= $range_start AND {column} < $range_end", {"range_start": start, "range_end": end}
    return f"{column} BETWEEN $range_start AND $range_end", {"range_start": first, "range_end": last}


def contiguous(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days (first, last)."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and (day - ranges[-1][1]).days == 1:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def current_partitions(
    con: duckdb.DuckDBPyConnection, table: str, days: Iterable[date] | None = None
) -> dict[str, PartitionState]:
    """Rows and fingerprint per partition as DuckDB holds them; `days` limits a dated table to those days."""
    sql = load_sql("iceberg/partition_stats")
    value, key = _grouped_value(table)
    found: dict[str, PartitionState] = {}
    ranges: list[tuple[date, date] | None] = [None] if days is None else list(contiguous(days))
    for day_range in ranges:
        where, params = ("", {}) if day_range is None else day_range_sql(table, *day_range)
        rows = con.execute(
            sql.format(table=quoted(table), value=value, key=key, where=f"WHERE {where}" if where else ""),
            params,
        ).fetchall()
        # An unpartitioned table's aggregate has a row even when the table is empty: no rows, no partition.
        found.update({str(key): PartitionState(int(count), str(print_)) for key, count, print_ in rows if count})
    return found


def partitions_of(con: duckdb.DuckDBPyConnection, table: str, keys: Iterable[str]) -> dict[str, PartitionState]:
    """Rows and fingerprint of the given partitions of a partitioned table (days by their ranges, zone maps
    skipping the rest; other keys by one filtered pass)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    if dated(table) and "null" not in wanted:
        return current_partitions(con, table, [date.fromisoformat(key) for key in wanted])
    value, key = _grouped_value(table)
    rows = con.execute(load_sql("iceberg/partition_stats").format(
        table=quoted(table), value=value, key=key, where=f"WHERE list_contains($keys, {partition_key_sql(table)})"),
        {"keys": wanted}).fetchall()
    return {str(found): PartitionState(int(count), str(print_)) for found, count, print_ in rows if count}


def _grouped_value(table: str) -> tuple[str, str]:
    """(the SQL of a row's partition value v, the SQL of its key from v): grouped by v, the key text is computed
    once per partition, not per row. A day transform of a timestamp from epoch microseconds, floored (Iceberg's own
    day; casting every timestamp to a date in the session's zone cost ten times more)."""
    partition = TABLES[table].partition
    if partition is None:
        return "NULL", "''"
    if partition.transform == "day" and TABLES[table].column(partition.column).type.startswith("TIMESTAMP"):
        micros = f"epoch_us({quote(partition.column)})"
        value = f"({micros} - (({micros} % {_DAY_MICROS}) + {_DAY_MICROS}) % {_DAY_MICROS}) // {_DAY_MICROS}"
        return value, "coalesce(CAST(DATE '1970-01-01' + CAST(v AS INTEGER) AS VARCHAR), 'null')"
    return partition_value_sql(table), "coalesce(CAST(v AS VARCHAR), 'null')"


def partition_counts(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    """Rows per partition of a partitioned table, reading its partition column alone."""
    assert TABLES[table].partition is not None
    value, key = _grouped_value(table)
    sql = load_sql("iceberg/partition_counts").format(table=quoted(table), value=value, key=key)
    return {str(found): int(count) for found, count in con.execute(sql).fetchall()}


def recorded_partitions(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, PartitionState]:
    """What the last commit of each partition held, as the publish recorded it."""
    rows = con.execute(load_sql("iceberg/published"), {"table_name": table}).fetchall()
    return {key: PartitionState(int(count), print_) for key, count, print_ in rows}


def mark_written(con: duckdb.DuckDBPyConnection, table: str, view: str) -> None:
    """In a write's transaction: mark the partitions of the rows in `view` for the next publish, if the table's
    write updates rows in place (see UPDATED_IN_PLACE)."""
    if table in UPDATED_IN_PLACE and TABLES[table].partition is not None:
        con.execute(load_sql("iceberg/pending_mark").format(key=partition_key_sql(table), view=view),
                    {"table_name": table})


def marked_partitions(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The partitions writes marked since the table's last publish."""
    return {row[0] for row in con.execute(load_sql("iceberg/pending"), {"table_name": table}).fetchall()}


def clear_marks(con: duckdb.DuckDBPyConnection, table: str, keys: Iterable[str]) -> None:
    """In the record's transaction: the marks the publish has fingerprinted go (marks added since stay)."""
    if keys := sorted(keys):
        con.execute(load_sql("iceberg/pending_clear"), {"table_name": table, "keys": keys})
