"""Parquet on object storage: the warehouse against moto's S3 server on 127.0.0.1, read back with pyarrow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import duckdb
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from moto.server import ThreadedMotoServer

from pipelines.contract.tables import INGEST_TABLES as CONTRACT_TABLES
from pipelines.warehouse import Warehouse, WarehouseError
from tests.unit.test_warehouse import DAY2, acct, cash, make_batch, sample_accounts

BUCKET = "fc-lake"


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def s3_filesystem(endpoint: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(endpoint_override=endpoint.removeprefix("http://"), scheme="http",
                             access_key="testing", secret_key="testing", region="us-east-1")


def rows_from_s3(endpoint: str, table: str) -> list[dict]:
    dataset = ds.dataset(f"{BUCKET}/lake/{table}", filesystem=s3_filesystem(endpoint), format="parquet",
                         partitioning="hive")
    return dataset.to_table().to_pylist()


def duckdb_rows(warehouse: Warehouse, table: str) -> list[dict]:
    con = duckdb.connect(str(warehouse.duckdb_path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(f"SELECT * FROM {table}").to_arrow_table().to_pylist()
    finally:
        con.close()


def canonical(rows: list[dict], drop: tuple[str, ...] = ()) -> list[str]:
    return sorted(repr(sorted((k, v) for k, v in row.items() if k not in drop)) for row in rows)


def test_s3_round_trip_and_heal(tmp_path: Path, s3_endpoint: str) -> None:
    uri = f"s3://{BUCKET}/lake"
    with Warehouse(tmp_path / "wh", parquet_uri=uri) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        assert warehouse.export_parquet()["fc_balances"] == 4
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    keys = sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == [
        "lake/fc_accounts/fc_accounts.parquet",
        "lake/fc_balance_refreshes/run_date=2025-11-25/data.parquet",
        "lake/fc_balances/as_of_date=2025-11-24/data.parquet",
        "lake/fc_balances/as_of_date=2025-11-25/data.parquet",
        "lake/fc_rejected_balances/fc_rejected_balances.parquet",
    ]

    # A run that committed to DuckDB but died before its export, and an object lost on the store: the next
    # open rewrites what differs.
    with Warehouse(tmp_path / "wh", parquet_uri=uri) as warehouse:
        warehouse.write_batch(make_batch([acct("fca_8", cash(DAY2, {"usd": 3}))], run_id="run_2"))
    s3.delete_object(Bucket=BUCKET, Key="lake/fc_accounts/fc_accounts.parquet")
    with Warehouse(tmp_path / "wh", parquet_uri=uri) as warehouse:
        for table in CONTRACT_TABLES:
            partition = {"fc_balances": ("as_of_date",), "fc_balance_refreshes": ("run_date",)}.get(table, ())
            assert canonical(rows_from_s3(s3_endpoint, table), partition) == canonical(
                duckdb_rows(warehouse, table)), table
        assert len(rows_from_s3(s3_endpoint, "fc_balances")) == 5


def test_missing_bucket_is_one_line_error(tmp_path: Path, s3_endpoint: str) -> None:
    with pytest.raises(WarehouseError) as raised, Warehouse(tmp_path / "wh", parquet_uri="s3://no-such-bucket/x"):
        pass
    message = str(raised.value)
    assert "s3://no-such-bucket/x" in message
    assert "\n" not in message
    assert "testing" not in message
