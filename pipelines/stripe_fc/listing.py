"""Listing: customers and their accounts (or every account), each account classified as it is listed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from pipelines.contract.values import RefreshOutcome
from pipelines.stripe_fc.policy import balance_as_of, newest_of
from pipelines.stripe_fc.records import RefreshRecord, classify
from pipelines.stripe_fc.state import EngineState, Pending


class ListingStage(EngineState):
    """Finds the accounts and decides each one: refresh (queued), await (already pending), held (budget) or skip."""

    async def _discover(self) -> None:
        if self.settings.discovery == "all":
            async for page in self.client.list_accounts():
                for account in page:
                    await self._admit(account)
            return
        semaphore = asyncio.Semaphore(self.settings.listing_concurrency)
        listings: set[asyncio.Task[None]] = set()

        async def list_customer(customer_id: str) -> None:
            try:
                async for page in self.client.list_accounts(customer_id):
                    for account in page:
                        await self._admit(account)
            finally:
                semaphore.release()

        try:
            async for customers in self.client.list_customers():
                for customer in customers:
                    self.progress.customers_listed += 1
                    if self.is_forgotten(customer.get("id")):
                        self.progress.skipped_forgotten += 1
                        continue
                    await semaphore.acquire()
                    task = asyncio.create_task(list_customer(customer["id"]))
                    listings.add(task)
                    task.add_done_callback(listings.discard)
            while listings:
                await asyncio.gather(*list(listings))
        finally:
            for task in list(listings):
                task.cancel()

    async def _admit(self, account: dict[str, Any]) -> None:
        self.progress.accounts_listed += 1
        account_id = account["id"]
        holder = account.get("account_holder") or {}
        if self.is_forgotten(account_id) or self.is_forgotten(holder.get("customer")):
            self.progress.skipped_forgotten += 1
            return
        now = self.client.server_now()
        decision = classify(account, now)
        if decision == "refresh" and self.policy.active:
            decision = await self._apply_policy(account, now)
        elif self.planner is not None:
            await self._start(self.planner.listed(account_id))
        if decision == "held":
            return
        if decision == "refresh":
            await self.sink.account_observed(account, final=False)
            await self._queue.put(account_id)
        elif decision == "await":
            await self.sink.account_observed(account, final=False)
            now = time.monotonic()
            self._pending[account_id] = Pending(
                attempted_at=(account.get("balance_refresh") or {}).get("last_attempted_at"),
                requested_at=None, waiting_since=now, last_checked=now,
            )
            self.progress.pending = len(self._pending)
        else:
            await self._record_skip(account, decision)

    async def _apply_policy(self, account: dict[str, Any], now: float) -> str:
        """`skipped_fresh`, `refresh` (no budget), or `held` for the budget to choose (started when provable)."""
        account_id = account["id"]
        newest = newest_of(self.known.newest_as_of.get(account_id), balance_as_of(account))
        max_age = self.policy.max_age_hours
        if max_age is not None and newest is not None and now - newest < max_age * 3600:
            if self.planner is not None:
                await self._start(self.planner.listed(account_id))
            return RefreshOutcome.SKIPPED_FRESH
        if self.planner is None:
            return "refresh"
        await self.sink.account_observed(account, final=False)
        refresh = account.get("balance_refresh") or {}
        self._held[account_id] = (refresh.get("status"), refresh.get("next_refresh_available_at"))
        await self._start(self.planner.offer(account_id, newest))
        return "held"

    async def _start(self, ready: list[str]) -> None:
        """Accounts the budget has chosen: off to the refreshers."""
        for account_id in ready:
            self._held.pop(account_id, None)
            await self._queue.put(account_id)

    async def _record_skip(self, account: Mapping[str, Any], outcome: str) -> None:
        await self.sink.account_observed(account, final=True)
        refresh = account.get("balance_refresh") or {}
        await self._record(RefreshRecord(
            self.run_id, account["id"], outcome, status=refresh.get("status"),
            next_refresh_available_at=refresh.get("next_refresh_available_at"),
        ))
