"""Async Stripe Financial Connections client: the official SDK behind a rate limiter, with counts and retries."""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import stripe
from stripe._encode import _api_encode
from stripe._request_options import merge_options

from pipelines.redact import redact
from pipelines.stripe_fc.ratelimit import RateLimiter, endpoint_template

STRIPE_API_BASE = "https://api.stripe.com"
REFRESHED_BALANCE_EVENT = "financial_connections.account.refreshed_balance"
# Stripe's documented limits: 25 requests/s in test mode, 100 live; 25/s per endpoint in both.
TEST_MODE_RPS, LIVE_MODE_RPS, ENDPOINT_RPS = 25.0, 100.0, 25.0


def default_limits(api_key: str) -> tuple[float, float]:
    """(global, per-endpoint) requests/s for the key's mode, as Stripe enforces them."""
    test_mode = api_key.startswith(("sk_test_", "rk_test_"))
    return (TEST_MODE_RPS if test_mode else LIVE_MODE_RPS), ENDPOINT_RPS


class StripeFCError(Exception):
    """A failure the run cannot continue past (bad key, unreachable API); the message is one safe line."""


@dataclass
class RequestStats:
    """Every HTTP attempt the client made, by endpoint and status; 429s and retries counted apart."""

    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    retries_429: int = 0
    connection_errors: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    server_clock_offset: float = 0.0  # Stripe's clock minus ours, from the Date header of the latest response

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "statuses": dict(self.statuses),
            "requests_total": self.total,
            "rate_limited_429": self.rate_limited,
            "retries_after_429": self.retries_429,
            "connection_errors": self.connection_errors,
            "peak_in_flight": self.peak_in_flight,
        }


class _LimitedAIOHTTPClient(stripe.AIOHTTPClient):
    """The SDK's aiohttp client, with every attempt (the SDK's own retries included) paced and counted.

    aiohttp rather than httpx: httpcore's pool scans every connection for each request, which at hundreds of
    requests per second cost more CPU than the rest of the pipeline together.
    """

    def __init__(self, limiter: RateLimiter, stats: RequestStats, timeout: float, max_connections: int) -> None:
        super().__init__(timeout=aiohttp.ClientTimeout(total=timeout))
        self._limiter = limiter
        self._stats = stats
        self._max_connections = max_connections

    @property
    def _session(self) -> aiohttp.ClientSession:
        # Created lazily inside the running event loop, as aiohttp requires.
        if self._cached_session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ssl=ssl.create_default_context(cafile=stripe.ca_bundle_path)
            )
            self._cached_session = aiohttp.ClientSession(connector=connector)
        return self._cached_session

    async def request_async(self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None):
        endpoint = endpoint_template(method, urlsplit(url).path)
        await self._limiter.acquire(endpoint)
        stats = self._stats
        stats.requests[endpoint] += 1
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            content, status, response_headers = await super().request_async(method, url, headers, post_data)
        except (TimeoutError, aiohttp.ClientError) as exc:
            # A connection dropped while the body was read escapes the SDK's own wrapping: make it retryable too.
            stats.connection_errors += 1
            stats.statuses["connection_error"] += 1
            raise stripe.APIConnectionError(f"network error: {type(exc).__name__}", should_retry=True) from None
        except stripe.APIConnectionError:
            stats.connection_errors += 1
            stats.statuses["connection_error"] += 1
            raise
        finally:
            stats.in_flight -= 1
        stats.statuses[str(status)] += 1
        if status == 429:
            stats.rate_limited += 1
        date = response_headers.get("date")
        if date:
            self._note_server_time(date)
        return content, status, response_headers

    def _note_server_time(self, date: str) -> None:
        try:
            server = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        # Date has whole seconds: +0.5 s centres the estimate.
        self._stats.server_clock_offset = server + 0.5 - time.time()

    async def aclose(self) -> None:
        if self._cached_session is not None:
            await self._cached_session.close()
            self._cached_session = None


@dataclass(frozen=True)
class ClientSettings:
    api_key: str
    api_base: str = STRIPE_API_BASE
    max_rps: float | None = None  # None -> Stripe's limit for the key's mode
    max_rps_per_endpoint: float | None = None
    max_network_retries: int = 6  # SDK retries: connection errors, 409, 5xx, Stripe-Should-Retry
    max_rate_limit_retries: int = 8  # our retries of plain 429s, which the SDK leaves to us
    timeout: float = 30.0
    max_connections: int = 100
    reserve_rps: float = 0.0  # kept out of every limit for funds checks (FC_BALANCES_CHECK_RESERVE_RPS)
    burst_seconds: float = 0.2  # the limiter's burst, in seconds of the limit

    def limits(self) -> tuple[float | None, float | None]:
        global_default, endpoint_default = default_limits(self.api_key)
        # At least 1/s is left to the run whatever the reserve, so a misconfigured reserve slows it, never stops it.
        return (max(1.0, (self.max_rps or global_default) - self.reserve_rps),
                max(1.0, (self.max_rps_per_endpoint or endpoint_default) - self.reserve_rps))


