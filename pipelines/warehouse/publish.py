"""Publishes DuckDB tables to their Iceberg tables: the partitions whose rows changed, one snapshot per table per run.

What was committed is recorded per partition (rows and a fingerprint of its rows) in `_fc_iceberg_partitions`,
after the Iceberg commit. A publish compares DuckDB with that record and overwrites exactly the partitions that
differ (deleting their old files and adding new ones in ONE overwrite snapshot, tagged with the run id), so a
crash anywhere leaves Iceberg at the previous snapshot or the new one, and the next publish commits whatever the
record does not hold yet: never a duplicate row (a partition is replaced, never appended to twice), never a lost
one. pyiceberg's `upsert` is never used.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import duckdb
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.io.pyarrow import _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table as IcebergTable

from pipelines.contract.schema import quote
from pipelines.contract.tables import TABLES
from pipelines.marts.day_runs import day_runs
from pipelines.sql import load_sql
from pipelines.warehouse.base import WarehouseError, memory_limit_lowered, one_line, quoted
from pipelines.warehouse.catalog import arrow_schema_of, ensure_table

# Rows of consecutive partitions read and written per query: Arrow holds a chunk and pyiceberg a partitioned copy
# of it outside DuckDB, whose limit gives PUBLISH_MEMORY up meanwhile.
PUBLISH_CHUNK_ROWS = 400_000
PUBLISH_MEMORY = 384 * 2**20
_READ_BATCH_ROWS = 64 * 1024
RUN_ID_PROPERTY = "fc.run-id"
# Test hook: called with the table's name between its Iceberg commit and the DuckDB record (kill -9 trials).
STEP_HOOK: Callable[[str], None] | None = None
RANGE_PROPERTY = "fc.partition-range"
PARTITIONS_PROPERTY = "fc.partitions"


@dataclass(frozen=True)
class PartitionState:
    row_count: int
    fingerprint: str


@dataclass(frozen=True)
class Published:
    """What one table's publish did: partitions replaced or removed, rows written, the new snapshot (None: none)."""

    table: str
    partitions: int
    rows: int
    snapshot_id: int | None


def partition_key_sql(table: str) -> str:
    """The SQL giving a row's partition key as Iceberg prints the partition value ('' when unpartitioned)."""
    partition = TABLES[table].partition
    if partition is None:
        return "''"
    column = quote(partition.column)
    value = f"CAST({column} AS DATE)" if partition.transform == "day" else column
    return f"coalesce(CAST({value} AS VARCHAR), 'null')"


def _dated(table: str) -> bool:
    """Partition keys are UTC days (a day transform or a DATE column): chunks can be ranges zone maps use."""
    partition = TABLES[table].partition
    if partition is None:
        return False
    return partition.transform == "day" or TABLES[table].column(partition.column).type == "DATE"


def _day_range_sql(table: str, first: date, last: date) -> tuple[str, dict[str, object]]:
    """A WHERE condition on the partition column for the days first..last, and its parameters."""
    partition = TABLES[table].partition
    assert partition is not None
    column = quote(partition.column)
    if partition.transform == "day":
        start = datetime.combine(first, time(), UTC)
        end = datetime.combine(last + timedelta(days=1), time(), UTC)
        return f"{column} >= $range_start AND {column} < $range_end", {"range_start": start, "range_end": end}
    return f"{column} BETWEEN $range_start AND $range_end", {"range_start": first, "range_end": last}


def _contiguous(days: Iterable[date]) -> list[tuple[date, date]]:
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
    found: dict[str, PartitionState] = {}
    ranges: list[tuple[date, date] | None] = [None] if days is None else list(_contiguous(days))
    for day_range in ranges:
        where, params = ("", {}) if day_range is None else _day_range_sql(table, *day_range)
        rows = con.execute(
            sql.format(table=quoted(table), key=partition_key_sql(table), where=f"WHERE {where}" if where else ""),
            params,
        ).fetchall()
        # An unpartitioned table's aggregate has a row even when the table is empty: no rows, no partition.
        found.update({str(key): PartitionState(int(count), str(print_)) for key, count, print_ in rows if count})
    return found


def recorded_partitions(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, PartitionState]:
    rows = con.execute(load_sql("iceberg/published"), {"table_name": table}).fetchall()
    return {key: PartitionState(int(count), print_) for key, count, print_ in rows}


def unpublished_mart_days(con: duckdb.DuckDBPyConnection, table: str) -> list[date]:
    """Days of a partitioned mart built since their last publish (a crash stopped that publish)."""
    return [row[0] for row in con.execute(load_sql("iceberg/mart_days_unpublished"), {"mart": table}).fetchall()]


def _chunks(table: str, stale: dict[str, int]) -> list[list[str]]:
    """The stale partition keys in groups of about PUBLISH_CHUNK_ROWS rows (consecutive days for dated tables)."""
    if _dated(table):
        by_day = {date.fromisoformat(key): rows for key, rows in stale.items() if key != "null"}
        groups = [[day.isoformat() for day in run] for run in day_runs(by_day, PUBLISH_CHUNK_ROWS)]
        return groups + ([["null"]] if "null" in stale else [])
    groups: list[list[str]] = []
    size = 0
    for key in sorted(stale):
        if groups and size + stale[key] <= PUBLISH_CHUNK_ROWS:
            groups[-1].append(key)
            size += stale[key]
        else:
            groups.append([key])
            size = stale[key]
    return groups


