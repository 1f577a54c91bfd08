"""The Warehouse: opens the DuckDB file under the writer lock, writes batches in one transaction, publishes to Iceberg.

Reads need none of this: `open_reader` gives a read-only connection without the lock.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from pipelines.contract.migrations import SchemaVersionError, migrate, refuse_newer, warehouse_version
from pipelines.contract.schema import arrow_schema
from pipelines.contract.tables import EXPORTED_TABLES, INGEST_TABLES
from pipelines.sql import load_sql
from pipelines.warehouse.base import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_MEMORY_LIMIT,
    DUCKDB_FILE_NAME,
    TABLE_NAME,
    WarehouseBusyError,
    WarehouseError,
    checked_memory_limit,
    configure,
    one_line,
    quoted,
)
from pipelines.warehouse.catalog_config import catalog_errors, catalog_properties, shown_properties
from pipelines.warehouse.lock import ReaderLock, WriterLock
from pipelines.warehouse.partitions import mark_written

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

BATCH_VIEW = "batch_rows"  # the fixed name the write_* SQL reads the registered Arrow table from
LEGACY_PARQUET_DIR = "parquet"  # the 0.2.0 mirror: removed once every row is committed to Iceberg
UPGRADE_RUN_ID = "upgrade-from-parquet"


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
    """The DuckDB file and its Iceberg tables, used as a context manager holding the writer lock."""

    def __init__(
        self, directory: str | os.PathLike[str], catalog: str | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        publishing: bool = True,
        keep_connected: bool = False,
    ) -> None:
        """`catalog`: pyiceberg catalog properties as JSON (FC_BALANCES_ICEBERG_CATALOG); None: the embedded one.
        `publishing` False: the block reads DuckDB only (what to rebuild), so the catalog is never opened.
        `keep_connected` True: the connection the open migrates with serves the block's first call (a mart's build
        follows at once: one open and checkpoint of the file instead of two); False: it closes at once, so readers
        get in while the block waits (an ingest's first write comes after minutes of Stripe calls)."""
        self.memory_limit = checked_memory_limit(memory_limit)
        self.directory = Path(directory).expanduser().absolute()
        self.duckdb_path = self.directory / DUCKDB_FILE_NAME
        self.catalog_properties = catalog_properties(self.directory, catalog)
        self.lock_timeout = lock_timeout
        self._lock = WriterLock(self.directory, lock_timeout)
        self.publishing = publishing
        self.keep_connected = keep_connected
        self._idle: duckdb.DuckDBPyConnection | None = None  # kept from the open for the first call
        self._catalog: Catalog | None = None
        self._catalog_opening: Future[Catalog] | None = None
        # The connection a `connection()` block holds: calls inside the block use a cursor of it instead of opening
        # and checkpointing the file again.
        self._held: duckdb.DuckDBPyConnection | None = None

    @property
    def catalog_shown(self) -> dict[str, str]:
        """The catalog properties without secrets, for logs and metadata."""
        return shown_properties(self.catalog_properties)


    # -------------------------------------------------------------------- lifecycle

    def __enter__(self) -> Warehouse:
        self._prepare_directory()
        self._lock.acquire()
        try:
            self._create_tables()
            legacy = self.directory / LEGACY_PARQUET_DIR
            # Without publishing, a 0.2.0 mirror waits for the first open that publishes.
            if self.publishing and legacy.is_dir():
                # A 0.2.0 warehouse: every row to Iceberg first, and only then the mirror goes (killed in between,
                # the next open publishes what is missing and removes it then).
                self._catalog = self._open_catalog()
                self.publish(EXPORTED_TABLES, run_id=UPGRADE_RUN_ID)
                shutil.rmtree(legacy)
            elif self.publishing:
                # Importing pyiceberg and opening the catalog take a second or more in a new process: a thread does
                # it while the step works (an ingest's first requests go out meanwhile); the first use waits for it.
                opener = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fc-iceberg-catalog")
                self._catalog_opening = opener.submit(self._open_catalog)
                opener.shutdown(wait=False)
        except BaseException:
            if self._idle is not None:
                self._idle.close()
                self._idle = None
            self._lock.release()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._catalog_opening is not None and self._catalog is None:
                failure = self._catalog_opening.exception()  # waits: no catalog thread outlives the open
                if failure is not None and exc_type is None:
                    raise failure  # a catalog that cannot open fails the command, as it would have at the open
        finally:
            if self._idle is not None:
                self._idle.close()
                self._idle = None
            self._catalog, self._catalog_opening = None, None
            self._lock.release()

    def _open_catalog(self) -> Catalog:
        """The catalog, with every exported table created or evolved to its declaration (readers find them all)."""
        from pipelines.warehouse.catalog import create_embedded_catalog, ensure_tables, open_catalog

        with catalog_errors(self.catalog_properties, "creating the Iceberg tables"):
            create_embedded_catalog(self.catalog_properties, EXPORTED_TABLES)
        catalog = open_catalog(self.catalog_properties)
        with catalog_errors(self.catalog_properties, "creating the Iceberg tables"):
            ensure_tables(catalog, EXPORTED_TABLES)
        # The day transform of a partitioned table's first publish imports it (26 ms measured in a run's tail, after
        # the last Stripe call): imported here, in the opening thread, while the step still waits on Stripe.
        import pyiceberg_core  # noqa: F401
        return catalog

    def _create_tables(self) -> bool:
        """Create or migrate the schema before anything else is written; True when it changed.

        A warehouse newer than this code is refused before a byte is written.
        """
        where = str(self.directory)
        connection = self._open_file()
        try:
            try:
                version = warehouse_version(connection)
                refuse_newer(version, where)
                applied = migrate(connection, where).applied
            except SchemaVersionError as exc:
                raise WarehouseError(str(exc)) from None
            except duckdb.Error as exc:
                raise WarehouseError(
                    f"migrating {self.duckdb_path} failed, nothing was changed: {one_line(exc)}"
                ) from exc
        except BaseException:
            connection.close()
            raise
        if self.keep_connected:
            self._idle = connection
        else:
            connection.close()
        return applied

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

    def _require_open(self) -> None:
        if not self._lock.held:
            raise WarehouseError(f"warehouse {self.directory} used outside its `with` block")

    def _require_catalog(self) -> Catalog:
        """The open catalog, waiting for the thread opening it."""
        self._require_open()
        if not self.publishing:
            raise WarehouseError(f"warehouse {self.directory} was opened without its Iceberg catalog")
        if self._catalog is None:
            assert self._catalog_opening is not None
            self._catalog = self._catalog_opening.result()
        return self._catalog

    @property
    def catalog(self) -> Catalog:
        """The Iceberg catalog (while the warehouse is open)."""
        return self._require_catalog()

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
        if self._idle is not None:
            connection, self._idle = self._idle, None
        else:
            connection = self._open_file()
        try:
            yield connection
        finally:
            connection.close()

    def _open_file(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB file opened for writing and configured, waiting up to lock_timeout for a reader holding it."""
        connection = _connect_waiting(self.duckdb_path, read_only=False, timeout=self.lock_timeout)
        try:
            configure(connection, self.directory, self.memory_limit)
        except BaseException:
            connection.close()
            raise
        return connection

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection for SQL that writes (the marts), closed when the block ends.

        The file stays open for the block: the warehouse's other calls inside it use the same connection.
        """
        self._require_open()
        with self._connect() as connection:
            outer, self._held = self._held, connection
            try:
                yield connection
            finally:
                self._held = outer

    def insert_arrow(self, view: str, rows: pa.Table, sql: str) -> int:
        """Run the insert `sql` reading `rows` as the view `view` (registered only for that statement); the count
        the statement returns."""
        with self.connection() as connection:
            connection.register(view, rows)
            try:
                result = connection.execute(sql).fetchone()
            finally:
                connection.unregister(view)
        return int(result[0]) if result else 0

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for reads under the writer lock (what to rebuild, before the rebuild)."""
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
        with self._connect() as connection:
            connection.execute("BEGIN TRANSACTION")
            try:
                for table, rows in prepared:
                    connection.register(BATCH_VIEW, rows)
                    result = connection.execute(load_sql(f"warehouse/write_{table}")).fetchall()
                    mark_written(connection, table, BATCH_VIEW)  # an upsert's partitions, for the next publish
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

    # -------------------------------------------------------------------- Iceberg

    def publish(
        self, tables: Iterable[str] | None = None, days: tuple[date, date] | None = None, run_id: str = "manual",
    ) -> dict[str, int]:
        """Commit to Iceberg the partitions of each table that changed since its last publish; rows written per
        table. One snapshot per table at most, tagged with `run_id`; `days` (first, last) limits a partitioned
        mart to those days (and any day a crashed publish left behind)."""
        catalog = self._require_catalog()  # first: the thread that opened it has imported pyiceberg
        from pipelines.warehouse.publish import publish_table

        names = list(INGEST_TABLES) if tables is None else list(dict.fromkeys(tables))
        scope = None if days is None else [days[0] + timedelta(days=n) for n in range((days[1] - days[0]).days + 1)]
        written: dict[str, int] = {}
        with self._connect() as connection, catalog_errors(self.catalog_properties, "publishing"):
            known = {row[0] for row in connection.execute(load_sql("warehouse/user_tables")).fetchall()}
            for name in names:
                if name not in known or name not in EXPORTED_TABLES:
                    raise WarehouseError(f"cannot publish {name!r}: no such exported table in {self.duckdb_path}")
                written[name] = publish_table(connection, catalog, name, run_id, scope).rows
        return written


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
    directory: str | os.PathLike[str], timeout: float = DEFAULT_LOCK_TIMEOUT,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse's DuckDB file, in UTC: no writer lock.

    It takes the lock file's shared side, so it waits (up to `timeout`) for a writing step of another run to end
    rather than failing on DuckDB's file lock.
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
