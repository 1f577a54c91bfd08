"""Publishes DuckDB tables to their Iceberg tables: the partitions whose rows changed, one snapshot per table per run.

What was committed is recorded per partition (rows and a fingerprint of its rows) in `_fc_iceberg_partitions`,
after the Iceberg commit. A publish compares DuckDB with that record and overwrites exactly the partitions that
differ (deleting their old files and adding new ones in ONE overwrite snapshot, tagged with the run id), so a
crash anywhere leaves Iceberg at the previous snapshot or the new one, and the next publish commits whatever the
record does not hold yet: never a duplicate row (a partition is replaced, never appended to twice), never a lost
one. pyiceberg's `upsert` is never used.

Once a partitioned table has a record, a publish fingerprints only the partitions whose row counts moved (read
from the partition column alone) and those an in-place write marked in `_fc_iceberg_pending` (partitions.py), so
a daily run reads the days it changed, not all of history. Rows are otherwise only inserted or deleted, both of
which move a count; a migration that rewrites rows in place must forget the table's record (migrations.py does
when a table's columns change), and the next publish then fingerprints every partition again.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date

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
from pipelines.warehouse.datafiles import DataFileWriter, partition_slices
from pipelines.warehouse.overwrite import PublishTransaction
from pipelines.warehouse.partitions import (
    PartitionState,
    clear_marks,
    current_partitions,
    dated,
    day_range_sql,
    marked_partitions,
    partition_counts,
    partition_key_sql,
    partition_value_sql,
    partitions_of,
    recorded_partitions,
)

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
class Published:
    """What one table's publish did: partitions replaced or removed, rows written, the new snapshot (None: none)."""

    table: str
    partitions: int
    rows: int
    snapshot_id: int | None


def unpublished_mart_days(con: duckdb.DuckDBPyConnection, table: str) -> list[date]:
    """Days of a partitioned mart built since their last publish (a crash stopped that publish)."""
    return [row[0] for row in con.execute(load_sql("iceberg/mart_days_unpublished"), {"mart": table}).fetchall()]


def _chunks(table: str, stale: dict[str, int]) -> list[list[str]]:
    """The stale partition keys in groups of about PUBLISH_CHUNK_ROWS rows (consecutive days for dated tables)."""
    if dated(table):
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


def _unpartitioned_rows(
    con: duckdb.DuckDBPyConnection, table: str, schema: pa.Schema
) -> Iterator[pa.RecordBatchReader]:
    """An unpartitioned table's rows, streamed in batches in the Iceberg table's Arrow types."""
    sql = load_sql("iceberg/partition_rows").format(
        columns=", ".join(quote(name) for name in TABLES[table].column_names), table=quoted(table),
        where_and="WHERE", key=partition_key_sql(table),
    )
    with con.cursor() as cursor:
        reader = cursor.sql(sql, params={"keys": [""]}).to_arrow_reader(_READ_BATCH_ROWS)
        yield pa.RecordBatchReader.from_batches(schema, (batch.cast(schema) for batch in reader))


def _partition_slices(
    con: duckdb.DuckDBPyConnection, table: str, keys: list[str], schema: pa.Schema
) -> list[tuple[str, pa.Table]]:
    """The rows of the given partitions of a partitioned table, in the Iceberg table's Arrow types, one zero-copy
    slice per partition. A run of consecutive days is read by its range alone (zone maps skip the other days)."""
    conditions, params = [], {}
    by_days = dated(table) and "null" not in keys
    if by_days:
        days = sorted(date.fromisoformat(key) for key in keys)
        where, params = day_range_sql(table, days[0], days[-1])
        conditions.append(where)
    if not by_days or len(days) != (days[-1] - days[0]).days + 1:
        conditions.append(f"list_contains($keys, {partition_key_sql(table)})")
        params = params | {"keys": keys}
    declared = TABLES[table]
    order = declared.key or declared.column_names
    sql = load_sql("iceberg/partition_rows_sorted").format(
        columns=", ".join(quote(name) for name in declared.column_names), table=quoted(table),
        value=partition_value_sql(table), where=" AND ".join(conditions),
        order=", ".join(quote(name) for name in order),
    )
    with con.cursor() as cursor:
        rows = cursor.sql(sql, params=params).to_arrow_table()
    return [(key, part.cast(schema)) for key, part in partition_slices(rows)]


