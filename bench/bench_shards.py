"""Benchmark: the partitioned marts over a generated history, 1 shard (main's plain assets, fc_marts_job in process)
against 2 (fc_marts_sharded_job: plan, a step per shard in processes of their own, commit), with a real
DagsterInstance in a temporary DAGSTER_HOME; prints wall seconds, each step's seconds and whether the rows match."""

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
from pipelines.marts.build import PARTITION_COLUMNS
from pipelines.warehouse import DUCKDB_FILE_NAME
from pipelines.warehouse.store import Warehouse

BUILD_TIME_COLUMNS = {"built_at", "staleness_hours"}  # each run's own clock
JOBS = {1: "fc_marts_job", 2: "fc_marts_sharded_job"}


def marts_job() -> dg.JobDefinition:
    from pipelines.definitions import build_definitions

    return build_definitions().resolve_job_def(JOBS[int(os.environ["FC_BALANCES_MART_SHARDS"])])


def fingerprint(folder: Path) -> dict[str, tuple[int, int]]:
    """Per partitioned mart: rows and an order-free hash of them (build-time columns left out)."""
    found = {}
    with duckdb.connect(str(folder / DUCKDB_FILE_NAME), read_only=True) as con:
        for table in PARTITION_COLUMNS:
            columns = ", ".join(c.name for c in TABLES[table].columns if c.name not in BUILD_TIME_COLUMNS)
            found[table] = con.execute(f"SELECT count(*), sum(hash({columns})) FROM {table}").fetchone()
    return found


def run(folder: Path, shards: int, first: datetime, home: Path) -> tuple[float, dict[str, float]]:
    os.environ.update({"DAGSTER_HOME": str(home), "FC_BALANCES_WAREHOUSE": str(folder),
                       "FC_BALANCES_HISTORY_START": first.date().isoformat(), "FC_BALANCES_MART_SHARDS": str(shards)})
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(marts_job), instance=instance,
                                tags=range_tags(first.date(), datetime.now(UTC).date()),
                                asset_selection=[dg.AssetKey(table) for table in PARTITION_COLUMNS])
        wall = time.perf_counter() - started
        if not result.success:
            raise SystemExit(f"the {shards}-shard run failed")
        records = [r for r in instance.all_logs(result.run_id) if r.dagster_event is not None]
    starts = {r.step_key: r.timestamp for r in records if r.dagster_event.event_type_value == "STEP_START"}
    steps = {r.step_key: r.timestamp - starts[r.step_key] for r in records
             if r.dagster_event.event_type_value == "STEP_SUCCESS"}
    return wall, steps


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
        with Warehouse(source) as wh:  # the balances are in Iceberg before any mart run, as after an ingest
            wh.publish(["fc_balances"], run_id="bench")
        prints: dict[int, dict[str, tuple[int, int]]] = {}
        walls: dict[int, float] = {}
        for shards in (1, 2):
            folder, home = root / f"shards_{shards}", root / f"home_{shards}"
            shutil.copytree(source, folder)
            home.mkdir()
            (home / "dagster.yaml").write_text("")
            walls[shards], steps = run(folder, shards, first, home)
            prints[shards] = fingerprint(folder)
            rows = sum(count for count, _ in prints[shards].values())
            print(f"{shards} shard(s), {JOBS[shards]}: {walls[shards]:.1f}s wall ({rows:,} mart rows); steps: "
                  + ", ".join(f"{key.split('.')[-1]} {seconds:.1f}s" for key, seconds in steps.items()))
    same = prints[1] == prints[2]
    print(f"conditions: {args.accounts:,} accounts x {args.days} days, every day rebuilt in one run, the two "
          f"partitioned marts only, {os.cpu_count()} cores shared with other work (load average "
          f"{os.getloadavg()[0]:.1f} at the end); 2 shards / 1 shard = {walls[2] / walls[1]:.2f}; "
          f"rows {'identical' if same else 'DIFFERENT'}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
