"""Command line for the sandbox (`fc-balances sandbox`, `python -m stripe_sandbox`)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

from stripe_sandbox.config import PERMISSION_NAMES, SandboxConfig, parse_latency
from stripe_sandbox.fixtures import FixtureError, load_fixtures_file
from stripe_sandbox.runner import start_sandbox

PROG = "fc-balances sandbox"


class _OneLineParser(argparse.ArgumentParser):
    """Bad flags: one line on stderr naming the problem, exit 2 (no usage wall)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _latency(text: str) -> tuple[float, float]:
    try:
        return parse_latency(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _checked(rule: Callable[[float], bool], message: str) -> Callable[[str], float]:
    """An argparse type: a number that obeys `rule`, else `message` (formatted with the value)."""

    def parse(text: str) -> float:
        value = _number(text)
        if not rule(value):
            raise argparse.ArgumentTypeError(message.format(value))
        return value

    return parse


_probability = _checked(lambda v: 0.0 <= v <= 1.0, "must be between 0 and 1, not {}")
_positive = _checked(lambda v: v > 0, "must be above 0, not {}")
_non_negative = _checked(lambda v: v >= 0, "must be 0 or more, not {}")


def _restricted_key(text: str) -> tuple[str, frozenset[str]]:
    key, sep, permissions = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("expected KEY=perm1,perm2")
    names = frozenset(p.strip() for p in permissions.split(",") if p.strip())
    unknown = sorted(names - PERMISSION_NAMES)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown permission {unknown[0]!r} (known: {', '.join(sorted(PERMISSION_NAMES))})"
        )
    return key, names


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog=PROG, description="A local, stateful Stripe Financial Connections API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=12111, help="port; 0 picks a free one (default 12111)")
    parser.add_argument("--fixtures", metavar="FILE", help="JSON fixtures to load (DESIGN.md format)")
    parser.add_argument("--demo-customers", type=int, default=None, metavar="N",
                        help="seeded demo customers with their accounts (default 50, or 0 with --fixtures)")
    parser.add_argument("--seed", type=int, default=42, help="seed for ids, demo data and outcomes")
    parser.add_argument("--api-key", default="sk_test_sandbox", metavar="KEY", help="the accepted secret key")
    parser.add_argument("--mode", choices=("test", "live"), default="test")
    parser.add_argument("--rate-limit-global", type=_positive, metavar="R",
                        help="global requests/s (default 25 test, 100 live)")
    parser.add_argument("--rate-limit-endpoint", type=_positive, default=25.0, metavar="R",
                        help="requests/s per endpoint (default 25)")
    parser.add_argument("--no-rate-limit", action="store_true", help="turn the rate limiter off")
    parser.add_argument("--refresh-latency", type=_latency, default=(1.0, 1.0), metavar="SECONDS",
                        help="seconds until a refresh completes: a number or MIN-MAX (default 1)")
    parser.add_argument("--refresh-cooldown", type=_non_negative, default=3600.0, metavar="SECONDS",
                        help="seconds after completion before the next refresh (default 3600)")
    parser.add_argument("--fault-rate", type=_probability, default=0.0, metavar="P",
                        help="fraction of requests answered with a fault (default 0)")
    parser.add_argument("--webhook-url", metavar="URL", help="POST every event here")
    parser.add_argument("--webhook-secret", metavar="SECRET", help="signing secret (whsec_...)")
    parser.add_argument("--clock-offset-days", type=float, default=0.0, metavar="D",
                        help="start the virtual clock D days in the past")
    parser.add_argument("--restricted-key", type=_restricted_key, action="append", default=[],
                        metavar="KEY=PERMS", help="also accept KEY with these permissions (repeatable)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.demo_customers is None:
        # With --fixtures, the fixtures alone: a user who loads 14 customers lists 14.
        args.demo_customers = 0 if args.fixtures else 50
    if args.demo_customers < 0:
        print(f"{PROG}: error: --demo-customers must be 0 or more", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"{PROG}: error: --port must be in 0..65535", file=sys.stderr)
        return 2
    if bool(args.webhook_url) != bool(args.webhook_secret):
        print(f"{PROG}: error: --webhook-url and --webhook-secret go together", file=sys.stderr)
        return 2
    try:
        fixtures = load_fixtures_file(args.fixtures) if args.fixtures else None
        config = SandboxConfig(
            host=args.host, port=args.port, api_key=args.api_key, mode=args.mode, seed=args.seed,
            demo_customers=args.demo_customers, fixtures=fixtures, rate_limit=not args.no_rate_limit,
            rate_limit_global=args.rate_limit_global, rate_limit_endpoint=args.rate_limit_endpoint,
            refresh_latency=args.refresh_latency, refresh_cooldown=args.refresh_cooldown,
            fault_rate=args.fault_rate, webhook_url=args.webhook_url, webhook_secret=args.webhook_secret,
            clock_offset=-args.clock_offset_days * 86_400.0, restricted_keys=dict(args.restricted_key),
        )
    except (FixtureError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_requested.set())
    try:
        sandbox = start_sandbox(config)
    except FixtureError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        print(f"stripe_sandbox listening on {sandbox.base_url}", flush=True)
        while not stop_requested.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0