def _chunk_tables(
    con: duckdb.DuckDBPyConnection, table: str, keys: list[str], schema: pa.Schema
) -> Iterator[pa.Table | pa.RecordBatchReader]:
    """The rows of the given partitions, in the Iceberg table's Arrow types: a whole chunk for a partitioned
    table (pyiceberg splits it by partition), a stream of batches for an unpartitioned one."""
    where, params = "", {}
    if _dated(table) and "null" not in keys:
        days = [date.fromisoformat(key) for key in keys]
        where, params = _day_range_sql(table, min(days), max(days))
    sql = load_sql("iceberg/partition_rows").format(
        columns=", ".join(quote(name) for name in TABLES[table].column_names), table=quoted(table),
        where_and=f"WHERE {where} AND" if where else "WHERE", key=partition_key_sql(table),
    )
    with con.cursor() as cursor:
        reader = cursor.sql(sql, params=params | {"keys": keys}).to_arrow_reader(_READ_BATCH_ROWS)
        if TABLES[table].partition is None:
            yield pa.RecordBatchReader.from_batches(schema, (batch.cast(schema) for batch in reader))
        else:
            yield reader.read_all().cast(schema)


def _files_of(table: IcebergTable, keys: set[str]) -> list[DataFile]:
    """The current snapshot's data files in the given partitions."""
    snapshot = table.current_snapshot()
    if snapshot is None or not keys:
        return []
    spec = table.spec()
    schema = table.schema()
    fields = spec.fields
    found = []
    for manifest in snapshot.manifests(table.io):
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            data_file = entry.data_file
            if not fields:
                key = ""
            else:
                field = fields[0]
                key = field.transform.to_human_string(schema.find_field(field.source_id).field_type,
                                                      data_file.partition[0])
            if key in keys:
                found.append(data_file)
    return found


def _commit(
    con: duckdb.DuckDBPyConnection, iceberg: IcebergTable, table: str, stale: dict[str, PartitionState],
    gone: set[str], run_id: str,
) -> int | None:
    """Replace the stale partitions and drop the gone ones in one overwrite snapshot; its id."""
    schema = arrow_schema_of(iceberg)
    counter = itertools.count()
    properties = {RUN_ID_PROPERTY: run_id, PARTITIONS_PROPERTY: str(len(stale) + len(gone))}
    keys = sorted(set(stale) | gone)
    if TABLES[table].partition is not None and keys:
        properties[RANGE_PROPERTY] = f"{keys[0]}..{keys[-1]}"
    # One transaction, one overwrite snapshot: the old files of the partitions out, their new files in.
    with iceberg.transaction() as transaction, transaction.update_snapshot(
        snapshot_properties=properties
    ).overwrite() as overwrite:
        for data_file in _files_of(iceberg, set(keys)):
            overwrite.delete_data_file(data_file)
        with memory_limit_lowered(con, PUBLISH_MEMORY):
            for chunk in _chunks(table, {key: state.row_count for key, state in stale.items()}):
                for rows in _chunk_tables(con, table, chunk, schema):
                    for data_file in _dataframe_to_data_files(
                        transaction.table_metadata, rows, iceberg.io, write_uuid=overwrite.commit_uuid,
                        counter=counter,
                    ):
                        overwrite.append_data_file(data_file)
    snapshot = iceberg.current_snapshot()
    return snapshot.snapshot_id if snapshot is not None else None


def publish_table(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, table: str, run_id: str, days: Iterable[date] | None = None,
) -> Published:
    """Commit the table's partitions that differ from what was last published; `days` limits a partitioned mart
    to those days (plus any day built since its last publish)."""
    iceberg = ensure_table(catalog, table)
    recorded = recorded_partitions(con, table)
    if days is not None and _dated(table):
        scope = set(days) | set(unpublished_mart_days(con, table))
        current = current_partitions(con, table, scope)
        in_scope = {day.isoformat() for day in scope}
        recorded = {key: state for key, state in recorded.items() if key in in_scope}
    else:
        current = current_partitions(con, table)
        if iceberg.current_snapshot() is None and not recorded and not current:
            return Published(table, 0, 0, None)
    stale = {key: state for key, state in current.items() if recorded.get(key) != state}
    gone = {key for key in recorded if key not in current}
    if not stale and not gone:
        return Published(table, 0, 0, None)
    try:
        snapshot_id = _commit(con, iceberg, table, stale, gone, run_id)
    except (OSError, pa.ArrowException, duckdb.Error, ValueError) as exc:
        raise WarehouseError(f"publishing {table} to Iceberg failed, its last snapshot stands: {one_line(exc)}") \
            from exc
    if STEP_HOOK is not None:
        STEP_HOOK(table)
    con.execute("BEGIN TRANSACTION")
    for key in sorted(gone):
        con.execute(load_sql("iceberg/forget_published"), {"table_name": table, "partition_key": key})
    for key, state in stale.items():
        con.execute(load_sql("iceberg/record_published"), {
            "table_name": table, "partition_key": key, "row_count": state.row_count,
            "fingerprint": state.fingerprint, "run_id": run_id, "snapshot_id": snapshot_id,
        })
    con.execute("COMMIT")
    return Published(table, len(stale) + len(gone), sum(state.row_count for state in stale.values()), snapshot_id)
