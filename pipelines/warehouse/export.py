"""The Parquet projection of the DuckDB tables: incremental export by file fingerprint, and repair after a crash."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.schema import arrow_schema, quote
from pipelines.sql import load_sql
from pipelines.tables import INGEST_TABLES, TABLES
from pipelines.warehouse.base import TABLE_NAME, WarehouseError, memory_limit_lowered, one_line, quoted, redacted
from pipelines.warehouse.objectstore import ParquetTarget, Sink

ROW_GROUP_ROWS = 128 * 1024
EXPORT_THREADS = 2  # day files written at once (this machine has 2 cores)
EXPORT_MEMORY = 256 * 2**20  # what the writing threads hold outside DuckDB: its limit gives this up meanwhile
_READ_BATCH_ROWS = 64 * 1024


@dataclass(frozen=True)
class TableLayout:
    """How a table maps to Parquet files: `files_sql` names the query giving each row its file."""

    files_sql: str | None = None  # None: the whole table in <table>/<table>.parquet
    description: str = "one file, replaced whole"
    # A DATE column naming one folder per day; its files_sql takes $first/$last so an export can be limited
    # to the days a run rebuilt instead of fingerprinting all history.
    partition_column: str | None = None


# The layout registry: tables not listed are single files. Partition columns are not inside the files;
# readers get them from the hive path (`read_parquet(..., hive_partitioning = true)`).
LAYOUTS: dict[str, TableLayout] = {
    "fc_balances": TableLayout("warehouse/files_fc_balances", "as_of_date=YYYY-MM-DD/data.parquet"),
    "fc_balance_refreshes": TableLayout(
        "warehouse/files_fc_balance_refreshes", "run_date=YYYY-MM-DD/data.parquet (UTC day the run started)"
    ),
    "fc_daily_balances": TableLayout("warehouse/files_fc_daily_balances", "day=YYYY-MM-DD/data.parquet", "day"),
    "fc_underwriting_features": TableLayout(
        "warehouse/files_fc_underwriting_features", "window_end=YYYY-MM-DD/data.parquet", "window_end"
    ),
}
_ALL_DAYS = (date.min, date.max)


class _FileWriter:
    """Streams one Parquet file in fixed-size row groups, so its bytes depend only on its rows."""

    def __init__(self, sink: Sink, schema: pa.Schema) -> None:
        self.sink = sink
        self.schema = schema
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        # Dictionaries for text only: ids, currencies and types repeat; amounts rarely do, and dictionary pages on
        # them cost time and bytes (a features day file: about 30% smaller, written 20% faster).
        text = [field.name for field in schema if pa.types.is_string(field.type) or pa.types.is_large_string(
            field.type)]
        self.writer = pq.ParquetWriter(
            sink.stream, schema, compression="zstd", version="2.6", write_statistics=True, use_dictionary=text
        )

    def add(self, rows: pa.Table) -> None:
        self.pending.append(rows)
        self.pending_rows += rows.num_rows
        while self.pending_rows >= ROW_GROUP_ROWS:
            combined = pa.concat_tables(self.pending)
            self.writer.write_table(combined.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
            rest = combined.slice(ROW_GROUP_ROWS)
            self.pending, self.pending_rows = [rest], rest.num_rows

    def commit(self) -> None:
        if self.pending_rows:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=ROW_GROUP_ROWS)
        self.writer.close()
        self.sink.commit()

    def discard(self) -> None:
        try:
            self.writer.close()
        finally:
            self.sink.discard()


@dataclass(frozen=True)
class _FileState:
    row_count: int
    fingerprint: str


@contextmanager
def parquet_errors(target: ParquetTarget) -> Iterator[None]:
    """Turn storage and DuckDB failures during an export into one-line WarehouseErrors."""
    try:
        yield
    except (pa.ArrowException, OSError, duckdb.Error) as exc:
        raise WarehouseError(
            f"Parquet export to {redacted(target.uri)} failed: {one_line(exc)}"
        ) from exc


def user_tables(connection: duckdb.DuckDBPyConnection) -> set[str]:
    rows = connection.execute(load_sql("warehouse/user_tables")).fetchall()
    return {row[0] for row in rows if TABLE_NAME.match(row[0])}


def _files_source(table: str, days: tuple[date, date] | None = None) -> tuple[str, dict[str, Any]]:
    """The files_* query of a table and its parameters (a day range for partitioned tables)."""
    layout = LAYOUTS.get(table, TableLayout())
    if layout.partition_column:
        first, last = days or _ALL_DAYS
        return load_sql(layout.files_sql or ""), {"first": first, "last": last}
    if layout.files_sql:
        return load_sql(layout.files_sql), {}
    return load_sql("warehouse/files_single").format(table=quoted(table)), {}


def _key_day(key: str) -> date | None:
    """The day of a partitioned file key (`column=YYYY-MM-DD/data.parquet`)."""
    try:
        return date.fromisoformat(key.split("/", 1)[0].split("=", 1)[1])
    except (IndexError, ValueError):
        return None


def _file_path(table: str, file_key: str) -> str:
    return file_key or f"{table}.parquet"


def _current_files(
    connection: duckdb.DuckDBPyConnection, table: str, days: tuple[date, date] | None = None
) -> dict[str, _FileState]:
    source, params = _files_source(table, days)
    rows = connection.execute(load_sql("warehouse/file_stats").format(source=source), params).fetchall()
    files = {key: _FileState(int(count), str(fingerprint)) for key, count, fingerprint in rows}
    if table not in LAYOUTS and not files:
        files[""] = _FileState(0, "empty")  # an empty single-file table still gets its (empty) file
    return files


def _recorded_files(connection: duckdb.DuckDBPyConnection, table: str) -> dict[str, _FileState]:
    rows = connection.execute(load_sql("warehouse/exports_recorded"), {"table_name": table}).fetchall()
    return {key: _FileState(int(count), fingerprint) for key, count, fingerprint in rows}


def export_table(
    connection: duckdb.DuckDBPyConnection, target: ParquetTarget, table: str, days: tuple[date, date] | None = None
) -> int:
    """Rewrite the table's files whose rows changed since their recorded export; rows written.

    `days` limits a partitioned table to those days' folders; the others are neither read nor touched.
    """
    layout = LAYOUTS.get(table, TableLayout())
    days = days if layout.partition_column else None
    current = _current_files(connection, table, days)
    recorded = _recorded_files(connection, table)
    if days is not None:
        recorded = {key: state for key, state in recorded.items()
                    if (day := _key_day(key)) is not None and days[0] <= day <= days[1]}
    stale = sorted(key for key, state in current.items() if recorded.get(key) != state)
    gone = sorted(key for key in recorded if key not in current)
    if stale and layout.partition_column:
        _write_days(connection, target, table, stale)
    elif stale:
        _write_files(connection, target, table, stale)
    for key in gone:
        target.delete(table, _file_path(table, key))
    connection.execute("BEGIN TRANSACTION")
    for key in gone:
        connection.execute(load_sql("warehouse/forget_export"), {"table_name": table, "file": key})
    for key in stale:
        state = current[key]
        connection.execute(
            load_sql("warehouse/record_export"),
            {"table_name": table, "file": key, "row_count": state.row_count, "fingerprint": state.fingerprint},
        )
    connection.execute("COMMIT")
    return sum(current[key].row_count for key in stale)


def _write_days(connection: duckdb.DuckDBPyConnection, target: ParquetTarget, table: str, keys: list[str]) -> None:
    """One day's file per query (each file's rows sorted alone, never all history at once), EXPORT_THREADS days
    at a time: DuckDB and the Parquet writer release the GIL, and one small day keeps neither core busy."""
    column = LAYOUTS[table].partition_column or ""
    sql = load_sql("warehouse/day_rows").format(
        table=quoted(table), column=quote(column), order=_row_order(table))

    def write(key: str) -> None:
        day = _key_day(key)
        if day is None:
            raise WarehouseError(f"{table}: {key!r} is not a day file")
        with connection.cursor() as cursor:  # a connection of its own per thread, same database
            reader = cursor.sql(sql, params={"day": day}).to_arrow_reader(_READ_BATCH_ROWS)
            _write_file(target, table, key, reader)

    # Each thread holds a day's Arrow batches and a row group in the Parquet writer outside DuckDB's limit.
    with memory_limit_lowered(connection, EXPORT_MEMORY):
        if EXPORT_THREADS == 1 or len(keys) == 1:
            for key in keys:
                write(key)
            return
        with ThreadPoolExecutor(max_workers=EXPORT_THREADS) as pool:
            # list() re-raises the first failure; files already written stay unrecorded and are rewritten next time.
            list(pool.map(write, keys))


def _row_order(table: str) -> str:
    """ORDER BY terms that fix a file's row order: the declared unique key (far cheaper to sort than every
    column of a wide mart), minus the partition column the file path holds; every column where no key is declared."""
    declared = TABLES.get(table)
    if declared is None or not declared.key:
        return "ALL"
    in_path = LAYOUTS.get(table, TableLayout()).partition_column
    key = [column for column in declared.key if column != in_path]
    return ", ".join(quote(column) for column in key) if key else "ALL"


def _write_file(target: ParquetTarget, table: str, key: str, reader: pa.RecordBatchReader) -> None:
    """Stream one file's rows (already in file order, no __file column) into its Parquet file."""
    writer = _FileWriter(target.open_sink(table, _file_path(table, key)), reader.schema)
    try:
        for batch in reader:
            writer.add(pa.Table.from_batches([batch]))
        writer.commit()
    except (pa.ArrowException, OSError, duckdb.Error) as exc:
        writer.discard()
        raise WarehouseError(
            f"writing Parquet for {table} under {redacted(target.uri)} failed: {one_line(exc)}"
        ) from exc


