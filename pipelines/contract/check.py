"""Checks a warehouse folder against the table declarations: version, columns and types, keys, value sets, Parquet."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from pipelines.contract.migrations import current_version, warehouse_version
from pipelines.contract.schema import column_problems, live_columns, quote
from pipelines.contract.tables import BALANCE_TYPES, TABLES
from pipelines.sql import load_sql


def _parquet_rows(parquet_uri: str, table: str) -> int | None:
    """Rows in a table's Parquet files, local or on object storage; None when there are none."""
    filesystem, root = pafs.FileSystem.from_uri(parquet_uri)
    location = f"{root.rstrip('/')}/{table}"
    if filesystem.get_file_info(location).type != pafs.FileType.Directory:
        return None
    dataset = ds.dataset(location, filesystem=filesystem, format="parquet", partitioning="hive")
    if not dataset.files:
        return None
    return dataset.count_rows()


def _table_problems(con: duckdb.DuckDBPyConnection, name: str, parquet_uri: str) -> list[str]:
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
    if declared.exported:
        in_duckdb = con.execute(load_sql("contract/count_rows").format(table=quote(name))).fetchall()[0][0]
        try:
            in_parquet = _parquet_rows(parquet_uri, name)
        except (OSError, pa.ArrowException) as exc:
            problems.append(f"{name}: unreadable Parquet under {parquet_uri.rstrip('/')}/{name}: {exc}")
            return problems
        if in_parquet is None and in_duckdb:
            problems.append(f"{name}: no Parquet under {parquet_uri.rstrip('/')}/{name}")
        elif in_parquet is not None and in_parquet != in_duckdb:
            problems.append(f"{name}: {in_parquet} rows in Parquet, {in_duckdb} in DuckDB")
    return problems


def check_warehouse(directory: str | Path, parquet_uri: str | None = None) -> list[str]:
    """Every way the warehouse breaks the contract, one line each; an empty list when it keeps it."""
    directory = Path(directory)
    database = directory / "fc_balances.duckdb"
    if not database.is_file():
        return [f"no DuckDB file at {database}"]
    parquet_uri = parquet_uri or str(directory / "parquet")
    if "://" not in parquet_uri:  # a local folder: pyarrow's from_uri takes absolute paths only
        parquet_uri = str(Path(parquet_uri).expanduser().absolute())
    with duckdb.connect(str(database), read_only=True) as con:
        version = warehouse_version(con)
        if version != current_version():
            return [f"schema version {version}, this fc-balances expects {current_version()}: "
                    "open it with `fc-balances run` (or any write) to migrate"]
        problems: list[str] = []
        for name in TABLES:
            problems += _table_problems(con, name, parquet_uri)
        cash_with_used, credit_with_available, unknown_type = con.execute(
            load_sql("checks/amounts_by_balance_type").format(table=quote("fc_balances")),
            {"balance_types": list(BALANCE_TYPES)},
        ).fetchall()[0]
        if cash_with_used or credit_with_available or unknown_type:
            problems.append(f"fc_balances: {cash_with_used} cash rows with used, {credit_with_available} credit "
                            f"rows with available, {unknown_type} of unknown type")
    return problems
