"""`fc-balances`: run the Dagster job once, rebuild marts, check, forget, report, serve; a thin shell, one code path."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from pipelines.cli.check import cmd_check
from pipelines.cli.common import CliError, parse_day
from pipelines.cli.dev import cmd_dev
from pipelines.cli.forget import cmd_forget
from pipelines.cli.marts import cmd_marts
from pipelines.cli.run import cmd_run
from pipelines.cli.sandbox import cmd_sandbox
from pipelines.cli.snapshots import add_arguments as add_snapshots_arguments
from pipelines.cli.snapshots import cmd_snapshots
from pipelines.redact import redact
from pipelines.settings import SettingsError
from pipelines.warehouse import WarehouseError


def cmd_report(args: argparse.Namespace) -> int:
    from pipelines.cli.report import run_report

    return run_report(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fc-balances", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pipeline once (the same Dagster job the schedule runs)")
    run.add_argument("--warehouse", help="warehouse folder (default: $FC_BALANCES_WAREHOUSE or ./warehouse)")
    run.add_argument("--discovery", choices=["per_customer", "all"], help="how accounts are found")
    run.add_argument("--demo-customers", type=int, default=50, help="built-in sandbox only: demo customers")
    run.add_argument("--seed", type=int, default=42, help="built-in sandbox only: demo data seed")
    run.add_argument("--sandbox-latency", default="0.2-1.0", help="built-in sandbox only: refresh latency, s")
    run.add_argument("--quiet", action="store_true", help="no progress lines, just the summary")
    run.add_argument("--history-days", type=int, default=0, metavar="N",
                     help="built-in sandbox only: fill N past days of daily balances first (a demo history)")
    check = sub.add_parser("check", help="check a warehouse folder against the table contract")
    check.add_argument("--warehouse", help="warehouse folder (default: $FC_BALANCES_WAREHOUSE or ./warehouse)")
    marts = sub.add_parser("marts", help="rebuild the marts from the warehouse (out-of-date days by default)")
    marts.add_argument("--warehouse", help="warehouse folder (default: $FC_BALANCES_WAREHOUSE or ./warehouse)")
    marts.add_argument("--from", dest="from_", type=parse_day, metavar="DATE", help="first UTC day to rebuild")
    marts.add_argument("--to", type=parse_day, metavar="DATE", help="last UTC day to rebuild (default: today)")
    marts.add_argument("--full", action="store_true", help="rebuild every day from FC_BALANCES_HISTORY_START")
    marts.add_argument("--quiet", action="store_true", help="no progress lines")
    forget = sub.add_parser("forget", help="delete every row about a customer or account (a deletion request)")
    forget.add_argument("--customer", action="append", metavar="cus_ID", help="a customer to forget (repeatable)")
    forget.add_argument("--account", action="append", metavar="fca_ID", help="an account to forget (repeatable)")
    forget.add_argument("--and-disconnect", action="store_true",
                        help="also call Stripe's disconnect on the subject's accounts (needs STRIPE_API_KEY)")
    forget.add_argument("--warehouse", help="warehouse folder (default: $FC_BALANCES_WAREHOUSE or ./warehouse)")
    dev = sub.add_parser("dev", help="open the Dagster UI (dagster dev) on this code location")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--demo-customers", type=int, default=50)
    dev.add_argument("--seed", type=int, default=42)
    from pipelines.cli.report import add_arguments as add_report_arguments

    add_report_arguments(sub.add_parser("report", help="write self-contained HTML balance reports per customer"))
    add_snapshots_arguments(sub.add_parser("snapshots", help="list a published table's Iceberg snapshots"))
    sub.add_parser("sandbox", help="serve the local Stripe stand-in (see `fc-balances sandbox --help`)",
                   add_help=False)
    sub.add_parser("webhooks", help="serve the verified webhook receiver (see `fc-balances webhooks --help`)",
                   add_help=False)
    sub.add_parser("funds-check", help="a fresh funds answer for one account (see `fc-balances funds-check --help`)",
                   add_help=False)
    sub.add_parser("serve", help="the funds check as an HTTP service with a decision log (see `fc-balances serve "
                                 "--help`)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Library deprecation chatter would break the promise of one clear line per problem.
    warnings.simplefilter("ignore")
    if argv and argv[0] == "sandbox":
        return cmd_sandbox(argv[1:])
    if argv and argv[0] == "webhooks":
        from pipelines.cli.webhooks import main as webhooks_main

        return webhooks_main(argv[1:])
    if argv and argv[0] == "funds-check":  # before anything heavy: the check never imports Dagster
        from pipelines.cli.funds import main as funds_check_main

        return funds_check_main(argv[1:])
    if argv and argv[0] == "serve":  # the service never imports Dagster either
        from pipelines.cli.serve import main as serve_main

        return serve_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            if args.history_days < 0:
                raise CliError("--history-days must be 0 or more")
            return cmd_run(args)
        if args.command == "dev":
            return cmd_dev(args)
        if args.command == "check":
            return cmd_check(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "snapshots":
            return cmd_snapshots(args)
        if args.command == "marts":
            return cmd_marts(args)
        if args.command == "forget":
            if not (args.customer or args.account):
                raise CliError("forget needs --customer cus_... or --account fca_...")
            return cmd_forget(args)
    except (CliError, SettingsError, WarehouseError) as exc:
        print(f"fc-balances: error: {redact(str(exc))}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("fc-balances: interrupted", file=sys.stderr, flush=True)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
