"""Benchmark: one fc_account_health build over N accounts with 90 days of balances and refresh runs; prints figures."""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.contract.migrations import migrate
from pipelines.marts.health import HealthSettings, build_account_health

# Synthetic data made by DuckDB itself (bench input only, never shipped SQL): every 7th account fails its last
# runs, every 11th deactivates within days, every 13th has expired numbers.
_ACCOUNTS = """
INSERT INTO fc_accounts (account_id, customer_id, status, permissions, observed_at, expected_deactivation_at,
                         account_numbers_status, balance_refresh_status, balance_refresh_last_attempted_at)
SELECT 'fca_' || i, 'cus_' || (i // 3), CASE WHEN i % 17 = 0 THEN 'inactive' ELSE 'active' END, ['balances'],
       $now::TIMESTAMPTZ, CASE WHEN i % 11 = 0 THEN $now::TIMESTAMPTZ + INTERVAL 5 DAY END,
       CASE WHEN i % 13 = 0 THEN 'expired' ELSE 'transactable' END, 'succeeded',
       $now::TIMESTAMPTZ - INTERVAL 30 DAY
FROM range($accounts) AS t(i)
"""
_BALANCES = """
INSERT INTO fc_balances (account_id, customer_id, balance_type, currency, as_of, current_minor, fetched_at)
SELECT 'fca_' || i, 'cus_' || (i // 3), 'cash', 'usd', $now::TIMESTAMPTZ - $day * INTERVAL 1 DAY, 1000 + $day,
       $now::TIMESTAMPTZ
FROM range($accounts) AS t(i)
"""  # one day per statement: the generator stays within the memory limit (the key index grows with the table)
_REFRESHES = """
INSERT INTO fc_balance_refreshes (run_id, account_id, outcome, requested_at, completed_at)
SELECT 'run_' || r, 'fca_' || i, CASE WHEN i % 7 = 0 AND r >= $runs - 4 THEN 'failed' ELSE 'succeeded' END,
       $now::TIMESTAMPTZ - ($runs - r) * INTERVAL 1 DAY, $now::TIMESTAMPTZ - ($runs - r) * INTERVAL 1 DAY
FROM range($accounts) AS t(i), (SELECT $run::BIGINT AS r) AS u
"""  # one run per statement, as the pipeline writes them (a year of runs at once outgrows the memory limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fc_balances.duckdb"
        with duckdb.connect(str(path)) as con:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET memory_limit = '1GB'")
            migrate(con, folder)
            params = {"now": now, "accounts": args.accounts, "days": args.days, "runs": args.runs}
            con.execute(_ACCOUNTS, {k: params[k] for k in ("now", "accounts")})
            for day in range(args.days):
                con.execute(_BALANCES, {"now": now, "accounts": args.accounts, "day": day})
            for run in range(args.runs):
                con.execute(_REFRESHES, {"now": now, "accounts": args.accounts, "runs": args.runs, "run": run})
            started = time.perf_counter()
            rows = build_account_health(con, now, HealthSettings())
            seconds = time.perf_counter() - started
            reasons = con.execute("SELECT relink_reason, count(*) FROM fc_account_health GROUP BY 1 ORDER BY 1"
                                  ).fetchall()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fc_account_health: {rows} accounts, {args.accounts * args.days} balances, "
          f"{args.accounts * args.runs} refresh rows: built in {seconds:.2f} s, process peak RSS {peak_mib:.0f} MiB")
    print("reasons: " + ", ".join(f"{reason}={n}" for reason, n in reasons))


if __name__ == "__main__":
    main()
