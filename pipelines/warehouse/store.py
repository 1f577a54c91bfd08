"""The Warehouse: opens the DuckDB file under the writer lock, writes batches in one transaction, counts rows.

Reads need none of this: `open_reader` gives a read-only connection without the lock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import TracebackType

import duckdb
import pyarrow as pa

from pipelines.contract.migrations import SchemaVersionError, current_version, migrate, refuse_newer, warehouse_version
from pipelines.contract.schema import arrow_schema
from pipelines.contract.tables import INGEST_TABLES
from pipelines.sql import load_sql
from pipelines.warehouse.base import (
    DEFAULT_MEMORY_LIMIT,
    DIRTY_MARKER_NAME,
    DUCKDB_FILE_NAME,
    TABLE_NAME,
    WarehouseBusyError,
    WarehouseError,
    checked_memory_limit,
    configure,
    one_line,
    quoted,
)
from pipelines.warehouse.export import export_table, parquet_errors, repair_parquet, user_tables
from pipelines.warehouse.lock import ReaderLock, WriterLock
from pipelines.warehouse.objectstore import ParquetTarget

BATCH_VIEW = "batch_rows"  # the fixed name the write_* SQL reads the registered Arrow table from


@dataclass
class NormalizedBatch:
    """Arrow tables to write in one transaction; None (or an empty table) leaves that table alone."""

    accounts: pa.Table | None = None
    balances: pa.Table | None = None
    refreshes: pa.Table | None = None
    rejected: pa.Table | None = None


_BATCH_FIELDS = (
    ("accounts", "fc_accounts"),
    ("balances", "fc_balances"),
    ("refreshes", "fc_balance_refreshes"),
    ("rejected", "fc_rejected_balances"),
)


class Warehouse:
    """The DuckDB file and its Parquet projection, used as a context manager holding the writer lock."""

    def __init__(
        self, directory: str | os.PathLike[str], parquet_uri: str | None = None, lock_timeout: float = 60.0,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self.memory_limit = checked_memory_limit(memory_limit)
        self.directory = Path(directory).expanduser().absolute()
        self.duckdb_path = self.directory / DUCKDB_FILE_NAME
        self.parquet_uri = parquet_uri if parquet_uri else str(self.directory / "parquet")
        self.lock_timeout = lock_timeout
        self._lock = WriterLock(self.directory, lock_timeout)
        self._target: ParquetTarget | None = None
        # Written since the last export: the marker file says so on disk too, so a crash is noticed on next open.
        self._dirty_marker = self.directory / DIRTY_MARKER_NAME
        self._dirty = False
        # The connection a `connection()` block holds: calls inside the block (the export after a mart build) use
        # a cursor of it instead of opening and checkpointing the file again.
        self._held: duckdb.DuckDBPyConnection | None = None

    # -------------------------------------------------------------------- lifecycle

    def __enter__(self) -> Warehouse:
        self._prepare_directory()
        self._lock.acquire()
        try:
            self._target = ParquetTarget(self.parquet_uri)
            migrated = self._create_tables()
            if migrated or self._dirty_marker.exists():
                # A new or migrated warehouse, or the last session wrote without finishing its export: heal Parquet.
                self._repair_parquet()
                self._dirty = False
            else:
                self._target.remove_temporaries()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._dirty and self._dirty_marker.exists():
                self._dirty_marker.unlink()
        finally:
            self._lock.release()

    def _create_tables(self) -> bool:
        """Create or migrate the schema before anything else is written; True when it changed.

        A warehouse newer than this code is refused before a byte is written. An upgrade leaves the export
        marker first, so a crash between the migration's commit and the Parquet rewrite is finished next open.
        """
        where = str(self.directory)
        with self._connect() as connection:
            try:
                version = warehouse_version(connection)
                refuse_newer(version, where)
                if version is not None and version != current_version():
                    self._mark_dirty()
                return migrate(connection, where).applied
            except SchemaVersionError as exc:
                raise WarehouseError(str(exc)) from None
            except duckdb.Error as exc:
                raise WarehouseError(
                    f"migrating {self.duckdb_path} failed, nothing was changed: {one_line(exc)}"
                ) from exc

    def _mark_dirty(self) -> None:
        """Before a DuckDB write: leave a marker until an export follows, so a crash in between is repaired."""
        if not self._dirty:
            self._dirty = True
            self._dirty_marker.touch()

    def _prepare_directory(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            raise WarehouseError(f"warehouse path {self.directory} is not a folder")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseError(
                f"cannot create warehouse folder {self.directory}: {exc.strerror or one_line(exc)}"
            ) from exc
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise WarehouseError(f"warehouse folder {self.directory} is not writable")

    def _require_open(self) -> ParquetTarget:
        if not self._lock.held or self._target is None:
            raise WarehouseError(f"warehouse {self.directory} used outside its `with` block")
        return self._target

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the DuckDB file for one call, waiting up to lock_timeout for a reader that holds it."""
        if self._held is not None:
            with self._held.cursor() as cursor:
                # The database-wide settings are the held connection's (DuckDB refuses to set the spill folder
                # again once it spilled); the zone is the cursor's own.
                cursor.execute("SET TimeZone = 'UTC'")
                yield cursor
            return
        connection = _connect_waiting(self.duckdb_path, read_only=False, timeout=self.lock_timeout)
        try:
            configure(connection, self.directory, self.memory_limit)
            yield connection
        finally:
            connection.close()

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection for SQL that writes (the marts), closed when the block ends.

        It marks the warehouse dirty until an export follows; for reads use `open_reader` instead. The file stays
        open for the block: the warehouse's other calls inside it use the same connection.
        """
        self._require_open()
        self._mark_dirty()
        with self._connect() as connection:
            outer, self._held = self._held, connection
            try:
                yield connection
            finally:
                self._held = outer

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for reads under the writer lock (what to rebuild, before the rebuild): no export marker.

        Only for SQL that writes nothing: a marker left behind would make the next open repair all Parquet.
        """
        self._require_open()
        with self._connect() as connection:
            yield connection

    # -------------------------------------------------------------------- writes

    def write_batch(self, batch: NormalizedBatch) -> dict[str, int]:
        """Write a batch in one transaction; rows inserted (or changed, for the upserted tables) per table."""
        self._require_open()
        prepared: list[tuple[str, pa.Table]] = []
        for attribute, table in _BATCH_FIELDS:
            rows = getattr(batch, attribute)
            if rows is not None and rows.num_rows:
                prepared.append((table, _conform(attribute, table, rows)))
        written = dict.fromkeys(INGEST_TABLES, 0)
        if not prepared:
            return written
        self._mark_dirty()
        with self._connect() as connection:
            connection.execute("BEGIN TRANSACTION")
            try:
                for table, rows in prepared:
                    connection.register(BATCH_VIEW, rows)
                    result = connection.execute(load_sql(f"warehouse/write_{table}")).fetchall()
                    connection.unregister(BATCH_VIEW)
                    written[table] = int(result[0][0]) if result else 0
                connection.execute("COMMIT")
            except duckdb.Error as exc:
                connection.execute("ROLLBACK")
                raise WarehouseError(
                    f"writing a batch to {self.duckdb_path} failed, nothing was written: {one_line(exc)}"
                ) from exc
        return written

    def row_counts(self) -> dict[str, int]:
        """Rows per table (contract tables and marts; internal bookkeeping left out)."""
        self._require_open()
        with self._connect() as connection:
            names = [row[0] for row in connection.execute(load_sql("warehouse/user_tables")).fetchall()]
            counts: dict[str, int] = {}
            for name in names:
                if TABLE_NAME.match(name):
                    sql = load_sql("warehouse/count_rows").format(table=quoted(name))
                    counts[name] = int(connection.execute(sql).fetchall()[0][0])
            return counts

    # -------------------------------------------------------------------- Parquet

    def export_parquet(
        self, tables: Iterable[str] | None = None, days: tuple[date, date] | None = None
    ) -> dict[str, int]:
        """Rewrite the Parquet files whose rows changed since their last export; rows written per table.

        `days` (first, last) limits a partitioned table's export to those days' folders.
        """
        target = self._require_open()
        names = list(INGEST_TABLES) if tables is None else list(dict.fromkeys(tables))
        written: dict[str, int] = {}
        with self._connect() as connection, parquet_errors(target):
            known = user_tables(connection)
            for name in names:
                if name not in known:
                    raise WarehouseError(f"cannot export {name!r}: no such table in {self.duckdb_path}")
                written[name] = export_table(connection, target, name, days)
        # Callers export what they wrote; after that the Parquet projection is whole again.
        self._dirty = False
        return written

    def _repair_parquet(self) -> None:
        """Heal Parquet after a crash: drop temporaries and rewrite files whose footer disagrees with DuckDB."""
        target = self._require_open()
        with self._connect() as connection:
            repair_parquet(connection, target)


