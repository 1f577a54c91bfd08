"""`fc-balances report`: the arguments and the command body; reads the warehouse read-only and writes HTML files."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from pipelines.redact import redact
from pipelines.report.data import (
    CustomerData,
    ReportError,
    Window,
    check_sources,
    load_accounts,
    load_customers,
    make_window,
    missing_customers,
    open_warehouse,
)
from pipelines.report.render import render_customer, render_index
from pipelines.settings import warehouse_dir
from pipelines.warehouse import DUCKDB_FILE_NAME

DEFAULT_DAYS = 90
MAX_DAYS = 3660
# Stripe ids are letters, digits and underscores; the id names the output file, so nothing else gets through.
CUSTOMER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,254}")
LISTED_IN_ERRORS = 5


class ReportArgumentError(ValueError):
    """Bad arguments or a bad customers file; the message is the one line the user sees."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customer", metavar="ID", help="the customer to report on")
    parser.add_argument("--customers", metavar="FILE", help="a file of customer ids, one a line (# comments)")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help=f"window in days (default {DEFAULT_DAYS})")
    parser.add_argument("--out", metavar="FILE", help="with --customer: the HTML file (default <customer>.html)")
    parser.add_argument("--out-dir", metavar="DIR", help="with --customers: one file per customer plus index.html")
    parser.add_argument("--warehouse", help="warehouse folder (default: $FC_BALANCES_WAREHOUSE or ./warehouse)")
    parser.add_argument("--as-of", metavar="TIME", help="the marts and tables as their Iceberg snapshots stood at "
                        "TIME, e.g. 2026-11-30T12:00Z (UTC when no zone is given)")


def read_customers_file(path: str) -> list[str]:
    """Customer ids from a file, one a line; blank lines and # comments skipped, duplicates kept once."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ReportArgumentError(f"cannot read the customers file {path}: {reason}") from None
    customers: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), 1):
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        if not CUSTOMER_ID.fullmatch(value):
            raise ReportArgumentError(f"{path} line {number}: {value[:40]!r} is not a customer id")
        customers[value] = None
    if not customers:
        raise ReportArgumentError(f"the customers file {path} lists no customer")
    return list(customers)


def _validate(args: argparse.Namespace) -> None:
    if bool(args.customer) == bool(args.customers):
        raise ReportArgumentError("give exactly one of --customer ID or --customers FILE")
    if args.customer and args.out_dir:
        raise ReportArgumentError("--out-dir goes with --customers; use --out with --customer")
    if args.customers and (args.out or not args.out_dir):
        raise ReportArgumentError("--customers writes one file per customer: give --out-dir DIR (not --out)")
    if args.customer and not CUSTOMER_ID.fullmatch(args.customer):
        raise ReportArgumentError(f"{args.customer[:40]!r} is not a customer id")
    if not 1 <= args.days <= MAX_DAYS:
        raise ReportArgumentError(f"--days must be between 1 and {MAX_DAYS}, got {args.days}")


def write_atomic(path: Path, text: str) -> None:
    """Write under a temporary name, then rename: a reader never sees half a report."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                     suffix=".tmp", delete=False) as handle:
        handle.write(text)
        temporary = Path(handle.name)
    os.replace(temporary, path)


def _names(customers: list[str]) -> str:
    shown = ", ".join(customers[:LISTED_IN_ERRORS])
    return shown + (f" and {len(customers) - LISTED_IN_ERRORS} more" if len(customers) > LISTED_IN_ERRORS else "")


@contextmanager
def _source(warehouse: str, customers: list[str], as_of: datetime | None) -> Iterator[
        tuple[duckdb.DuckDBPyConnection, date | None]]:
    """DuckDB as it is now, or the Iceberg snapshots as they stood at `as_of` (loaded into memory)."""
    if as_of is None:
        with open_warehouse(warehouse) as con:
            yield con, None
        return
    from pipelines.report.as_of import AsOfError, open_as_of

    if not (Path(warehouse).expanduser() / DUCKDB_FILE_NAME).is_file():
        raise ReportError(f"no warehouse at {Path(warehouse).expanduser()}: run `fc-balances run` first")
    try:
        with open_as_of(warehouse, as_of, customers) as (con, newest):
            yield con, newest
    except AsOfError as exc:
        raise ReportError(str(exc)) from None


def load_book(warehouse: str, customers: list[str], days: int,
              now: datetime | None = None, as_of: datetime | None = None) -> tuple[dict[str, CustomerData], Window]:
    """Read everything the reports show; fails with one line, before anything is rendered, on any bad customer.

    With `as_of` the report shows what the published tables held then (the report time is that time).
    """
    with _source(warehouse, customers, as_of) as (con, newest_day):
        relations = check_sources(con, warehouse)
        accounts = load_accounts(con, customers)
        unknown, without = missing_customers(con, customers, accounts)
        if unknown:
            raise ReportError(f"unknown customer{'s' if len(unknown) > 1 else ''} (not in the warehouse): "
                              f"{_names(unknown)}")
        if without:
            raise ReportError(f"no accounts in the warehouse for customer{'s' if len(without) > 1 else ''} "
                              f"{_names(without)} (it has balances but no account rows)")
        columns = set(accounts[0]) if accounts else set()
        window = make_window(con, relations, days, as_of or now or datetime.now(UTC), columns, newest_day)
        return load_customers(con, customers, accounts, window), window


def run_report(args: argparse.Namespace) -> int:
    """The command body; errors end as one line on stderr and exit code 1, before any file is written."""
    try:
        _validate(args)
        # Read here, when the command runs, never at import.
        warehouse = args.warehouse or warehouse_dir()
        customers = [args.customer] if args.customer else read_customers_file(args.customers)
        if args.customer:
            out = Path(args.out or f"{args.customer}.html")
            if not out.parent.is_dir():
                raise ReportArgumentError(f"cannot write {out}: {out.parent} is not a folder")
        as_of = None
        if args.as_of:
            from pipelines.report.as_of import AsOfError, parse_as_of

            try:
                as_of = parse_as_of(args.as_of)
            except AsOfError as exc:
                raise ReportArgumentError(str(exc)) from None
        book, window = load_book(warehouse, customers, args.days, as_of=as_of)
        if args.customer:
            write_atomic(out, render_customer(book[args.customer], window))
            print(f"fc-balances: report for {args.customer} written to {out}", flush=True)
            return 0
        out = Path(args.out_dir)
        try:  # only now that every customer checked out, so a failed report leaves no folder behind
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReportArgumentError(f"cannot create the folder {out}: {exc.strerror or exc}") from None
        files = {customer: f"{customer}.html" for customer in customers}
        for customer in customers:
            write_atomic(out / files[customer], render_customer(book[customer], window))
        write_atomic(out / "index.html", render_index([book[c] for c in customers], files, window))
        print(f"fc-balances: {len(customers)} reports and index.html written to {out}", flush=True)
        return 0
    except (ReportArgumentError, ReportError) as exc:
        print(f"fc-balances: error: {redact(str(exc))}", file=sys.stderr, flush=True)
        return 1
    except OSError as exc:
        print(f"fc-balances: error: cannot write the report: {redact(exc.strerror or str(exc))}", file=sys.stderr,
              flush=True)
        return 1
