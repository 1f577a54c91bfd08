"""`fc-balances serve`: the funds check as an authenticated HTTP service, each decision stored before it is answered.

Routes: POST /v1/funds_checks, GET /v1/funds_checks/{id} (Bearer token), GET /healthz, and the webhook receiver's
POST /stripe/webhooks (Stripe's signature instead of a token), all on one port.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from pipelines.events.store import EventStore
from pipelines.funds.answer import DEFAULT_REFRESH_TIMEOUT, FundsCheckError, StripeAccess, parse_max_age, validate
from pipelines.funds.checker import CheckRefused, FundsChecker
from pipelines.funds.decisions import DECISION_PREFIX, DecisionLog, DecisionLogError, new_decision_id
from pipelines.redact import redact
from pipelines.webhooks.receiver import HEALTH_PATH, WEBHOOK_PATH, WebhookReceiver, start_runner

CHECKS_PATH = "/v1/funds_checks"
TOKEN_ENV = "FC_BALANCES_SERVICE_TOKEN"  # noqa: S105 - the variable's name, not a token
MIN_TOKEN_CHARS = 16
DEFAULT_MAX_AGE = "1h"  # as `fc-balances funds-check --max-age`
MAX_BODY_BYTES = 16 * 1024  # a check is a few dozen bytes
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs'  # request line, status, size, time: never a header, a body or a balance
_DECISION_ID = re.compile(rf"{DECISION_PREFIX}[0-9a-f]{{24}}")

logger = logging.getLogger("fc_balances.serve")


class RequestRefused(Exception):
    """An answer other than 200: its status and one sentence for `{"error": {"message": ...}}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_tokens(raw: str | None) -> tuple[str, ...]:
    """The accepted tokens of FC_BALANCES_SERVICE_TOKEN (comma-separated, for rotation); ValueError names the
    variable, never a token."""
    tokens = tuple(part.strip() for part in (raw or "").split(",") if part.strip())
    if not tokens:
        raise ValueError(f"{TOKEN_ENV} is not set: give the token (or tokens, comma-separated) clients must send")
    if any(len(token) < MIN_TOKEN_CHARS for token in tokens):
        raise ValueError(f"{TOKEN_ENV}: every token must be at least {MIN_TOKEN_CHARS} characters")
    return tokens


def token_matches(header: str | None, tokens: tuple[str, ...]) -> bool:
    """`Authorization: Bearer <token>` against every accepted token, each compared in constant time, all of them
    every time, so the answer's timing tells neither whether nor which one matched."""
    scheme, _, given = (header or "").partition(" ")
    # Digests of equal length, so not even the offered token's length shows in the comparison's timing.
    offered = hashlib.sha256(given.strip().encode("utf-8", "replace")).digest()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(offered, hashlib.sha256(token.encode("utf-8")).digest())
    return matched and scheme.lower() == "bearer"


def _error(status: int, message: str) -> web.Response:
    response = web.json_response({"error": {"message": message}}, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="fc-balances"'
    return response


@dataclass(frozen=True)
class ServiceConfig:
    tokens: tuple[str, ...]
    warehouse_dir: Path
    store_path: Path
    stripe: StripeAccess | None  # None: no STRIPE_API_KEY, stale accounts answer 503
    webhook_secret: str | None = None  # None: no webhook route
    refresh_timeout: float = DEFAULT_REFRESH_TIMEOUT

    def __repr__(self) -> str:  # never show a token, a key or a secret
        return f"ServiceConfig(warehouse_dir={str(self.warehouse_dir)!r}, tokens={len(self.tokens)})"


class FundsService:
    """The aiohttp application and what it holds open: the event store, the decision log, memory, one Stripe client."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.store = EventStore(config.store_path)
        try:
            self.decisions = DecisionLog(config.store_path)
        except BaseException:
            self.store.close()
            raise
        try:
            self.checker = FundsChecker(config.warehouse_dir / "fc_balances.duckdb", self.store, config.stripe,
                                        config.refresh_timeout)
        except BaseException:
            self.decisions.close()
            self.store.close()
            raise
        self.receiver = WebhookReceiver(self.store, config.webhook_secret) if config.webhook_secret else None
        self.counts = {"answered": 0, "refused": 0}

    def __repr__(self) -> str:
        return f"FundsService({self.config!r})"

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._auth], client_max_size=MAX_BODY_BYTES)
        app.router.add_post(CHECKS_PATH, self.create_check)
        app.router.add_get(CHECKS_PATH + "/{decision_id}", self.get_check)
        app.router.add_get(HEALTH_PATH, self.health)
        if self.receiver is not None:
            app.router.add_post(WEBHOOK_PATH, self.receiver.handle_webhook)
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, _app: web.Application) -> None:
        await self.checker.ready()

    async def _cleanup(self, _app: web.Application) -> None:
        # In-flight requests have finished by now (aiohttp's graceful shutdown): close what they used.
        await self.checker.close()
        await asyncio.get_running_loop().run_in_executor(None, self.decisions.close)
        if self.receiver is not None:
            self.receiver.close()
        self.store.close()

    # -- middlewares ----------------------------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            return await handler(request)
        except RequestRefused as exc:
            self.counts["refused"] += 1
            return _error(exc.status, str(exc))
        except web.HTTPException as exc:  # aiohttp's own: no such route (404), wrong method (405), too large (413)
            if exc.status < 400:
                raise
            return _error(exc.status, exc.reason if exc.status != 404 else "no such route")
        except Exception as exc:
            logger.error(redact(f"internal error on {request.method} {request.path}: {type(exc).__name__}: {exc}"))
            return _error(500, "internal error")

    @web.middleware
    async def _auth(self, request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path.startswith("/v1/") and not token_matches(request.headers.get("Authorization"),
                                                                 self.config.tokens):
            raise RequestRefused(401, "a valid Authorization: Bearer token is required")
        return await handler(request)

    # -- routes ---------------------------------------------------------------------------------------------------

    async def create_check(self, request: web.Request) -> web.Response:
        account_id, amount, currency, max_age, age = _read_check(await request.read())
        try:
            checked = await self.checker.check(account_id, amount, currency, max_age)
        except CheckRefused as exc:
            raise RequestRefused(exc.status, str(exc)) from None
        created = time.time()
        decision: dict[str, Any] = {
            "id": new_decision_id(), "object": "funds_check", "created": int(created), "created_at": created,
            "account": account_id, "amount": amount, "currency": currency, "max_age": age,
            "max_age_seconds": max_age.total_seconds(), **checked.answer.as_dict(),
        }
        try:
            # Durable before it is answered: a lender can always show which balance allowed a debit.
            await asyncio.wrap_future(self.decisions.record(decision, checked.customer_id))
        except DecisionLogError as exc:
            logger.error(redact(str(exc)))
            raise RequestRefused(503, "the decision could not be stored, so it is not given; retry") from None
        self.counts["answered"] += 1
        decision.pop("created_at")
        return web.json_response(decision)

    async def get_check(self, request: web.Request) -> web.Response:
        decision_id = request.match_info["decision_id"]
        if not _DECISION_ID.fullmatch(decision_id):
            raise RequestRefused(404, f"no funds check {decision_id[:40]!r}: ids look like {DECISION_PREFIX}...")
        try:
            decision = await asyncio.get_running_loop().run_in_executor(None, self.decisions.get, decision_id)
        except DecisionLogError as exc:
            raise RequestRefused(503, str(exc)) from None
        if decision is None:
            raise RequestRefused(404, f"no funds check {decision_id}")
        return web.json_response(decision)

    async def health(self, _request: web.Request) -> web.Response:
        if not await self.checker.healthy():
            return web.json_response({"status": "unavailable"}, status=503)
        body: dict[str, Any] = {"status": "ok", **self.counts, "refreshes": self.checker.refreshes_started}
        if self.receiver is not None:
            body["webhooks"] = dict(self.receiver.counts)
        return web.json_response(body)


def _read_check(body: bytes) -> tuple[str, int, str, Any, str]:
    """The check's fields from a JSON body; RequestRefused(400) with one sentence on anything unusable."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RequestRefused(400, "the body must be a JSON object") from None
    if not isinstance(payload, dict):
        raise RequestRefused(400, "the body must be a JSON object")
    for field in ("account", "amount", "currency"):
        if field not in payload:
            raise RequestRefused(400, f"missing field {field!r}")
    unknown = sorted(set(payload) - {"account", "amount", "currency", "max_age"})
    if unknown:
        raise RequestRefused(400, f"unknown field {unknown[0][:40]!r}")
    amount = payload["amount"]
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise RequestRefused(400, f"amount must be a whole number of minor units, got {json.dumps(amount)[:40]}")
    if not isinstance(payload["account"], str):
        raise RequestRefused(400, "account must be a string (fca_...)")
    raw_age = payload.get("max_age", DEFAULT_MAX_AGE)
    if isinstance(raw_age, bool) or not isinstance(raw_age, str | int | float):
        raise RequestRefused(400, "max_age must look like 90s, 30m, 1h or 2d, or be a number of seconds")
    try:
        amount, currency = validate(payload["account"], amount, payload["currency"])
        # A JSON number is seconds (the Python API's convention); text is `90s`, `30m`, `1h`, `2d`.
        max_age = parse_max_age(raw_age)
    except FundsCheckError as exc:
        raise RequestRefused(400, redact(str(exc))) from None
    return payload["account"], amount, currency, max_age, raw_age if isinstance(raw_age, str) else str(raw_age)


async def start_service(service: FundsService, host: str, port: int,
                        access_log: logging.Logger | None = None) -> tuple[web.AppRunner, int]:
    """Serve until the runner is cleaned up; the runner and the port bound (0 picks a free one).

    `runner.cleanup()` is the graceful stop: it stops listening, lets in-flight requests finish, then closes the log.
    """
    runner = web.AppRunner(service.make_app(), handle_signals=False, access_log=access_log,
                           access_log_format=ACCESS_LOG_FORMAT, shutdown_timeout=service.config.refresh_timeout + 5)
    return await start_runner(runner, host, port)