def _write_files(
    connection: duckdb.DuckDBPyConnection, target: ParquetTarget, table: str, file_keys: list[str]
) -> None:
    """Stream the rows of the given files (sorted by file) into one Parquet writer per file."""
    source, params = _files_source(table)
    order = _row_order(table)  # ALL starts with __file: it is the first column
    sql = load_sql("warehouse/file_rows").format(source=source, order=order if order == "ALL" else f"__file, {order}")
    reader = connection.sql(sql, params={"files": file_keys, **params}).to_arrow_reader(_READ_BATCH_ROWS)
    # Contract tables keep their declared Arrow types and nullability; marts are written as DuckDB built them.
    declared = arrow_schema(table) if table in INGEST_TABLES else None
    schema = declared or pa.schema([f for f in reader.schema if f.name != "__file"])
    columns = schema.names
    remaining = set(file_keys)
    writer: _FileWriter | None = None
    current_key: str | None = None
    try:
        for batch in reader:
            if batch.num_rows == 0:
                continue
            runs = pc.run_end_encode(batch.column(0))
            start = 0
            for end, key in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
                if key != current_key:
                    if writer is not None:
                        writer.commit()
                    writer = _FileWriter(target.open_sink(table, _file_path(table, key)), schema)
                    current_key = key
                    remaining.discard(key)
                rows = pa.Table.from_batches([batch.slice(start, end - start)]).select(columns)
                writer.add(rows.cast(schema))
                start = end
        if writer is not None:
            writer.commit()
            writer = None
        for key in sorted(remaining):  # files with no rows left (an empty single-file table)
            empty = _FileWriter(target.open_sink(table, _file_path(table, key)), schema)
            empty.commit()
    except (pa.ArrowException, OSError) as exc:
        if writer is not None:
            writer.discard()
        raise WarehouseError(
            f"writing Parquet for {table} under {redacted(target.uri)} failed: {one_line(exc)}"
        ) from exc


