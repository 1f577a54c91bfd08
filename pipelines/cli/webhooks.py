"""`fc-balances webhooks`: serve the verified webhook receiver until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.cli.common import wait_for_stop_signal
from pipelines.events import EventStore, EventStoreError, event_store_path
from pipelines.redact import redact
from pipelines.settings import read
from pipelines.webhooks.receiver import (
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PORT,
    SECRET_ENV,
    WEBHOOK_PATH,
    WebhookReceiver,
    split_secrets,
    start_site,
    url_host,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fc-balances webhooks",
        description=(
            f"Serve POST {WEBHOOK_PATH}: verify Stripe-Signature with ${SECRET_ENV}, store each "
            "financial_connections.account.* event once, answer 2xx only after it is on disk. GET /healthz."
        ),
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free)")
    parser.add_argument("--store", default=None,
                        help="SQLite event store (default $FC_BALANCES_EVENT_STORE, else "
                             "<FC_BALANCES_WAREHOUSE>/events/webhook_events.sqlite)")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                        help=f"larger bodies get 413 (default {DEFAULT_MAX_BODY_BYTES})")
    return parser


def _fail(message: str, code: int) -> int:
    print(f"fc-balances webhooks: {redact(message)}", file=sys.stderr, flush=True)
    return code


async def _serve_until_signalled(receiver: WebhookReceiver, host: str, port: int) -> None:
    runner, bound = await start_site(receiver, host, port)
    print(f"fc-balances webhooks listening on http://{url_host(host)}:{bound}{WEBHOOK_PATH}", flush=True)
    try:
        await wait_for_stop_signal()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the receiver until SIGINT/SIGTERM; 0 on a clean stop, 2 on bad usage, 1 when it cannot start."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    if not 0 <= args.port <= 65535:
        return _fail(f"--port must be 0..65535, got {args.port}", 2)
    if args.max_body_bytes < 1:
        return _fail(f"--max-body-bytes must be at least 1, got {args.max_body_bytes}", 2)
    secret = read(SECRET_ENV) or ""
    if not split_secrets(secret):
        return _fail(f"{SECRET_ENV} is not set: give the endpoint's signing secret (whsec_...)", 2)
    logging.basicConfig(level=logging.INFO, format="fc-balances webhooks: %(message)s", stream=sys.stderr)
    store_path = Path(args.store).expanduser().absolute() if args.store else event_store_path()
    try:
        store = EventStore(store_path)
    except EventStoreError as exc:
        return _fail(str(exc), 1)
    try:
        receiver = WebhookReceiver(store, secret, args.max_body_bytes)
        asyncio.run(_serve_until_signalled(receiver, args.host, args.port))
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", 1)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
