"""Benchmark: the contract tables' publish over many daily runs, each observing every account again (fc_accounts,
unpartitioned, overwritten whole each run): publish seconds and the current snapshot's manifests as runs accumulate.

Usage: python bench/bench_publish_growth.py [--accounts 1000] [--runs 200]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from bench_history import generate, load

from pipelines.sql import load_sql
from pipelines.warehouse import DUCKDB_FILE_NAME, Warehouse
from pipelines.warehouse.catalog import load_table

REPORTED = (1, 2, 5, 10, 20, 50, 100, 200, 365, 500, 730)


def observe_all(folder: Path, at: datetime) -> None:
    with duckdb.connect(str(folder / DUCKDB_FILE_NAME)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(load_sql("marts/bench/observe_accounts"), {"observed_at": at})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    if args.accounts < 1 or args.runs < 1:
        parser.error("--accounts and --runs must be at least 1")
    folder = Path(tempfile.mkdtemp(prefix="bench_publish_growth_"))
    try:
        now = datetime.now(UTC)
        generate(folder, args.accounts, 2, now)
        print(f"conditions: load average {load()}; {args.accounts:,} accounts, {args.runs} runs")
        with Warehouse(folder) as wh:
            wh.publish(None, run_id="bench-initial")
        walls = []
        for run in range(1, args.runs + 1):
            observe_all(folder, now + timedelta(seconds=run))
            started = time.perf_counter()
            with Warehouse(folder) as wh:
                wh.publish(None, run_id=f"bench-run-{run}")
                seconds = time.perf_counter() - started
                if run in REPORTED or run == args.runs:
                    table = load_table(wh.catalog, "fc_accounts")
                    snapshot = table.current_snapshot()
                    manifests = len(snapshot.manifests(table.io)) if snapshot is not None else 0
                    print(f"run {run:4d}: publish {seconds:.3f}s; fc_accounts: {manifests} manifests in the current "
                          f"snapshot, {len(table.snapshots())} snapshots", flush=True)
            walls.append(seconds)
        print(f"publish per run: first 10 runs {sum(walls[:10]) / min(10, len(walls)):.3f}s mean, last 10 "
              f"{sum(walls[-10:]) / min(10, len(walls)):.3f}s mean; load average {load()}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
