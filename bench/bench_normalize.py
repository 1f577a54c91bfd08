"""Benchmark: normalize 100,000 synthetic accounts, then write them to a warehouse in batches; prints figures."""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import duckdb

from pipelines.normalize.normalizer import normalize_accounts, normalize_balances, refreshes_table
from pipelines.warehouse import NormalizedBatch, Warehouse

CURRENCIES = ["usd", "eur", "gbp", "cad", "jpy", "kwd"]


def synthetic_accounts(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Stripe-shaped account dicts: 70% cash, 25% credit, 5% no balance; 1-2 currencies; ~1% bad currency."""
    rng = random.Random(seed)
    accounts = []
    for index in range(count):
        roll = rng.random()
        currencies = rng.sample(CURRENCIES, 2 if rng.random() < 0.2 else 1)
        if rng.random() < 0.01:
            currencies.append("undefined")
        as_of = 1764000000 + rng.randrange(0, 30) * 86400 + rng.randrange(86400)
        if roll < 0.70:
            balance: dict[str, Any] | None = {
                "as_of": as_of, "type": "cash",
                "current": {c: rng.randrange(-10**6, 10**9) for c in currencies},
                "cash": {"available": {c: rng.randrange(0, 10**9) for c in currencies}}, "credit": None}
        elif roll < 0.95:
            balance = {
                "as_of": as_of, "type": "credit",
                "current": {c: -rng.randrange(0, 10**7) for c in currencies},
                "cash": None, "credit": {"used": {c: -rng.randrange(0, 10**7) for c in currencies}}}
        else:
            balance = None
        accounts.append({
            "id": f"fca_{index:08d}", "object": "financial_connections.account",
            "account_holder": {"type": "customer", "customer": f"cus_{index // 3:08d}"},
            "institution_name": "StripeBank", "display_name": "Checking", "last4": f"{index % 10000:04d}",
            "category": "cash", "subcategory": "checking", "status": "active",
            "permissions": ["balances", "payment_method"], "livemode": False, "created": 1763000000,
            "balance": balance,
            "balance_refresh": {"status": "succeeded", "last_attempted_at": as_of,
                                "next_refresh_available_at": as_of + 3600},
        })
    return accounts


def bench_normalize(accounts: list[dict[str, Any]], repeats: int) -> None:
    now = datetime.now(UTC)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        normalize_accounts(accounts, now)
        result = normalize_balances(accounts, now)
        timings.append(time.perf_counter() - started)
    best = min(timings)
    print(f"normalize: {len(accounts):,} accounts -> {result.balances.num_rows:,} balance rows, "
          f"{result.rejected.num_rows:,} rejected")
    print(f"  best of {repeats}: {best:.3f} s = {len(accounts) / best:,.0f} accounts/s, "
          f"{best / len(accounts) * 1e6:.2f} us/account (accounts + balances tables)")


def bench_warehouse(accounts: list[dict[str, Any]], batch_size: int) -> None:
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder, Warehouse(folder) as warehouse:
        batch_times = []
        for start in range(0, len(accounts), batch_size):
            chunk = accounts[start:start + batch_size]
            balances = normalize_balances(chunk, now)
            records = [{"run_id": "bench", "account_id": a["id"], "outcome": "succeeded",
                        "requested_at": 1764000000, "completed_at": 1764000005} for a in chunk]
            batch = NormalizedBatch(accounts=normalize_accounts(chunk, now), balances=balances.balances,
                                    refreshes=refreshes_table(records), rejected=balances.rejected)
            started = time.perf_counter()
            warehouse.write_batch(batch)
            batch_times.append(time.perf_counter() - started)
        connect_times = []
        for _ in range(50):
            started = time.perf_counter()
            connection = duckdb.connect(str(warehouse.duckdb_path))
            connection.execute("SET TimeZone = 'UTC'")
            connection.close()
            connect_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        exported = warehouse.publish(run_id="bench_first")
        export_full = time.perf_counter() - started
        started = time.perf_counter()
        warehouse.publish(run_id="bench_unchanged")
        export_noop = time.perf_counter() - started
        counts = warehouse.row_counts()
    print(f"warehouse: {len(batch_times)} batches of {batch_size} accounts -> {counts}")
    print(f"  write_batch: median {statistics.median(batch_times) * 1e3:.1f} ms, "
          f"max {max(batch_times) * 1e3:.1f} ms per batch")
    print(f"  DuckDB open+close per call (file with {sum(counts.values()):,} rows): "
          f"median {statistics.median(connect_times) * 1e3:.2f} ms, max {max(connect_times) * 1e3:.2f} ms")
    print(f"  publish to Iceberg: first {export_full:.2f} s ({sum(exported.values()):,} rows), "
          f"unchanged {export_noop:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--no-warehouse", action="store_true", help="only the normalizer")
    args = parser.parse_args()
    accounts = synthetic_accounts(args.accounts)
    bench_normalize(accounts, args.repeats)
    if not args.no_warehouse:
        bench_warehouse(accounts, args.batch_size)


if __name__ == "__main__":
    main()