class StripeFCClient:
    """The few Stripe calls fc-balances makes, as plain dicts (no StripeObject building on the hot path)."""

    def __init__(self, settings: ClientSettings) -> None:
        if not settings.api_key:
            raise StripeFCError("no Stripe API key: set STRIPE_API_KEY")
        self.settings = settings
        self.stats = RequestStats()
        global_rps, endpoint_rps = settings.limits()
        self.limiter = RateLimiter(global_rps, endpoint_rps, burst_seconds=settings.burst_seconds)
        self._http = _LimitedAIOHTTPClient(self.limiter, self.stats, settings.timeout, settings.max_connections)
        self._stripe = stripe.StripeClient(
            settings.api_key,
            base_addresses={"api": settings.api_base},
            max_network_retries=settings.max_network_retries,
            http_client=self._http,
        )
        # The SDK's own request path builds its headers (a JSON user agent, a scan of the environment) and formats
        # five log lines for every call: a third of the ingest's CPU at 100,000 accounts. The headers are the
        # SDK's, made once; each call goes through the SDK's retrying HTTP client and its response handling.
        self._requestor = self._stripe._requestor
        self._headers = self._requestor.request_headers("get", "V1", merge_options(self._requestor._options, None))
        self._headers.pop("Idempotency-Key", None)

    async def aclose(self) -> None:
        await self._http.aclose()

    def server_now(self) -> float:
        """Stripe's current time as its responses tell it, so cooldowns are judged by Stripe's clock, not ours."""
        return time.time() + self.stats.server_clock_offset

    async def request(
        self, method: str, path: str, params: dict[str, Any] | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """One API call; plain 429s are retried with exponential backoff and jitter, reusing the idempotency key."""
        params = dict(params or {})
        if method == "post":
            # Fixed for all our attempts, so a retried refresh is replayed by Stripe rather than run twice.
            params["idempotency_key"] = idempotency_key or f"fcb-{random.getrandbits(128):032x}"
        attempt = 0
        while True:
            try:
                return await self._send(method, path, params)
            except stripe.RateLimitError:
                if attempt >= self.settings.max_rate_limit_retries:
                    raise
                delay = min(8.0, 0.5 * 2**attempt) * (0.5 + random.random())
                self.limiter.penalize(delay / 4)
                self.stats.retries_429 += 1
                attempt += 1
                await asyncio.sleep(delay)
            except stripe.AuthenticationError as exc:
                raise StripeFCError(
                    f"Stripe rejected the API key (HTTP {exc.http_status}): check STRIPE_API_KEY"
                ) from None
            except stripe.PermissionError as exc:
                raise StripeFCError(
                    f"the API key lacks a permission for {endpoint_template(method, path)}: "
                    f"{redact(exc.user_message or str(exc))}"
                ) from None
            except stripe.APIConnectionError:
                raise StripeFCError(
                    f"cannot reach the Stripe API at {self.settings.api_base} "
                    f"(after {self.settings.max_network_retries} retries)"
                ) from None

    async def _send(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """One call as the SDK's raw_request_async makes it (its encoding, headers, retries and errors)."""
        headers = dict(self._headers)
        idempotency_key = params.pop("idempotency_key", None)
        # The SDK's form encoding, brackets left literal as the SDK leaves them.
        encoded = urlencode(list(_api_encode(params))).replace("%5B", "[").replace("%5D", "]")
        url = f"{self.settings.api_base}{path}"
        body = None
        if method == "post":
            headers["Idempotency-Key"] = idempotency_key
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = encoded
        elif encoded:
            url = f"{url}?{encoded}"
        content, status, response_headers = await self._http.request_with_retries_async(
            method, url, headers, body, max_network_retries=self.settings.max_network_retries)
        # Raises the SDK's error for the status (RateLimitError, InvalidRequestError ...), as raw_request_async does.
        response = self._requestor._interpret_response(content, status, response_headers, "V1")
        return response.data  # type: ignore[no-any-return]

    async def paginate(self, path: str, params: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield each page of a list endpoint, newest first, following `starting_after`."""
        params = {"limit": 100, **params}
        while True:
            page = await self.request("get", path, params)
            data = page.get("data") or []
            if data:
                yield data
            if not page.get("has_more") or not data:
                return
            params["starting_after"] = data[-1]["id"]

    def list_customers(self) -> AsyncIterator[list[dict[str, Any]]]:
        return self.paginate("/v1/customers", {})

    def list_accounts(self, customer: str | None = None) -> AsyncIterator[list[dict[str, Any]]]:
        params = {"account_holder": {"customer": customer}} if customer else {}
        return self.paginate("/v1/financial_connections/accounts", params)

    async def retrieve_account(self, account_id: str) -> dict[str, Any]:
        return await self.request("get", f"/v1/financial_connections/accounts/{account_id}")

    async def refresh_account(self, account_id: str, idempotency_key: str | None = None) -> dict[str, Any]:
        return await self.request(
            "post",
            f"/v1/financial_connections/accounts/{account_id}/refresh",
            {"features": ["balance"]},
            idempotency_key=idempotency_key,
        )

    async def newest_event_id(self, event_type: str) -> str | None:
        page = await self.request("get", "/v1/events", {"type": event_type, "limit": 1})
        data = page.get("data") or []
        return data[0]["id"] if data else None

    async def events_after(self, event_type: str, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Events newer than `cursor`, oldest first, and the new cursor (the newest id seen).

        `ending_before=<cursor>` returns the page of events just newer than the cursor, so each poll reads only
        what is new; with no cursor yet we read every event of the type, newest first, and reverse.
        """
        if cursor is None:
            events = [event async for page in self.paginate("/v1/events", {"type": event_type}) for event in page]
            events.reverse()
            return events, (events[-1]["id"] if events else None)
        collected: list[dict[str, Any]] = []
        while True:
            page = await self.request("get", "/v1/events", {"type": event_type, "limit": 100, "ending_before": cursor})
            data = page.get("data") or []
            if not data:
                return collected, cursor
            collected.extend(reversed(data))  # the page is newest first
            cursor = data[0]["id"]
            if not page.get("has_more"):
                return collected, cursor
