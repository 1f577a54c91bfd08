"""Deliver events to a webhook URL with a valid Stripe-Signature, retrying non-2xx answers with backoff."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import stripe

from stripe_sandbox.config import SandboxConfig

MAX_CONCURRENT_DELIVERIES = 16
MAX_BACKOFF_SECONDS = 60.0


def signature_header(payload: str, secret: str, timestamp: int) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<payload>">`, made by stripe-python's own helper."""
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)


class WebhookDispatcher:
    """Runs on the server loop; one task per event, at most MAX_CONCURRENT_DELIVERIES posts at a time."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.counters = {"delivered": 0, "attempts": 0, "failed_attempts": 0, "gave_up": 0}
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def enqueue(self, payload: str, on_delivered: Callable[[], None] | None = None) -> None:
        """Deliver in the background; `on_delivered` runs once the endpoint has answered 2xx."""
        task = asyncio.get_running_loop().create_task(self._deliver(payload, on_delivered))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def queued(self) -> int:
        return len(self._tasks)

    async def _post(self, url: str, payload: str, secret: str) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            self._semaphore = asyncio.Semaphore(MAX_CONCURRENT_DELIVERIES)
        assert self._semaphore is not None
        # Real time, not the virtual clock: receivers check the timestamp against their own clock.
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": signature_header(payload, secret, int(time.time())),
        }
        async with self._semaphore:
            self.counters["attempts"] += 1
            try:
                async with self._session.post(url, data=payload.encode(), headers=headers) as response:
                    await response.read()
                    return 200 <= response.status < 300
            except (aiohttp.ClientError, TimeoutError, OSError):
                return False

    async def _deliver(self, payload: str, on_delivered: Callable[[], None] | None) -> None:
        for attempt in range(self.config.webhook_max_attempts):
            url, secret = self.config.webhook_url, self.config.webhook_secret
            if not url or not secret:
                break
            if await self._post(url, payload, secret):
                self.counters["delivered"] += 1
                if on_delivered is not None:
                    on_delivered()
                return
            self.counters["failed_attempts"] += 1
            if attempt + 1 < self.config.webhook_max_attempts:
                await asyncio.sleep(min(MAX_BACKOFF_SECONDS, self.config.webhook_retry_base * 2**attempt))
        self.counters["gave_up"] += 1

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
