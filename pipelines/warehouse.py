"""Writes normalized batches into DuckDB and projects the tables to Parquet: atomic, idempotent, crash-safe."""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipelines.normalize import SCHEMAS
from pipelines.sql import CONTRACT_TABLES, contract_ddl, load_sql

DUCKDB_FILE_NAME = "fc_balances.duckdb"
LOCK_FILE_NAME = ".fc_balances.lock"
DIRTY_MARKER_NAME = ".parquet_export_pending"
SPILL_DIR_NAME = ".duckdb_spill"  # where DuckDB spills past its memory limit, inside the warehouse folder
DEFAULT_MEMORY_LIMIT = "1GB"
_MEMORY_LIMIT = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
BATCH_VIEW = "batch_rows"  # the fixed name the write_* SQL reads the registered Arrow table from
ROW_GROUP_ROWS = 128 * 1024
_READ_BATCH_ROWS = 64 * 1024
_TEMP_FILE = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class WarehouseError(Exception):
    """A warehouse operation failed; the message is one line naming the path and never holds a secret."""


class WarehouseBusyError(WarehouseError):
    """Another run holds the warehouse's writer lock (or keeps the DuckDB file open)."""


@dataclass
class NormalizedBatch:
    """Arrow tables to write in one transaction; None (or an empty table) leaves that table alone."""

    accounts: pa.Table | None = None
    balances: pa.Table | None = None
    refreshes: pa.Table | None = None
    rejected: pa.Table | None = None


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

_BATCH_FIELDS = (
    ("accounts", "fc_accounts"),
    ("balances", "fc_balances"),
    ("refreshes", "fc_balance_refreshes"),
    ("rejected", "fc_rejected_balances"),
)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _quoted(table: str) -> str:
    """A table name as a quoted identifier; only names matching the strict pattern get here."""
    if not _TABLE_NAME.match(table):
        raise WarehouseError(f"invalid table name {table!r}")
    return f'"{table}"'


def _redacted(uri: str) -> str:
    """A URI without user info or query (where credentials could hide), for messages."""
    parts = urlsplit(uri)
    if not parts.scheme or len(parts.scheme) == 1:
        return uri
    return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))


# ---------------------------------------------------------------------------------------------- Parquet targets


class _Sink:
    """Where one Parquet file is written; commit() makes it visible whole, discard() drops it."""

    stream: Any

    def commit(self) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        raise NotImplementedError


