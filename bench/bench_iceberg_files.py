"""Benchmark: Iceberg data files per day partition after N daily runs, and bytes on disk (against 0.2.0's parquet/)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_history import FC_BALANCES, add_today, generate, load, measured

from pipelines.warehouse import DUCKDB_FILE_NAME, Warehouse
from pipelines.warehouse.catalog import load_table

COUNTED = ("fc_balances", "fc_daily_balances", "fc_underwriting_features")
# 0.2.0's ingest exported the contract tables after each run (its marts export their own): run in its own venv.
OLD_EXPORT = """
import sys
from pipelines.warehouse import Warehouse
with Warehouse(sys.argv[1]) as wh:
    wh.export_parquet()
"""


def publish_ingest(folder: Path, run_id: str) -> float:
    """What an ingest publishes (the contract tables), in this process; seconds."""
    started = time.perf_counter()
    with Warehouse(folder) as wh:
        wh.publish(None, run_id=run_id)
    return time.perf_counter() - started


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def files_report(folder: Path) -> None:
    """Per counted table: data files per partition in the current snapshot, and files and bytes on disk."""
    with Warehouse(folder) as wh:
        catalog = wh.catalog
        for name in COUNTED:
            table = load_table(catalog, name)
            snapshot = table.current_snapshot()
            per_partition: Counter[str] = Counter()
            manifests = 0
            if snapshot is not None:
                for manifest in snapshot.manifests(table.io):
                    manifests += 1
                    for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                        per_partition[str(entry.data_file.partition[0])] += 1
            root = Path(table.location().removeprefix("file://"))
            on_disk = list((root / "data").rglob("*.parquet"))
            metadata = [f for f in (root / "metadata").iterdir() if f.is_file()]
            spread = Counter(per_partition.values())
            print(f"  {name}: {len(per_partition)} partitions, data files per partition in the current snapshot "
                  f"{dict(sorted(spread.items()))} (files: partitions), {manifests} manifests; on disk "
                  f"{len(on_disk)} data files ({size_of(root / 'data') / 2**20:.1f} MiB), {len(metadata)} metadata "
                  f"files ({size_of(root / 'metadata') / 2**20:.1f} MiB), {len(table.snapshots())} snapshots")
    print(f"  iceberg/ in total: {size_of(folder / 'iceberg') / 2**20:.1f} MiB")


def same_history_bytes(folder: Path, accounts: int, days: int, old_code: Path | None, env: dict[str, str]) -> None:
    """Bytes on disk for one history (`days` ending yesterday) after `marts --full` and the contract tables'
    publish: iceberg/ with this code, parquet/ with 0.2.0's (its own checkout and venv, same generator SQL)."""
    new, old = folder / "bytes_new", folder / "bytes_old"
    new.mkdir()
    first_day = generate(new, accounts, days, datetime.now(UTC))
    new_env = env | {"FC_BALANCES_WAREHOUSE": str(new), "FC_BALANCES_HISTORY_START": first_day.date().isoformat()}
    wall, rss, _cpu = measured([FC_BALANCES, "marts", "--full", "--quiet"], new_env)
    publish_ingest(new, "bench-bytes")
    print(f"same history, this code: marts --full {wall:.1f}s ({rss:.2f} GiB), then the contract tables: "
          f"iceberg/ {size_of(new / 'iceberg') / 2**20:.1f} MiB in {sum(1 for _ in new.rglob('*.parquet'))} data "
          f"files (DuckDB file {(new / DUCKDB_FILE_NAME).stat().st_size / 2**20:.0f} MiB)")
    shutil.rmtree(new)
    if old_code is None:
        return
    old_env = env | {"FC_BALANCES_WAREHOUSE": str(old), "FC_BALANCES_HISTORY_START": first_day.date().isoformat()}
    python = str(old_code / ".venv" / "bin" / "python")
    subprocess.run([python, str(old_code / "bench" / "bench_history.py"), "--accounts", str(accounts), "--days",
                    str(days), "--folder", str(old), "--generate-only"], env=old_env, check=True, capture_output=True)
    wall, rss, _cpu = measured([str(old_code / ".venv" / "bin" / "fc-balances"), "marts", "--full", "--quiet"], old_env)
    subprocess.run([python, "-c", OLD_EXPORT, str(old)], env=old_env, check=True, cwd=old_code)  # its pipelines
    print(f"same history, 0.2.0 code: marts --full {wall:.1f}s ({rss:.2f} GiB), then its export: parquet/ "
          f"{size_of(old / 'parquet') / 2**20:.1f} MiB in {sum(1 for _ in old.rglob('*.parquet'))} files")
    shutil.rmtree(old)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90, help="history length, the daily runs' days included")
    parser.add_argument("--runs", type=int, default=30, help="daily runs, each landing the next day")
    parser.add_argument("--folder", help="warehouse folder to use (default: a temporary one, removed after)")
    parser.add_argument("--old-code", metavar="CHECKOUT",
                        help="a checkout of 0.2.0 with its own venv (`git worktree add /tmp/old020 ab61a0a`, then "
                        "`make .venv/.installed` there): its parquet/ for the same history, for the bytes")
    args = parser.parse_args()
    if args.runs < 1 or args.days <= args.runs or args.accounts < 1:
        parser.error("--accounts and --runs must be at least 1, --days more than --runs")
    root = Path(args.folder or tempfile.mkdtemp(prefix="bench_iceberg_files_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        now = datetime.now(UTC)
        # The history up to --runs days ago; each daily run lands the next day, fetched when it runs.
        folder = root / "daily"
        folder.mkdir()
        first_day = generate(folder, args.accounts, args.days - args.runs, now - timedelta(days=args.runs))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FC_BALANCES_", "DAGSTER_HOME"))}
        env |= {"FC_BALANCES_WAREHOUSE": str(folder), "FC_BALANCES_HISTORY_START": first_day.date().isoformat()}
        print(f"conditions: {os.cpu_count()} CPUs (shared machine), load average {load()}")
        same_history_bytes(root, args.accounts, args.days, Path(args.old_code) if args.old_code else None, env)
        wall, rss, _cpu = measured([FC_BALANCES, "marts", "--full", "--quiet"], env)
        published = publish_ingest(folder, "bench-initial")
        print(f"marts --full {wall:.1f}s ({rss:.2f} GiB), then the contract tables' publish {published:.1f}s:")
        files_report(folder)
        walls = []
        for run in range(args.runs):
            add_today(folder, args.days - args.runs + run, first_day)
            published = publish_ingest(folder, f"bench-daily-{run}")
            wall, rss, _cpu = measured([FC_BALANCES, "marts", "--quiet"], env)
            walls.append((published, wall, rss))
        print(f"{args.runs} daily runs (a day of {args.accounts:,} balances each, the contract tables published, "
              f"then fc-balances marts): publish {min(w[0] for w in walls):.1f}-{max(w[0] for w in walls):.1f}s, "
              f"marts {min(w[1] for w in walls):.1f}-{max(w[1] for w in walls):.1f}s, peak RSS "
              f"{max(w[2] for w in walls):.2f} GiB; load average {load()}")
        files_report(folder)
    finally:
        if not args.folder:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
