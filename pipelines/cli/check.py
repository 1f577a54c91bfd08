"""`fc-balances check`: the warehouse against the table contract."""

from __future__ import annotations

import argparse

from pipelines.cli.common import say
from pipelines.settings import read, warehouse_dir


def cmd_check(args: argparse.Namespace) -> int:
    """Print every breach of the table contract; exit 1 when there is one."""
    from pipelines.contract.check import check_warehouse

    directory = args.warehouse or warehouse_dir()
    problems = check_warehouse(directory, read("FC_BALANCES_ICEBERG_CATALOG"))
    for problem in problems:
        print(f"fc-balances: {problem}")
    say(f"{directory}: {len(problems)} problems" if problems else f"{directory} keeps the table contract")
    return 1 if problems else 0
