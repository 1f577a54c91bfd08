"""Test helpers that read the published Iceberg tables through the warehouse's catalog, as an outside reader does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from pyiceberg.catalog import Catalog

from pipelines.warehouse.catalog import catalog_properties, open_catalog


def catalog_of(warehouse: Path, setting: str | None = None) -> Catalog:
    return open_catalog(catalog_properties(warehouse, setting))


def iceberg_table(warehouse: Path, table: str, setting: str | None = None) -> pa.Table:
    """The table's current snapshot as Arrow."""
    return catalog_of(warehouse, setting).load_table(("fc_balances", table)).scan().to_arrow()


def iceberg_rows(warehouse: Path, table: str, columns: str = "*", order_by: str = "ALL",
                 setting: str | None = None) -> list[tuple[Any, ...]]:
    """The table's current rows through the catalog, selected and ordered in DuckDB (UTC)."""
    rows = iceberg_table(warehouse, table, setting)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("published", rows)
        return con.execute(f"SELECT {columns} FROM published ORDER BY {order_by}").fetchall()
    finally:
        con.close()


def duckdb_rows(warehouse: Path, table: str, columns: str = "*", order_by: str = "ALL") -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(f"SELECT {columns} FROM {table} ORDER BY {order_by}").fetchall()
    finally:
        con.close()


def iceberg_differences(warehouse: Path, tables: tuple[str, ...] | None = None) -> list[str]:
    """Published tables whose current Iceberg rows (every column) are not exactly the DuckDB rows."""
    from pipelines.contract.tables import EXPORTED_TABLES

    problems = []
    for table in tables or EXPORTED_TABLES:
        published = iceberg_rows(warehouse, table)
        held = duckdb_rows(warehouse, table)
        if published != held:
            problems.append(f"{table}: Iceberg has {len(published)} rows, DuckDB {len(held)}, or they differ")
    return problems
