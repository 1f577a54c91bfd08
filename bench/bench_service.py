"""Figures of `fc-balances serve`: fresh latency, throughput, a burst of stale checks of one account, stale latency.

Usage: python bench/bench_service.py [--fresh 1000] [--concurrency 32] [--throughput 2000] [--burst 20]
                                     [--stale 10] [--latency 1] [--reserve 2]

The sandbox (live mode, rate limits on) and the service each run in a process of their own; the clients are this
process (aiohttp, keep-alive). The warehouse knows every account: fresh ones by a 5-minute-old balance, stale ones
by a 3-hour-old one. Refreshes are counted at the sandbox (its /_sandbox/stats). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_funds_check import KEY, fixture, seed  # noqa: E402

TOKEN = "bench_service_token_0123456789"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def check(session: aiohttp.ClientSession, url: str, account: str) -> tuple[float, dict]:
    started = time.perf_counter()
    async with session.post(url, json={"account": account, "amount": 5000, "currency": "usd", "max_age": "1h"},
                            headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        body = await response.json()
        if response.status != 200:
            raise SystemExit(f"check failed ({response.status}): {body}")
    return time.perf_counter() - started, body


async def refreshes(session: aiohttp.ClientSession, sandbox: str) -> int:
    async with session.get(f"{sandbox}/_sandbox/stats", headers={"Authorization": f"Bearer {KEY}"}) as response:
        stats = await response.json()
    return sum(n for endpoint, n in stats["requests"].items() if endpoint.endswith("/refresh"))


async def measure(args: argparse.Namespace, url: str, sandbox: str, fresh: list[str], stale: list[str],
                  burst_account: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(20):  # warm-up: connections, the first answers
            await check(session, url, fresh[0])
        walls = [(await check(session, url, fresh[n % len(fresh)]))[0] for n in range(args.fresh)]
        print(f"fresh, sequential: p50 {statistics.median(walls) * 1000:.1f} ms, p99 "
              f"{percentile(walls, 0.99) * 1000:.1f} ms, max {max(walls) * 1000:.1f} ms over {len(walls)} requests")

        queue = list(range(args.throughput))

        async def client() -> None:
            async with aiohttp.ClientSession() as own:
                while queue:
                    queue.pop()
                    await check(own, url, fresh[len(queue) % len(fresh)])

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(args.concurrency)))
        wall = time.perf_counter() - started
        print(f"fresh, {args.concurrency} concurrent clients: {args.throughput / wall:.0f} checks/s "
              f"({args.throughput} checks in {wall:.2f} s, each stored before it was answered)")

        before = await refreshes(session, sandbox)
        started = time.perf_counter()
        answers = await asyncio.gather(*(check(session, url, burst_account) for _ in range(args.burst)))
        wall = time.perf_counter() - started
        sent = await refreshes(session, sandbox) - before
        outcomes = sorted({body["refresh_outcome"] for _, body in answers})
        print(f"burst of {args.burst} concurrent stale checks of one account: {sent} refresh request(s) sent, wall "
              f"{wall:.2f} s (slowest answer {max(w for w, _ in answers):.2f} s), outcomes {', '.join(outcomes)}")

        walls = []
        for account in stale:
            wall, body = await check(session, url, account)
            if body["refresh_outcome"] != "succeeded":
                raise SystemExit(f"stale check did not refresh: {body['refresh_outcome']}")
            walls.append(wall)
        print(f"stale, sequential ({args.latency:g} s refresh latency): p50 {statistics.median(walls):.2f} s, max "
              f"{max(walls):.2f} s over {len(walls)} accounts")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--throughput", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--stale", type=int, default=10)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--reserve", type=float, default=2.0, help="FC_BALANCES_CHECK_RESERVE_RPS (default 2)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fcb-serve-bench-"))
    now = int(time.time())
    fresh = [fixture(f"fca_fresh{i:04d}", now - 300) for i in range(100)]
    stale = [fixture(f"fca_stale{i:04d}", now - 3 * 3600) for i in range(args.stale + 1)]
    fixtures = work / "fixtures.json"
    fixtures.write_text(json.dumps({"customers": [{"id": "cus_bench", "created": 1_764_000_000}],
                                    "accounts": fresh + stale}))
    seed(work / "warehouse", fresh + stale)
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", "0", "--api-key", KEY, "--mode", "live",
         "--fixtures", str(fixtures), "--demo-customers", "0", "--refresh-latency", str(args.latency)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    service = None
    try:
        assert sandbox.stdout is not None
        base = sandbox.stdout.readline().rsplit("listening on ", 1)[1].strip()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FC_BALANCES_"))},
               "STRIPE_API_KEY": KEY, "STRIPE_API_BASE": base, "FC_BALANCES_WAREHOUSE": str(work / "warehouse"),
               "FC_BALANCES_SERVICE_TOKEN": TOKEN, "FC_BALANCES_CHECK_RESERVE_RPS": str(args.reserve)}
        service = subprocess.Popen([str(Path(sys.executable).with_name("fc-balances")), "serve", "--port", "0"],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        assert service.stdout is not None
        match = re.search(r"(http://\S+/v1/funds_checks)", service.stdout.readline())
        if match is None:
            raise SystemExit("the service did not start")
        print(f"sandbox live mode, refresh latency {args.latency:g} s, check reserve {args.reserve:g}/s; service and "
              f"sandbox in their own processes; cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
        asyncio.run(measure(args, match.group(1), base, [a["id"] for a in fresh], [a["id"] for a in stale[1:]],
                            stale[0]["id"]))
    finally:
        for process in (service, sandbox):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