def _holds_rows(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    return int(connection.execute(load_sql("warehouse/count_rows").format(table=quoted(table))).fetchall()[0][0]) > 0


def repair_parquet(connection: duckdb.DuckDBPyConnection, target: ParquetTarget) -> None:
    """Heal Parquet after a crash: drop temporaries and rewrite files whose footer disagrees with DuckDB."""
    with parquet_errors(target):
        target.remove_temporaries()
        known = user_tables(connection)
        exported = [row[0] for row in connection.execute(load_sql("warehouse/exported_tables")).fetchall()]
        # Every declared, projected table holding rows, too: a mart built, then killed before its first export, has
        # no export record yet but must get its files (an empty one gets them when it is first built).
        declared = [name for name, table in TABLES.items()
                    if table.exported and name in known and name not in exported and _holds_rows(connection, name)]
        managed = list(dict.fromkeys([*INGEST_TABLES, *declared, *exported]))
        for table in managed:
            if table not in known:  # a mart that was dropped: its Parquet goes too
                for key in _recorded_files(connection, table):
                    target.delete(table, _file_path(table, key))
                    connection.execute(load_sql("warehouse/forget_export"), {"table_name": table, "file": key})
                continue
            current = _current_files(connection, table)
            expected = {_file_path(table, key): key for key in current}
            for relative in target.list_parquet(table):
                if relative not in expected:
                    target.delete(table, relative)
            for relative, key in expected.items():
                if target.row_count(table, relative) != current[key].row_count:
                    connection.execute(load_sql("warehouse/forget_export"), {"table_name": table, "file": key})
            export_table(connection, target, table)
