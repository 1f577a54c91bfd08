"""Builders for the policy and funds-check tests: sandbox fixtures, a warehouse seeded with known balances."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.normalize.normalizer import normalize_accounts, normalize_balances
from pipelines.warehouse import NormalizedBatch, Warehouse

ROOT = Path(__file__).resolve().parents[2]


def account(account_id: str, customer: str = "cus_A", as_of: float | None = None, available: int = 1000,
            **fields: Any) -> dict[str, Any]:
    """A sandbox fixture account; with `as_of`, it already carries a balance of that age."""
    doc: dict[str, Any] = {
        "id": account_id, "customer": customer, "institution_name": "StripeBank", "category": "cash",
        "subcategory": "checking", "status": "active", "permissions": ["balances", "payment_method"],
        "created": 1_764_000_000, "balance_refresh": None,
        "balance": None if as_of is None else cash(available, int(as_of)),
        "refresh_outcomes": [{"status": "succeeded", "balance": {
            "type": "cash", "current": {"usd": 10_000}, "cash": {"available": {"usd": 9_000}}}}],
    }
    doc.update(fields)
    return doc


def cash(available: int, as_of: int, currency: str = "usd") -> dict[str, Any]:
    return {"as_of": as_of, "type": "cash", "current": {currency: available + 100},
            "cash": {"available": {currency: available}}}


def api_account(fixture: dict[str, Any]) -> dict[str, Any]:
    """The fixture as Stripe would render it, enough for the normalizers."""
    return {
        "id": fixture["id"], "object": "financial_connections.account",
        "account_holder": {"type": "customer", "customer": fixture.get("customer")},
        "balance": fixture.get("balance"), "balance_refresh": fixture.get("balance_refresh"),
        "category": fixture.get("category"), "subcategory": fixture.get("subcategory"), "created": 1_764_000_000,
        "institution_name": "StripeBank", "livemode": False, "permissions": fixture.get("permissions"),
        "status": fixture.get("status"),
        **{k: fixture[k] for k in ("status_details", "account_numbers") if k in fixture},
    }


def seed_warehouse(directory: Path, accounts: list[dict[str, Any]]) -> None:
    """Land accounts and their balances as an earlier run would have (the real writer, real DuckDB and Iceberg)."""
    now = datetime.now(UTC)
    rendered = [api_account(a) for a in accounts]
    balances = normalize_balances([a for a in rendered if a["balance"] is not None], fetched_at=now)
    with Warehouse(directory) as warehouse:
        warehouse.write_batch(NormalizedBatch(accounts=normalize_accounts(rendered, observed_at=now),
                                              balances=balances.balances, rejected=balances.rejected))
        warehouse.publish()


def fc_balances_cli(args: list[str], env: dict[str, str],
                    check_no_dagster: bool = False) -> subprocess.CompletedProcess:
    """The real command in a fresh process; optionally proves Dagster was never imported on its path."""
    code = (
        "import sys\nfrom pipelines.cli.main import main\nrc = main(sys.argv[1:])\n"
        + ("assert 'dagster' not in sys.modules, 'dagster was imported'\n"
           "print('NO_DAGSTER', file=sys.stderr)\n" if check_no_dagster else "")
        + "sys.exit(rc)\n"
    )
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FC_BALANCES_"))}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code, *args], env=full_env, capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
