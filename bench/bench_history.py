"""Benchmark: daily and full mart runs over a long history (accounts x days in fc_balances); prints wall and RSS."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pipelines.contract.migrations import migrate
from pipelines.sql import load_sql
from pipelines.warehouse import DUCKDB_FILE_NAME

CHUNK_DAYS = 30  # days of balances per INSERT: the generator's memory stays bounded too
FC_BALANCES = str(Path(sys.executable).with_name("fc-balances"))
# Builds the 0.1.0 marts on a copy of the history with the code of another checkout (the starting point).
OLD_BUILD = """
import sys, duckdb
from datetime import UTC, datetime
from pipelines.marts.build import build_marts
con = duckdb.connect(sys.argv[1])
con.execute("SET TimeZone = 'UTC'")
build_marts(con, datetime.now(UTC))
"""


def generate(folder: Path, accounts: int, days: int, now: datetime, stale: bool = False) -> datetime:
    """The history: `days` days ending yesterday, one balance per account per day (`stale`: only the first day's,
    accounts never refreshed since); returns the first day."""
    first_day = datetime.combine((now - timedelta(days=days)).date(), datetime.min.time(), tzinfo=UTC)
    started = time.perf_counter()
    with duckdb.connect(str(folder / DUCKDB_FILE_NAME)) as con:
        con.execute("SET TimeZone = 'UTC'")
        migrate(con, str(folder))  # the real DDL, from the declarations
        con.execute(load_sql("marts/bench/fc_accounts"), {"last_day": now, "accounts": accounts})
        for chunk in range(0, 1 if stale else days, CHUNK_DAYS):
            con.execute(load_sql("marts/bench/history_balances"), {
                "first_day": first_day, "from_day": chunk, "to_day": 0 if stale else min(chunk + CHUNK_DAYS, days) - 1,
                "as_of_cap": now, "fetched_at": None})
        con.execute("CHECKPOINT")
        (rows,) = con.execute("SELECT count(*) FROM fc_balances").fetchone()
    size = (folder / DUCKDB_FILE_NAME).stat().st_size / 2**30
    shape = "one balance each, never refreshed" if stale else f"{days} days"
    print(f"history: {rows:,} fc_balances rows ({accounts:,} accounts x {shape} from {first_day.date()}) "
          f"in {time.perf_counter() - started:.0f}s, DuckDB file {size:.1f} GiB")
    return first_day


def reuse(source: Path, folder: Path, accounts: int, days: int) -> datetime:
    """Copy a generated history (same --accounts and --days, generated today) into `folder`; its first day."""
    shutil.copy(source / DUCKDB_FILE_NAME, folder / DUCKDB_FILE_NAME)
    with duckdb.connect(str(folder / DUCKDB_FILE_NAME), read_only=True) as con:
        found = con.execute(load_sql("marts/bench/history_shape")).fetchone()
    first_day, last_day, found_accounts = found
    if found_accounts != accounts or (last_day - first_day).days + 1 != days:
        sys.exit(f"{source} holds {found_accounts:,} accounts x {(last_day - first_day).days + 1} days, "
                 f"not {accounts:,} x {days}")
    if last_day != (datetime.now(UTC) - timedelta(days=1)).date():
        sys.exit(f"{source} ends on {last_day}, not yesterday: generate it again")
    print(f"history: reused {source} ({accounts:,} accounts x {days} days from {first_day})")
    return datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)


def add_today(folder: Path, days: int, first_day: datetime) -> None:
    """One new day of balances (one per account), fetched now: what a daily ingest lands."""
    with duckdb.connect(str(folder / DUCKDB_FILE_NAME)) as con:
        con.execute("SET TimeZone = 'UTC'")
        now = datetime.now(UTC)
        # as_of today but not in the future (the blocking as_of check would stop the marts), fetched now.
        con.execute(load_sql("marts/bench/history_balances"), {
            "first_day": first_day, "from_day": days, "to_day": days, "as_of_cap": now - timedelta(minutes=1),
            "fetched_at": now})


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Run a command under /usr/bin/time -v; (wall seconds, peak RSS GiB, CPU seconds: user + system, which a
    loaded machine stretches less than the wall). Fails loudly if the command does."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    cpu = sum(float(found) for found in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", done.stderr))
    return wall, (int(peak.group(1)) / 2**20 if peak else float("nan")), cpu


def load() -> str:
    """The load average over 1, 5 and 15 minutes (the machine is shared)."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--folder", help="warehouse folder to use (default: a temporary one, removed after)")
    parser.add_argument("--history", metavar="DIR",
                        help="copy the history from DIR instead of generating it (a folder a previous run left with "
                        "--folder and --generate-only; generating 100,000 x 730 takes about 8 minutes)")
    parser.add_argument("--stale", action="store_true",
                        help="the unfriendly shape: each account's only balance is --days days old, and the daily run "
                        "lands nothing new (dormant accounts must not grow the daily mart)")
    parser.add_argument("--generate-only", action="store_true", help="generate the history into --folder and stop")
    parser.add_argument("--marts-days", type=int, default=None, metavar="N",
                        help="partitions only for the last N days (FC_BALANCES_HISTORY_START = today - N): the "
                        "balance history stays --days long; the full run then covers N days")
    parser.add_argument("--old-code", metavar="CHECKOUT",
                        help="also time a checkout of the 0.1.0 code (e.g. `git worktree add /tmp/old d707548`) "
                        "rebuilding its marts on a copy of the same history")
    args = parser.parse_args()
    if args.accounts < 1 or args.days < 1:
        parser.error("--accounts and --days must be at least 1")
    if args.generate_only and not args.folder:
        parser.error("--generate-only needs --folder (where to keep the history)")
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench_history_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        now = datetime.now(UTC)
        if now - timedelta(days=args.days) < datetime(2024, 1, 1, tzinfo=UTC):
            parser.error("the history must start on 2024-01-01 or later (the first Dagster partition)")
        if args.history and not args.stale:
            first_day = reuse(Path(args.history), folder, args.accounts, args.days)
        else:
            first_day = generate(folder, args.accounts, args.days, now, stale=args.stale)
        if args.generate_only:
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FC_BALANCES_", "DAGSTER_HOME"))}
        marts_start = first_day.date() if args.marts_days is None else (now - timedelta(days=args.marts_days)).date()
        env |= {"FC_BALANCES_WAREHOUSE": str(folder), "FC_BALANCES_HISTORY_START": marts_start.isoformat()}
        marts_days = (now.date() - marts_start).days + 1
        print(f"conditions: {os.cpu_count()} CPUs (shared machine), DuckDB {duckdb.__version__}, "
              f"memory limit {env.get('FC_BALANCES_DUCKDB_MEMORY_LIMIT', '1GB')} per connection")
        if args.old_code:
            copy = folder / "old" / DUCKDB_FILE_NAME
            copy.parent.mkdir()
            shutil.copy(folder / DUCKDB_FILE_NAME, copy)
            wall, rss, cpu = measured([sys.executable, "-c", OLD_BUILD, str(copy)],
                                 env | {"PYTHONPATH": str(Path(args.old_code).absolute())})
            print(f"0.1.0 code, every mart rebuilt (DuckDB only, no Parquet): {wall:.1f}s wall, {cpu:.0f}s CPU, "
                  f"peak RSS {rss:.2f} GiB; load average {load()}")
            shutil.rmtree(copy.parent)
        wall, rss, cpu = measured([FC_BALANCES, "marts", "--full", "--quiet"], env)
        print(f"fc-balances marts --full ({marts_days} days from {marts_start}, DuckDB + Iceberg): {wall:.1f}s wall, "
              f"{cpu:.0f}s CPU, peak RSS {rss:.2f} GiB; load average {load()}")
        if not args.stale:
            add_today(folder, args.days, first_day)
        wall, rss, cpu = measured([FC_BALANCES, "marts", "--quiet"], env)
        landed = "nothing new" if args.stale else f"{args.accounts:,} new balances today"
        print(f"daily run: {landed}, then fc-balances marts: {wall:.1f}s wall, {cpu:.1f}s CPU, peak RSS {rss:.2f} GiB; "
              f"load average {load()}")
        with duckdb.connect(str(folder / DUCKDB_FILE_NAME), read_only=True) as con:
            for table in ("fc_daily_balances", "fc_underwriting_features"):
                (rows,) = con.execute(f"SELECT count(*) FROM {table}").fetchone()
                print(f"  {table}: {rows:,} rows")
    finally:
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
