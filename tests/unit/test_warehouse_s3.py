"""Iceberg on object storage: the warehouse's tables in moto's S3 server on 127.0.0.1, read back through the catalog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from pipelines.contract.tables import INGEST_TABLES as CONTRACT_TABLES
from pipelines.warehouse import Warehouse, WarehouseError
from tests.iceberg_tables import duckdb_rows, iceberg_rows
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


def s3_catalog(tmp_path: Path, endpoint: str, bucket: str = BUCKET) -> str:
    """FC_BALANCES_ICEBERG_CATALOG for a SQL catalog whose table files live on the S3 endpoint."""
    return json.dumps({
        "type": "sql", "uri": f"sqlite:///{tmp_path / 'catalog' / 'catalog.db'}", "warehouse": f"s3://{bucket}/lake",
        "s3.endpoint": endpoint, "s3.access-key-id": "testing", "s3.secret-access-key": "s3-secret-value",
        "s3.region": "us-east-1",
    })


def s3_keys(endpoint: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_s3_round_trip_and_a_crash_before_the_publish(tmp_path: Path, s3_endpoint: str) -> None:
    setting = s3_catalog(tmp_path, s3_endpoint)
    with Warehouse(tmp_path / "wh", catalog=setting) as warehouse:
        warehouse.write_batch(make_batch(sample_accounts()))
        assert warehouse.publish(run_id="run_1")["fc_balances"] == 4
    data = [key for key in s3_keys(s3_endpoint) if "/data/" in key]
    assert [key.split("/data/")[1].split("/")[0] for key in data if key.startswith("lake/fc_balances/fc_balances/")] \
        == ["as_of_day=2025-11-24", "as_of_day=2025-11-25"]
    assert not (tmp_path / "wh" / "iceberg").exists()  # nothing of the tables on local disk

    # A run that committed to DuckDB but died before its publish: the next run's publish commits what differs.
    with Warehouse(tmp_path / "wh", catalog=setting) as warehouse:
        warehouse.write_batch(make_batch([acct("fca_8", cash(DAY2, {"usd": 3}))], run_id="run_2"))
    with Warehouse(tmp_path / "wh", catalog=setting) as warehouse:
        warehouse.publish(run_id="run_3")
    for table in CONTRACT_TABLES:
        assert iceberg_rows(tmp_path / "wh", table, setting=setting) == duckdb_rows(tmp_path / "wh", table), table
    assert len(iceberg_rows(tmp_path / "wh", "fc_balances", setting=setting)) == 5


def test_missing_bucket_is_one_line_error_without_secrets(tmp_path: Path, s3_endpoint: str) -> None:
    setting = s3_catalog(tmp_path, s3_endpoint, bucket="no-such-bucket")
    with pytest.raises(WarehouseError) as raised, Warehouse(tmp_path / "wh", catalog=setting):
        pass
    message = str(raised.value)
    assert "s3://no-such-bucket/lake" in message
    assert "\n" not in message
    assert "s3-secret-value" not in message


def test_a_bad_catalog_setting_is_one_line(tmp_path: Path) -> None:
    for bad in ("not json", "[]", "{}"):
        with pytest.raises(WarehouseError, match="FC_BALANCES_ICEBERG_CATALOG must be"):
            Warehouse(tmp_path / "wh", catalog=bad)
