"""The warehouse: a DuckDB file written under a single-writer lock, projected to Parquet, read without a lock.

Modules: `base` (names, errors), `lock` (the writer lock), `store` (the Warehouse and read-only readers),
`export` (the Parquet projection and its crash repair), `objectstore` (local folders and S3 prefixes).
"""

from pipelines.warehouse.base import (
    DIRTY_MARKER_NAME,
    DUCKDB_FILE_NAME,
    LOCK_FILE_NAME,
    WarehouseBusyError,
    WarehouseError,
)
from pipelines.warehouse.export import LAYOUTS, ROW_GROUP_ROWS, TableLayout
from pipelines.warehouse.store import BATCH_VIEW, NormalizedBatch, Warehouse, open_reader

__all__ = [
    "BATCH_VIEW",
    "DIRTY_MARKER_NAME",
    "DUCKDB_FILE_NAME",
    "LAYOUTS",
    "LOCK_FILE_NAME",
    "ROW_GROUP_ROWS",
    "NormalizedBatch",
    "TableLayout",
    "Warehouse",
    "WarehouseBusyError",
    "WarehouseError",
    "open_reader",
]
