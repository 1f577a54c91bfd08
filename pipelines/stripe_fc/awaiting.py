"""Awaiting: completion events read from the events API, stragglers retrieved, timeouts recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import stripe

from pipelines.contract.values import FINISHED_REFRESH_OUTCOMES, RefreshOutcome, RefreshStatus
from pipelines.stripe_fc.client import REFRESHED_BALANCE_EVENT
from pipelines.stripe_fc.records import RefreshRecord
from pipelines.stripe_fc.state import EngineState, Pending


class AwaitingStage(EngineState):
    """Resolves pending refreshes: by event, by a direct retrieve after the grace period, or as timed out."""

    def _work_remaining(self) -> bool:
        return bool(self._pending) or not self.progress.listing_done or self._refreshing > 0 or not self._queue.empty()

    def _all_requested(self) -> bool:
        return self.progress.listing_done and self._refreshing == 0 and self._queue.empty()

    async def _await_loop(self) -> None:
        pause = self.settings.poll_interval
        while self._work_remaining():
            await asyncio.sleep(pause)
            read_before = self.progress.events_read
            if self._pending or self._requesting:
                try:
                    await self._read_events()
                except stripe.StripeError:
                    # Retries are spent for this poll; the cursor is unchanged, so the next poll reads the same events.
                    self.progress.event_poll_errors += 1
                await self._retrieve_stragglers()
                await self._expire()
            pause = self._next_pause(pause, found=self.progress.events_read > read_before)

    def _next_pause(self, pause: float, found: bool) -> float:
        """The poll interval while refreshes are still being requested. Once all are (the run's tail, which nothing
        but the last completions holds up), a fifth of it while reads find events, growing back to the interval
        while they find none: the run ends soon after its last refresh, without reading an idle API fast."""
        interval = self.settings.poll_interval
        if not self._all_requested():
            return interval
        fast = interval / 5
        return fast if found else min(interval, max(pause, fast) * 1.5)

    async def _read_events(self) -> None:
        # With no cursor, no such event existed when the run began, so every event there is is one of ours.
        events, self._cursor = await self.client.events_after(REFRESHED_BALANCE_EVENT, self._cursor)
        self.progress.events_read += len(events)
        for event in events:
            account = ((event.get("data") or {}).get("object")) or {}
            account_id = account.get("id", "")
            pending = self._pending.get(account_id)
            if pending is None and account_id in self._requesting:
                self._early[account_id] = (account, event.get("created"))
                continue
            if pending is None or not self._is_completion_of(account, pending):
                continue
            await self._resolve(account["id"], account, pending.requested_at, completed_at=event.get("created"))

    @staticmethod
    def _is_completion_of(account: Mapping[str, Any], pending: Pending) -> bool:
        refresh = account.get("balance_refresh") or {}
        if refresh.get("status") not in FINISHED_REFRESH_OUTCOMES:
            return False
        attempted = refresh.get("last_attempted_at")
        if pending.attempted_at is None:
            return True
        return isinstance(attempted, int | float) and attempted >= pending.attempted_at

    async def _retrieve_stragglers(self) -> None:
        now = time.monotonic()
        grace = self.settings.event_grace
        due = [aid for aid, p in self._pending.items() if now - p.last_checked >= grace]
        if not due:
            return
        semaphore = asyncio.Semaphore(self.settings.retrieve_concurrency)

        async def check(account_id: str) -> None:
            async with semaphore:
                pending = self._pending.get(account_id)
                if pending is None:
                    return
                pending.last_checked = time.monotonic()
                self.progress.retrieves += 1
                try:
                    account = await self.client.retrieve_account(account_id)
                except stripe.StripeError:
                    return  # try again after the next grace period; the deadline still applies
                if self._is_completion_of(account, pending) and account_id in self._pending:
                    await self._resolve(account_id, account, pending.requested_at, completed_at=time.time())

        await asyncio.gather(*(check(aid) for aid in due))

    async def _expire(self) -> None:
        now = time.monotonic()
        expired = [aid for aid, p in self._pending.items() if now - p.waiting_since >= self.settings.refresh_timeout]
        for account_id in expired:
            pending = self._pending.pop(account_id)
            await self._record(RefreshRecord(self.run_id, account_id, RefreshOutcome.TIMED_OUT,
                                             requested_at=pending.requested_at, status=RefreshStatus.PENDING))
        self.progress.pending = len(self._pending)

    async def _resolve(self, account_id: str, account: Mapping[str, Any], requested_at: float | None,
                       completed_at: float | None) -> None:
        self._pending.pop(account_id, None)
        self.progress.pending = len(self._pending)
        refresh = account.get("balance_refresh") or {}
        status = refresh.get("status")
        outcome = FINISHED_REFRESH_OUTCOMES.get(status, RefreshOutcome.ERROR)
        await self.sink.account_observed(account, final=True)
        await self._record(RefreshRecord(
            self.run_id, account_id, outcome, requested_at=requested_at, completed_at=completed_at,
            status=status, next_refresh_available_at=refresh.get("next_refresh_available_at"),
            error_code=None if outcome != RefreshOutcome.ERROR else "unexpected_refresh_status",
        ))
