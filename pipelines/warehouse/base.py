"""Names, errors and small helpers shared by the warehouse modules."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

DUCKDB_FILE_NAME = "fc_balances.duckdb"
LOCK_FILE_NAME = ".fc_balances.lock"
DIRTY_MARKER_NAME = ".parquet_export_pending"
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
