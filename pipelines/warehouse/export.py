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

from pipelines.contract.schema import arrow_schema, quote
from pipelines.contract.tables import INGEST_TABLES, TABLES
from pipelines.marts.day_runs import day_runs
from pipelines.sql import load_sql
from pipelines.warehouse.base import TABLE_NAME, WarehouseError, memory_limit_lowered, one_line, quoted, redacted
from pipelines.warehouse.objectstore import ParquetTarget, Sink

ROW_GROUP_ROWS = 128 * 1024
EXPORT_THREADS = 2  # day files written at once (this machine has 2 cores)
EXPORT_MEMORY = 256 * 2**20  # what the writing threads hold outside DuckDB: its limit gives this up meanwhile
_READ_BATCH_ROWS = 64 * 1024
_UNIQUE_TEXT = frozenset({"account_id", "customer_id"})
DAY_CHUNK_ROWS = 1_000_000  # rows of consecutive days read by one query (a features day: 200k at 100k accounts)


@dataclass(frozen=True)
class TableLayout:
    """How a table maps to Parquet files: by `files_sql`, the query giving each row its file, or by day."""

    files_sql: str | None = None  # None (and no partition column): the whole table in <table>/<table>.parquet
    description: str = "one file, replaced whole"
    # A DATE column naming one folder per day (`column=YYYY-MM-DD/data.parquet`): an export can be limited to
    # the days a run rebuilt instead of fingerprinting all history.
    partition_column: str | None = None


# The layout registry: tables not listed are single files. Partition columns are not inside the files;
# readers get them from the hive path (`read_parquet(..., hive_partitioning = true)`).
LAYOUTS: dict[str, TableLayout] = {
    "fc_balances": TableLayout("warehouse/files_fc_balances", "as_of_date=YYYY-MM-DD/data.parquet"),
    "fc_balance_refreshes": TableLayout(
        "warehouse/files_fc_balance_refreshes", "run_date=YYYY-MM-DD/data.parquet (UTC day the run started)"
    ),
    "fc_daily_balances": TableLayout(description="day=YYYY-MM-DD/data.parquet", partition_column="day"),
    "fc_underwriting_features": TableLayout(
        description="window_end=YYYY-MM-DD/data.parquet", partition_column="window_end"),
}
_ALL_DAYS = (date.min, date.max)


class _FileWriter:
    """Streams one Parquet file in fixed-size row groups, so its bytes depend only on its rows."""

    def __init__(self, sink: Sink, schema: pa.Schema) -> None:
        self.sink = sink
        self.schema = schema
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        # Dictionaries for repeating text only (currencies, types, statuses, run ids). Account and customer ids
        # are nearly unique within a file: their dictionary outgrows its page and falls back to plain after the
        # work of building it (a features day file: written 10% faster and 7% smaller without them).
        text = [field.name for field in schema if (pa.types.is_string(field.type) or pa.types.is_large_string(
            field.type)) and field.name not in _UNIQUE_TEXT]
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


def _files_source(table: str) -> str:
    """The files_* query of a table that is not partitioned by day."""
    layout = LAYOUTS.get(table, TableLayout())
    if layout.files_sql:
        return load_sql(layout.files_sql)
    return load_sql("warehouse/files_single").format(table=quoted(table))


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
    column = LAYOUTS.get(table, TableLayout()).partition_column
    if column:
        first, last = days or _ALL_DAYS
        sql = load_sql("warehouse/day_stats").format(table=quoted(table), column=quote(column))
        rows = connection.execute(sql, {"first": first, "last": last}).fetchall()
        return {_day_key(column, day): _FileState(int(count), str(fingerprint)) for day, count, fingerprint in rows}
    rows = connection.execute(load_sql("warehouse/file_stats").format(source=_files_source(table))).fetchall()
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
        _write_days(connection, target, table, {key: current[key].row_count for key in stale})
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


def _write_days(
    connection: duckdb.DuckDBPyConnection, target: ParquetTarget, table: str, day_rows: dict[str, int]
) -> None:
    """Write the given day files (key: rows), runs of consecutive days of about DAY_CHUNK_ROWS rows per query,
    EXPORT_THREADS queries at a time.

    One query per run, not per day: the mart is stored in build order (accounts within days batches), so a day's
    rows sit in a slice of every bucket's row groups, and a query per day read each of those groups again for
    every day they hold. Each query still sorts only its own run's rows, never all history.
    """
    column = LAYOUTS[table].partition_column or ""
    order = _row_order(table)
    sql = load_sql("warehouse/days_rows").format(
        table=quoted(table), column=quote(column), order="ALL" if order == "ALL" else f"__day, {order}")

    def write(run: list[date]) -> None:
        with connection.cursor() as cursor:  # a connection of its own per thread, same database
            params = {"days": run, "first": run[0], "last": run[-1]}
            reader = cursor.sql(sql, params=params).to_arrow_reader(_READ_BATCH_ROWS)
            _write_day_files(target, table, column, run, reader)

    runs = _day_runs(table, day_rows)
    # Each thread holds a run's Arrow batches and a row group in the Parquet writer outside DuckDB's limit.
    with memory_limit_lowered(connection, EXPORT_MEMORY):
        if EXPORT_THREADS == 1 or len(runs) == 1:
            for run in runs:
                write(run)
            return
        with ThreadPoolExecutor(max_workers=EXPORT_THREADS) as pool:
            # list() re-raises the first failure; files already written stay unrecorded and are rewritten next time.
            list(pool.map(write, runs))


