"""Checks a warehouse folder against the table declarations: version, columns, keys, value sets, Iceberg snapshots."""

from __future__ import annotations

from pathlib import Path

import duckdb
from pyiceberg.catalog import Catalog

from pipelines.contract.migrations import current_version, warehouse_version
from pipelines.contract.schema import column_problems, live_columns, quote
from pipelines.contract.tables import BALANCE_TYPES, TABLES
from pipelines.sql import load_sql


def _iceberg_rows(catalog: Catalog, table: str) -> int | None:
    """Rows in the table's current Iceberg snapshot (from its summary); None when the table is not published."""
    from pyiceberg.exceptions import NoSuchTableError

    from pipelines.warehouse.snapshots import snapshot_rows

    try:
        published = catalog.load_table(("fc_balances", table))
    except NoSuchTableError:
        return None
    snapshot = published.current_snapshot()
    return 0 if snapshot is None else snapshot_rows(published, snapshot)


def _table_problems(con: duckdb.DuckDBPyConnection, name: str, catalog: Catalog | None) -> list[str]:
    declared = TABLES[name]
    live = live_columns(con, name)
    if not live:
        return [f"{name}: missing"]
    problems = column_problems(name, live)
    if problems:
        return problems
    if declared.key:
        # The same SQL as the asset check on unique keys.
        key_columns = ", ".join(quote(column) for column in declared.key)
        sql = load_sql("checks/unique_key").format(table=quote(name), key_columns=key_columns)
        duplicates = con.execute(sql).fetchall()[0][0]
        if duplicates:
            problems.append(f"{name}: {duplicates} duplicated keys ({', '.join(declared.key)})")
    for column in declared.columns:
        if column.values is None:
            continue
        sql = load_sql("contract/distinct_values").format(table=quote(name), column=quote(column.name))
        unknown = sorted({row[0] for row in con.execute(sql).fetchall()} - set(column.values))
        if unknown:
            problems.append(f"{name}.{column.name}: values outside the declared set: {unknown}")
    if declared.exported and catalog is not None:
        in_duckdb = con.execute(load_sql("contract/count_rows").format(table=quote(name))).fetchall()[0][0]
        try:
            in_iceberg = _iceberg_rows(catalog, name)
        except Exception as exc:
            problems.append(f"{name}: unreadable Iceberg table fc_balances.{name}: {str(exc).splitlines()[0]}")
            return problems
        if in_iceberg is None:
            problems.append(f"{name}: no Iceberg table fc_balances.{name} in the catalog")
        elif in_iceberg != in_duckdb:
            problems.append(f"{name}: {in_iceberg} rows in the current Iceberg snapshot, {in_duckdb} in DuckDB")
    return problems


def check_warehouse(directory: str | Path, catalog_setting: str | None = None) -> list[str]:
    """Every way the warehouse breaks the contract, one line each; an empty list when it keeps it.

    Each published table's current Iceberg snapshot must hold as many rows as DuckDB.
    """
    from pipelines.warehouse.base import WarehouseError
    from pipelines.warehouse.catalog import catalog_properties, open_catalog

    directory = Path(directory)
    database = directory / "fc_balances.duckdb"
    if not database.is_file():
        return [f"no DuckDB file at {database}"]
    try:
        catalog: Catalog | None = open_catalog(catalog_properties(directory, catalog_setting))
    except WarehouseError as exc:
        return [str(exc)]
    with duckdb.connect(str(database), read_only=True) as con:
        version = warehouse_version(con)
        if version != current_version():
            return [f"schema version {version}, this fc-balances expects {current_version()}: "
                    "open it with `fc-balances run` (or any write) to migrate"]
        con.execute("SET TimeZone = 'UTC'")
        problems: list[str] = []
        for name in TABLES:
            problems += _table_problems(con, name, catalog)
        cash_with_used, credit_with_available, unknown_type = con.execute(
            load_sql("checks/amounts_by_balance_type").format(table=quote("fc_balances")),
            {"balance_types": list(BALANCE_TYPES)},
        ).fetchall()[0]
        if cash_with_used or credit_with_available or unknown_type:
            problems.append(f"fc_balances: {cash_with_used} cash rows with used, {credit_with_available} credit "
                            f"rows with available, {unknown_type} of unknown type")
    return problems
