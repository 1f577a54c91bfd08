"""Benchmark: build every mart day by day from 10 million fc_balances rows (100,000 accounts x 100 days); timings.

The history benchmark (daily runs against full rebuilds over years, with peak memory) is bench_history.py.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta

import duckdb

from assets.checks import Thresholds, table_check_results
from pipelines.contract.migrations import migrate
from pipelines.funds.macro import sufficient_funds
from pipelines.marts.build import MART_TABLES, HistorySettings, build_marts, install_macros
from pipelines.sql import load_sql
from pipelines.warehouse import DUCKDB_FILE_NAME, Warehouse

LAST_DAY = datetime(2025, 6, 30, tzinfo=UTC)


def generate(con: duckdb.DuckDBPyConnection, accounts: int, days: int) -> None:
    migrate(con, "bench")
    params = {"last_day": LAST_DAY, "accounts": accounts}
    con.execute(load_sql("marts/bench/fc_accounts"), params)
    con.execute(load_sql("marts/bench/fc_balances"), {"last_day": LAST_DAY, "days": days})
    con.execute("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--publish", action="store_true", help="also time the Iceberg publish of every mart")
    args = parser.parse_args()
    if args.accounts < 1 or args.days < 1:
        parser.error("--accounts and --days must be at least 1")

    with tempfile.TemporaryDirectory(prefix="bench_marts_") as folder:
        con = duckdb.connect(os.path.join(folder, DUCKDB_FILE_NAME))
        started = time.perf_counter()
        generate(con, args.accounts, args.days)
        (balances,) = con.execute("SELECT count(*) FROM fc_balances").fetchone()
        print(f"generated {balances:,} fc_balances rows for {args.accounts:,} accounts "
              f"in {time.perf_counter() - started:.1f}s ({os.cpu_count()} CPUs, DuckDB {duckdb.__version__})")

        build_at = LAST_DAY + timedelta(days=1, hours=6)  # the morning after the last day
        settings = HistorySettings(history_start=(LAST_DAY - timedelta(days=2 * args.days)).date())
        started = time.perf_counter()
        counts = build_marts(con, build_at, settings, full=True)
        for table in MART_TABLES:
            print(f"  {table:<26} {counts[table]:>12,} rows")
        print(f"  {'every mart, every day':<26} {'':>12}       {time.perf_counter() - started:6.2f}s")
        started = time.perf_counter()
        build_marts(con, build_at + timedelta(minutes=1), settings)
        print(f"  {'again, nothing new':<26} {'':>12}       {time.perf_counter() - started:6.2f}s")

        now = build_at
        for table in ("fc_balances", *MART_TABLES):
            started = time.perf_counter()
            results = table_check_results(con, table, Thresholds(staleness_hours=72.0), now)
            passed = all(r.passed for r in results)
            print(f"  checks on {table:<26} {'pass' if passed else 'FAIL':>9}  {time.perf_counter() - started:6.2f}s")

        install_macros(con)
        started = time.perf_counter()
        check = sufficient_funds(con, "fca_00000001", 10_000, "usd", at=build_at)
        print(f"  fc_sufficient_funds on one account: {1000 * (time.perf_counter() - started):.1f} ms "
              f"(basis {check.basis})")
        con.close()

        if args.publish:
            started = time.perf_counter()
            with Warehouse(folder) as wh:
                opened = time.perf_counter() - started
                started = time.perf_counter()
                exported = wh.publish(MART_TABLES, run_id="bench")
            print(f"  first warehouse open (lock, DDL, the catalog's tables created) {opened:.2f}s")
            exported_rows = sum(exported.values())
            print(f"  Iceberg publish of the marts {time.perf_counter() - started:.2f}s ({exported_rows:,} rows)")
            started = time.perf_counter()
            with Warehouse(folder):
                pass
            print(f"  warehouse open with everything published (what each asset/check step pays) "
                  f"{time.perf_counter() - started:.2f}s")


if __name__ == "__main__":
    main()
