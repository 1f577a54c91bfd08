"""The Iceberg tables a run publishes are readable through the catalog by other engines (DuckDB, pandas, pyarrow),
locally and on S3 (moto's server on loopback)."""

from __future__ import annotations

from pathlib import Path

import boto3
import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa

from assets.balances import stripe_fc_ingest
from pipelines.contract.check import check_warehouse
from pipelines.resources import WarehouseResource
from tests.iceberg_tables import catalog_of
from tests.integration.helpers import query, stripe_resource
from tests.integration.test_streaming import fixtures
from tests.unit.test_warehouse_s3 import s3_catalog, s3_endpoint  # noqa: F401 - the fixture

RUNS_BUCKET = "fc-runs"


def normalized(rows: list[dict]) -> list[tuple]:
    """Rows as tuples of Python values in column-name order."""
    return sorted(tuple(row[c] for c in sorted(row)) for row in rows)


def ingest(sandbox, warehouse: Path, catalog: str | None = None) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [stripe_fc_ingest],
        resources={"stripe": stripe_resource(sandbox),
                   "warehouse": WarehouseResource(directory=str(warehouse), iceberg_catalog=catalog)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    return result


def test_pyarrow_pandas_and_duckdb_read_identical_rows_through_the_catalog(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(refresh_latency=(0.05, 0.05))
    sandbox.load_fixtures(fixtures(25))
    warehouse = tmp_path / "wh"
    result = ingest(sandbox, warehouse)
    table = catalog_of(warehouse).load_table(("fc_balances", "fc_balances"))

    with_pyarrow = table.scan().to_arrow().to_pylist()
    # pandas with Arrow-backed columns, so decimals, nulls and timezones survive the DataFrame.
    with_pandas = pa.Table.from_pandas(table.scan().to_pandas(types_mapper=pd.ArrowDtype)).to_pylist()
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        with_duckdb = table.scan().to_duckdb("fc_balances", connection=con).sql(
            "select * from fc_balances").to_arrow_table().to_pylist()
        # or DuckDB on the data files the catalog plans for the current snapshot
        files = [task.file.file_path.removeprefix("file://") for task in table.scan().plan_files()]
        planned = con.sql("select * from read_parquet($files, hive_partitioning = false)",
                          params={"files": files}).to_arrow_table().to_pylist()
    rows = normalized(with_pyarrow)
    assert len(rows) == 25 == query(warehouse, "select count(*) from fc_balances")[0][0]
    assert normalized(with_pandas) == rows
    assert normalized(with_duckdb) == rows
    assert normalized(planned) == rows
    # The decimals stay exact decimals in the table's Arrow schema; the snapshot names the run.
    assert str(table.scan().to_arrow().schema.field("current").type) == "decimal128(38, 4)"
    assert table.current_snapshot().summary.get("fc.run-id") == result.run_id


def test_a_run_publishes_iceberg_to_s3(sandbox_factory, tmp_path: Path, s3_endpoint: str) -> None:  # noqa: F811
    # moto keeps one in-memory S3 per process: a bucket of our own keeps other tests' listings exact.
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=RUNS_BUCKET)
    sandbox = sandbox_factory(refresh_latency=(0.05, 0.05))
    sandbox.load_fixtures(fixtures(10))
    warehouse = tmp_path / "wh"
    setting = s3_catalog(tmp_path, s3_endpoint, bucket=RUNS_BUCKET)
    ingest(sandbox, warehouse, catalog=setting)
    assert not (warehouse / "iceberg").exists()  # nothing of the tables on local disk: the lake is the bucket
    catalog = catalog_of(warehouse, setting)
    for name in ("fc_balances", "fc_accounts", "fc_balance_refreshes"):
        table = catalog.load_table(("fc_balances", name))
        assert table.location().startswith(f"s3://{RUNS_BUCKET}/")
        assert table.scan().to_arrow().num_rows == query(warehouse, f"select count(*) from {name}")[0][0] > 0, name
    on_s3 = catalog.load_table(("fc_balances", "fc_balances")).scan(selected_fields=("account_id", "current_minor"))
    amounts = sorted(on_s3.to_arrow().to_pylist(), key=lambda row: row["account_id"])
    assert [row["current_minor"] for row in amounts] == list(range(10))
    assert check_warehouse(warehouse, setting) == []
