"""Client-side token buckets: one global bucket and one per endpoint (method + path template)."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

# Stripe object ids in a path are replaced by {id} so all refreshes share one endpoint bucket, as Stripe counts them.
_ID_SEGMENT = re.compile(r"/(?:fca|cus|evt|fcsess|acct|req)_[A-Za-z0-9]+")


def endpoint_template(method: str, path: str) -> str:
    """`POST /v1/financial_connections/accounts/fca_1/refresh` -> `POST /v1/.../accounts/{id}/refresh`."""
    path = path.split("?", 1)[0]
    return f"{method.upper()} {_ID_SEGMENT.sub('/{id}', path)}"


@dataclass
class TokenBucket:
    """A continuously refilled bucket. `burst` small keeps the send rate smooth at exactly `rate`."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        self.tokens = self.burst
        self.updated = time.monotonic()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0 when one is there now)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1.0


class RateLimiter:
    """Takes a token from the global bucket and from the endpoint's bucket before each request.

    Waiters are served first come, first served per endpoint; a request takes both tokens at the same instant, so
    neither limit is exceeded over any window. `burst_seconds` sizes each bucket: Stripe's own buckets hold one
    second of tokens, so a small client burst keeps us under theirs even when requests arrive bunched by the network.
    """

    def __init__(self, global_rps: float | None, endpoint_rps: float | None, burst_seconds: float = 0.2) -> None:
        self.global_rps = global_rps
        self.endpoint_rps = endpoint_rps
        self._burst_seconds = burst_seconds
        self._global = self._bucket(global_rps)
        self._endpoints: dict[str, TokenBucket | None] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.waited_seconds = 0.0

    def _bucket(self, rps: float | None) -> TokenBucket | None:
        if rps is None or rps <= 0:
            return None
        return TokenBucket(rate=rps, burst=max(1.0, rps * self._burst_seconds))

    async def acquire(self, endpoint: str) -> None:
        if endpoint not in self._endpoints:
            self._endpoints[endpoint] = self._bucket(self.endpoint_rps)
            self._locks[endpoint] = asyncio.Lock()
        bucket = self._endpoints[endpoint]
        if bucket is None and self._global is None:
            return
        # One waiter per endpoint at a time, so endpoints interleave fairly on the global bucket.
        async with self._locks[endpoint]:
            while True:
                now = time.monotonic()
                wait = max(
                    bucket.wait_time(now) if bucket else 0.0,
                    self._global.wait_time(now) if self._global else 0.0,
                )
                if wait <= 0.0:
                    if bucket:
                        bucket.take()
                    if self._global:
                        self._global.take()
                    return
                self.waited_seconds += wait
                await asyncio.sleep(wait)

    def penalize(self, seconds: float) -> None:
        """After a 429, drain the global bucket so every endpoint pauses for `seconds`."""
        if self._global is not None:
            self._global.tokens = min(self._global.tokens, -seconds * self._global.rate)
        for bucket in self._endpoints.values():
            if bucket is not None:
                bucket.tokens = min(bucket.tokens, -seconds * bucket.rate)
