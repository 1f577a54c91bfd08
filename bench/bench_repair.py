"""Does a full run leave the "export unfinished" marker, and what does the next open of the warehouse cost?

Usage: python bench/bench_repair.py [--customers 50] [--history-days 30] [--opens 3]

Runs `fc-balances run --history-days N` against the built-in sandbox into a temporary warehouse (a CLI run
is the same Dagster job the schedule runs: ingest, asset checks, marts), then reports whether the run left
.parquet_export_pending behind and how long the next writer open took, and whether that open ran the Parquet
repair (which rehashes every table's files). For comparison it then replays what the asset checks did before
reads got read-only connections (a writer open plus a read-write connection, no export) and times the open after
that. Figures are wall-clock on this machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.warehouse import DIRTY_MARKER_NAME, Warehouse, open_reader  # noqa: E402

_repairs = 0
_original_repair = Warehouse._repair_parquet


def _counting_repair(self: Warehouse) -> None:
    global _repairs
    _repairs += 1
    _original_repair(self)


Warehouse._repair_parquet = _counting_repair  # type: ignore[method-assign]


def timed_open(folder: Path) -> tuple[float, bool]:
    """Seconds for one writer open and close, and whether it ran the repair."""
    before = _repairs
    started = time.perf_counter()
    with Warehouse(folder):
        pass
    return time.perf_counter() - started, _repairs > before


def old_checks_step(folder: Path) -> None:
    """What a check step did before: the writer lock and a read-write connection, then no export."""
    with Warehouse(folder) as wh, wh.connection() as con:
        con.execute("select count(*) from fc_balances").fetchall()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--opens", type=int, default=3, help="timed opens per case (median printed)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FC_BALANCES_", "DAGSTER_HOME"))}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "wh"
        command = [str(Path(sys.executable).with_name("fc-balances")), "run", "--warehouse", str(folder),
                   "--demo-customers", str(args.customers), "--history-days", str(args.history_days), "--quiet"]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            print(f"fc-balances run failed: {done.stderr.strip() or done.stdout.strip()}")
            return 1
        run_seconds = time.perf_counter() - started
        marker_left = (folder / DIRTY_MARKER_NAME).exists()  # looked at before anything else opens the warehouse
        with open_reader(folder) as con:
            balances, refreshes = con.execute(
                "select (select count(*) from fc_balances), (select count(*) from fc_balance_refreshes)"
            ).fetchone()
        print(f"run: {args.customers} demo customers, {args.history_days} history days, {run_seconds:.1f}s; "
              f"fc_balances {balances} rows, fc_balance_refreshes {refreshes} rows")
        print(f"after the run: marker left = {'yes' if marker_left else 'no'}")

        after_run = [timed_open(folder) for _ in range(args.opens)]
        print(f"next open after the run: {statistics.median(t for t, _ in after_run) * 1000:.1f} ms median "
              f"of {args.opens}; repair ran = {'yes' if any(r for _, r in after_run) else 'no'}")

        timings = []
        repaired = []
        for _ in range(args.opens):
            old_checks_step(folder)
            marker = (folder / DIRTY_MARKER_NAME).exists()
            seconds, ran = timed_open(folder)
            timings.append(seconds)
            repaired.append(ran and marker)
        print(f"old behaviour (checks open for writing): marker left = yes; next open "
              f"{statistics.median(timings) * 1000:.1f} ms median of {args.opens}; "
              f"repair ran = {'yes' if all(repaired) else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