class _LocalSink(_Sink):
    """A temporary file beside the final one (name not ending .parquet), fsynced, then os.replace'd."""

    def __init__(self, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        self.final = final
        self.temporary = final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")
        self.stream = open(self.temporary, "wb")  # noqa: SIM115 - closed in commit/discard

    def commit(self) -> None:
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        os.replace(self.temporary, self.final)
        _fsync_directory(self.final.parent)

    def discard(self) -> None:
        self.stream.close()
        self.temporary.unlink(missing_ok=True)


class _ObjectStoreSink(_Sink):
    """Built in memory, then one upload: an object store PUT is atomic, so no temporary key is needed."""

    def __init__(self, filesystem: pafs.FileSystem, path: str) -> None:
        self.filesystem, self.path = filesystem, path
        self.stream = pa.BufferOutputStream()

    def commit(self) -> None:
        body = self.stream.getvalue()
        with self.filesystem.open_output_stream(self.path) as out:
            out.write(body)

    def discard(self) -> None:
        self.stream = pa.BufferOutputStream()


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class _ParquetTarget:
    """A local folder or an object store prefix holding <table>/<file> Parquet files."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        parts = urlsplit(uri)
        self.local_root: Path | None = None
        self.filesystem: pafs.FileSystem | None = None
        self.base = ""
        if not parts.scheme or len(parts.scheme) == 1 or parts.scheme == "file":
            self.local_root = Path(parts.path if parts.scheme == "file" else uri).expanduser().absolute()
            return
        try:
            self.filesystem, self.base = pafs.FileSystem.from_uri(_with_endpoint(uri))
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise WarehouseError(f"cannot use Parquet location {_redacted(uri)}: {_one_line(exc)}") from exc
        self.base = self.base.rstrip("/")

    def _path(self, table: str, relative: str) -> str:
        return f"{self.base}/{table}/{relative}"

    def open_sink(self, table: str, relative: str) -> _Sink:
        if self.local_root is not None:
            return _LocalSink(self.local_root / table / relative)
        assert self.filesystem is not None
        return _ObjectStoreSink(self.filesystem, self._path(table, relative))

    def list_parquet(self, table: str) -> list[str]:
        """Paths (relative to the table folder) of the table's .parquet files."""
        if self.local_root is not None:
            folder = self.local_root / table
            if not folder.is_dir():
                return []
            return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.parquet") if p.is_file())
        assert self.filesystem is not None
        prefix = f"{self.base}/{table}"
        infos = self.filesystem.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
        return sorted(
            info.path[len(prefix) + 1 :]
            for info in infos
            if info.type == pafs.FileType.File and info.path.endswith(".parquet")
        )

    def row_count(self, table: str, relative: str) -> int | None:
        """Rows in a Parquet file from its footer; None when it is unreadable."""
        try:
            if self.local_root is not None:
                return pq.read_metadata(self.local_root / table / relative).num_rows
            assert self.filesystem is not None
            with self.filesystem.open_input_file(self._path(table, relative)) as source:
                return pq.ParquetFile(source).metadata.num_rows
        except (pa.ArrowException, OSError):
            return None

    def delete(self, table: str, relative: str) -> None:
        if self.local_root is not None:
            path = self.local_root / table / relative
            path.unlink(missing_ok=True)
            if path.parent != self.local_root / table:
                with suppress(OSError):
                    path.parent.rmdir()  # an emptied partition folder
            return
        assert self.filesystem is not None
        with suppress(FileNotFoundError):
            self.filesystem.delete_file(self._path(table, relative))

    def remove_temporaries(self) -> int:
        """Delete temporary files a killed export left behind (local folders only)."""
        if self.local_root is None or not self.local_root.is_dir():
            return 0
        removed = 0
        for folder, _, names in os.walk(self.local_root):
            for name in names:
                if _TEMP_FILE.match(name):
                    Path(folder, name).unlink(missing_ok=True)
                    removed += 1
        return removed


def _with_endpoint(uri: str) -> str:
    """Add the S3 endpoint from AWS_ENDPOINT_URL(_S3) to an s3:// URI that does not name one.

    pyarrow 26's AWS SDK reads AWS_ENDPOINT_URL on its own as well; passing it explicitly keeps the choice
    visible and works with builds that ignore the variable.
    """
    parts = urlsplit(uri)
    if parts.scheme != "s3":
        return uri
    query = dict(parse_qsl(parts.query))
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "endpoint_override" not in query:
        endpoint_parts = urlsplit(endpoint)
        if endpoint_parts.scheme in ("http", "https"):
            query.setdefault("scheme", endpoint_parts.scheme)
            query["endpoint_override"] = endpoint_parts.netloc
        else:
            query["endpoint_override"] = endpoint
    if "region" not in query and (region := os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        query["region"] = region
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class _FileWriter:
    """Streams one Parquet file in fixed-size row groups, so its bytes depend only on its rows."""

    def __init__(self, sink: _Sink, schema: pa.Schema) -> None:
        self.sink = sink
        self.schema = schema
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.writer = pq.ParquetWriter(
            sink.stream, schema, compression="zstd", version="2.6", write_statistics=True
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


# ---------------------------------------------------------------------------------------------- the warehouse


@dataclass(frozen=True)
class _FileState:
    row_count: int
    fingerprint: str


class Warehouse:
    """The DuckDB file and its Parquet projection, used as a context manager holding the writer lock."""

    def __init__(
        self, directory: str | os.PathLike[str], parquet_uri: str | None = None, lock_timeout: float = 60.0,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        if not _MEMORY_LIMIT.match(memory_limit.strip()):
            raise WarehouseError(f"FC_BALANCES_DUCKDB_MEMORY_LIMIT must look like 1GB or 512MB, got {memory_limit!r}")
        self.memory_limit = memory_limit.strip()
        self.directory = Path(directory).expanduser().absolute()
        self.duckdb_path = self.directory / DUCKDB_FILE_NAME
        self.parquet_uri = parquet_uri if parquet_uri else str(self.directory / "parquet")
        self.lock_timeout = lock_timeout
        self._lock_descriptor: int | None = None
        self._target: _ParquetTarget | None = None
        # Written since the last export: the marker file says so on disk too, so a crash is noticed on next open.
        self._dirty_marker = self.directory / DIRTY_MARKER_NAME
        self._dirty = False

    # -------------------------------------------------------------------- lifecycle

    def __enter__(self) -> Warehouse:
        self._prepare_directory()
        self._acquire_lock()
        try:
            self._target = _ParquetTarget(self.parquet_uri)
            fresh = not self.duckdb_path.exists()
            with self._connect() as connection:
                for statement in [*contract_ddl(), load_sql("warehouse/create_parquet_exports")]:
                    connection.execute(statement)
            if fresh or self._dirty_marker.exists():
                # The last session wrote without finishing its export (or this is a new warehouse): heal Parquet.
                self._repair_parquet()
            else:
                self._target.remove_temporaries()
        except BaseException:
            self._release_lock()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._dirty and self._dirty_marker.exists():
                self._dirty_marker.unlink()
        finally:
            self._release_lock()

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
                f"cannot create warehouse folder {self.directory}: {exc.strerror or _one_line(exc)}"
            ) from exc
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise WarehouseError(f"warehouse folder {self.directory} is not writable")

    def _acquire_lock(self) -> None:
        lock_path = self.directory / LOCK_FILE_NAME
        try:
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise WarehouseError(f"cannot open lock file {lock_path}: {exc.strerror or _one_line(exc)}") from exc
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
                    os.close(descriptor)
                    raise WarehouseBusyError(
                        f"warehouse {self.directory} is locked by another run (pid {holder}); "
                        f"gave up after {self.lock_timeout:g}s"
                    ) from None
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        # The holder's pid, for the message another waiting run prints.
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        self._lock_descriptor = descriptor

    def _release_lock(self) -> None:
        if self._lock_descriptor is None:
            return
        try:
            os.ftruncate(self._lock_descriptor, 0)
            fcntl.flock(self._lock_descriptor, fcntl.LOCK_UN)
        finally:
            os.close(self._lock_descriptor)
            self._lock_descriptor = None

    def _require_open(self) -> _ParquetTarget:
        if self._lock_descriptor is None or self._target is None:
            raise WarehouseError(f"warehouse {self.directory} used outside its `with` block")
        return self._target

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the DuckDB file for one call, waiting up to lock_timeout for a reader that holds it."""
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                connection = duckdb.connect(str(self.duckdb_path))
                break
            except duckdb.Error as exc:
                message = _one_line(exc)
                if "lock" not in message.lower():
                    raise WarehouseError(f"cannot open DuckDB file {self.duckdb_path}: {message}") from exc
                if time.monotonic() >= deadline:
                    raise WarehouseBusyError(
                        f"DuckDB file {self.duckdb_path} is held open by another process; "
                        f"gave up after {self.lock_timeout:g}s"
                    ) from exc
                time.sleep(0.05)
        try:
            connection.execute("SET TimeZone = 'UTC'")
            # Bounded memory whatever the history: past the limit DuckDB spills to the warehouse's own disk.
            connection.execute("SET memory_limit = ?", [self.memory_limit])
            connection.execute("SET temp_directory = ?", [str(self.directory / SPILL_DIR_NAME)])
            connection.execute("SET preserve_insertion_order = false")
            yield connection
        finally:
            connection.close()

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection for SQL work (marts), closed when the block ends."""
        self._require_open()
        self._mark_dirty()
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
        written = dict.fromkeys(CONTRACT_TABLES, 0)
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
                    f"writing a batch to {self.duckdb_path} failed, nothing was written: {_one_line(exc)}"
                ) from exc
        return written

    def row_counts(self) -> dict[str, int]:
        """Rows per table (contract tables and marts; internal bookkeeping left out)."""
        self._require_open()
        with self._connect() as connection:
            names = [row[0] for row in connection.execute(load_sql("warehouse/user_tables")).fetchall()]
            counts: dict[str, int] = {}
            for name in names:
                if _TABLE_NAME.match(name):
                    sql = load_sql("warehouse/count_rows").format(table=_quoted(name))
                    counts[name] = int(connection.execute(sql).fetchall()[0][0])
            return counts

    # -------------------------------------------------------------------- Parquet

    def export_parquet(
        self, tables: Iterable[str] | None = None, days: tuple[date, date] | None = None
    ) -> dict[str, int]:
        """Rewrite the Parquet files whose rows changed since their last export; rows written per table.

        `days` (first, last) limits a partitioned table's export to those days' folders: a run that rebuilt a
        few days does not fingerprint all history.
        """
        target = self._require_open()
        names = list(CONTRACT_TABLES) if tables is None else list(dict.fromkeys(tables))
        written: dict[str, int] = {}
        with self._connect() as connection, self._parquet_errors(target):
            known = self._user_tables(connection)
            for name in names:
                if name not in known:
                    raise WarehouseError(f"cannot export {name!r}: no such table in {self.duckdb_path}")
                written[name] = self._export_table(connection, target, name, days)
        # Callers export what they wrote; after that the Parquet projection is whole again.
        self._dirty = False
        return written

    @contextmanager
    def _parquet_errors(self, target: _ParquetTarget) -> Iterator[None]:
        """Turn storage and DuckDB failures during an export into one-line WarehouseErrors."""
        try:
            yield
        except (pa.ArrowException, OSError, duckdb.Error) as exc:
            raise WarehouseError(
                f"Parquet export to {_redacted(target.uri)} failed: {_one_line(exc)}"
            ) from exc

    @staticmethod
    def _user_tables(connection: duckdb.DuckDBPyConnection) -> set[str]:
        rows = connection.execute(load_sql("warehouse/user_tables")).fetchall()
        return {row[0] for row in rows if _TABLE_NAME.match(row[0])}

    @staticmethod
    def _files_source(table: str, days: tuple[date, date] | None = None) -> tuple[str, dict[str, Any]]:
        """The files_* query of a table and its parameters (a day range for partitioned tables)."""
        layout = LAYOUTS.get(table, TableLayout())
        if layout.partition_column:
            first, last = days or _ALL_DAYS
            return load_sql(layout.files_sql or ""), {"first": first, "last": last}
        if layout.files_sql:
            return load_sql(layout.files_sql), {}
        return load_sql("warehouse/files_single").format(table=_quoted(table)), {}

    @staticmethod
    def _file_path(table: str, file_key: str) -> str:
        return file_key or f"{table}.parquet"

    def _current_files(
        self, connection: duckdb.DuckDBPyConnection, table: str, days: tuple[date, date] | None = None
    ) -> dict[str, _FileState]:
        source, params = self._files_source(table, days)
        rows = connection.execute(load_sql("warehouse/file_stats").format(source=source), params).fetchall()
        files = {key: _FileState(int(count), str(fingerprint)) for key, count, fingerprint in rows}
        if table not in LAYOUTS and not files:
            files[""] = _FileState(0, "empty")  # an empty single-file table still gets its (empty) file
        return files

    @staticmethod
    def _recorded_files(connection: duckdb.DuckDBPyConnection, table: str) -> dict[str, _FileState]:
        rows = connection.execute(load_sql("warehouse/exports_recorded"), {"table_name": table}).fetchall()
        return {key: _FileState(int(count), fingerprint) for key, count, fingerprint in rows}

    def _export_table(
        self, connection: duckdb.DuckDBPyConnection, target: _ParquetTarget, table: str,
        days: tuple[date, date] | None = None,
    ) -> int:
        layout = LAYOUTS.get(table, TableLayout())
        days = days if layout.partition_column else None
        current = self._current_files(connection, table, days)
        recorded = self._recorded_files(connection, table)
        if days is not None:  # only the range's folders are compared; the others stay as they are
            recorded = {key: state for key, state in recorded.items() if _key_day(key, days)}
        stale = sorted(key for key, state in current.items() if recorded.get(key) != state)
        gone = sorted(key for key in recorded if key not in current)
        if stale and layout.partition_column:
            # One day per query: each file's rows are sorted alone, never all history at once.
            for key in stale:
                day = date.fromisoformat(key.split("/", 1)[0].split("=", 1)[1])
                self._write_files(connection, target, table, [key], (day, day))
        elif stale:
            self._write_files(connection, target, table, stale, days)
        for key in gone:
            target.delete(table, self._file_path(table, key))
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

    def _write_files(
        self, connection: duckdb.DuckDBPyConnection, target: _ParquetTarget, table: str, file_keys: list[str],
        days: tuple[date, date] | None = None,
    ) -> None:
        """Stream the rows of the given files (sorted by file) into one Parquet writer per file."""
        source, params = self._files_source(table, days)
        sql = load_sql("warehouse/file_rows").format(source=source)
        reader = connection.sql(sql, params={"files": file_keys, **params}).to_arrow_reader(_READ_BATCH_ROWS)
        schema = SCHEMAS.get(table) or pa.schema([f for f in reader.schema if f.name != "__file"])
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
                        writer = _FileWriter(target.open_sink(table, self._file_path(table, key)), schema)
                        current_key = key
                        remaining.discard(key)
                    rows = pa.Table.from_batches([batch.slice(start, end - start)]).select(columns)
                    writer.add(rows.cast(schema))
                    start = end
            if writer is not None:
                writer.commit()
                writer = None
            for key in sorted(remaining):  # files with no rows left (an empty single-file table)
                empty = _FileWriter(target.open_sink(table, self._file_path(table, key)), schema)
                empty.commit()
        except (pa.ArrowException, OSError) as exc:
            if writer is not None:
                writer.discard()
            raise WarehouseError(
                f"writing Parquet for {table} under {_redacted(target.uri)} failed: {_one_line(exc)}"
            ) from exc

    def _repair_parquet(self) -> None:
        """Heal Parquet after a crash: drop temporaries and rewrite files whose footer disagrees with DuckDB."""
        target = self._require_open()
        with self._connect() as connection, self._parquet_errors(target):
            target.remove_temporaries()
            known = self._user_tables(connection)
            exported = [row[0] for row in connection.execute(load_sql("warehouse/exported_tables")).fetchall()]
            managed = list(dict.fromkeys([*CONTRACT_TABLES, *exported]))
            for table in managed:
                if table not in known:  # a mart that was dropped: its Parquet goes too
                    for key in self._recorded_files(connection, table):
                        target.delete(table, self._file_path(table, key))
                        connection.execute(load_sql("warehouse/forget_export"), {"table_name": table, "file": key})
                    continue
                current = self._current_files(connection, table)
                expected = {self._file_path(table, key): key for key in current}
                for relative in target.list_parquet(table):
                    if relative not in expected:
                        target.delete(table, relative)
                for relative, key in expected.items():
                    if target.row_count(table, relative) != current[key].row_count:
                        connection.execute(load_sql("warehouse/forget_export"), {"table_name": table, "file": key})
                self._export_table(connection, target, table)


def _key_day(key: str, days: tuple[date, date]) -> bool:
    """Whether a partitioned file key (`column=YYYY-MM-DD/data.parquet`) falls in the day range."""
    try:
        day = date.fromisoformat(key.split("/", 1)[0].split("=", 1)[1])
    except (IndexError, ValueError):
        return False
    return days[0] <= day <= days[1]


def _conform(attribute: str, table: str, rows: pa.Table) -> pa.Table:
    """The batch table in the contract's column order and types, plus the row order (__ord) for dedup."""
    schema = SCHEMAS[table]
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
        raise WarehouseError(f"batch.{attribute} does not match the {table} schema: {_one_line(exc)}") from exc
    return conformed.append_column("__ord", pa.array(range(conformed.num_rows), pa.int64()))
