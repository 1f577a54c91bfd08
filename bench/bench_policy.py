"""A budgeted scheduled run over many accounts, then a second run with a max age: refresh counts, the exact set, wall.

Usage: python bench/bench_policy.py [--accounts 10000] [--customers 5000] [--budget 1000] [--latency 1]
       [--discovery all|per_customer] [--priorities 300] [--reserve 0]

The warehouse is seeded as earlier runs would have left it: every account but the first `--never-seen` with a
balance 1 to 23 hours old, `--priorities` unexpired rows in fc_refresh_priority (and as many expired ones). Run 1:
FC_BALANCES_MAX_REFRESHES=budget. The chosen set is computed here from the seeded data, apart from the pipeline,
and compared with fc_balance_refreshes. Run 2, right after: FC_BALANCES_MAX_AGE_HOURS=24, expecting no refresh.
The bound is what the rule needs: the whole listing at its endpoint's limit, then `budget` refreshes at the refresh
endpoint's limit, plus one refresh latency.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.normalize.normalizer import normalize_accounts, normalize_balances  # noqa: E402
from pipelines.warehouse import NormalizedBatch, Warehouse  # noqa: E402

KEY = "sk_test_bench"
REQUESTED = ("succeeded", "failed", "timed_out", "error")


def world(accounts: int, customers: int, never_seen: int, priorities: int, now: float) -> tuple[list, dict, list]:
    """(sandbox accounts, seeded as_of per account, priority rows)."""
    docs, known = [], {}
    for i in range(accounts):
        account_id = f"fca_b{i:022d}"
        docs.append({
            "id": account_id, "customer": f"cus_b{i % customers:012d}", "institution_name": "Bench Bank",
            "category": "cash", "subcategory": "checking", "status": "inactive" if i % 50 == 49 else "active",
            "permissions": ["balances"], "created": 1_764_000_000 + i,
            "refresh_outcomes": [{"status": "succeeded", "balance": {
                "type": "cash", "current": {"usd": 10_000 + i}, "cash": {"available": {"usd": 9_000 + i}}}}],
        })
        if i >= never_seen:  # a spread of ages from 1 to 23 hours, in a scrambled order
            known[account_id] = now - 3600 * (1 + 22 * ((i * 7919) % accounts) / accounts)
    ids = sorted(known)
    later, earlier = datetime.now(UTC) + timedelta(days=7), datetime.now(UTC) - timedelta(hours=1)
    rows = [(ids[(j * 104_729) % len(ids)], 1 + j % 5, later if j % 2 else None) for j in range(priorities)]
    taken = {r[0] for r in rows}
    expired = [a for a in ids[::-1] if a not in taken][:priorities]
    rows += [(a, 9, earlier) for a in expired]  # would come first if expiry were ignored
    return docs, known, rows


def expected_set(docs: list, known: dict, rows: list, budget: int) -> set[str]:
    live = {a: p for a, p, expires in rows if expires is None or expires > datetime.now(UTC)}
    eligible = [d["id"] for d in docs if d["status"] == "active"]
    ordered = sorted(eligible, key=lambda a: (a not in live, -live.get(a, 0), a in known, known.get(a, 0.0), a))
    return set(ordered[:budget])


def seed(warehouse: Path, docs: list, known: dict, rows: list) -> None:
    fetched = datetime.now(UTC)
    rendered = []
    for doc in docs:
        if doc["id"] in known:
            rendered.append({**doc, "object": "financial_connections.account",
                             "account_holder": {"type": "customer", "customer": doc["customer"]},
                             "balance": {"as_of": int(known[doc["id"]]), "type": "cash", "current": {"usd": 1},
                                         "cash": {"available": {"usd": 1}}}})
    balances = normalize_balances(rendered, fetched_at=fetched)
    with Warehouse(warehouse) as wh:
        wh.write_batch(NormalizedBatch(accounts=normalize_accounts(rendered, fetched), balances=balances.balances,
                                       rejected=balances.rejected))
        with wh.connection() as con:
            con.executemany("INSERT INTO fc_refresh_priority VALUES (?, ?, 'bench', ?)", rows)
        wh.publish(run_id="bench")


def admin(base: str, path: str) -> dict:
    import urllib.request

    request = urllib.request.Request(f"{base}/_sandbox/{path}", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def refreshes(stats: dict) -> int:
    return sum(n for endpoint, n in stats.get("requests", {}).items() if endpoint.endswith("/refresh"))


def run(env: dict[str, str]) -> tuple[float, float | None, str]:
    started = time.monotonic()
    done = subprocess.run([str(Path(sys.executable).with_name("fc-balances")), "run", "--quiet"], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"run failed: {done.stderr.strip()[-500:]}")
    ingest = re.search(r"done in ([\d.]+)s", done.stdout)
    return wall, float(ingest.group(1)) if ingest else None, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--budget", type=int, default=1_000)
    parser.add_argument("--never-seen", type=int, default=500)
    parser.add_argument("--priorities", type=int, default=300)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--discovery", choices=["per_customer", "all"], default="all")
    parser.add_argument("--reserve", type=float, default=0.0, help="FC_BALANCES_CHECK_RESERVE_RPS for the runs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fcb-policy-bench-"))
    now = time.time()
    docs, known, rows = world(args.accounts, args.customers, args.never_seen, args.priorities, now)
    customers = [{"id": f"cus_b{i:012d}", "created": 1_764_000_000 + i} for i in range(args.customers)]
    (work / "fixtures.json").write_text(json.dumps({"customers": customers, "accounts": docs}))
    warehouse = work / "warehouse"
    seed(warehouse, docs, known, rows)
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", "0", "--api-key", KEY, "--mode", "live",
         "--fixtures", str(work / "fixtures.json"), "--demo-customers", "0",
         "--refresh-latency", str(args.latency), "--refresh-cooldown", "3600"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert sandbox.stdout is not None
        base = sandbox.stdout.readline().rsplit("listening on ", 1)[1].strip()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FC_BALANCES_", "DAGSTER_"))},
               "STRIPE_API_KEY": KEY, "STRIPE_API_BASE": base, "FC_BALANCES_WAREHOUSE": str(warehouse),
               "FC_BALANCES_DISCOVERY": args.discovery, "FC_BALANCES_POLL_INTERVAL": "0.5",
               "FC_BALANCES_MAX_RPS": "100", "FC_BALANCES_MAX_RPS_PER_ENDPOINT": "25",
               "FC_BALANCES_CHECK_RESERVE_RPS": str(args.reserve),
               "FC_BALANCES_MAX_REFRESHES": str(args.budget), "FC_BALANCES_REFRESH_PRICE": "0.10"}
        wall1, ingest1, out1 = run(env)
        after1 = refreshes(admin(base, "stats"))
        with duckdb.connect(str(warehouse / "fc_balances.duckdb"), read_only=True) as con:
            requested = {a for (a,) in con.execute(
                "SELECT account_id FROM fc_balance_refreshes WHERE outcome IN (?, ?, ?, ?)", list(REQUESTED)
            ).fetchall()}
        wall2, ingest2, _ = run({**env, "FC_BALANCES_MAX_AGE_HOURS": "24"})
        after2 = refreshes(admin(base, "stats"))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)

    expected = expected_set(docs, known, rows, args.budget)
    endpoint = 25.0 - args.reserve
    listing = math.ceil(args.accounts / 100) if args.discovery == "all" else args.customers
    bound = listing / endpoint + args.budget / endpoint + args.latency
    early = re.search(r"refresh policy: .*", out1)
    print(f"accounts {args.accounts} customers {args.customers} discovery {args.discovery} budget {args.budget} "
          f"never-seen {args.never_seen} priorities {args.priorities} (+{args.priorities} expired) latency "
          f"{args.latency}s live limits (100/s, {endpoint:g}/s per endpoint); cpus {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"run 1: {after1} refresh requests; the exact expected set: {requested == expected} "
          f"({len(requested & expected)} of {len(expected)} expected, {len(requested - expected)} unexpected)")
    print(f"run 1: wall {wall1:.1f}s (ingest {ingest1}s), bound {bound:.1f}s = listing {listing / endpoint:.1f}s "
          f"+ {args.budget} refreshes {args.budget / endpoint:.1f}s + latency; ratio whole command "
          f"{wall1 / bound:.3f}, ingest {ingest1 / bound if ingest1 else float('nan'):.3f}")
    print(f"run 1: {early.group(0) if early else '(no policy line)'}")
    print(f"run 2 (FC_BALANCES_MAX_AGE_HOURS=24): {after2 - after1} refresh requests, wall {wall2:.1f}s "
          f"(ingest {ingest2}s)")
    return 0 if requested == expected and after1 == args.budget and after2 == after1 else 1


if __name__ == "__main__":
    sys.exit(main())
