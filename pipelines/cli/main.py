"""`fc-balances`: run the Dagster job once, start the sandbox, or serve webhooks; a thin shell, no second code path."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pipelines.redact import redact
from pipelines.settings import SettingsError, warehouse_dir
from pipelines.warehouse import WarehouseError

SANDBOX_KEY = "sk_test_sandbox"  # the built-in sandbox's default key: not a secret, never printed all the same
SANDBOX_START_TIMEOUT = 60.0


class CliError(Exception):
    """Ends the command with one line on stderr and exit code 1."""


def _print(message: str) -> None:
    print(f"fc-balances: {redact(message)}", flush=True)


# --- the built-in sandbox -------------------------------------------------------------------------------------------
@contextmanager
def built_in_sandbox(demo_customers: int, seed: int, clock_offset_days: float = 0.0,
                     extra_args: Sequence[str] = ()) -> Iterator[str]:
    """Start `python -m stripe_sandbox` on a free loopback port in its own process; yield its base address."""
    args = [sys.executable, "-m", "stripe_sandbox", "--host", "127.0.0.1", "--port", "0",
            "--demo-customers", str(demo_customers), "--seed", str(seed), *extra_args]
    if clock_offset_days:
        args += ["--clock-offset-days", str(clock_offset_days)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
    try:
        base_url = _read_listen_line(proc)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_listen_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + SANDBOX_START_TIMEOUT
    line = proc.stdout.readline()  # the sandbox prints its address first, flushed
    if "listening on " not in line or time.monotonic() > deadline:
        err = (proc.stderr.read() if proc.poll() is not None and proc.stderr else "").strip().splitlines()
        raise CliError("the built-in sandbox did not start" + (f": {err[-1]}" if err else ""))
    return line.rsplit("listening on ", 1)[1].strip()


# --- warehouse pre-flight -------------------------------------------------------------------------------------------
def check_warehouse_writable(directory: str) -> Path:
    """Fail before any API call when the warehouse folder cannot be created or written."""
    path = Path(directory).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise CliError(f"cannot write to the warehouse folder {path}: {exc.strerror or exc}") from None
    return path.resolve()


# --- running the job ------------------------------------------------------------------------------------------------
_SKIPPED_STEP = re.compile(r"^Dependencies for step \S+ (?:failed|were not executed)")


class _ProgressHandler(logging.Handler):
    """Prints the pipeline's own log lines (progress, warnings), not Dagster's framework events."""

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        message = str(meta.get("orig_message", record.getMessage()))
        # Steps skipped after a failure say so in plain messages; the one-line error at the end says it better.
        if meta.get("dagster_event") is not None or _SKIPPED_STEP.match(message):
            return
        _print(message)


def _cli_logger_defs() -> dict[str, Any]:
    import dagster as dg

    @dg.logger(config_schema={"quiet": dg.Field(bool, default_value=False)},
               description="fc-balances CLI: the pipeline's own messages, one line each")
    def cli_progress(init_context: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.getLogger("fc_balances.cli")
        logger.setLevel(logging.WARNING if init_context.logger_config["quiet"] else logging.INFO)
        logger.propagate = False
        if not logger.handlers:
            logger.addHandler(_ProgressHandler())
        return logger

    return {"cli_progress": cli_progress}


_QUALIFIED_ERROR = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Failure): ")


def _failure_message(result: Any) -> str:
    """The root cause of the first failed step, as one line."""
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE" and event.step_failure_data:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None:
                error = error.cause
            if error is not None:
                text = error.message.strip().splitlines()[0] if error.message.strip() else error.cls_name or "error"
                return _QUALIFIED_ERROR.sub("", text)
    return "the run failed"


def execute_job(resources: dict[str, Any], quiet: bool = False, ingest_only: bool = False,
                job_name: str | None = None, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Execute the same Dagster job the schedule runs, in this process, with the given resources.

    Settings travel as resources, never as run config (Dagster stores run config) and never through os.environ.
    `job_name` and `tags` pick another job (the marts) and a partition range.
    """
    import dagster as dg

    from pipelines.definitions import INGEST_JOB_NAME, JOB_NAME, build_definitions

    defs = build_definitions(resources)
    name = job_name or (INGEST_JOB_NAME if ingest_only else JOB_NAME)
    job = defs.resolve_job_def(name).with_logger_defs(_cli_logger_defs())
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    # A logger runs only when the run config names it; none named would bring Dagster's console logger back.
    run_config = {"loggers": {"cli_progress": {"config": {"quiet": quiet}}}}
    result = job.execute_in_process(
        run_config=run_config, instance=instance, raise_on_error=False, tags=tags
    )
    if not result.success:
        raise CliError(redact(_failure_message(result)))
    metadata: dict[str, Any] = {"run_id": result.run_id}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        table = materialization.asset_key.to_user_string()
        metadata[table] = {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}
    return metadata


