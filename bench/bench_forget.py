"""What does `fc-balances forget` cost on a large warehouse? Times one deletion request end to end.

Usage: python bench/bench_forget.py [--customers 2000] [--accounts-per-customer 3] [--days 90]

Builds a temporary warehouse with synthetic rows written the way the ingest writes them (one batch per day of
balance history, published to Iceberg once), then forgets one customer and reports the wall-clock time, the rows
removed, and how many Iceberg files (data, manifests, metadata) were replaced or removed out of how many. The
deletion scans every declared table that holds an account_id or customer_id, hashing the ids with the salt
(DuckDB's sha256), so the time grows with the warehouse, not with the subject. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.lifecycle.forget import Forgetter  # noqa: E402
from pipelines.normalize.normalizer import normalize_accounts, normalize_balances  # noqa: E402
from pipelines.warehouse import NormalizedBatch, Warehouse  # noqa: E402

START = 1_760_000_000


def accounts(customers: int, per_customer: int, day: int) -> list[dict]:
    found = []
    for c in range(customers):
        for a in range(per_customer):
            as_of = START + day * 86_400 + c
            found.append({
                "id": f"fca_{c:06d}{a}", "object": "financial_connections.account", "status": "active",
                "account_holder": {"type": "customer", "customer": f"cus_{c:06d}"}, "category": "cash",
                "permissions": ["balances"], "created": START, "livemode": False,
                "balance": {"as_of": as_of, "type": "cash", "current": {"usd": 1000 + day + c},
                            "cash": {"available": {"usd": 900 + day}}},
            })
    return found


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--accounts-per-customer", type=int, default=3)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "wh"
        started = time.monotonic()
        with Warehouse(folder) as warehouse:
            for day in range(args.days):
                observed = accounts(args.customers, args.accounts_per_customer, day)
                at = datetime.fromtimestamp(START + day * 86_400 + 3600, UTC)
                balances = normalize_balances(observed, at)
                warehouse.write_batch(NormalizedBatch(accounts=normalize_accounts(observed, at),
                                                      balances=balances.balances, rejected=balances.rejected))
            warehouse.publish(run_id="bench")
            total = warehouse.row_counts()
        built = time.monotonic() - started
        before = digests(folder / "iceberg")
        with Warehouse(folder) as warehouse:
            started = time.monotonic()
            result = Forgetter(warehouse, str(folder / "events" / "store.sqlite")).forget("cus_000042")
            took = time.monotonic() - started
        after = digests(folder / "iceberg")
        rewritten = sum(1 for path, digest in before.items() if after.get(path) != digest)
        data_before = sum(1 for path in before if path.endswith(".parquet"))
        data_kept = sum(1 for path, digest in before.items()
                        if path.endswith(".parquet") and after.get(path) == digest)
        print(f"warehouse: {total['fc_balances']:,} fc_balances rows, {total['fc_accounts']:,} accounts, "
              f"{len(before)} Iceberg files, {data_before} of them data files (built in {built:.1f}s)")
        print(f"forget one customer: {took:.2f}s; rows removed {sum(result.rows_removed.values())} "
              f"({', '.join(f'{k} {v}' for k, v in sorted(result.rows_removed.items()) if v)}); "
              f"Iceberg files replaced or removed {rewritten} of {len(before)} (data files kept as they were "
              f"{data_kept} of {data_before}; {len(after)} files after)")


if __name__ == "__main__":
    main()
