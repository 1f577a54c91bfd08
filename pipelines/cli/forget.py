"""`fc-balances forget`: a deletion request for customers or accounts."""

from __future__ import annotations

import argparse

from pipelines.cli.common import CliError, say


def cmd_forget(args: argparse.Namespace) -> int:
    """Delete every row about the given customers/accounts (pipelines/lifecycle); exit 1 on a bad id."""
    from pipelines.events import EventStoreError
    from pipelines.lifecycle.command import run_forget
    from pipelines.warehouse import WarehouseError

    try:
        subjects = [("customer", c) for c in args.customer or []] + [("account", a) for a in args.account or []]
        return run_forget(subjects, args.and_disconnect, say, args.warehouse)
    except (ValueError, WarehouseError, EventStoreError) as exc:  # a bad id (SubjectError), another store's salt
        raise CliError(str(exc)) from None