def _conform(attribute: str, table: str, rows: pa.Table) -> pa.Table:
    """The batch table in the contract's column order and types, plus the row order (__ord) for dedup."""
    schema = arrow_schema(table)
    if isinstance(rows, pa.RecordBatch):
        rows = pa.Table.from_batches([rows])
    if not isinstance(rows, pa.Table):
        raise WarehouseError(f"batch.{attribute} must be a pyarrow Table, got {type(rows).__name__}")
    missing = [name for name in schema.names if name not in rows.column_names]
    if missing:
        raise WarehouseError(f"batch.{attribute} lacks column(s) {', '.join(missing)} of {table}")
    try:
        conformed = rows.select(schema.names).cast(schema)
    except (pa.ArrowException, ValueError) as exc:
        raise WarehouseError(f"batch.{attribute} does not match the {table} schema: {one_line(exc)}") from exc
    return conformed.append_column("__ord", pa.array(range(conformed.num_rows), pa.int64()))


def _connect_waiting(path: Path, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, waiting up to `timeout` while another process holds its file lock."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            message = one_line(exc)
            if "lock" not in message.lower():
                purpose = " for reading" if read_only else ""
                raise WarehouseError(f"cannot open DuckDB file {path}{purpose}: {message}") from exc
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(
                    f"DuckDB file {path} is held open by another process; gave up after {timeout:g}s"
                ) from exc
            time.sleep(0.05)


@contextmanager
def open_reader(
    directory: str | os.PathLike[str], timeout: float = 60.0, memory_limit: str = DEFAULT_MEMORY_LIMIT
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse's DuckDB file, in UTC: no writer lock, no marker, no repair.

    It takes the lock file's shared side, so it waits (up to `timeout`) for a writing step of another run to end
    rather than failing on DuckDB's file lock, and it leaves nothing behind that the next writer must repair.
    """
    folder = Path(directory).expanduser().absolute()
    path = folder / DUCKDB_FILE_NAME
    if not path.is_file():
        raise WarehouseError(f"no warehouse at {folder}: {DUCKDB_FILE_NAME} is missing")
    lock = ReaderLock(folder, timeout)
    lock.acquire()
    try:
        # A writer outside our lock (another tool) may hold the file: wait for it as a writer would.
        connection = _connect_waiting(path, read_only=True, timeout=timeout)
        try:
            configure(connection, folder, checked_memory_limit(memory_limit))
            yield connection
        finally:
            connection.close()
    finally:
        lock.release()
