"""forget with Parquet on S3 (moto on loopback): only the objects that held the subject's rows are rewritten."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from pipelines.lifecycle.forget import Forgetter
from pipelines.warehouse import Warehouse
from tests.lifecycle.helpers import parquet_about
from tests.unit.test_warehouse import DAY1, DAY2, acct, cash, make_batch
from tests.unit.test_warehouse_s3 import canonical, duckdb_rows, s3_endpoint, s3_filesystem

__all__ = ["s3_endpoint"]  # the fixture, imported for pytest
BUCKET = "fc-forget"  # moto keeps one in-memory S3 per process: a bucket of our own


def rows_from_s3(endpoint: str, table: str) -> list[dict]:
    import pyarrow.dataset as ds

    dataset = ds.dataset(f"{BUCKET}/lake/{table}", filesystem=s3_filesystem(endpoint), format="parquet",
                         partitioning="hive")
    return dataset.to_table().to_pylist()


def holder(account: dict[str, Any], customer: str) -> dict[str, Any]:
    return {**account, "account_holder": {"type": "customer", "customer": customer}}


def accounts() -> list[dict[str, Any]]:
    return [
        holder(acct("fca_A1", cash(DAY1, {"usd": 100})), "cus_A"),
        holder(acct("fca_A2", cash(DAY2, {"usd": 200})), "cus_A"),
        holder(acct("fca_B1", cash(DAY1, {"usd": 300})), "cus_B"),
        holder(acct("fca_C1", cash(DAY2 + 86_400, {"eur": 400})), "cus_C"),
    ]


def etags(endpoint: str) -> dict[str, str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_forget_rewrites_only_the_s3_objects_that_held_the_subject(tmp_path: Path, s3_endpoint: str) -> None:
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    uri = f"s3://{BUCKET}/lake"
    with Warehouse(tmp_path / "wh", parquet_uri=uri) as warehouse:
        warehouse.write_batch(make_batch(accounts()))
        warehouse.export_parquet()
    before = etags(s3_endpoint)
    assert "lake/fc_balances/as_of_date=2025-11-26/data.parquet" in before  # only cus_C's day

    with Warehouse(tmp_path / "wh", parquet_uri=uri) as warehouse:
        result = Forgetter(warehouse, str(tmp_path / "store.sqlite")).forget("cus_A")
        assert result.rows_removed["fc_balances"] == 2 and result.rows_removed["fc_accounts"] == 2
        for table in ("fc_accounts", "fc_balances", "fc_balance_refreshes"):
            assert canonical(rows_from_s3(s3_endpoint, table), ("as_of_date", "run_date")) == canonical(
                duckdb_rows(warehouse, table)), table

    after = etags(s3_endpoint)
    assert after["lake/fc_balances/as_of_date=2025-11-26/data.parquet"] == before[
        "lake/fc_balances/as_of_date=2025-11-26/data.parquet"]  # held no row about cus_A: not rewritten
    changed = {key for key in before if after.get(key) != before[key]}
    assert changed == {
        "lake/fc_accounts/fc_accounts.parquet",
        "lake/fc_balances/as_of_date=2025-11-24/data.parquet",
        "lake/fc_balances/as_of_date=2025-11-25/data.parquet",
        "lake/fc_balance_refreshes/run_date=2025-11-25/data.parquet",
    }
    hits = parquet_about(f"{BUCKET}/lake", "cus_A", ["fca_A1", "fca_A2"], filesystem=s3_filesystem(s3_endpoint))
    assert hits and all(count == 0 for count in hits.values())
    assert sorted(r["account_id"] for r in rows_from_s3(s3_endpoint, "fc_balances")) == ["fca_B1", "fca_C1"]
