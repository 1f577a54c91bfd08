"""After an outage longer than Stripe keeps events: retrieve the tracked accounts' current state and land it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe

from pipelines.lifecycle.eventstore import Gap, gap_reconciled, pending_gaps
from pipelines.lifecycle.subjects import Forgotten
from pipelines.normalize.normalizer import normalize_accounts, normalize_balances
from pipelines.sql import load_sql
from pipelines.stripe_fc.client import StripeFCClient
from pipelines.warehouse import NormalizedBatch, Warehouse

RETRIEVE_CONCURRENCY = 16


@dataclass(frozen=True)
class ReconcileResult:
    gaps: int = 0
    accounts_reconciled: int = 0
    balances_landed: int = 0


def tracked_accounts(warehouse: Warehouse, forgotten: Forgotten) -> list[str]:
    with warehouse.connection() as con:
        ids = [row[0] for row in con.execute(load_sql("lifecycle/tracked_accounts")).fetchall()]
    return [account_id for account_id in ids if not forgotten.matches(account_id)]


async def retrieve_accounts(client: StripeFCClient, account_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The accounts as Stripe holds them now, through the client's rate limiter; ones Stripe no longer has are left
    out (a 404 for a deleted account)."""
    semaphore = asyncio.Semaphore(RETRIEVE_CONCURRENCY)

    async def one(account_id: str) -> dict[str, Any] | None:
        async with semaphore:
            try:
                return await client.retrieve_account(account_id)
            except stripe.InvalidRequestError:
                return None

    found = await asyncio.gather(*(one(account_id) for account_id in account_ids))
    return [account for account in found if account]


def land_accounts(warehouse: Warehouse, accounts: list[dict[str, Any]]) -> dict[str, int]:
    """Write the accounts and every balance they carry, one transaction (balances deduplicate by their key)."""
    now = datetime.now(UTC)
    balances = normalize_balances(accounts, fetched_at=now)
    batch = NormalizedBatch(
        accounts=normalize_accounts(accounts, observed_at=now) if accounts else None,
        balances=balances.balances, rejected=balances.rejected,
    )
    return warehouse.write_batch(batch)


def stripe_client_from_environment() -> StripeFCClient | None:
    """A client as the code location's Stripe resource would build it (every setting from its variable), or None
    when STRIPE_API_KEY is unset. For fc_events, which needs no key unless a gap waits."""
    from pipelines.resources import StripeResource
    from pipelines.settings import read

    api_key = read("STRIPE_API_KEY")
    return StripeResource(api_key=api_key).client() if api_key else None


def _utc(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


async def reconcile_gaps(store: Any, warehouse: Warehouse, client: StripeFCClient, forgotten: Forgotten,
                         already_seen: Iterable[str] = ()) -> ReconcileResult:
    """Reconcile every gap the store records: retrieve the tracked accounts (except those this run already saw
    as Stripe holds them now), land them, record one fc_event_gaps row per gap, mark the gaps done.

    `store` is a pipelines.events.EventStore. A crash before the gaps are marked done repeats an idempotent
    reconciliation next time.
    """
    with store.locked() as connection:
        gaps: list[Gap] = pending_gaps(connection)
    if not gaps:
        return ReconcileResult()
    seen = set(already_seen)
    wanted = [account_id for account_id in tracked_accounts(warehouse, forgotten) if account_id not in seen]
    accounts = [a for a in await retrieve_accounts(client, wanted) if not forgotten.account_is_forgotten(a)]
    written = land_accounts(warehouse, accounts) if accounts else {}
    reconciled = len(accounts) + len(seen)
    balances = int(written.get("fc_balances", 0))
    detected_at = datetime.now(UTC)
    with warehouse.connection() as con:
        for gap in gaps:
            con.execute(load_sql("lifecycle/gap_record"), {
                "gap_from": _utc(gap.gap_from), "gap_to": _utc(gap.gap_to), "detected_at": detected_at,
                "detected_by": gap.detected_by, "accounts_reconciled": reconciled, "balances_landed": balances,
            })
    with store.locked() as connection:
        for gap in gaps:
            gap_reconciled(connection, gap.gap_id)
    return ReconcileResult(len(gaps), reconciled, balances)