def _day_runs(table: str, day_rows: dict[str, int]) -> list[list[date]]:
    """The days of the given day files, in runs of consecutive days holding at most DAY_CHUNK_ROWS rows."""
    days: dict[date, int] = {}
    for key, rows in day_rows.items():
        day = _key_day(key)
        if day is None:
            raise WarehouseError(f"{table}: {key!r} is not a day file")
        days[day] = rows
    return day_runs(days, DAY_CHUNK_ROWS)


def _write_day_files(
    target: ParquetTarget, table: str, column: str, run: list[date], reader: pa.RecordBatchReader
) -> None:
    """Split a run's rows (__day first, days in order) into one Parquet file per day; a day of the run with no rows
    gets an empty file."""
    schema = pa.schema([field for field in reader.schema if field.name != "__day"])
    written: set[date] = set()
    writer: _FileWriter | None = None
    try:
        for day, rows in _by_leading_value(reader):
            if day not in written:
                if writer is not None:
                    writer.commit()
                    writer = None  # committed: a failure opening the next file must not discard it
                writer = _FileWriter(target.open_sink(table, _day_key(column, day)), schema)
                written.add(day)
            writer.add(pa.Table.from_batches([rows.drop_columns(["__day"])]))
        if writer is not None:
            writer.commit()
            writer = None
        for day in run:
            if day not in written:
                _FileWriter(target.open_sink(table, _day_key(column, day)), schema).commit()
    except (pa.ArrowException, OSError, duckdb.Error) as exc:
        if writer is not None:
            writer.discard()
        raise WarehouseError(
            f"writing Parquet for {table} under {redacted(target.uri)} failed: {one_line(exc)}"
        ) from exc


def _by_leading_value(reader: pa.RecordBatchReader) -> Iterator[tuple[Any, pa.RecordBatch]]:
    """The reader's rows as (value, rows) pieces, one per run of equal values in its first column (the file)."""
    for batch in reader:
        if batch.num_rows == 0:
            continue
        runs = pc.run_end_encode(batch.column(0))
        start = 0
        for end, value in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
            yield value, batch.slice(start, end - start)
            start = end


def _day_key(column: str, day: date) -> str:
    return f"{column}={day.isoformat()}/data.parquet"


def _row_order(table: str) -> str:
    """ORDER BY terms that fix a file's row order: the declared unique key (far cheaper to sort than every
    column of a wide mart), minus the partition column the file path holds; every column where no key is declared."""
    declared = TABLES.get(table)
    if declared is None or not declared.key:
        return "ALL"
    in_path = LAYOUTS.get(table, TableLayout()).partition_column
    key = [column for column in declared.key if column != in_path]
    return ", ".join(quote(column) for column in key) if key else "ALL"


def _write_files(
    connection: duckdb.DuckDBPyConnection, target: ParquetTarget, table: str, file_keys: list[str]
) -> None:
    """Stream the rows of the given files (sorted by file) into one Parquet writer per file."""
    order = _row_order(table)  # ALL starts with __file: it is the first column
    sql = load_sql("warehouse/file_rows").format(
        source=_files_source(table), order=order if order == "ALL" else f"__file, {order}")
    reader = connection.sql(sql, params={"files": file_keys}).to_arrow_reader(_READ_BATCH_ROWS)
    # Contract tables keep their declared Arrow types and nullability; marts are written as DuckDB built them.
    declared = arrow_schema(table) if table in INGEST_TABLES else None
    schema = declared or pa.schema([f for f in reader.schema if f.name != "__file"])
    columns = schema.names
    remaining = set(file_keys)
    writer: _FileWriter | None = None
    current_key: str | None = None
    try:
        for key, rows in _by_leading_value(reader):
            if key != current_key:
                if writer is not None:
                    writer.commit()
                    writer = None  # committed: a failure opening the next file must not discard it
                writer = _FileWriter(target.open_sink(table, _file_path(table, key)), schema)
                current_key = key
                remaining.discard(key)
            writer.add(pa.Table.from_batches([rows]).select(columns).cast(schema))
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