def execute_marts(resources: dict[str, Any], quiet: bool = False, first: date | None = None,
                  last: date | None = None, full: bool = False) -> dict[str, Any]:
    """Run the marts job once over a range of days: given, every day (`full`), or what the data says is out of date.

    The out-of-date range always ends today, so the unpartitioned marts are brought up to date too.
    """
    from assets.marts import marts_job
    from assets.marts_launch import out_of_date_range, range_tags

    warehouse = resources["warehouse"]
    today = datetime.now(UTC).date()
    settings = warehouse.history()
    if full:
        first, last = settings.history_start, today
    elif first is not None:
        last = last or today
        if last < first:
            raise CliError(f"--to {last} is before --from {first}")
        if last > today:
            raise CliError(f"--to {last} is after today ({today}, UTC)")
    else:
        found = out_of_date_range(warehouse, today)
        first, last = found if found is not None else (today, today)
    if not quiet:
        _print(f"marts: rebuilding {first}..{last} ({(last - first).days + 1} days)")
    return execute_job(resources, quiet=quiet, job_name=marts_job.name, tags=range_tags(first, last))


def print_summary(metadata: dict[str, Any], warehouse: Path) -> None:
    ingest = metadata.get("fc_balances", {})
    outcomes = ", ".join(
        f"{key.removeprefix('outcome_')} {value}" for key, value in sorted(ingest.items()) if key.startswith("outcome_")
    )
    _print(
        f"done in {ingest.get('duration_seconds', 0):.1f}s: {ingest.get('accounts_seen', 0)} accounts "
        f"({outcomes or 'no refreshes'}); {ingest.get('requests_made', 0)} requests, "
        f"{ingest.get('rate_limited_429', 0)} answered 429"
        + (f"; skipped_forgotten {ingest['skipped_forgotten']}" if ingest.get("skipped_forgotten") else "")
    )
    if ingest.get("refreshes_saved_by_policy") or "estimated_refresh_cost" in ingest:
        cost = (f"; estimated cost {ingest['estimated_refresh_cost']}, saved {ingest['estimated_cost_saved']}"
                if "estimated_refresh_cost" in ingest else "")
        _print(f"  refresh policy: {ingest.get('refresh_requested', 0)} refreshes requested, "
               f"{ingest.get('refreshes_saved_by_policy', 0)} saved{cost}")
    for table, values in metadata.items():
        if isinstance(values, dict) and "dagster/row_count" in values:
            inserted = values.get("rows_written_this_run")
            extra = f" ({inserted} written this run)" if inserted is not None else ""
            _print(f"  {table}: {values['dagster/row_count']} rows{extra}")
    _print(f"DuckDB: {warehouse / 'fc_balances.duckdb'}")
    _print(f"Parquet: {ingest.get('parquet_uri', warehouse / 'parquet')}")


