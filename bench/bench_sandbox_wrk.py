"""Benchmark one hot path: `GET /v1/financial_connections/accounts/{id}` under wrk's keep-alive load; prints req/s."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
API_KEY = "sk_test_bench"


def start_server(demo_customers: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", "0", "--no-rate-limit", "--api-key", API_KEY,
         "--demo-customers", str(demo_customers)],
        cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("stripe_sandbox listening on "):
        process.kill()
        raise SystemExit(f"sandbox did not start: {line!r}")
    return process, line.split()[-1]


def first_account(base: str) -> str:
    request = urllib.request.Request(f"{base}/v1/financial_connections/accounts?limit=1",
                                     headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"][0]["id"]


def run_wrk(url: str, threads: int, connections: int, seconds: int) -> str:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
               "-H", f"Authorization: Bearer {API_KEY}", url]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--seconds", type=int, default=10, help="duration (default 10)")
    parser.add_argument("--demo-customers", type=int, default=1000, help="sandbox size (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the best and all are printed (default 3)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_sandbox_wrk: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    process, base = start_server(args.demo_customers)
    try:
        account_id = first_account(base)
        url = f"{base}/v1/financial_connections/accounts/{account_id}"
        run_wrk(url, args.threads, args.connections, 2)  # warm up
        rates = []
        for _ in range(args.runs):
            output = run_wrk(url, args.threads, args.connections, args.seconds)
            match = re.search(r"Requests/sec:\s+([\d.]+)", output)
            errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
            if match is None or errors:
                print(output, file=sys.stderr)
                raise SystemExit("bench_sandbox_wrk: wrk reported errors or no rate")
            rates.append(float(match.group(1)))
            p99 = re.search(r"99%\s+(\S+)", output)
            print(f"run: {rates[-1]:,.0f} req/s, p99 latency {p99.group(1) if p99 else '?'}")
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(f"GET /v1/financial_connections/accounts/{{id}} (one account, keep-alive, wrk -t{args.threads} "
          f"-c{args.connections} -d{args.seconds}s, {args.demo_customers} demo customers, rate limit off, "
          f"{os.cpu_count()} CPUs shared): best {max(rates):,.0f} req/s, runs "
          + ", ".join(f"{rate:,.0f}" for rate in rates))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
