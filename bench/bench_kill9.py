"""kill -9 `fc-balances run` at many spread-out points, run it again, and count the trials that end as a clean run.

Usage: python bench/bench_kill9.py [--trials 30] [--accounts 80] [--customers 15] [--seed S] [--keep]

A clean run on a fresh sandbox gives the reference state and the run's length. Each trial starts a fresh sandbox
with the same fixtures, starts `fc-balances run` against it, SIGKILLs it after a delay (one random delay in each
of N equal slices of the run, startup and marts included), checks that every Iceberg table reads at a whole
snapshot, runs again normally, and compares: contract tables equal to the reference's (run-specific columns left
out), no duplicate keys, Iceberg rows == DuckDB rows, check_warehouse.py passing. Every trial must end
identical; the script exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the trial machinery lives in the test suite's harness

from tests.faults.harness import KillScenario, kill_trial, reference_run, spread_delays  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--accounts", type=int, default=80, help="refreshable accounts (plus 3 skipped ones)")
    parser.add_argument("--customers", type=int, default=15)
    parser.add_argument("--seed", type=int, default=None, help="seed of the kill delays (default: from the clock)")
    parser.add_argument("--keep", action="store_true", help="keep the warehouses and logs (path printed)")
    args = parser.parse_args()
    if args.trials < 1 or args.accounts < 1 or args.customers < 1:
        parser.error("--trials, --accounts and --customers must be at least 1")
    seed = args.seed if args.seed is not None else time.time_ns() % 1_000_000

    workdir = Path(tempfile.mkdtemp(prefix="bench_kill9_"))
    started = time.monotonic()
    try:
        scenario = KillScenario.default(accounts_count=args.accounts, customers_count=args.customers)
        reference = reference_run(scenario, workdir)
        print(f"clean run: {reference.duration:.1f}s (warehouse taken after {reference.lock_taken_after:.1f}s); "
              f"{len(reference.snapshot['fc_balances'])} balance rows, {len(reference.refresh_rows)} accounts; "
              f"seed {seed}", flush=True)
        delays = spread_delays(args.trials, 0.2, 0.97 * reference.duration, seed)
        identical = killed = 0
        for index, delay in enumerate(delays):
            trial = kill_trial(scenario, reference, workdir, f"trial{index:03d}", delay)
            killed += trial.killed
            identical += not trial.problems
            verdict = "identical" if not trial.problems else "DIFFERENT: " + "; ".join(trial.problems)[:800]
            state = "killed" if trial.killed else "ended before the kill"
            print(f"trial {index + 1:3d}/{args.trials}: kill after {delay:5.2f}s ({state}), "
                  f"{trial.seconds:5.1f}s: {verdict}", flush=True)
        elapsed = time.monotonic() - started
        print(f"{identical}/{args.trials} trials ended identical to a clean run "
              f"({killed} killed mid-run, {args.trials - killed} ended before the kill); "
              f"{elapsed:.0f}s in total, {elapsed / args.trials:.1f}s per trial (seed {seed})")
        return 0 if identical == args.trials else 1
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
