"""The funds service's answer path: memory first, one refresh per account at a time, one limiter for the service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from pipelines.contract.values import FundsRefreshOutcome, RefreshOutcome
from pipelines.events.store import EventStore
from pipelines.funds.answer import DEFAULT_REFRESH_TIMEOUT, FundsAnswer, StripeAccess
from pipelines.funds.check import answer_from, no_balance_answer, refreshed_event
from pipelines.funds.macro import FundsCheck
from pipelines.funds.memory import AccountState, Known, KnownBalances
from pipelines.funds.refresh import (
    RefreshResult,
    StripeUnavailableError,
    UnknownAccountError,
    check_client,
    refresh_with,
)

T = TypeVar("T")


class CheckRefused(Exception):
    """The check cannot be answered: `status` is the HTTP status (404 unknown account, 503 Stripe unavailable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Checked:
    answer: FundsAnswer
    customer_id: str | None


def _age_text(account_id: str, currency: str, check: FundsCheck) -> str:
    if check.as_of is None or check.staleness_hours is None:
        return f"no balance of {account_id} in {currency} is known"
    return (f"the newest known balance of {account_id} in {currency} is {check.staleness_hours:.2f} h old "
            f"(as_of {check.as_of.isoformat()})")


class FundsChecker:
    """Answers checks from memory; a stale or unknown account is refreshed once, however many checks wait for it.

    Memory lives on one thread (`_memory`), the event store's writes on another (`_writer`), so the event loop never
    blocks on DuckDB, SQLite or fsync. Every request to Stripe goes through one client, so the whole service stays
    within FC_BALANCES_CHECK_RESERVE_RPS together.
    """

    def __init__(self, duckdb_path: Path, store: EventStore, stripe: StripeAccess | None,
                 refresh_timeout: float = DEFAULT_REFRESH_TIMEOUT) -> None:
        self.store = store
        self.stripe = stripe
        self.refresh_timeout = refresh_timeout
        self._memory = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fc-funds-memory")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fc-funds-store")
        self.memory = self._memory.submit(KnownBalances, duckdb_path, store.path).result()
        self._client = check_client(stripe) if stripe is not None else None
        self._inflight: dict[str, asyncio.Task[RefreshResult]] = {}
        self.refreshes_started = 0

    async def _on_memory(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._memory, function, *args)

    async def ready(self) -> None:
        """Take in the warehouse and the event store now (the service does this before it listens)."""
        await self._on_memory(self.memory.follow)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._memory.submit(self.memory.close).result()
        self._memory.shutdown(wait=True)
        self._writer.shutdown(wait=True)

    # -- the check ------------------------------------------------------------------------------------------------

    async def check(self, account_id: str, amount_minor: int, currency: str, max_age: timedelta) -> Checked:
        known = await self._on_memory(self.memory.known, account_id, amount_minor, currency)
        if known.forgotten:
            raise CheckRefused(404, f"unknown account {account_id}")
        staleness = known.check.staleness_hours
        if staleness is not None and staleness * 3600 <= max_age.total_seconds() and _grants(known.state):
            return Checked(answer_from(known.check, False, FundsRefreshOutcome.NOT_NEEDED), _customer(known.state))
        if self._client is None:
            if not known.known:
                raise CheckRefused(404, f"unknown account {account_id}: neither the warehouse nor the event store "
                                        "has it, and without STRIPE_API_KEY Stripe cannot be asked")
            raise CheckRefused(503, "cannot refresh: STRIPE_API_KEY is not set; "
                                    + _age_text(account_id, currency, known.check))
        try:
            result = await self._refresh_once(account_id)
        except UnknownAccountError as exc:
            raise CheckRefused(404, str(exc)) from None
        except StripeUnavailableError as exc:
            raise CheckRefused(503, f"Stripe is unavailable ({exc}); "
                                    + _age_text(account_id, currency, known.check)) from None
        if result.outcome == RefreshOutcome.SKIPPED_NO_PERMISSION:
            return Checked(no_balance_answer(result.outcome, result.reason),
                           _customer_of(result.account))
        known = await self._on_memory(self.memory.known, account_id, amount_minor, currency)
        if known.forgotten:  # forgotten while the refresh was under way
            raise CheckRefused(404, f"unknown account {account_id}")
        refreshed = result.outcome == RefreshOutcome.SUCCEEDED
        return Checked(answer_from(known.check, refreshed, result.outcome, result.reason),
                       _customer(known.state))

    async def _refresh_once(self, account_id: str) -> RefreshResult:
        """The refresh under way for this account, or a new one: concurrent checks share it (single flight)."""
        task = self._inflight.get(account_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._refresh(account_id))
            self._inflight[account_id] = task
            task.add_done_callback(lambda _done: self._inflight.pop(account_id, None))
        # Shielded: a caller that disconnects does not cancel the refresh the others wait for.
        return await asyncio.shield(task)

    async def _refresh(self, account_id: str) -> RefreshResult:
        assert self._client is not None and self.stripe is not None
        self.refreshes_started += 1
        result = await refresh_with(self._client, account_id, self.refresh_timeout, 1.0 / self.stripe.reserve_rps)
        account = result.account
        if account is not None and account.get("balance") is not None:
            # A refreshed balance is recorded as the command records it; a balance merely retrieved is recorded under
            # its own as_of, so retrieving it again stores it once.
            stamp = result.completed_at if result.outcome == RefreshOutcome.SUCCEEDED else None
            stamp = stamp or int((account.get("balance") or {}).get("as_of") or time.time())
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._writer, self.store.add, refreshed_event(account, stamp), time.time(),
                                       "funds_check")
            await self._on_memory(self.memory.learn, account, float(stamp))
        return result

    async def healthy(self) -> bool:
        try:
            await asyncio.wait_for(self._on_memory(self.memory.follow), timeout=5.0)
        except Exception:
            return False
        return True


def _grants(state: AccountState | None) -> bool:
    return state is None or state.permissions is None or "balances" in state.permissions


def _customer(state: AccountState | None) -> str | None:
    return state.customer_id if state is not None else None


def _customer_of(account: dict[str, Any] | None) -> str | None:
    holder = (account or {}).get("account_holder")
    return holder.get("customer") if isinstance(holder, dict) else None


__all__ = ["CheckRefused", "Checked", "FundsChecker", "Known"]
