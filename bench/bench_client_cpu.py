"""The CPU one Stripe call costs the pipeline: refreshes through StripeFCClient (the official SDK's aiohttp client,
its retries and response handling) against plain aiohttp posts, both at the sandbox with limits off.

Usage: python bench/bench_client_cpu.py [--requests 20000] [--concurrency 64]

Half the requests go through each client, each to its own accounts (a refresh is never repeated). The figure is the
process's CPU (time.process_time) per request: at 100,000 accounts over 50,000 customers a run makes about 151,500
calls, so this is the floor under the ingest's CPU per account with the SDK the project requires.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_pipeline import KEY, make_fixtures  # noqa: E402

from pipelines.stripe_fc.client import ClientSettings, StripeFCClient  # noqa: E402

REFRESH_PATH = "/v1/financial_connections/accounts/{id}/refresh"


async def timed(ids: list[str], concurrency: int, call: Callable[[str], Awaitable[None]]) -> tuple[float, float]:
    """(wall, CPU) seconds to make one call per id, at most `concurrency` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one(account_id: str) -> None:
        async with gate:
            await call(account_id)

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(account_id) for account_id in ids))
    return time.perf_counter() - wall, time.process_time() - cpu


async def through_client(base: str, ids: list[str], concurrency: int) -> tuple[float, float]:
    client = StripeFCClient(ClientSettings(api_key=KEY, api_base=base, max_rps=1e6, max_rps_per_endpoint=1e6,
                                           max_connections=concurrency))
    try:
        async def call(account_id: str) -> None:
            await client.refresh_account(account_id)

        return await timed(ids, concurrency, call)
    finally:
        await client.aclose()


async def through_aiohttp(base: str, ids: list[str], concurrency: int) -> tuple[float, float]:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/x-www-form-urlencoded"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def call(account_id: str) -> None:
            url = base + REFRESH_PATH.format(id=account_id)
            async with session.post(url, data="features[]=balance", headers=headers) as response:
                json.loads(await response.read())

        return await timed(ids, concurrency, call)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if args.requests < 2 or args.concurrency < 1:
        parser.error("--requests must be 2 or more and --concurrency 1 or more")
    work = Path(tempfile.mkdtemp(prefix="fcb-client-cpu-"))
    fixtures = work / "fixtures.json"
    fixtures.write_text(json.dumps(make_fixtures(args.requests, max(1, args.requests // 2))))
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", "0", "--api-key", KEY, "--mode", "live",
         "--fixtures", str(fixtures), "--demo-customers", "0", "--refresh-latency", "0",
         "--refresh-cooldown", "3600", "--no-rate-limit"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert sandbox.stdout is not None
        base = sandbox.stdout.readline().rsplit("listening on ", 1)[1].strip()
        ids = [account["id"] for account in json.loads(fixtures.read_text())["accounts"]]
        half = len(ids) // 2
        print(f"{args.requests} refreshes, {args.concurrency} in flight, sandbox limits off, latency 0")
        for name, run, part in (("StripeFCClient (the SDK's aiohttp client)", through_client, ids[:half]),
                                ("plain aiohttp", through_aiohttp, ids[half:])):
            wall, cpu = asyncio.run(run(base, part, args.concurrency))
            print(f"{name}: {len(part)} requests, wall {wall:.1f}s, CPU {cpu:.1f}s = "
                  f"{1000 * cpu / len(part):.3f} ms per request")
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
