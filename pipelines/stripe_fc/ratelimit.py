"""Client-side rate limits: one global schedule and one per endpoint (method + path), first come first served."""

from __future__ import annotations

import asyncio
import re
import time

# Stripe object ids in a path are replaced by {id}, so all refreshes share one endpoint limit, as Stripe counts them.
_ID_SEGMENT = re.compile(r"/(?:fca|cus|evt|fcsess|acct|req)_[A-Za-z0-9]+")


def endpoint_template(method: str, path: str) -> str:
    """`POST /v1/financial_connections/accounts/fca_1/refresh` -> `POST /v1/.../accounts/{id}/refresh`."""
    path = path.split("?", 1)[0]
    return f"{method.upper()} {_ID_SEGMENT.sub('/{id}', path)}"


class _Schedule:
    """A token bucket kept as a theoretical arrival time (GCRA): `rate` per second, up to `burst` at once.

    Reserving a send time instead of polling for tokens makes waiting requests first come, first served: a
    busy endpoint cannot starve a quiet one of the global limit.

    `head_start` more requests may go at once within the first second: Stripe's bucket starts a run full (one second
    of tokens), so a run need not spend its first second ramping up to the rate. The head start plus the burst stays
    below Stripe's second, so its bucket keeps a margin, and none of it is left after that second.
    """

    def __init__(self, rate: float, burst: float, head_start: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.interval = 1.0 / rate
        self.slack = max(0.0, burst - 1.0) * self.interval
        self.theoretical_arrival = time.monotonic()
        self.head_start = float(int(head_start))
        self.head_start_until = self.theoretical_arrival + 1.0

    def _on_head_start(self, at: float) -> bool:
        return self.head_start >= 1.0 and at < self.head_start_until and at < self.theoretical_arrival - self.slack

    def earliest(self, now: float) -> float:
        if self._on_head_start(now):
            return now
        return max(now, self.theoretical_arrival - self.slack)

    def book(self, at: float) -> None:
        if self._on_head_start(at):
            self.head_start -= 1.0  # a request the regular bucket would have held back goes on the head start
            return
        self.theoretical_arrival = max(self.theoretical_arrival, at) + self.interval

    def delay_all(self, until: float) -> None:
        self.head_start = 0.0  # a 429 says Stripe's bucket is not full: no head start after it
        self.theoretical_arrival = max(self.theoretical_arrival, until + self.slack)


class RateLimiter:
    """Books each request a send time that keeps both the global and its endpoint's limit, then sleeps until then.

    Requests of one endpoint book one at a time (a FIFO lock held until the booked time), so no endpoint reserves
    global capacity far ahead: the global line holds at most one pending slot per endpoint, and a quiet endpoint's
    request waits behind a few slots, not behind a busy endpoint's whole queue.

    `burst_seconds` sizes the allowed burst: Stripe's own buckets hold one second of tokens, so a small client burst
    keeps us under theirs even when the network bunches requests together. `head_start_seconds` of requests more may
    go in each schedule's first second, while Stripe's bucket is still full (burst + head start < 1 s).
    """

    def __init__(self, global_rps: float | None, endpoint_rps: float | None, burst_seconds: float = 0.2,
                 head_start_seconds: float = 0.6) -> None:
        self.global_rps = global_rps
        self.endpoint_rps = endpoint_rps
        self._burst_seconds = burst_seconds
        # A fifth of Stripe's second stays unused, as the burst leaves it in steady state.
        self._head_start_seconds = max(0.0, min(head_start_seconds, 0.8 - burst_seconds))
        self._global = self._schedule(global_rps)
        self._endpoints: dict[str, _Schedule | None] = {}
        self._turns: dict[str, asyncio.Lock] = {}
        self.waited_seconds = 0.0

    def _schedule(self, rps: float | None) -> _Schedule | None:
        if rps is None or rps <= 0:
            return None
        return _Schedule(rps, burst=max(1.0, rps * self._burst_seconds), head_start=rps * self._head_start_seconds)

    async def acquire(self, endpoint: str) -> None:
        if endpoint not in self._endpoints:
            self._endpoints[endpoint] = self._schedule(self.endpoint_rps)
            self._turns[endpoint] = asyncio.Lock()
        own = self._endpoints[endpoint]
        if own is None and self._global is None:
            return
        async with self._turns[endpoint]:
            now = time.monotonic()
            at = max(own.earliest(now) if own else now, self._global.earliest(now) if self._global else now)
            if own:
                own.book(at)
            if self._global:
                self._global.book(at)
            if at > now:
                self.waited_seconds += at - now
                await asyncio.sleep(at - now)

    def penalize(self, seconds: float) -> None:
        """After a 429, hold every request back for `seconds`."""
        until = time.monotonic() + seconds
        for schedule in [self._global, *self._endpoints.values()]:
            if schedule is not None:
                schedule.delay_all(until)