def _read_chunks(
    con: duckdb.DuckDBPyConnection, table: str, chunks: list[list[str]], stale: dict[str, PartitionState],
    schema: pa.Schema,
) -> Iterator[list[pa.Table]]:
    """Each chunk's partitions as slices, checked against the rows counted for the fingerprints."""
    for chunk in chunks:
        slices = _partition_slices(con, table, chunk, schema)
        found = {key: part.num_rows for key, part in slices}
        expected = {key: stale[key].row_count for key in chunk}
        if found != expected:  # never commit a partition other than the one fingerprinted
            raise ValueError(f"{table}: the rows read to publish are not the rows counted ({found} != {expected})")
        yield [part for _key, part in slices]


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
    with PublishTransaction(iceberg) as transaction, transaction.overwrite_files(properties) as overwrite:
        for data_file in _files_of(iceberg, set(keys)):
            overwrite.delete_data_file(data_file)
        if TABLES[table].partition is None:
            if stale:
                for rows in _unpartitioned_rows(con, table, schema):
                    for data_file in _dataframe_to_data_files(
                        transaction.table_metadata, rows, iceberg.io, write_uuid=overwrite.commit_uuid,
                        counter=counter,
                    ):
                        overwrite.append_data_file(data_file)
        else:
            writer = DataFileWriter(transaction.table_metadata, iceberg.io, overwrite.commit_uuid, counter)
            chunks = _chunks(table, {key: state.row_count for key, state in stale.items()})
            for data_file in writer.write_chunks(_read_chunks(con, table, chunks, stale, schema)):
                overwrite.append_data_file(data_file)
    snapshot = iceberg.current_snapshot()
    return snapshot.snapshot_id if snapshot is not None else None


def publish_table(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, table: str, run_id: str, days: Iterable[date] | None = None,
) -> Published:
    """Commit the table's partitions that differ from what was last published; `days` limits a partitioned mart
    to those days (plus any day built since its last publish). DuckDB gives up PUBLISH_MEMORY and what Python holds
    throughout, its fingerprint scans included: they filled its cache up to the full limit meanwhile."""
    with memory_limit_lowered(con, PUBLISH_MEMORY):
        return _publish_table(con, catalog, table, run_id, days)


def _publish_table(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, table: str, run_id: str, days: Iterable[date] | None,
) -> Published:
    iceberg = ensure_table(catalog, table)
    recorded = recorded_partitions(con, table)
    partitioned = TABLES[table].partition is not None
    marked = marked_partitions(con, table) if days is None and partitioned else set()
    if days is not None and dated(table):
        scope = set(days) | set(unpublished_mart_days(con, table))
        current = current_partitions(con, table, scope)
        in_scope = {day.isoformat() for day in scope}
        recorded = {key: state for key, state in recorded.items() if key in in_scope}
        present = set(current)
    elif partitioned and recorded:
        # Only the partitions whose row counts moved, or that an in-place write marked, are fingerprinted: a full
        # fingerprint read every row of history on every run (fc_balances at 73 M rows: 11 s and 1.2 GiB).
        counts = partition_counts(con, table)
        moved = {key for key, rows in counts.items() if key not in recorded or recorded[key].row_count != rows}
        current = partitions_of(con, table, (moved | marked) & counts.keys())
        present = set(counts)
    else:
        current = current_partitions(con, table)
        if iceberg.current_snapshot() is None and not recorded and not current and not marked:
            return Published(table, 0, 0, None)
        present = set(current)
    stale = {key: state for key, state in current.items() if recorded.get(key) != state}
    gone = {key for key in recorded if key not in present}
    if not stale and not gone:
        if marked:
            con.execute("BEGIN TRANSACTION")
            clear_marks(con, table, marked)
            con.execute("COMMIT")
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
    clear_marks(con, table, marked)
    con.execute("COMMIT")
    return Published(table, len(stale) + len(gone), sum(state.row_count for state in stale.values()), snapshot_id)
