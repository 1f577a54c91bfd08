"""Benchmark: the marts job over a generated history with 2 account hash shards against 1, both under the
multiprocess executor (a real DagsterInstance in a temporary DAGSTER_HOME); prints wall seconds and whether the
rows match."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_history import generate  # the history benchmark's generator, reused

from assets.marts_launch import range_tags
from pipelines.contract.tables import TABLES
from pipelines.marts.build import MART_TABLES
from pipelines.warehouse import DUCKDB_FILE_NAME

BUILD_TIME_COLUMNS = {"built_at", "staleness_hours", "max_staleness_hours"}  # each run's own clock


def marts_job() -> dg.JobDefinition:
    from pipelines.definitions import build_definitions

    return build_definitions().resolve_job_def("fc_marts_sharded_job")


def fingerprint(folder: Path) -> dict[str, tuple[int, int]]:
    """Per mart: rows and an order-free hash of them (build-time columns left out)."""
    found = {}
    with duckdb.connect(str(folder / DUCKDB_FILE_NAME), read_only=True) as con:
        for table in MART_TABLES:
            columns = ", ".join(c.name for c in TABLES[table].columns if c.name not in BUILD_TIME_COLUMNS)
            found[table] = con.execute(f"SELECT count(*), sum(hash({columns})) FROM {table}").fetchone()
    return found


def run(folder: Path, shards: int, first: datetime, home: Path) -> float:
    os.environ.update({"DAGSTER_HOME": str(home), "FC_BALANCES_WAREHOUSE": str(folder),
                       "FC_BALANCES_HISTORY_START": first.date().isoformat(), "FC_BALANCES_MART_SHARDS": str(shards),
                       "FC_BALANCES_LOCK_TIMEOUT": "3600"})  # a shard step waits for the other's writes
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(marts_job), instance=instance,
                                tags=range_tags(first.date(), datetime.now(UTC).date()))
    if not result.success:
        raise SystemExit(f"the {shards}-shard run failed")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        source = root / "history"
        source.mkdir()
        first = generate(source, args.accounts, args.days, datetime.now(UTC))
        timings: dict[int, float] = {}
        prints: dict[int, dict[str, tuple[int, int]]] = {}
        for shards in (1, 2):
            folder, home = root / f"shards_{shards}", root / f"home_{shards}"
            shutil.copytree(source, folder)
            home.mkdir()
            (home / "dagster.yaml").write_text("")
            timings[shards] = run(folder, shards, first, home)
            prints[shards] = fingerprint(folder)
            print(f"{shards} shard(s): marts job {timings[shards]:.1f}s wall "
                  f"({sum(rows for rows, _ in prints[shards].values()):,} mart rows)")
    same = prints[1] == prints[2]
    print(f"conditions: {args.accounts:,} accounts x {args.days} days, every day rebuilt in one run, "
          f"multiprocess executor, {os.cpu_count()} cores shared with other work (load average "
          f"{os.getloadavg()[0]:.1f} at the end); 2 shards / 1 shard = {timings[2] / timings[1]:.2f}; "
          f"rows {'identical' if same else 'DIFFERENT'}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
