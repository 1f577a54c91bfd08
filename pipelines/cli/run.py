"""`fc-balances run`: the daily job then the marts, on Stripe or the built-in sandbox; `--history-days`; the summary."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pipelines.cli.common import CliError, check_warehouse_writable, say
from pipelines.cli.jobs import execute_job, execute_marts, run_instance
from pipelines.cli.sandbox import SANDBOX_KEY, advance_sandbox_clock, built_in_sandbox
from pipelines.settings import read, warehouse_dir


def print_summary(metadata: dict[str, Any], warehouse: Path) -> None:
    ingest = metadata.get("fc_balances", {})
    outcomes = ", ".join(
        f"{key.removeprefix('outcome_')} {value}" for key, value in sorted(ingest.items()) if key.startswith("outcome_")
    )
    say(
        f"done in {ingest.get('duration_seconds', 0):.1f}s: {ingest.get('accounts_seen', 0)} accounts "
        f"({outcomes or 'no refreshes'}); {ingest.get('requests_made', 0)} requests, "
        f"{ingest.get('rate_limited_429', 0)} answered 429"
        + (f"; skipped_forgotten {ingest['skipped_forgotten']}" if ingest.get("skipped_forgotten") else "")
    )
    if ingest.get("refreshes_saved_by_policy") or "estimated_refresh_cost" in ingest:
        cost = (f"; estimated cost {ingest['estimated_refresh_cost']}, saved {ingest['estimated_cost_saved']}"
                if "estimated_refresh_cost" in ingest else "")
        say(f"  refresh policy: {ingest.get('refresh_requested', 0)} refreshes requested, "
               f"{ingest.get('refreshes_saved_by_policy', 0)} saved{cost}")
    for table, values in metadata.items():
        if isinstance(values, dict) and "dagster/row_count" in values:
            inserted = values.get("rows_written_this_run")
            extra = f" ({inserted} written this run)" if inserted is not None else ""
            say(f"  {table}: {values['dagster/row_count']} rows{extra}")
    say(f"DuckDB: {warehouse / 'fc_balances.duckdb'}")
    say(f"Iceberg: {ingest.get('iceberg_catalog') or warehouse / 'iceberg' / 'catalog.db'} "
        "(namespace fc_balances; `fc-balances snapshots TABLE` lists a table's snapshots)")


def run_history(resources: dict[str, Any], base_url: str, days: int, quiet: bool) -> dict[str, Any]:
    """One ingest per past day on the sandbox's virtual clock, then today's full run (ingest and marts).

    The sandbox starts `days` days in the past with no rate limits or latency, so a demo history fills in seconds;
    every day is an ordinary run of the same job.
    """
    started = time.monotonic()
    for day in range(days, 0, -1):
        metadata = execute_job(resources, quiet=True, ingest_only=True)  # a run of its own, as on that day
        balances = metadata.get("fc_balances", {})
        if not quiet and (day % 10 == 0 or day == days):
            say(f"history: {day} days ago done, fc_balances {balances.get('dagster/row_count', 0)} rows "
                   f"({time.monotonic() - started:.1f}s)")
        advance_sandbox_clock(base_url, 86_400)
    return run_with_marts(resources, quiet)


def run_with_marts(resources: dict[str, Any], quiet: bool) -> dict[str, Any]:
    """The daily job (ingest and checks), then the marts over the out-of-date days, as the schedule does: two runs
    on one Dagster instance."""
    with run_instance() as instance:
        metadata = execute_job(resources, quiet=quiet, instance=instance)
        return metadata | execute_marts(resources, quiet=quiet, instance=instance)


def run_resources(warehouse: Path, discovery: str | None, sandbox_url: str | None = None,
                  history: bool = False) -> dict[str, Any]:
    """The resources of one `fc-balances run`: the user's Stripe key from the environment, or the built-in sandbox.

    Options left unset stay None on the resources, which read their environment variables when the run starts.
    """
    import dagster as dg

    from pipelines.resources import StripeResource, WarehouseResource

    stripe: dict[str, Any] = {"discovery": discovery}
    if sandbox_url is None:
        stripe["api_key"] = dg.EnvVar("STRIPE_API_KEY")
    else:
        # The sandbox's key is not a secret; the sandbox is a choice of resources, not a change to the environment.
        stripe |= {"api_key": SANDBOX_KEY, "api_base": sandbox_url}
        if history:
            # A demo history: no limits on either side and a fast poll, so 90 days take seconds.
            stripe |= {"max_rps": 10_000.0, "max_rps_per_endpoint": 10_000.0, "poll_interval_seconds": 0.05}
    return {"stripe": StripeResource(**stripe), "warehouse": WarehouseResource(directory=str(warehouse))}


def check_run_settings(resources: dict[str, Any]) -> None:
    """Read every setting the run will read (its resources' and the checks' thresholds) now, so a bad one fails with
    the line naming it before the warehouse folder is made or Stripe is called."""
    from assets.checks import DataQualityConfig, resolve_thresholds

    resources["stripe"].validate()
    resources["warehouse"].validate()
    resolve_thresholds(DataQualityConfig())


def cmd_run(args: argparse.Namespace) -> int:
    keyed = bool(read("STRIPE_API_KEY"))
    # The sandbox's address is not known yet; any address stands in for it, since no address is read as a setting.
    stand_in = None if keyed else "http://127.0.0.1"
    check_run_settings(run_resources(Path(args.warehouse or warehouse_dir()).expanduser().absolute(),
                                     args.discovery, stand_in, history=bool(args.history_days)))
    warehouse = check_warehouse_writable(args.warehouse or warehouse_dir())
    if keyed:
        if args.history_days:
            raise CliError("--history-days drives the built-in sandbox's clock: unset STRIPE_API_KEY to use it")
        say(f"using the Stripe API at {read('STRIPE_API_BASE')}")
        print_summary(run_with_marts(run_resources(warehouse, args.discovery), args.quiet), warehouse)
        return 0
    extra = ["--refresh-latency", args.sandbox_latency]
    if args.history_days:
        extra = ["--refresh-latency", "0", "--no-rate-limit"]
    with built_in_sandbox(args.demo_customers, args.seed, clock_offset_days=args.history_days,
                          extra_args=extra) as url:
        say(f"no STRIPE_API_KEY set: using the built-in sandbox with {args.demo_customers} demo customers at {url}")
        resources = run_resources(warehouse, args.discovery, url, history=bool(args.history_days))
        if args.history_days:
            metadata = run_history(resources, url, args.history_days, args.quiet)
        else:
            metadata = run_with_marts(resources, args.quiet)
        print_summary(metadata, warehouse)
    return 0
