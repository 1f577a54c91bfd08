"""`fc-balances funds-check ACCOUNT AMOUNT_MINOR CURRENCY`: one answer as a line or JSON; errors: one line, exit 1."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from pipelines.funds.answer import DEFAULT_REFRESH_TIMEOUT
from pipelines.funds.check import FundsCheckError, check_funds
from pipelines.redact import redact


class _OneLineParser(argparse.ArgumentParser):
    """Bad usage is one line too, not argparse's usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise FundsCheckError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="fc-balances funds-check",
        description="Is there enough money in this account for a debit? Refreshes the balance first when it is "
                    "older than --max-age and the account can be refreshed now.",
    )
    parser.add_argument("account", help="the Financial Connections account id (fca_...)")
    parser.add_argument("amount_minor", help="the debit in minor units (5000 = 50.00 usd)")
    parser.add_argument("currency", help="ISO 4217 code, e.g. usd")
    parser.add_argument("--max-age", default="1h", help="newest balance allowed without a refresh: 90s, 30m, 1h, 2d")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-refresh", action="store_true", help="answer from what is known, never call Stripe")
    parser.add_argument("--timeout", type=float, default=DEFAULT_REFRESH_TIMEOUT,
                        help=f"seconds to wait for a refresh (default {DEFAULT_REFRESH_TIMEOUT:g})")
    parser.add_argument("--warehouse", help="warehouse folder (default: $FC_BALANCES_WAREHOUSE or ./warehouse)")
    return parser


def _skip_unused_http_stacks() -> None:
    """The Stripe SDK imports requests and httpx when they are installed, though we use its aiohttp client; in this
    short-lived process of ours that is half a second of a check's start-up, so they are marked absent."""
    for name in ("requests", "httpx"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def main(argv: Sequence[str]) -> int:
    _skip_unused_http_stacks()
    parser = _parser()
    try:
        args = parser.parse_args(list(argv))
        answer = check_funds(args.account, args.amount_minor, args.currency, max_age=args.max_age,
                             refresh=not args.no_refresh, timeout=args.timeout, warehouse=args.warehouse)
    except FundsCheckError as exc:
        print(f"fc-balances: error: {redact(str(exc))}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("fc-balances: interrupted", file=sys.stderr, flush=True)
        return 130
    if args.json:
        print(json.dumps(answer.as_dict(), sort_keys=True), flush=True)
    else:
        print(f"fc-balances: {answer.line(args.account, int(args.amount_minor), args.currency.lower())}", flush=True)
    return 0
