"""`fc-balances marts`: rebuild the out-of-date days, a range or everything, without calling Stripe."""

from __future__ import annotations

import argparse

from pipelines.cli.common import CliError, say
from pipelines.cli.jobs import execute_marts


def cmd_marts(args: argparse.Namespace) -> int:
    """Rebuild the marts without calling Stripe: out-of-date days, a range, or everything."""
    from pipelines.resources import WarehouseResource

    if args.to and not args.from_:
        raise CliError("--to needs --from")
    if args.full and args.from_:
        raise CliError("--full rebuilds every day: leave out --from/--to")
    resources = {"warehouse": WarehouseResource(directory=args.warehouse)}  # unset: FC_BALANCES_WAREHOUSE
    metadata = execute_marts(resources, args.quiet, first=args.from_, last=args.to, full=args.full)
    for table in ("fc_latest_balances", "fc_daily_balances", "fc_underwriting_features", "fc_customer_liquidity"):
        done = metadata.get(table, {})
        if done:
            rows = done.get("rows_written", done.get("dagster/row_count", 0))
            say(f"  {table}: {rows} rows written in {done.get('build_seconds', 0)}s")
    return 0
