"""forget with the Iceberg tables on S3 (moto on loopback): the subject leaves every object, other days' files stay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from pipelines.lifecycle.forget import Forgetter
from pipelines.warehouse import Warehouse
from tests.iceberg_tables import catalog_of, duckdb_rows, iceberg_rows
from tests.lifecycle.helpers import files_naming, iceberg_about
from tests.unit.test_warehouse import DAY1, DAY2, acct, cash, make_batch
from tests.unit.test_warehouse_s3 import s3_catalog, s3_endpoint

__all__ = ["s3_endpoint"]  # the fixture, imported for pytest
BUCKET = "fc-forget"  # moto keeps one in-memory S3 per process: a bucket of our own


def s3_catalog_here(tmp_path: Path, endpoint: str) -> str:
    return s3_catalog(tmp_path, endpoint, bucket=BUCKET)


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


def test_forget_erases_the_subject_from_every_s3_object(tmp_path: Path, s3_endpoint: str) -> None:
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    setting = s3_catalog_here(tmp_path, s3_endpoint)
    with Warehouse(tmp_path / "wh", catalog=setting) as warehouse:
        warehouse.write_batch(make_batch(accounts()))
        warehouse.publish(run_id="run_1")
    before = etags(s3_endpoint)
    day_c = [k for k in before if "/fc_balances/fc_balances/data/as_of_day=2025-11-26/" in k]
    assert len(day_c) == 1  # only cus_C's day

    with Warehouse(tmp_path / "wh", catalog=setting) as warehouse:
        result = Forgetter(warehouse, str(tmp_path / "store.sqlite")).forget("cus_A")
        assert result.rows_removed["fc_balances"] == 2 and result.rows_removed["fc_accounts"] == 2
    for table in ("fc_accounts", "fc_balances", "fc_balance_refreshes"):
        assert iceberg_rows(tmp_path / "wh", table, setting=setting) == duckdb_rows(tmp_path / "wh", table), table

    after = etags(s3_endpoint)
    assert after[day_c[0]] == before[day_c[0]]  # held no row about cus_A: neither rewritten nor removed
    hits = iceberg_about(tmp_path / "wh", "cus_A", ["fca_A1", "fca_A2"], setting=setting)
    assert hits and all(count == 0 for count in hits.values())
    assert sorted(r[0] for r in iceberg_rows(tmp_path / "wh", "fc_balances", "account_id", setting=setting)) == [
        "fca_B1", "fca_C1"]
    # No object left on the store holds the subject: every object is downloaded and searched, decoded.
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    local = tmp_path / "objects"
    for key in (k for k in after if not k.endswith("/")):  # keys ending in / are folder markers
        target = local / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert files_naming(local, ["cus_A", "fca_A1", "fca_A2"]) == []
    assert files_naming(tmp_path / "catalog", ["cus_A", "fca_A1", "fca_A2"]) == []
    # time travel to before the forget is gone with the bytes: one snapshot per table that holds rows
    catalog = catalog_of(tmp_path / "wh", setting)
    for table in ("fc_accounts", "fc_balances", "fc_balance_refreshes"):
        (snapshot,) = catalog.load_table(("fc_balances", table)).snapshots()
        assert snapshot.summary.get("fc.run-id") == result.request_id
