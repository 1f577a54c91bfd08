"""`fc-balances snapshots TABLE`: a published table's Iceberg snapshots (id, time, run id, rows), oldest first."""

from __future__ import annotations

import argparse

from pipelines.cli.common import CliError
from pipelines.contract.tables import EXPORTED_TABLES
from pipelines.settings import env_text, warehouse_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help=f"a published table: {', '.join(EXPORTED_TABLES)}")
    parser.add_argument("--warehouse", help="warehouse folder (default: $FC_BALANCES_WAREHOUSE or ./warehouse)")


def cmd_snapshots(args: argparse.Namespace) -> int:
    """Print one line per snapshot; the current one is marked. Read-only: no lock, nothing written."""
    from pipelines.warehouse.catalog import catalog_errors, catalog_properties, open_catalog
    from pipelines.warehouse.snapshots import list_snapshots

    if args.table not in EXPORTED_TABLES:
        raise CliError(f"{args.table[:60]!r} is not a published table; choose one of {', '.join(EXPORTED_TABLES)}")
    properties = catalog_properties(args.warehouse or warehouse_dir(), env_text("FC_BALANCES_ICEBERG_CATALOG"))
    catalog = open_catalog(properties)
    with catalog_errors(properties, f"reading the snapshots of {args.table}"):
        snapshots = list_snapshots(catalog, args.table)
    print(f"{'snapshot_id':>20}  {'committed_at (UTC)':<24}  {'run_id':<38}  {'operation':<9}  {'rows':>10}  "
          "partitions")
    for snapshot in snapshots:
        committed = snapshot.committed_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        print(f"{snapshot.snapshot_id:>20}  {committed:<24}  {snapshot.run_id:<38}  {snapshot.operation:<9}  "
              f"{snapshot.rows:>10}  {snapshot.partition_range}{'  (current)' if snapshot.current else ''}")
    if not snapshots:
        print(f"fc-balances: fc_balances.{args.table} has no snapshot yet (nothing published)")
    return 0
