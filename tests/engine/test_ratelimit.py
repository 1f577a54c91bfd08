"""The client-side limiter never lets more requests through than its buckets allow, per endpoint and globally."""

from __future__ import annotations

import asyncio
import time

from pipelines.stripe_fc.ratelimit import RateLimiter, endpoint_template


def test_endpoint_template_collapses_ids() -> None:
    assert endpoint_template("post", "/v1/financial_connections/accounts/fca_1AbC/refresh") == (
        "POST /v1/financial_connections/accounts/{id}/refresh"
    )
    assert endpoint_template("get", "/v1/customers/cus_9?expand=x") == "GET /v1/customers/{id}"
    assert endpoint_template("get", "/v1/events") == "GET /v1/events"


def _max_in_window(stamps: list[float], window: float) -> int:
    best, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_limits_hold_in_every_window() -> None:
    # 200/s global and 100/s per endpoint, two endpoints competing: each endpoint may take at most its own rate
    # (plus the small burst) in any 0.25 s window, and both together at most the global rate.
    limiter = RateLimiter(global_rps=200.0, endpoint_rps=100.0, burst_seconds=0.05, head_start_seconds=0.0)
    stamps: dict[str, list[float]] = {"GET /a": [], "GET /b": []}

    async def hammer(endpoint: str, count: int) -> None:
        for _ in range(count):
            await limiter.acquire(endpoint)
            stamps[endpoint].append(time.monotonic())

    async def main() -> None:
        await asyncio.gather(*(hammer(ep, 60) for ep in stamps for _ in range(2)))

    asyncio.run(main())
    window = 0.25
    for endpoint, times in stamps.items():
        assert len(times) == 120
        assert _max_in_window(sorted(times), window) <= 100 * window + 5 + 1, endpoint
    merged = sorted(stamps["GET /a"] + stamps["GET /b"])
    assert _max_in_window(merged, window) <= 200 * window + 10 + 1


def test_unlimited_when_rates_are_none() -> None:
    limiter = RateLimiter(global_rps=None, endpoint_rps=None)

    async def main() -> int:
        for _ in range(10_000):
            await limiter.acquire("GET /x")
        return 10_000

    assert asyncio.run(main()) == 10_000
    assert limiter.waited_seconds == 0.0


def test_a_quiet_endpoint_is_not_starved_by_a_busy_one() -> None:
    # Ten workers keep a busy endpoint saturated (80 requests, 4 s at the 20/s global limit). A request on another
    # endpoint that arrives meanwhile waits behind at most the requests already queued (about ten), not for the
    # busy endpoint to run dry.
    limiter = RateLimiter(global_rps=20.0, endpoint_rps=20.0, burst_seconds=0.05, head_start_seconds=0.0)
    order: list[str] = []

    async def busy_worker() -> None:
        for _ in range(8):
            await limiter.acquire("POST /refresh")
            order.append("busy")

    async def quiet() -> None:
        await asyncio.sleep(0.5)
        await limiter.acquire("GET /events")
        order.append("quiet")

    async def main() -> None:
        await asyncio.gather(*(busy_worker() for _ in range(10)), quiet())

    asyncio.run(main())
    assert order.index("quiet") <= 10 + 10 + 2, order.index("quiet")  # ~10 served before it arrived, ~10 queued


def _stamps(limiter: RateLimiter, count: int, endpoint: str = "POST /refresh") -> list[float]:
    stamps: list[float] = []

    async def worker(share: int) -> None:
        for _ in range(share):
            await limiter.acquire(endpoint)
            stamps.append(time.monotonic())

    async def main() -> None:
        await asyncio.gather(*(worker(count // 10) for _ in range(10)))

    asyncio.run(main())
    return sorted(stamps)


def _lowest_tokens(stamps: list[float], rate: float, start: float) -> float:
    """The fewest tokens a Stripe bucket (one second of tokens, full at `start`) holds while these requests arrive."""
    tokens, last, lowest = rate, start, rate
    for stamp in stamps:
        tokens = min(rate, tokens + (stamp - last) * rate) - 1
        last = stamp
        lowest = min(lowest, tokens)
    return lowest


def test_the_head_start_uses_stripes_full_bucket_and_keeps_a_margin() -> None:
    # 50/s with a 0.2 s burst (10) and a 0.6 s head start (30): 40 requests go at once, then 50/s. Stripe's bucket,
    # full when the run starts, never falls below a fifth of a second (10 tokens, less one for timer slop).
    start = time.monotonic()
    limiter = RateLimiter(global_rps=None, endpoint_rps=50.0, burst_seconds=0.2, head_start_seconds=0.6)
    stamps = _stamps(limiter, 120)
    assert sum(1 for stamp in stamps if stamp - stamps[0] < 0.05) >= 38  # without the head start: 10
    assert _lowest_tokens(stamps, 50.0, start) >= 9
    # After the first second only the steady limit is left: the rate plus the burst in any 0.25 s window.
    late = [stamp for stamp in stamps if stamp - start >= 1.0]
    assert late and _max_in_window(late, 0.25) <= 50 * 0.25 + 10 + 1


def test_no_head_start_after_a_429() -> None:
    limiter = RateLimiter(global_rps=None, endpoint_rps=50.0, burst_seconds=0.2, head_start_seconds=0.6)
    _stamps(limiter, 10)  # the endpoint's schedule exists; its head start is not spent yet
    limiter.penalize(0.0)
    stamps = _stamps(limiter, 40)
    assert sum(1 for stamp in stamps if stamp - stamps[0] < 0.05) <= 10 + 1
