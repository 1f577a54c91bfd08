"""The HTTP server: auth, rate limits, faults, idempotency, settings and the admin API around the Stripe endpoints."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import random
import sys
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from aiohttp import web

from stripe_sandbox.config import SandboxConfig, validate_settings
from stripe_sandbox.endpoints import RequestContext, Route, StripeEndpoints
from stripe_sandbox.errors import ApiError, invalid
from stripe_sandbox.expand import Expander
from stripe_sandbox.fixtures import FixtureError
from stripe_sandbox.ids import IdFactory
from stripe_sandbox.objects import API_VERSION
from stripe_sandbox.params import parse_query
from stripe_sandbox.ratelimit import RateLimiter
from stripe_sandbox.state import (
    SandboxState,
    dumps,
)
from stripe_sandbox.webhooks import WebhookDispatcher

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
FAULT_KINDS = ("api_error", "unavailable", "lock_timeout", "dropped", "slow")
FAULT_WEIGHTS = (25, 20, 20, 15, 20)
TICK_SECONDS = 0.02
MAX_BODY_BYTES = 1 << 20


@dataclass(slots=True)
class IdempotentResult:
    fingerprint: str
    created: float
    status: int | None  # None while the first request is still running
    body: bytes
    request_id: str


class SandboxServer(StripeEndpoints):
    """Owns the state and answers HTTP; everything runs on one event loop."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.ids = IdFactory(config.seed)
        self.state = SandboxState(config, self.ids, self.now)
        self.webhooks = WebhookDispatcher(config)
        events = self.state.event_store
        self.state.on_event = lambda event: self.webhooks.enqueue(event.json, lambda: events.delivered(event.id))
        self.expander = Expander(self._customer_doc, self.state.ownerships.expanded)
        # Test-only: (method, path, status, body) of every answered /v1 request, for spec validation.
        self.recorded: list[tuple[str, str, int, bytes]] | None = [] if config.record_responses else None
        self.limiter = RateLimiter(config.effective_global_rate(), config.rate_limit_endpoint)
        self._fault_rng = random.Random(f"stripe_sandbox.faults:{config.seed}")
        self._idempotency: OrderedDict[str, IdempotentResult] = OrderedDict()
        self._ticker: asyncio.Task[None] | None = None
        self._date_second, self._date_text = -1, ""
        self.reset_stats()

    # ---- clock, stats, settings ------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.config.clock_offset

    def reset_stats(self) -> None:
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.rate_limited = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        # Wall-clock times of the first and the last API request (not admin calls): a benchmark's breakdown.
        self.first_request_at: float | None = None
        self.last_request_at: float | None = None
        # The same per endpoint ("POST /v1/.../refresh"): when the rate-limited refreshes started and ended.
        self.first_request_at_by_endpoint: dict[str, float] = {}
        self.last_request_at_by_endpoint: dict[str, float] = {}

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "statuses": dict(self.statuses),
            "rate_limited": self.rate_limited,
            "peak_in_flight": self.peak_in_flight,
            "in_flight": self.in_flight,
            "first_request_at": self.first_request_at,
            "last_request_at": self.last_request_at,
            "first_request_at_by_endpoint": dict(self.first_request_at_by_endpoint),
            "last_request_at_by_endpoint": dict(self.last_request_at_by_endpoint),
            "faults": dict(self.faults),
            **self.state.counters,
            **self.state.counts(),
            "idempotency_keys": len(self._idempotency),
            "webhooks": {**self.webhooks.counters, "in_progress": self.webhooks.queued},
            "now": self.now(),
        }

    def update_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        clean = validate_settings(settings)
        for name, value in clean.items():
            setattr(self.config, name, value)
        if {"rate_limit_global", "rate_limit_endpoint"} & clean.keys():
            self.limiter.configure(self.config.effective_global_rate(), self.config.rate_limit_endpoint)
        self.state.process_due()
        return self.public_settings()

    def public_settings(self) -> dict[str, Any]:
        """The runtime settings, with secrets reduced to whether they are set."""
        return {
            "mode": self.config.mode,
            "rate_limit": self.config.rate_limit,
            "rate_limit_global": self.config.effective_global_rate(),
            "rate_limit_endpoint": self.config.rate_limit_endpoint,
            "refresh_latency": list(self.config.refresh_latency),
            "refresh_cooldown": self.config.refresh_cooldown,
            "refresh_failure_rate": self.config.refresh_failure_rate,
            "fault_rate": self.config.fault_rate,
            "fault_slow_seconds": self.config.fault_slow_seconds,
            "webhook_url": self.config.webhook_url,
            "webhook_secret_set": self.config.webhook_secret is not None,
            "webhook_max_attempts": self.config.webhook_max_attempts,
            "webhook_retry_base": self.config.webhook_retry_base,
            "clock_offset": self.config.clock_offset,
            "restricted_keys": len(self.config.restricted_keys),
        }

    def advance_clock(self, seconds: float) -> float:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < 1e10:
            raise ValueError(f"advance_seconds must be a number >= 0, not {seconds!r}")
        self.config.clock_offset += float(seconds)
        self.state.process_due()
        return self.now()

    def reset(self) -> None:
        self.state.clear()
        self._idempotency.clear()
        self.limiter.configure(self.config.effective_global_rate(), self.config.rate_limit_endpoint)
        self.reset_stats()

    # ---- lifecycle -------------------------------------------------------------------------------------

    def make_server(self) -> web.Server:
        """aiohttp's low-level server: no router or middleware between a request and `handle` (the hot path)."""
        return web.Server(self.handle, access_log=None)

    async def start_background(self) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        # Completes due refreshes even when nobody is asking, so events and webhooks fire on time.
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                self.state.process_due()
            except Exception as exc:  # keep ticking; a bug here must not stop completions
                print(f"stripe_sandbox: refresh completion failed: {exc!r}", file=sys.stderr)

    async def stop_background(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        await self.webhooks.close()

    def _date_header(self) -> str:
        # Formatting a date costs more than the rest of a retrieve: once per virtual second is enough.
        second = int(self.now())
        if second != self._date_second:
            self._date_second, self._date_text = second, formatdate(second, usegmt=True)
        return self._date_text

    # ---- HTTP entry point ------------------------------------------------------------------------------

    def _authenticate(self, request: web.Request) -> str:
        header = request.headers.get("Authorization")
        if not header:
            raise ApiError(401, "You did not provide an API key. You need to provide your API key in the "
                           "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
        scheme, _, value = header.strip().partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = value.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if key and (key == self.config.api_key or key in self.config.restricted_keys):
            return key
        # Never echo the key back: it is a secret even when wrong.
        raise ApiError(401, "Invalid API Key provided.")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_sandbox/"):
            return await self._admin(request)
        request_id = self.ids.new("req")
        self.last_request_at = time.time()
        if self.first_request_at is None:
            self.first_request_at = self.last_request_at
        self.state.process_due()
        route = self._route(request.method, request.path)
        endpoint = f"{request.method} {route.template if route else 'unrecognized'}"
        self.requests[endpoint] += 1
        self.first_request_at_by_endpoint.setdefault(endpoint, self.last_request_at)
        self.last_request_at_by_endpoint[endpoint] = self.last_request_at
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
        # Date in the virtual clock, as Stripe's Date is in Stripe's: clients may judge cooldowns by it.
        headers = {"Request-Id": request_id, "Date": self._date_header(),
                   "Stripe-Version": request.headers.get("Stripe-Version", API_VERSION)}
        drop = False
        try:
            # Yield once so requests that arrived together are all counted in flight (handlers never
            # block otherwise, so peak_in_flight would always read 1).
            await asyncio.sleep(0)
            status, body, drop = await self._serve(request, route, request_id, headers)
        except ApiError as error:
            status, body = error.status, error.body(request_id, self.config.livemode)
            headers.update(error.headers)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a sandbox bug: answer like Stripe's 500, say so on stderr
            print(f"stripe_sandbox: internal error on {request.method} {request.path}: {exc!r}", file=sys.stderr)
            error = ApiError(500, "An unknown error occurred in stripe_sandbox.", type="api_error")
            status, body = error.status, error.body(request_id, self.config.livemode)
        finally:
            self.in_flight -= 1
        if drop:
            self.faults["dropped"] += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        self.statuses[str(status)] += 1
        if self.recorded is not None:
            self.recorded.append((request.method, request.path, status, body))
        return web.Response(body=body, status=status, headers=headers, content_type="application/json")

    async def _serve(self, request: web.Request, route: Route | None, request_id: str,
                     headers: dict[str, str]) -> tuple[int, bytes, bool]:
        key = self._authenticate(request)
        if route is None:
            raise ApiError(404, f"Unrecognized request URL ({request.method}: {request.path}). Please see "
                           "https://stripe.com/docs or we can help at https://support.stripe.com/.")
        if self.config.rate_limit and not self.limiter.try_acquire(f"{request.method} {route.template}"):
            self.rate_limited += 1
            raise ApiError(429, "Request rate limit exceeded. Learn more about rate limits here "
                           "https://stripe.com/docs/rate-limits.", code="rate_limit")
        permissions = self.config.restricted_keys.get(key)
        if permissions is not None and route.permission not in permissions:
            raise ApiError(403, f"The provided key does not have the required permissions for this endpoint. "
                           f"Having the '{route.permission}' permission would allow this request to continue.",
                           code="permission_error")
        drop = False
        if self.config.fault_rate > 0 and self._fault_rng.random() < self.config.fault_rate:
            kind = self._fault_rng.choices(FAULT_KINDS, weights=FAULT_WEIGHTS)[0]
            if kind != "dropped":
                self.faults[kind] += 1
            if kind == "api_error":
                raise ApiError(500, "An unknown error occurred (injected by stripe_sandbox).", type="api_error")
            if kind == "unavailable":
                raise ApiError(503, "The service is temporarily unavailable (injected by stripe_sandbox).",
                               type="api_error")
            if kind == "lock_timeout":
                raise ApiError(429, "This object cannot be accessed right now because another API request "
                               "or Stripe process is currently accessing it (injected by stripe_sandbox).",
                               code="lock_timeout", headers={"Stripe-Should-Retry": "true"})
            if kind == "slow":
                await asyncio.sleep(self.config.fault_slow_seconds)
            # "dropped": do the work (a POST's result is saved for replay), then lose the answer.
            drop = kind == "dropped"
        params = await self._params(request)
        idempotency_key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        context = RequestContext(request_id, idempotency_key)
        if idempotency_key is None:
            return 200, route.handler(self, params, route.object_id, context).encode(), drop
        status, body = self._idempotent(request, route, params, context, headers)
        return status, body, drop

    async def _params(self, request: web.Request) -> dict[str, Any]:
        raw = request.query_string
        if request.method == "POST" and request.body_exists:
            try:
                body = await request.read()
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise invalid("The request body is not valid UTF-8 form encoding.") from None
            except web.HTTPRequestEntityTooLarge:
                raise invalid("The request body is too large.") from None
            raw = f"{raw}&{text}" if raw and text else (raw or text)
        return parse_query(raw) if raw else {}

    def _idempotent(self, request: web.Request, route: Route, params: dict[str, Any], context: RequestContext,
                    headers: dict[str, str]) -> tuple[int, bytes]:
        key = context.idempotency_key
        assert key is not None
        if len(key) > 255:
            raise invalid("Idempotency-Key must be at most 255 characters.", param="Idempotency-Key")
        headers["Idempotency-Key"] = key
        fingerprint = f"{request.method} {request.path} {json.dumps(params, sort_keys=True)}"
        self._expire_idempotency()
        saved = self._idempotency.get(key)
        if saved is not None:
            if saved.fingerprint != fingerprint:
                raise ApiError(400, "Keys for idempotent requests can only be used with the same parameters "
                               f"they were first used with. Try using a key other than '{key}' if you meant "
                               "to execute a different request.", type="idempotency_error")
            if saved.status is None:
                raise ApiError(409, "There is currently another in-progress request using this Idempotency-Key "
                               "(that probably means you submitted twice, and the other request is still going "
                               "through).", type="idempotency_error")
            headers["Idempotent-Replayed"] = "true"
            headers["Original-Request"] = saved.request_id
            return saved.status, saved.body
        entry = IdempotentResult(fingerprint, self.now(), None, b"", context.request_id)
        self._idempotency[key] = entry
        try:
            body = route.handler(self, params, route.object_id, context).encode()
            status = 200
        except ApiError as error:
            if error.validation:
                del self._idempotency[key]  # the endpoint never ran: nothing to replay
                raise
            status, body = error.status, error.body(context.request_id, self.config.livemode)
            entry.status, entry.body = status, body
            raise
        except BaseException:
            del self._idempotency[key]
            raise
        entry.status, entry.body = status, body
        return status, body

    def _expire_idempotency(self) -> None:
        horizon = self.now() - IDEMPOTENCY_TTL_SECONDS
        while self._idempotency:
            oldest = next(iter(self._idempotency.values()))
            if oldest.created >= horizon or oldest.status is None:
                break
            self._idempotency.popitem(last=False)

    # ---- admin API -----------------------------------------------------------------------------------

    async def _admin(self, request: web.Request) -> web.Response:
        try:
            key = self._authenticate(request)
            if key != self.config.api_key:
                raise ApiError(403, "The admin API needs the sandbox's secret key, not a restricted key.",
                               code="permission_error")
            self.state.process_due()
            action = request.path[len("/_sandbox/"):].rstrip("/")
            method = request.method
            if action == "stats" and method == "GET":
                result: Any = self.stats()
            elif action == "settings" and method == "GET":
                result = self.public_settings()
            elif action == "fixtures" and method == "POST":
                result = {"loaded": self.state.load_fixtures(await self._json_body(request), emit_events=True)}
            elif action.startswith("accounts/") and action.endswith("/status") and method == "POST":
                body = await self._json_body(request)
                account_id = action[len("accounts/"):-len("/status")]
                status = body.get("status") if isinstance(body, dict) else None
                result = json.loads(self.state.set_status(account_id, status).render())
            elif action == "reset" and method == "POST":
                self.reset()
                result = {"reset": True}
            elif action == "settings" and method == "POST":
                body = await self._json_body(request)
                if not isinstance(body, dict):
                    raise ApiError(400, "settings must be a JSON object")
                result = self.update_settings(body)
            elif action == "clock" and method == "POST":
                body = await self._json_body(request)
                seconds = body.get("advance_seconds") if isinstance(body, dict) else None
                result = {"now": self.advance_clock(seconds)}  # type: ignore[arg-type]
            else:
                raise ApiError(404, f"Unrecognized sandbox admin URL ({method}: {request.path}).")
        except ApiError as error:
            return web.Response(body=error.body("admin", self.config.livemode), status=error.status,
                                content_type="application/json")
        except (FixtureError, ValueError) as error:
            body = ApiError(400, str(error)).body("admin", self.config.livemode)
            return web.Response(body=body, status=400, content_type="application/json")
        return web.Response(text=dumps(result), content_type="application/json")

    @staticmethod
    async def _json_body(request: web.Request) -> Any:
        try:
            return json.loads(await request.read() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"The request body is not valid JSON: {exc}") from None
