"""Names, errors and small helpers shared by the warehouse modules."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import duckdb
import pyarrow as pa

from pipelines.settings import SETTINGS, SettingsError, default
from pipelines.sql import load_sql

DUCKDB_FILE_NAME = "fc_balances.duckdb"
LOCK_FILE_NAME = ".fc_balances.lock"
SPILL_DIR_NAME = ".duckdb_spill"  # where DuckDB spills past its memory limit, inside the warehouse folder
DEFAULT_MEMORY_LIMIT: str = default("FC_BALANCES_DUCKDB_MEMORY_LIMIT")
DEFAULT_LOCK_TIMEOUT: float = default("FC_BALANCES_LOCK_TIMEOUT")
TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class WarehouseError(Exception):
    """A warehouse operation failed; the message is one line naming the path and never holds a secret."""


class WarehouseBusyError(WarehouseError):
    """Another run holds the warehouse's writer lock (or keeps the DuckDB file open)."""


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def quoted(table: str) -> str:
    """A table name as a quoted identifier; only names matching the strict pattern get here."""
    if not TABLE_NAME.match(table):
        raise WarehouseError(f"invalid table name {table!r}")
    return f'"{table}"'


def redacted(uri: str) -> str:
    """A URI without user info or query (where credentials could hide), for messages."""
    parts = urlsplit(uri)
    if not parts.scheme or len(parts.scheme) == 1:
        return uri
    return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))


def checked_memory_limit(value: str) -> str:
    """A DuckDB memory limit such as 1GB or 512MB, or a one-line error naming the setting."""
    try:
        return str(SETTINGS["FC_BALANCES_DUCKDB_MEMORY_LIMIT"].parse(value.strip()))
    except SettingsError as exc:
        raise WarehouseError(str(exc)) from None


def configure(connection: duckdb.DuckDBPyConnection, directory: Path, memory_limit: str) -> None:
    """Every connection: UTC days, and bounded memory whatever the history (past the limit DuckDB spills to a
    folder inside the warehouse folder)."""
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET memory_limit = ?", [memory_limit])
    connection.execute("SET temp_directory = ?", [str(directory / SPILL_DIR_NAME)])
    connection.execute("SET preserve_insertion_order = false")


_UNITS = {"B": 1, "bytes": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


# DuckDB's limit is never lowered below this nor below a quarter of the configured limit: room for a batch's sorts
# and inserts. A 100,000-account features build ran no slower at 160 MiB (its sorted daily rows spilling) and
# peaked 20-30 MiB lower than at 256 MiB, as measured.
MEMORY_FLOOR = 160 * 2**20


def resident_outside_duckdb(con: duckdb.DuckDBPyConnection) -> int:
    """Bytes this process holds outside DuckDB's own accounting (the interpreter and its imports, numpy, Arrow,
    freed memory the allocators keep): its resident set less DuckDB's usage; 0 where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
    used = con.execute(load_sql("warehouse/memory_used")).fetchall()[0][0] or 0
    return max(0, resident - int(used))


@contextmanager
def memory_limit_lowered(con: duckdb.DuckDBPyConnection, amount: int) -> Iterator[None]:
    """Lower DuckDB's memory limit by `amount` (what Python is about to hold outside it: numpy matrices, Arrow
    batches) and by what the process already holds outside it, then restore it: DuckDB and Python together stay
    near the configured limit (a 100,000-account run peaked about 350 MiB above it when only `amount` was given up,
    as measured). Never below MEMORY_FLOOR or a quarter of the limit, whichever is larger."""
    setting = str(con.execute(load_sql("warehouse/memory_limit")).fetchall()[0][0])
    match = re.fullmatch(r"([0-9.]+)\s*([KMGT]i?B|B|bytes)", setting.strip())
    if match is None:  # an unlimited or unreadable setting: nothing to share
        yield
        return
    limit = int(float(match.group(1)) * _UNITS[match.group(2)])
    # Arrow's allocator keeps freed pages for reuse: hand them back first, so they are neither held nor counted
    # (68 MiB at the end of a 100,000-account ingest, as measured).
    pa.default_memory_pool().release_unused()
    floor = min(limit, max(limit // 4, MEMORY_FLOOR))
    lowered = max(limit - amount - resident_outside_duckdb(con), floor)
    con.execute("SET memory_limit = ?", [f"{lowered}B"])
    try:
        yield
    finally:
        con.execute("SET memory_limit = ?", [setting])  # as DuckDB reported it (its bytes rounded to 0.1 MiB)
