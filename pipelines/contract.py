"""Checks a warehouse folder against the table contract: columns and types, keys, Parquet rows = DuckDB rows."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from pipelines.sql import CONTRACT_TABLES, contract_ddl, load_sql
from pipelines.stripe_fc.engine import OUTCOMES

KEYS = {"fc_accounts": ("account_id",), "fc_balances": ("account_id", "as_of", "currency"),
        "fc_balance_refreshes": ("run_id", "account_id")}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(load_sql("contract/columns"), [table]).fetchall()
    return {name: data_type for name, data_type in rows}


def _parquet_rows(parquet_uri: str, table: str) -> int:
    """Rows in a table's Parquet files, local or on object storage (pyarrow's filesystems, no DuckDB extension)."""
    filesystem, root = pafs.FileSystem.from_uri(parquet_uri)
    location = f"{root.rstrip('/')}/{table}"
    if filesystem.get_file_info(location).type != pafs.FileType.Directory:
        raise FileNotFoundError(location)
    dataset = ds.dataset(location, filesystem=filesystem, format="parquet", partitioning="hive")
    if not dataset.files:
        raise FileNotFoundError(location)
    return dataset.count_rows()


def check_warehouse(directory: str | Path, parquet_uri: str | None = None) -> list[str]:
    """Every way the warehouse breaks the contract, one line each; an empty list when it keeps it."""
    directory = Path(directory)
    database = directory / "fc_balances.duckdb"
    if not database.is_file():
        return [f"no DuckDB file at {database}"]
    parquet_uri = parquet_uri or str(directory / "parquet")
    problems: list[str] = []
    with duckdb.connect() as reference:
        for statement in contract_ddl():
            reference.execute(statement)
        expected = {table: _columns(reference, table) for table in CONTRACT_TABLES}
    with duckdb.connect(str(database), read_only=True) as con:
        for table in CONTRACT_TABLES:
            got = _columns(con, table)
            if not got:
                problems.append(f"{table}: missing")
                continue
            for column, data_type in expected[table].items():
                if got.get(column) != data_type:
                    problems.append(f"{table}.{column}: want {data_type}, got {got.get(column)}")
            if table in KEYS:
                # The same SQL as the asset check on unique keys.
                sql = load_sql("checks/unique_key").format(table=table, key_columns=", ".join(KEYS[table]))
                duplicates = con.execute(sql).fetchall()[0][0]
                if duplicates:
                    problems.append(f"{table}: {duplicates} duplicated keys ({', '.join(KEYS[table])})")
            in_duckdb = con.execute(load_sql("contract/count_rows").format(table=table)).fetchall()[0][0]
            try:
                in_parquet = _parquet_rows(parquet_uri, table)
            except (OSError, pa.ArrowException):
                problems.append(f"{table}: no readable Parquet under {parquet_uri.rstrip('/')}/{table}")
                continue
            if in_parquet != in_duckdb:
                problems.append(f"{table}: {in_parquet} rows in Parquet, {in_duckdb} in DuckDB")
        outcomes = {row[0] for row in con.execute(load_sql("contract/outcomes")).fetchall()}
        if outcomes - set(OUTCOMES):
            problems.append(f"fc_balance_refreshes: unknown outcomes {sorted(outcomes - set(OUTCOMES))}")
        cash_with_used, credit_with_available, unknown_type = con.execute(
            load_sql("checks/amounts_by_balance_type").format(table="fc_balances")
        ).fetchall()[0]
        if cash_with_used or credit_with_available or unknown_type:
            problems.append(f"fc_balances: {cash_with_used} cash rows with used, {credit_with_available} credit "
                            f"rows with available, {unknown_type} of unknown type")
    return problems