def _advance_sandbox_clock(base_url: str, seconds: float) -> None:
    body = json.dumps({"advance_seconds": seconds}).encode()
    request = urllib.request.Request(  # noqa: S310 - the built-in sandbox on loopback
        f"{base_url}/_sandbox/clock", data=body, method="POST",
        headers={"Authorization": f"Bearer {SANDBOX_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()


def run_history(resources: dict[str, Any], base_url: str, days: int, quiet: bool) -> dict[str, Any]:
    """One ingest per past day on the sandbox's virtual clock, then today's full run (ingest and marts).

    The sandbox starts `days` days in the past with no rate limits or latency, so a demo history fills in seconds;
    every day is an ordinary run of the same job.
    """
    started = time.monotonic()
    for day in range(days, 0, -1):
        metadata = execute_job(resources, quiet=True, ingest_only=True)
        balances = metadata.get("fc_balances", {})
        if not quiet and (day % 10 == 0 or day == days):
            _print(f"history: {day} days ago done, fc_balances {balances.get('dagster/row_count', 0)} rows "
                   f"({time.monotonic() - started:.1f}s)")
        _advance_sandbox_clock(base_url, 86_400)
    return run_with_marts(resources, quiet)


def run_with_marts(resources: dict[str, Any], quiet: bool) -> dict[str, Any]:
    """The daily job (ingest and checks), then the marts over the out-of-date days, as the schedule does."""
    metadata = execute_job(resources, quiet=quiet)
    return metadata | execute_marts(resources, quiet=quiet)


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


def cmd_run(args: argparse.Namespace) -> int:
    warehouse = check_warehouse_writable(args.warehouse or warehouse_dir())
    if os.environ.get("STRIPE_API_KEY", "").strip():
        if args.history_days:
            raise CliError("--history-days drives the built-in sandbox's clock: unset STRIPE_API_KEY to use it")
        _print(f"using the Stripe API at {os.environ.get('STRIPE_API_BASE') or 'https://api.stripe.com'}")
        print_summary(run_with_marts(run_resources(warehouse, args.discovery), args.quiet), warehouse)
        return 0
    extra = ["--refresh-latency", args.sandbox_latency]
    if args.history_days:
        extra = ["--refresh-latency", "0", "--no-rate-limit"]
    with built_in_sandbox(args.demo_customers, args.seed, clock_offset_days=args.history_days,
                          extra_args=extra) as url:
        _print(f"no STRIPE_API_KEY set: using the built-in sandbox with {args.demo_customers} demo customers at {url}")
        resources = run_resources(warehouse, args.discovery, url, history=bool(args.history_days))
        if args.history_days:
            metadata = run_history(resources, url, args.history_days, args.quiet)
        else:
            metadata = run_with_marts(resources, args.quiet)
        print_summary(metadata, warehouse)
    return 0


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
            _print(f"  {table}: {rows} rows written in {done.get('build_seconds', 0)}s")
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_check(args: argparse.Namespace) -> int:
    """Print every breach of the table contract; exit 1 when there is one."""
    from pipelines.contract.check import check_warehouse

    directory = args.warehouse or warehouse_dir()
    problems = check_warehouse(directory, os.environ.get("FC_BALANCES_PARQUET_URI", "").strip() or None)
    for problem in problems:
        print(f"fc-balances: {problem}")
    _print(f"{directory}: {len(problems)} problems" if problems else f"{directory} keeps the table contract")
    return 1 if problems else 0


def cmd_forget(args: argparse.Namespace) -> int:
    """Delete every row about the given customers/accounts (pipelines/lifecycle); exit 1 on a bad id."""
    from pipelines.events import EventStoreError
    from pipelines.lifecycle.command import run_forget
    from pipelines.warehouse import WarehouseError

    try:
        subjects = [("customer", c) for c in args.customer or []] + [("account", a) for a in args.account or []]
        return run_forget(subjects, args.and_disconnect, _print, args.warehouse)
    except (ValueError, WarehouseError, EventStoreError) as exc:  # a bad id (SubjectError), another store's salt
        raise CliError(str(exc)) from None


def cmd_dev(args: argparse.Namespace) -> int:
    """`dagster dev` on this code location, against the built-in sandbox unless STRIPE_API_KEY is set."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    command = [dagster, "dev", "-w", "workspace.yaml", "--host", args.host, "--port", str(args.port)]
    if os.environ.get("STRIPE_API_KEY", "").strip():
        return subprocess.call(command, env=env)  # noqa: S603
    with built_in_sandbox(args.demo_customers, args.seed) as url:
        _print(f"no STRIPE_API_KEY set: the Dagster UI will use the built-in sandbox at {url}")
        return subprocess.call(command, env={**env, "STRIPE_API_KEY": SANDBOX_KEY, "STRIPE_API_BASE": url})  # noqa: S603


def cmd_sandbox(argv: list[str]) -> int:
    from stripe_sandbox.cli import main as sandbox_main

    return sandbox_main(argv)


def cmd_report(args: argparse.Namespace) -> int:
    from pipelines.report.cli import run_report

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
    marts.add_argument("--from", dest="from_", type=_day, metavar="DATE", help="first UTC day to rebuild")
    marts.add_argument("--to", type=_day, metavar="DATE", help="last UTC day to rebuild (default: today)")
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
    from pipelines.report.cli import add_arguments as add_report_arguments

    add_report_arguments(sub.add_parser("report", help="write self-contained HTML balance reports per customer"))
    sub.add_parser("sandbox", help="serve the local Stripe stand-in (see `fc-balances sandbox --help`)",
                   add_help=False)
    sub.add_parser("webhooks", help="serve the verified webhook receiver (see `fc-balances webhooks --help`)",
                   add_help=False)
    sub.add_parser("funds-check", help="a fresh funds answer for one account (see `fc-balances funds-check --help`)",
                   add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Library deprecation chatter would break the promise of one clear line per problem.
    warnings.simplefilter("ignore")
    if argv and argv[0] == "sandbox":
        return cmd_sandbox(argv[1:])
    if argv and argv[0] == "webhooks":
        from pipelines.webhooks.receiver import main as webhooks_main

        return webhooks_main(argv[1:])
    if argv and argv[0] == "funds-check":  # before anything heavy: the check never imports Dagster
        from pipelines.cli.funds import main as funds_check_main

        return funds_check_main(argv[1:])
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
