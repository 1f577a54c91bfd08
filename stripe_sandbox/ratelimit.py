"""Token buckets like Stripe's: one global bucket and one per endpoint (method + path template)."""

from __future__ import annotations

import time


class TokenBucket:
    """Holds at most one second's worth of tokens and refills continuously."""

    __slots__ = ("rate", "tokens", "updated")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.rate, self.tokens + elapsed * self.rate)
            self.updated = now


class RateLimiter:
    def __init__(self, global_rate: float, endpoint_rate: float) -> None:
        self.configure(global_rate, endpoint_rate)

    def configure(self, global_rate: float, endpoint_rate: float) -> None:
        now = time.monotonic()
        self.endpoint_rate = endpoint_rate
        self.global_bucket = TokenBucket(global_rate, now)
        self.buckets: dict[str, TokenBucket] = {}

    def try_acquire(self, endpoint: str) -> bool:
        """Take a token from both buckets, or from neither (a limited request costs nothing)."""
        now = time.monotonic()
        global_bucket = self.global_bucket
        global_bucket.refill(now)
        bucket = self.buckets.get(endpoint)
        if bucket is None:
            bucket = self.buckets[endpoint] = TokenBucket(self.endpoint_rate, now)
        else:
            bucket.refill(now)
        if global_bucket.tokens >= 1.0 and bucket.tokens >= 1.0:
            global_bucket.tokens -= 1.0
            bucket.tokens -= 1.0
            return True
        return False
