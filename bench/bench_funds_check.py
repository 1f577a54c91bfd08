"""Times the whole `fc-balances funds-check` command on stale accounts (refresh at the sandbox latency) and fresh ones.

Usage: python bench/bench_funds_check.py [--runs 20] [--latency 1]

Each run is a new process (Python start-up included) against a separate sandbox process in live mode with its rate
limits on; the warehouse knows every account, the stale ones by a 3-hour-old balance. Prints p50/p90/max per case.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.normalize.normalizer import normalize_accounts, normalize_balances  # noqa: E402
from pipelines.warehouse import NormalizedBatch, Warehouse  # noqa: E402

KEY = "sk_test_bench"


def fixture(account_id: str, as_of: int) -> dict:
    return {"id": account_id, "customer": "cus_bench", "institution_name": "Bench Bank", "category": "cash",
            "subcategory": "checking", "status": "active", "permissions": ["balances"], "created": 1_764_000_000,
            "balance": {"as_of": as_of, "type": "cash", "current": {"usd": 10_000},
                        "cash": {"available": {"usd": 9_000}}},
            "refresh_outcomes": [{"status": "succeeded", "balance": {
                "type": "cash", "current": {"usd": 20_000}, "cash": {"available": {"usd": 19_000}}}}]}


def seed(warehouse: Path, accounts: list[dict]) -> None:
    now = datetime.now(UTC)
    rendered = [{**a, "object": "financial_connections.account",
                 "account_holder": {"type": "customer", "customer": a["customer"]}} for a in accounts]
    balances = normalize_balances(rendered, fetched_at=now)
    with Warehouse(warehouse) as wh:
        wh.write_batch(NormalizedBatch(accounts=normalize_accounts(rendered, now), balances=balances.balances,
                                       rejected=balances.rejected))


def timed(command: list[str], env: dict[str, str]) -> tuple[float, dict]:
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"funds-check failed: {done.stderr.strip()}")
    return wall, json.loads(done.stdout)


def summary(name: str, walls: list[float], answers: list[dict]) -> str:
    walls = sorted(walls)
    outcomes = sorted({a["refresh_outcome"] for a in answers})
    return (f"{name}: p50 {statistics.median(walls):.2f}s  p90 {walls[int(0.9 * (len(walls) - 1))]:.2f}s  "
            f"max {walls[-1]:.2f}s over {len(walls)} runs; refresh_outcome {', '.join(outcomes)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency", type=float, default=1.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fcb-funds-bench-"))
    now = int(time.time())
    stale = [fixture(f"fca_stale{i:04d}", now - 3 * 3600) for i in range(args.runs)]
    fresh = [fixture("fca_fresh0001", now - 300)]
    fixtures = work / "fixtures.json"
    fixtures.write_text(json.dumps({"customers": [{"id": "cus_bench", "created": 1_764_000_000}],
                                    "accounts": stale + fresh}))
    seed(work / "warehouse", stale + fresh)
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", "0", "--api-key", KEY, "--mode", "live",
         "--fixtures", str(fixtures), "--demo-customers", "0", "--refresh-latency", str(args.latency)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert sandbox.stdout is not None
        base = sandbox.stdout.readline().rsplit("listening on ", 1)[1].strip()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FC_BALANCES_"))},
               "STRIPE_API_KEY": KEY, "STRIPE_API_BASE": base, "FC_BALANCES_WAREHOUSE": str(work / "warehouse")}
        command = [str(Path(sys.executable).with_name("fc-balances")), "funds-check"]
        stale_runs = [timed([*command, a["id"], "5000", "usd", "--max-age", "1h", "--json"], env) for a in stale]
        fresh_runs = [timed([*command, "fca_fresh0001", "5000", "usd", "--max-age", "1h", "--json"], env)
                      for _ in range(args.runs)]
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    print(f"sandbox live mode, refresh latency {args.latency}s, check reserve 2/s (default); cpus {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}")
    print(summary("stale (refresh + await)", [w for w, _ in stale_runs], [a for _, a in stale_runs]))
    print(summary("fresh (no refresh)", [w for w, _ in fresh_runs], [a for _, a in fresh_runs]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
