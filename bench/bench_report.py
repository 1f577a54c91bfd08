"""Benchmark: `fc-balances report --customers FILE --out-dir DIR` over a book of customers; prints timings.

The warehouse is built with the real DDL, the marts benchmark's data generator (three accounts per customer, one
balance a day, 5% jpy / 5% eur, one account in ten read every other day), one refresh row per account per day,
and the real mart build. The report then runs as a user runs it: the installed CLI in its own process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pipelines.contract.migrations import migrate
from pipelines.contract.values import RefreshOutcome
from pipelines.marts.build import build_marts
from pipelines.sql import load_sql

LAST_DAY = datetime(2025, 6, 30, tzinfo=UTC)
ACCOUNTS_PER_CUSTOMER = 3  # fixed by sql/marts/bench/fc_accounts.sql


def build_warehouse(folder: Path, customers: int, days: int) -> list[str]:
    con = duckdb.connect(str(folder / "fc_balances.duckdb"))
    migrate(con, str(folder))
    con.execute(load_sql("marts/bench/fc_accounts"), {"last_day": LAST_DAY, "accounts": customers * 3})
    con.execute(load_sql("marts/bench/fc_balances"), {"last_day": LAST_DAY, "days": days})
    con.execute(load_sql("report/bench/fc_balance_refreshes"), {
        "last_day": LAST_DAY, "days": days, "succeeded": RefreshOutcome.SUCCEEDED, "failed": RefreshOutcome.FAILED,
        "skipped_inactive": RefreshOutcome.SKIPPED_INACTIVE})
    build_marts(con, LAST_DAY + timedelta(days=1, hours=6))
    ids = [row[0] for row in con.execute("SELECT DISTINCT customer_id FROM fc_accounts ORDER BY 1").fetchall()]
    counts = {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
              for table in ("fc_accounts", "fc_balances", "fc_daily_balances", "fc_balance_refreshes")}
    con.close()
    print("warehouse: " + ", ".join(f"{table} {rows:,}" for table, rows in counts.items()))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=120, help="days of history in the warehouse")
    parser.add_argument("--window", type=int, default=90, help="the report's --days")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", help="copy nothing; write the reports here instead of a temp dir")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        ids = build_warehouse(folder, args.customers, args.days)
        print(f"built for {len(ids):,} customers x {ACCOUNTS_PER_CUSTOMER} accounts x {args.days} days in "
              f"{time.perf_counter() - started:.1f}s ({os.cpu_count()} CPUs, DuckDB {duckdb.__version__}, "
              f"load average {os.getloadavg()[0]:.2f})")
        listing = folder / "customers.txt"
        listing.write_text("\n".join(ids) + "\n")
        out = Path(args.keep) if args.keep else folder / "reports"
        command = [str(Path(sys.executable).with_name("fc-balances")), "report", "--warehouse", str(folder),
                   "--customers", str(listing), "--out-dir", str(out), "--days", str(args.window)]
        for attempt in range(1, args.repeat + 1):
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(f"report failed: {done.stderr.strip()}")
            files = list(out.glob("*.html"))
            size = sum(f.stat().st_size for f in files)
            print(f"run {attempt}: {len(ids):,} customers, --days {args.window}: {elapsed:.1f}s wall "
                  f"({1000 * elapsed / len(ids):.1f} ms per customer), {len(files):,} files, {size / 1e6:.1f} MB, "
                  f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
