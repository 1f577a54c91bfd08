"""`fc-balances webhooks`: a Stripe webhook receiver that verifies signatures and stores events once, durably."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import stripe
from aiohttp import web

from pipelines.events import (
    EventStore,
    EventStoreError,
    InvalidEventError,
    is_account_event,
    summarize_event,
)
from pipelines.redact import redact

WEBHOOK_PATH = "/stripe/webhooks"
HEALTH_PATH = "/healthz"
SECRET_ENV = "STRIPE_WEBHOOK_SECRET"  # noqa: S105 - the variable's name, not a secret
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
DEFAULT_MAX_BODY_BYTES = 1 << 20  # Stripe's account events are a few KiB; 1 MiB leaves ample room
TOLERANCE_SECONDS = 300  # Stripe's SDK default; the SDK applies it to the past, we to the future too
MAX_SIGNATURE_HEADER_CHARS = 4096
_READ_CHUNK = 64 * 1024

logger = logging.getLogger("fc_balances.webhooks")


# ---------------------------------------------------------------------------------------------- signatures


class SignatureError(ValueError):
    """Why a Stripe-Signature header was refused; the message never holds the header or the secret."""


def verify_signature(body: bytes, header: str | None, secret: str, now: float | None = None,
                     tolerance: float = TOLERANCE_SECONDS) -> int:
    """Check `Stripe-Signature` against the raw body; the signed timestamp if valid, else SignatureError.

    stripe-python's `WebhookSignature.verify_header` checks the header, the HMAC of every `v1` entry in constant
    time and the age limit, once per candidate secret. Ours adds only what it lacks: several secrets (while one is
    rolled), the far-future limit (it rejects only old timestamps) and a cap on the header's length.
    """
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    if len(header) > MAX_SIGNATURE_HEADER_CHARS:
        raise SignatureError("malformed Stripe-Signature header")
    try:
        payload = body.decode("utf-8")  # the SDK signs the text of the body
    except UnicodeDecodeError:
        raise SignatureError("signature does not match") from None
    current = time.time() if now is None else now
    # The SDK measures age against its own clock, read a moment later: shifting the tolerance by the difference (and
    # a millisecond for that moment) applies it at `current`, the limit itself still accepted.
    sdk_tolerance = tolerance + (time.time() - current) + 0.001
    matched = False
    worst = 0
    # Every secret is tried, so timing does not tell which one matched.
    for one_secret in split_secrets(secret):
        try:
            stripe.WebhookSignature.verify_header(payload, header, one_secret, tolerance=sdk_tolerance)
            matched = True
        except stripe.SignatureVerificationError as exc:
            worst = max(worst, _failure_rank(str(exc)))
        except TypeError:  # a non-ASCII v1 value: hmac.compare_digest refuses to compare it
            worst = max(worst, _RANK_MISMATCH)
    if not matched:
        raise SignatureError(_FAILURES[worst])
    timestamp = _signed_timestamp(header)
    if timestamp > current + tolerance:
        raise SignatureError("signature timestamp is in the future")
    return timestamp


# The SDK's failures, by how far verification got (the furthest one is reported), and our one-line reasons.
_RANK_MISMATCH = 3
_FAILURES = {
    0: "signature verification failed",
    1: "malformed Stripe-Signature header",
    2: "no v1 signature in Stripe-Signature header",
    _RANK_MISMATCH: "signature does not match",
    4: "signature timestamp is too old",
}
_SDK_MESSAGES = (("Unable to extract", 1), ("expected scheme", 2), ("matching the expected", _RANK_MISMATCH),
                 ("tolerance zone", 4))


def _failure_rank(message: str) -> int:
    return next((rank for text, rank in _SDK_MESSAGES if text in message), 0)


def _signed_timestamp(header: str) -> int:
    """The `t=` value, read as the SDK reads it (the first `t` entry); only called once the SDK accepted it."""
    return int(next(value for key, _, value in (item.partition("=") for item in header.split(",")) if key == "t"))


def split_secrets(secret: str) -> list[str]:
    """The signing secrets of a comma-separated STRIPE_WEBHOOK_SECRET (one or more), blanks dropped."""
    return [part.strip() for part in secret.split(",") if part.strip()]


# ---------------------------------------------------------------------------------------------- the application


def _json(status: int, payload: dict[str, Any]) -> web.Response:
    return web.json_response(payload, status=status)


class _BodyTooLarge(Exception):
    pass


async def _read_capped(request: web.Request, cap: int) -> bytes:
    """The body, reading at most cap + 1 bytes; _BodyTooLarge past the cap."""
    if request.content_length is not None and request.content_length > cap:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while size <= cap:
        chunk = await request.content.read(min(_READ_CHUNK, cap + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > cap:
        raise _BodyTooLarge
    return b"".join(chunks)


class WebhookReceiver:
    """The aiohttp handlers; store writes go through one worker thread so the event loop never blocks on fsync."""

    def __init__(self, store: EventStore, secret: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 tolerance: float = TOLERANCE_SECONDS) -> None:
        if not split_secrets(secret):
            raise ValueError(f"a webhook secret is required ({SECRET_ENV})")
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        self.store = store
        self._secret = secret
        self.max_body_bytes = max_body_bytes
        self.tolerance = tolerance
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fc-webhook-store")
        self.counts: dict[str, int] = {"stored": 0, "duplicate": 0, "ignored": 0, "rejected": 0, "failed": 0,
                                       "skipped_forgotten": 0}

    def __repr__(self) -> str:  # never show the secret, even in a debugger or a traceback
        return f"WebhookReceiver(store={str(self.store.path)!r}, max_body_bytes={self.max_body_bytes})"

    def make_app(self) -> web.Application:
        # client_max_size bounds aiohttp's own readers too; ours reads at most cap + 1 bytes.
        app = web.Application(client_max_size=self.max_body_bytes + 1)
        app.router.add_post(WEBHOOK_PATH, self.handle_webhook)
        app.router.add_get(HEALTH_PATH, self.handle_health)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        self.close()

    def close(self) -> None:
        """Finish the store writes under way (an app serving `handle_webhook` calls this when it stops)."""
        self._writer.shutdown(wait=True)

    def _reject(self, status: int, reason: str) -> web.Response:
        self.counts["rejected"] += 1
        logger.warning(redact(f"rejected a delivery ({status}): {reason}"))
        return _json(status, {"error": reason})

    async def handle_webhook(self, request: web.Request) -> web.Response:
        received_at = time.time()
        try:
            body = await _read_capped(request, self.max_body_bytes)
        except _BodyTooLarge:
            return self._reject(413, f"body larger than {self.max_body_bytes} bytes")
        try:
            verify_signature(body, request.headers.get("Stripe-Signature"), self._secret, tolerance=self.tolerance)
        except SignatureError as exc:
            return self._reject(400, str(exc))
        try:
            text = body.decode("utf-8")
            event = json.loads(text)
            summary = summarize_event(event)
        except (UnicodeDecodeError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, InvalidEventError) else "body is not a JSON event"
            return self._reject(400, reason)
        if not is_account_event(summary.type):
            # Acknowledge so Stripe stops retrying, but keep nothing: other events (customers) hold personal data.
            self.counts["ignored"] += 1
            logger.info(redact(f"ignored {summary.event_id} ({summary.type}): not a Financial Connections event"))
            return _json(200, {"received": True, "stored": False, "id": summary.event_id})
        loop = asyncio.get_running_loop()
        try:
            is_new = await loop.run_in_executor(self._writer, self.store.add, event, received_at, "webhook", text)
        except (EventStoreError, InvalidEventError) as exc:
            self.counts["failed"] += 1
            logger.error(redact(f"could not store {summary.event_id}: {exc}"))
            # 503: Stripe retries the delivery later, so nothing is lost while the store is unwritable.
            return _json(503, {"error": "event store unavailable, retry later"})
        if not is_new and self.store.skipped_forgotten > self.counts["skipped_forgotten"]:
            # About a forgotten customer or account (fc-balances forget): acknowledged, kept nowhere, counted only.
            self.counts["skipped_forgotten"] = self.store.skipped_forgotten
            logger.info(redact(f"skipped {summary.event_id}: about a forgotten subject"))
            return _json(200, {"received": True, "stored": False, "id": summary.event_id})
        self.counts["stored" if is_new else "duplicate"] += 1
        logger.info(redact(f"{'stored' if is_new else 'duplicate'} {summary.event_id} ({summary.type})"))
        return _json(200, {"received": True, "stored": True, "duplicate": not is_new, "id": summary.event_id})

    async def handle_health(self, _request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            stats = await loop.run_in_executor(self._writer, self.store.stats)
        except EventStoreError:
            return _json(503, {"status": "store unavailable"})
        return _json(200, {"status": "ok", "stored": stats.total, "pending": stats.pending, **self.counts})


async def start_runner(runner: web.AppRunner, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Set up and start `runner` on host:port; the runner and the port actually bound (port 0 picks a free one).
    A port that cannot be bound cleans the runner up before the OSError goes on."""
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    addresses = runner.addresses  # (host, port, ...) of each bound socket
    return runner, int(addresses[0][1]) if addresses else port


async def start_site(receiver: WebhookReceiver, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the receiver; the runner and the port actually bound (port 0 picks a free one)."""
    return await start_runner(web.AppRunner(receiver.make_app(), access_log=None, handle_signals=False), host, port)


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
