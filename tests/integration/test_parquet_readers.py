"""The Parquet a run leaves is readable as-is by other engines, locally and on S3 (moto's server on loopback)."""

from __future__ import annotations

from pathlib import Path

import boto3
import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from assets.balances import stripe_fc_ingest
from pipelines.contract.check import check_warehouse
from pipelines.resources import WarehouseResource
from tests.integration.helpers import query, stripe_resource
from tests.integration.test_streaming import fixtures
from tests.unit.test_warehouse_s3 import s3_endpoint, s3_filesystem  # noqa: F401 - the fixture

RUNS_BUCKET = "fc-runs"


def normalized(rows: list[dict]) -> list[tuple]:
    """Rows as tuples of Python values in key order, the hive partition column left out."""
    rows = [{k: v for k, v in row.items() if k != "as_of_date"} for row in rows]
    return sorted(tuple(row[c] for c in sorted(row)) for row in rows)


def ingest(sandbox, warehouse: Path, parquet_uri: str | None = None) -> None:
    result = dg.materialize(
        [stripe_fc_ingest],
        resources={"stripe": stripe_resource(sandbox),
                   "warehouse": WarehouseResource(directory=str(warehouse), parquet_uri=parquet_uri)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success


def test_pyarrow_pandas_and_duckdb_read_identical_rows(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(refresh_latency=(0.05, 0.05))
    sandbox.load_fixtures(fixtures(25))
    warehouse = tmp_path / "wh"
    ingest(sandbox, warehouse)
    folder = warehouse / "parquet" / "fc_balances"

    with_pyarrow = ds.dataset(folder, format="parquet", partitioning="hive").to_table().to_pylist()
    # pandas with Arrow-backed columns, so decimals and timezones survive the DataFrame.
    with_pandas = pa.Table.from_pandas(pd.read_parquet(folder, dtype_backend="pyarrow")).to_pylist()
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        with_duckdb = con.sql(
            "select * from read_parquet($files, hive_partitioning = true)",
            params={"files": str(folder / "**" / "*.parquet")},
        ).to_arrow_table().to_pylist()
    rows = normalized(with_pyarrow)
    assert len(rows) == 25 == query(warehouse, "select count(*) from fc_balances")[0][0]
    assert normalized(with_pandas) == rows
    assert normalized(with_duckdb) == rows
    # The decimals stay exact decimals in every engine's Arrow schema.
    assert str(ds.dataset(folder, format="parquet", partitioning="hive").schema.field("current").type) == (
        "decimal128(38, 4)"
    )


def test_a_run_writes_parquet_to_s3(sandbox_factory, tmp_path: Path, s3_endpoint: str) -> None:  # noqa: F811
    # moto keeps one in-memory S3 per process: a bucket of our own keeps other tests' listings exact.
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=RUNS_BUCKET)
    sandbox = sandbox_factory(refresh_latency=(0.05, 0.05))
    sandbox.load_fixtures(fixtures(10))
    warehouse = tmp_path / "wh"
    ingest(sandbox, warehouse, parquet_uri=f"s3://{RUNS_BUCKET}/runs")
    assert not (warehouse / "parquet").exists()  # nothing written locally: the lake is the bucket
    filesystem = s3_filesystem(s3_endpoint)
    for table in ("fc_balances", "fc_accounts", "fc_balance_refreshes"):
        dataset = ds.dataset(f"{RUNS_BUCKET}/runs/{table}", filesystem=filesystem, format="parquet",
                             partitioning="hive")
        assert dataset.count_rows() == query(warehouse, f"select count(*) from {table}")[0][0] > 0, table
    on_s3 = ds.dataset(f"{RUNS_BUCKET}/runs/fc_balances", filesystem=filesystem, format="parquet", partitioning="hive")
    amounts = sorted(on_s3.to_table(columns=["account_id", "current_minor"]).to_pylist(),
                     key=lambda row: row["account_id"])
    assert [row["current_minor"] for row in amounts] == list(range(10))
    assert check_warehouse(warehouse, parquet_uri=f"s3://{RUNS_BUCKET}/runs") == []
