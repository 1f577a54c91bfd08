"""The warehouse: a DuckDB file written under a single-writer lock, published to Iceberg, read without a lock.

Modules: `base` (names, errors), `lock` (the writer lock), `store` (the Warehouse and read-only readers),
`catalog` (the Iceberg catalog, schemas and partition specs from the declarations), `publish` (DuckDB to
Iceberg, one snapshot per table per run), `snapshots` (listing, time travel, erasing old snapshots' files).
"""

from pipelines.warehouse.base import (
    DUCKDB_FILE_NAME,
    LOCK_FILE_NAME,
    WarehouseBusyError,
    WarehouseError,
)
from pipelines.warehouse.store import BATCH_VIEW, NormalizedBatch, Warehouse, open_reader

__all__ = [
    "BATCH_VIEW",
    "DUCKDB_FILE_NAME",
    "LOCK_FILE_NAME",
    "NormalizedBatch",
    "Warehouse",
    "WarehouseBusyError",
    "WarehouseError",
    "open_reader",
]
