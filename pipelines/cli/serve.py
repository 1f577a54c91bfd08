"""`fc-balances serve`: the funds check as a long-running HTTP service, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.cli.common import wait_for_stop_signal
from pipelines.events import EventStoreError, event_store_path
from pipelines.funds.answer import DEFAULT_REFRESH_TIMEOUT, FundsCheckError
from pipelines.funds.check import stripe_access_from_env
from pipelines.funds.decisions import DecisionLogError
from pipelines.funds.service import CHECKS_PATH, TOKEN_ENV, FundsService, ServiceConfig, parse_tokens, start_service
from pipelines.redact import redact
from pipelines.settings import env_text, warehouse_dir
from pipelines.webhooks.receiver import DEFAULT_HOST, SECRET_ENV, WEBHOOK_PATH, split_secrets, url_host

DEFAULT_PORT = 8788

DESCRIPTION = f"""\
Serve the funds check over HTTP for a payments backend, on one port:

  POST {CHECKS_PATH}        {{"account": "fca_...", "amount": 5000, "currency": "usd", "max_age": "1h"}}
                              -> 200 with funds-check's JSON answer plus "id" (fchk_...) and "created"
  GET  {CHECKS_PATH}/ID     that decision, exactly as it was answered (also after a restart)
  GET  /healthz               200 while it can answer (no token needed)
  POST {WEBHOOK_PATH}      Stripe's webhook deliveries, verified with ${SECRET_ENV} (only when it is set)

Auth: every /v1/ route needs "Authorization: Bearer <token>", the token being ${TOKEN_ENV} (several,
comma-separated, while one is rotated; each at least 16 characters). Without it the service does not start.
A missing or wrong token is 401, compared in constant time; tokens never reach a log.

Errors are {{"error": {{"message": "..."}}}}: 400 bad JSON, a missing or unknown field, a negative or fractional
amount, a non-ISO currency or a bad max_age; 401 no valid token; 404 an unknown account or decision; 503 Stripe
unavailable when the account needs a refresh (the message gives the age of the newest known balance: a stale
answer is never passed off as fresh) or the decision could not be stored.

Answers: from memory, loaded from the warehouse (read-only, only when its file changed, never waiting for a run)
and the event store (webhooks, the events sensor, earlier refreshes). A balance older than max_age (default 1h)
is refreshed first; concurrent checks of one account share one refresh, and every request to Stripe goes through
one limiter at $FC_BALANCES_CHECK_RESERVE_RPS (default 2). Needs STRIPE_API_KEY (and STRIPE_API_BASE for a
sandbox) to refresh; without it, only fresh balances are answered.

Decisions: each answer is stored (the event store's SQLite, WAL, fsync) before it is sent; the fc_events job
lands them in the fc_funds_decisions table; `fc-balances forget` erases a subject's decisions too.

Operation: SIGTERM or SIGINT stops listening, lets in-flight requests finish, then exits 0. One access-log line
per request on stderr (address, request line, status, size, seconds): no balance, no header, no token.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fc-balances serve", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free)")
    parser.add_argument("--warehouse", help="warehouse folder (default: $FC_BALANCES_WAREHOUSE or ./warehouse)")
    parser.add_argument("--refresh-timeout", type=float, default=DEFAULT_REFRESH_TIMEOUT,
                        help="seconds a refresh may take before the check answers timed_out "
                             f"(default {DEFAULT_REFRESH_TIMEOUT:g})")
    return parser


def _fail(message: str, code: int) -> int:
    print(f"fc-balances serve: {redact(message)}", file=sys.stderr, flush=True)
    return code


def config_from_env(args: argparse.Namespace, env: dict[str, str] | os._Environ[str]) -> ServiceConfig:
    """The service's settings; ValueError/FundsCheckError with one line naming a bad variable."""
    tokens = parse_tokens(env_text(TOKEN_ENV, env))
    directory = Path(args.warehouse or warehouse_dir(env)).expanduser().absolute()
    store = event_store_path(directory, env)
    stripe = stripe_access_from_env(env) if env_text("STRIPE_API_KEY", env) else None
    secret = env_text(SECRET_ENV, env)
    if secret is not None and not split_secrets(secret):
        secret = None
    return ServiceConfig(tokens, directory, store, stripe, secret, args.refresh_timeout)


async def _serve_until_signalled(service: FundsService, host: str, port: int) -> None:
    access = logging.getLogger("fc_balances.serve.access")
    runner, bound = await start_service(service, host, port, access_log=access)
    webhooks = f", webhooks at {WEBHOOK_PATH}" if service.receiver is not None else ""
    print(f"fc-balances serve listening on http://{url_host(host)}:{bound}{CHECKS_PATH}{webhooks}", flush=True)
    try:
        await wait_for_stop_signal()
    finally:
        await runner.cleanup()  # stops listening, lets in-flight requests finish, closes the decision log


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 2 on bad usage or settings, 1 when it cannot start."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    if not 0 <= args.port <= 65535:
        return _fail(f"--port must be 0..65535, got {args.port}", 2)
    if args.refresh_timeout <= 0:
        return _fail("--refresh-timeout must be more than 0 seconds", 2)
    try:
        config = config_from_env(args, os.environ)
    except (ValueError, FundsCheckError) as exc:
        return _fail(str(exc), 2)
    logging.basicConfig(level=logging.INFO, format="fc-balances serve: %(message)s", stream=sys.stderr)
    logging.getLogger("stripe").setLevel(logging.WARNING)  # its request lines name accounts: the access log is ours
    if config.stripe is None:
        print("fc-balances serve: STRIPE_API_KEY is not set: stale or unknown accounts answer 503/404",
              file=sys.stderr, flush=True)
    try:
        service = FundsService(config)
    except (EventStoreError, DecisionLogError, OSError) as exc:
        return _fail(str(exc), 1)
    try:
        asyncio.run(_serve_until_signalled(service, args.host, args.port))
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", 1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
