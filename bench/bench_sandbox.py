"""Benchmark the sandbox: start it in its own process, drive a mixed load from aiohttp, print requests/s."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
API_KEY = "sk_test_bench"


def start_server(demo_customers: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", "0", "--no-rate-limit", "--api-key", API_KEY,
         "--demo-customers", str(demo_customers), "--refresh-latency", "0.2", "--refresh-cooldown", "0"],
        cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("stripe_sandbox listening on "):
        process.kill()
        raise SystemExit(f"sandbox did not start: {line!r}")
    return process, line.split()[-1]


async def collect_ids(session: aiohttp.ClientSession, base: str, path: str) -> list[str]:
    ids: list[str] = []
    params: dict[str, str] = {"limit": "100"}
    while True:
        async with session.get(f"{base}{path}", params=params) as response:
            page = await response.json()
        ids += [item["id"] for item in page["data"]]
        if not page["has_more"]:
            return ids
        params["starting_after"] = ids[-1]


async def drive(base: str, total: int, concurrency: int, seed: int) -> tuple[float, Counter[str], list[float]]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        customers = await collect_ids(session, base, "/v1/customers")
        accounts = await collect_ids(session, base, "/v1/financial_connections/accounts")
        rng = random.Random(seed)
        # (weight, method, path maker, params maker): a pipeline-like mix
        mix = [
            (20, "GET", lambda: "/v1/customers", lambda: {"limit": "100"}),
            (25, "GET", lambda: "/v1/financial_connections/accounts",
             lambda: {"account_holder[customer]": rng.choice(customers), "limit": "100"}),
            (25, "GET", lambda: f"/v1/financial_connections/accounts/{rng.choice(accounts)}", dict),
            (20, "POST", lambda: f"/v1/financial_connections/accounts/{rng.choice(accounts)}/refresh",
             lambda: {"features[]": "balance"}),
            (10, "GET", lambda: "/v1/events",
             lambda: {"type": "financial_connections.account.refreshed_balance", "limit": "100"}),
        ]
        weights = [m[0] for m in mix]
        plan = [rng.choices(mix, weights)[0] for _ in range(total)]
        statuses: Counter[str] = Counter()
        latencies: list[float] = []
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(total):
            queue.put_nowait(index)

        async def worker() -> None:
            while not queue.empty():
                _, method, path, params = plan[queue.get_nowait()]
                started = time.perf_counter()
                try:
                    if method == "GET":
                        request = session.get(f"{base}{path()}", params=params())
                    else:
                        request = session.post(f"{base}{path()}", data=params())
                    async with request as response:
                        await response.read()
                        statuses[str(response.status)] += 1
                except aiohttp.ClientError as exc:
                    statuses[type(exc).__name__] += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - began, statuses, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--demo-customers", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    process, base = start_server(args.demo_customers)
    print(f"sandbox up with {args.demo_customers} demo customers in {time.perf_counter() - started:.1f} s")
    try:
        elapsed, statuses, latencies = asyncio.run(drive(base, args.requests, args.concurrency, args.seed))
        stats = asyncio.run(_stats(base))
        rss = _rss_mib(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    latencies.sort()
    print(f"requests: {args.requests}  concurrency: {args.concurrency}  elapsed: {elapsed:.2f} s")
    print(f"throughput: {args.requests / elapsed:,.0f} requests/s (rate limiting off)")
    print(f"latency p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms")
    print(f"statuses: {dict(sorted(statuses.items()))}")
    print(f"server: peak_in_flight {stats['peak_in_flight']}, refreshes {stats['refreshes_started']}, "
          f"events {stats['events']}, accounts {stats['accounts']}, resident memory {rss}")
    return 0


def _rss_mib(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return f"{int(line.split()[1]) / 1024:.0f} MiB"
    except OSError:
        pass
    return "unknown"


async def _stats(base: str) -> dict:
    async with (aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as session,
                session.get(f"{base}/_sandbox/stats") as response):
        return await response.json()


if __name__ == "__main__":
    sys.exit(main())
