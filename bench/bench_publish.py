"""Benchmark: the contract tables' Iceberg publish on a long history: first (everything), daily (one new day of
balances), idle (nothing new); prints wall, CPU and peak RSS of each, in a process of its own."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from bench_history import DUCKDB_FILE_NAME, add_today, load, measured

from pipelines.sql import load_sql

PUBLISH = """
import sys, time
from pipelines.contract.tables import INGEST_TABLES
from pipelines.warehouse import Warehouse
started = time.perf_counter()
with Warehouse(sys.argv[1]) as warehouse:
    written = warehouse.publish(INGEST_TABLES, run_id=sys.argv[2])
print(f"{time.perf_counter() - started:.1f}s in process, rows written {written}")
"""


def publish(python: str, folder: Path, run_id: str, env: dict[str, str]) -> str:
    wall, rss, cpu = measured([python, "-c", PUBLISH, str(folder), run_id], env)
    return f"{wall:.1f}s wall, {cpu:.1f}s CPU, peak RSS {rss:.2f} GiB; load average {load()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--history", required=True, help="a folder bench_history.py left (--folder): its DuckDB "
                        "file is copied, the copy published")
    parser.add_argument("--folder", required=True, help="where the copy goes (removed after unless --keep)")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter of the code to time (another checkout's .venv/bin/python: the "
                        "commands run in that checkout, so `python -c` imports its code)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    folder = Path(args.folder).absolute()
    history = Path(args.history).absolute()
    os.chdir(Path(args.python).absolute().parent.parent.parent)  # the checkout of .venv/bin/python
    if folder.exists():
        sys.exit(f"{folder} exists: give a new folder")
    folder.mkdir(parents=True)
    try:
        started = time.perf_counter()
        shutil.copy(history / DUCKDB_FILE_NAME, folder / DUCKDB_FILE_NAME)
        with duckdb.connect(str(folder / DUCKDB_FILE_NAME), read_only=True) as con:
            first_day, last_day, accounts = con.execute(load_sql("marts/bench/history_shape")).fetchone()
            (rows,) = con.execute("SELECT count(*) FROM fc_balances").fetchone()
        print(f"history: {rows:,} fc_balances rows, {accounts:,} accounts, {first_day}..{last_day} "
              f"(copied in {time.perf_counter() - started:.0f}s); {os.cpu_count()} CPUs; code in {os.getcwd()}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FC_BALANCES_", "DAGSTER_HOME"))}
        print("first publish (every partition):", publish(args.python, folder, "bench_first", env))
        first = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
        add_today(folder, (datetime.now(UTC).date() - first_day).days, first)
        print(f"daily publish ({accounts:,} new balances today):", publish(args.python, folder, "bench_daily", env))
        print("idle publish (nothing new):", publish(args.python, folder, "bench_idle", env))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
